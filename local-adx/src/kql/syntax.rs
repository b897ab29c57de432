//! The parsed form of a query: a table, then operators, each holding expressions. Parsing
//! only; types and names are checked by `plan`.

use super::lexer::{tokens, Token};
use super::value::Scalar;

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Column(String),
    Literal(Scalar),
    Negate(Box<Expr>),
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    Between {
        value: Box<Expr>,
        low: Box<Expr>,
        high: Box<Expr>,
        negated: bool,
    },
    In {
        value: Box<Expr>,
        list: Vec<Expr>,
        negated: bool,
        ignore_case: bool,
    },
    Call(String, Vec<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Or,
    And,
    Equal,
    NotEqual,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
    EqualIgnoreCase,
    NotEqualIgnoreCase,
    /// `contains`, `has`, … with whether negated and whether case-sensitive.
    Text(TextOp, bool, bool),
    Add,
    Subtract,
    Multiply,
    Divide,
    Modulo,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextOp {
    Contains,
    Has,
    StartsWith,
    EndsWith,
}

impl BinaryOp {
    pub fn symbol(self) -> String {
        match self {
            Self::Or => "or".into(),
            Self::And => "and".into(),
            Self::Equal => "==".into(),
            Self::NotEqual => "!=".into(),
            Self::Less => "<".into(),
            Self::LessOrEqual => "<=".into(),
            Self::Greater => ">".into(),
            Self::GreaterOrEqual => ">=".into(),
            Self::EqualIgnoreCase => "=~".into(),
            Self::NotEqualIgnoreCase => "!~".into(),
            Self::Text(op, negated, cs) => format!(
                "{}{}{}",
                if negated { "!" } else { "" },
                match op {
                    TextOp::Contains => "contains",
                    TextOp::Has => "has",
                    TextOp::StartsWith => "startswith",
                    TextOp::EndsWith => "endswith",
                },
                if cs { "_cs" } else { "" }
            ),
            Self::Add => "+".into(),
            Self::Subtract => "-".into(),
            Self::Multiply => "*".into(),
            Self::Divide => "/".into(),
            Self::Modulo => "%".into(),
        }
    }
}

/// `Name = expr`, or an expression whose column name is derived.
#[derive(Debug, Clone, PartialEq)]
pub struct Named {
    pub name: Option<String>,
    pub expr: Expr,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SortKey {
    pub expr: Expr,
    pub descending: bool,
    pub nulls_first: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Operator {
    Where(Expr),
    Project(Vec<Named>),
    Extend(Vec<Named>),
    Summarize {
        aggregates: Vec<Named>,
        by: Vec<Named>,
    },
    Top {
        count: usize,
        key: SortKey,
    },
    /// The columns, or every column when empty (`distinct *`).
    Distinct(Vec<Named>),
    Take(usize),
    Count,
    Sort(Vec<SortKey>),
    Render(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub table: String,
    /// Each operator with the word it was written with, for messages.
    pub operators: Vec<(String, Operator)>,
}

pub const OPERATORS: &str = "where, project, extend, summarize … by …, top N by, distinct, take/limit, count, order/sort by, render timechart|linechart";

pub fn parse(text: &str) -> Result<Query, String> {
    let tokens = tokens(text)?;
    let mut parser = Parser {
        tokens,
        at: 0,
        end: text.len(),
    };
    let table = match parser.next() {
        Some(Token::Name(name) | Token::QuotedName(name)) => name,
        _ => return Err("a query starts with a table name".into()),
    };
    let mut operators = Vec::new();
    while parser.eat_symbol("|") {
        let word = match parser.next() {
            Some(Token::Name(word)) => word,
            _ => return Err(parser.expected("an operator after |")),
        };
        let operator = parser.operator(&word)?;
        operators.push((word, operator));
    }
    parser.eat_symbol(";");
    if parser.peek().is_some() {
        return Err(parser.expected("| or the end of the query"));
    }
    if let Some(i) = operators
        .iter()
        .position(|(_, op)| matches!(op, Operator::Render(_)))
    {
        if i + 1 != operators.len() {
            return Err("render must be the last operator of a query".into());
        }
    }
    Ok(Query { table, operators })
}

struct Parser {
    tokens: Vec<(Token, usize)>,
    at: usize,
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at).map(|(t, _)| t)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.at).map(|(t, _)| t.clone());
        self.at += 1;
        token
    }

    fn position(&self) -> usize {
        self.tokens.get(self.at).map_or(self.end, |(_, p)| *p)
    }

    fn expected(&self, what: &str) -> String {
        match self.peek() {
            Some(token) => format!(
                "expected {what} at position {}, found {}",
                self.position(),
                describe(token)
            ),
            None => format!("expected {what} at the end of the query"),
        }
    }

    fn eat_symbol(&mut self, symbol: &str) -> bool {
        if matches!(self.peek(), Some(Token::Symbol(s)) if *s == symbol) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect_symbol(&mut self, symbol: &str) -> Result<(), String> {
        if self.eat_symbol(symbol) {
            Ok(())
        } else {
            Err(self.expected(&format!("`{symbol}`")))
        }
    }

    fn peek_word(&self) -> Option<String> {
        match self.peek() {
            Some(Token::Name(w)) => Some(w.to_ascii_lowercase()),
            _ => None,
        }
    }

    fn eat_word(&mut self, word: &str) -> bool {
        if self.peek_word().as_deref() == Some(word) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect_word(&mut self, word: &str) -> Result<(), String> {
        if self.eat_word(word) {
            Ok(())
        } else {
            Err(self.expected(&format!("`{word}`")))
        }
    }

    fn count(&mut self) -> Result<usize, String> {
        match self.next() {
            Some(Token::Long(n)) if n >= 0 => Ok(n as usize),
            _ => {
                self.at -= 1;
                Err(self.expected("a row count"))
            }
        }
    }

    fn operator(&mut self, word: &str) -> Result<Operator, String> {
        Ok(match word {
            "where" | "filter" => Operator::Where(self.expr()?),
            "project" => Operator::Project(self.named_list()?),
            "extend" => Operator::Extend(self.named_list()?),
            "summarize" => {
                let aggregates = if self.peek_word().as_deref() == Some("by") {
                    Vec::new()
                } else {
                    self.named_list()?
                };
                let by = if self.eat_word("by") {
                    self.named_list()?
                } else {
                    Vec::new()
                };
                if aggregates.is_empty() && by.is_empty() {
                    return Err(self.expected("an aggregation or `by`"));
                }
                Operator::Summarize { aggregates, by }
            }
            "top" => {
                let count = self.count()?;
                self.expect_word("by")?;
                Operator::Top {
                    count,
                    key: self.sort_key()?,
                }
            }
            "distinct" if self.eat_symbol("*") => Operator::Distinct(Vec::new()),
            "distinct" => Operator::Distinct(self.named_list()?),
            "take" | "limit" => Operator::Take(self.count()?),
            "count" => Operator::Count,
            "order" | "sort" => {
                self.expect_word("by")?;
                let mut keys = vec![self.sort_key()?];
                while self.eat_symbol(",") {
                    keys.push(self.sort_key()?);
                }
                Operator::Sort(keys)
            }
            "render" => {
                let kind = match self.next() {
                    Some(Token::Name(kind)) => kind.to_ascii_lowercase(),
                    _ => return Err("render needs a visualization: timechart or linechart".into()),
                };
                if !matches!(kind.as_str(), "timechart" | "linechart" | "table") {
                    return Err(format!(
                        "render {kind}: the local endpoint renders timechart, linechart and table"
                    ));
                }
                if self.peek_word().as_deref() == Some("with") {
                    return Err(
                        "render … with (…): properties of a visualization are not supported here"
                            .into(),
                    );
                }
                Operator::Render(kind)
            }
            other => {
                return Err(format!(
                    "Unsupported query operator: {other} (supported: {OPERATORS})"
                ))
            }
        })
    }

    fn sort_key(&mut self) -> Result<SortKey, String> {
        let expr = self.expr()?;
        let descending = if self.eat_word("asc") {
            false
        } else {
            self.eat_word("desc");
            true
        };
        // Kusto's default: nulls last when descending, first when ascending.
        let mut nulls_first = !descending;
        if self.eat_word("nulls") {
            nulls_first = if self.eat_word("first") {
                true
            } else {
                self.expect_word("last")?;
                false
            };
        }
        Ok(SortKey {
            expr,
            descending,
            nulls_first,
        })
    }

    fn named_list(&mut self) -> Result<Vec<Named>, String> {
        let mut list = vec![self.named()?];
        while self.eat_symbol(",") {
            list.push(self.named()?);
        }
        Ok(list)
    }

    fn named(&mut self) -> Result<Named, String> {
        if let (Some(Token::Name(name) | Token::QuotedName(name)), Some((Token::Symbol("="), _))) =
            (self.peek().cloned(), self.tokens.get(self.at + 1))
        {
            self.at += 2;
            return Ok(Named {
                name: Some(name),
                expr: self.expr()?,
            });
        }
        Ok(Named {
            name: None,
            expr: self.expr()?,
        })
    }

    fn expr(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while self.eat_word("or") {
            left = Expr::Binary(BinaryOp::Or, Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.comparison()?;
        while self.eat_word("and") {
            left = Expr::Binary(BinaryOp::And, Box::new(left), Box::new(self.comparison()?));
        }
        Ok(left)
    }

    fn comparison(&mut self) -> Result<Expr, String> {
        let left = self.additive()?;
        let symbol = match self.peek() {
            Some(Token::Symbol(s)) => Some(*s),
            _ => None,
        };
        let op = match symbol {
            Some("==") => Some(BinaryOp::Equal),
            Some("!=") | Some("<>") => Some(BinaryOp::NotEqual),
            Some("<") => Some(BinaryOp::Less),
            Some("<=") => Some(BinaryOp::LessOrEqual),
            Some(">") => Some(BinaryOp::Greater),
            Some(">=") => Some(BinaryOp::GreaterOrEqual),
            Some("=~") => Some(BinaryOp::EqualIgnoreCase),
            Some("!~") => Some(BinaryOp::NotEqualIgnoreCase),
            _ => None,
        };
        if let Some(op) = op {
            self.at += 1;
            return Ok(Expr::Binary(op, Box::new(left), Box::new(self.additive()?)));
        }
        let Some(word) = self.peek_word() else {
            return Ok(left);
        };
        let (negated, bare) = match word.strip_prefix('!') {
            Some(rest) => (true, rest.to_string()),
            None => (false, word.clone()),
        };
        let (base, case_sensitive) = match bare.strip_suffix("_cs") {
            Some(base) => (base.to_string(), true),
            None => (bare.clone(), false),
        };
        let text_op = match base.as_str() {
            "contains" => Some(TextOp::Contains),
            "has" => Some(TextOp::Has),
            "startswith" => Some(TextOp::StartsWith),
            "endswith" => Some(TextOp::EndsWith),
            _ => None,
        };
        if let Some(text_op) = text_op {
            self.at += 1;
            return Ok(Expr::Binary(
                BinaryOp::Text(text_op, negated, case_sensitive),
                Box::new(left),
                Box::new(self.additive()?),
            ));
        }
        match bare.as_str() {
            "between" => {
                self.at += 1;
                self.expect_symbol("(")?;
                let low = self.additive()?;
                self.expect_symbol("..")?;
                let high = self.additive()?;
                self.expect_symbol(")")?;
                Ok(Expr::Between {
                    value: Box::new(left),
                    low: Box::new(low),
                    high: Box::new(high),
                    negated,
                })
            }
            "in" | "in~" => {
                self.at += 1;
                let ignore_case = bare == "in~";
                self.expect_symbol("(")?;
                let mut list = vec![self.additive()?];
                while self.eat_symbol(",") {
                    list.push(self.additive()?);
                }
                self.expect_symbol(")")?;
                Ok(Expr::In {
                    value: Box::new(left),
                    list,
                    negated,
                    ignore_case,
                })
            }
            _ => Ok(left),
        }
    }

    fn additive(&mut self) -> Result<Expr, String> {
        let mut left = self.multiplicative()?;
        loop {
            let op = if self.eat_symbol("+") {
                BinaryOp::Add
            } else if self.eat_symbol("-") {
                BinaryOp::Subtract
            } else {
                return Ok(left);
            };
            left = Expr::Binary(op, Box::new(left), Box::new(self.multiplicative()?));
        }
    }

    fn multiplicative(&mut self) -> Result<Expr, String> {
        let mut left = self.unary()?;
        loop {
            let op = if self.eat_symbol("*") {
                BinaryOp::Multiply
            } else if self.eat_symbol("/") {
                BinaryOp::Divide
            } else if self.eat_symbol("%") {
                BinaryOp::Modulo
            } else {
                return Ok(left);
            };
            left = Expr::Binary(op, Box::new(left), Box::new(self.unary()?));
        }
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.eat_symbol("-") {
            return Ok(match self.unary()? {
                Expr::Literal(Scalar::Long(v)) => Expr::Literal(Scalar::Long(-v)),
                Expr::Literal(Scalar::Real(v)) => Expr::Literal(Scalar::Real(-v)),
                Expr::Literal(Scalar::TimeSpan(v)) => Expr::Literal(Scalar::TimeSpan(-v)),
                other => Expr::Negate(Box::new(other)),
            });
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, String> {
        match self.next() {
            Some(Token::Long(v)) => Ok(Expr::Literal(Scalar::Long(v))),
            Some(Token::Real(v)) => Ok(Expr::Literal(Scalar::Real(v))),
            Some(Token::Timespan(v)) => Ok(Expr::Literal(Scalar::TimeSpan(v))),
            Some(Token::Str(s)) => Ok(Expr::Literal(Scalar::Str(s))),
            Some(Token::Symbol("(")) => {
                let inner = self.expr()?;
                self.expect_symbol(")")?;
                Ok(inner)
            }
            Some(Token::QuotedName(name)) => Ok(Expr::Column(name)),
            Some(Token::Name(name)) => {
                match name.as_str() {
                    "true" => return Ok(Expr::Literal(Scalar::Bool(true))),
                    "false" => return Ok(Expr::Literal(Scalar::Bool(false))),
                    _ => {}
                }
                if !self.eat_symbol("(") {
                    return Ok(Expr::Column(name));
                }
                if let Some(literal) = self.typed_literal(&name)? {
                    return Ok(Expr::Literal(literal));
                }
                let mut args = Vec::new();
                if !self.eat_symbol(")") {
                    args.push(self.expr()?);
                    while self.eat_symbol(",") {
                        args.push(self.expr()?);
                    }
                    self.expect_symbol(")")?;
                }
                Ok(Expr::Call(name.to_ascii_lowercase(), args))
            }
            _ => {
                self.at -= 1;
                Err(self.expected("a value, a column or a function"))
            }
        }
    }

    /// `datetime(2026-12-01 10:00)`, `timespan(1h)`/`time(…)` (their text is raw, as the
    /// lexer keeps it), and `T(null)`.
    fn typed_literal(&mut self, name: &str) -> Result<Option<Scalar>, String> {
        let kind = name.to_ascii_lowercase();
        if let Some(Token::Raw(text)) = self.peek().cloned() {
            self.at += 1;
            self.expect_symbol(")")?;
            let text = text.trim();
            if text == "null" {
                return Ok(Some(Scalar::Null));
            }
            return match kind.as_str() {
                "datetime" => kusto_model::datetime::DateTime::parse(text)
                    .map(|dt| Some(Scalar::DateTime(dt.unix_ticks())))
                    .map_err(|e| format!("datetime({text}): {e}")),
                _ => match tokens(text)?.as_slice() {
                    [(Token::Timespan(t), _)] => Ok(Some(Scalar::TimeSpan(*t))),
                    [(Token::Long(days), _)] => Ok(Some(Scalar::TimeSpan(days * 864_000_000_000))),
                    _ => kusto_model::datetime::timespan_ticks(text)
                        .map(|t| Some(Scalar::TimeSpan(t as i64)))
                        .map_err(|e| format!("{kind}({text}) {e}")),
                },
            };
        }
        if !matches!(
            kind.as_str(),
            "long" | "int" | "real" | "double" | "bool" | "string" | "dynamic" | "guid"
        ) {
            return Ok(None);
        }
        if self.peek() == Some(&Token::Name("null".into()))
            && matches!(self.tokens.get(self.at + 1), Some((Token::Symbol(")"), _)))
        {
            self.at += 2;
            return Ok(Some(Scalar::Null));
        }
        Err(format!(
            "{kind}(…): only {kind}(null) is a literal; to convert, use to{kind}()"
        ))
    }
}

fn describe(token: &Token) -> String {
    match token {
        Token::Name(n) => format!("`{n}`"),
        Token::QuotedName(n) => format!("['{n}']"),
        Token::Str(s) => format!("'{s}'"),
        Token::Long(v) => v.to_string(),
        Token::Real(v) => v.to_string(),
        Token::Timespan(t) => format!("a timespan of {t} ticks"),
        Token::Symbol(s) => format!("`{s}`"),
        Token::Raw(s) => format!("`{s}`"),
    }
}
