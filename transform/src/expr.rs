//! Expressions of map, filter and dataset rules, parsed once into a tree.
//!
//! Operators and precedence follow concept-dataflow-graphs-expressions ("Operators"), highest
//! first: `!` and unary `-`, `^` (right-associative), `* / %`, `+ -`, `< > <= >=`, `== !=`,
//! `&&`, `||`. Literals: integers, floats, strings in double or single quotes, `true`,
//! `false`, the empty value `()`, tuples `(a, b, ...)`; `$1..$n` are the rule's inputs.

use std::fmt;

use crate::functions::Function;

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Int(i64),
    Float(f64),
    Str(String),
    Bool(bool),
    Empty,
    Tuple(Vec<Expr>),
    /// `$n`, stored 0-based.
    Input(usize),
    Unary(UnaryOp, Box<Expr>),
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    Call(Function, Vec<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    Not,
    Negate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Pow,
}

impl BinaryOp {
    pub fn symbol(self) -> &'static str {
        match self {
            Self::Or => "||",
            Self::And => "&&",
            Self::Eq => "==",
            Self::Ne => "!=",
            Self::Lt => "<",
            Self::Gt => ">",
            Self::Le => "<=",
            Self::Ge => ">=",
            Self::Add => "+",
            Self::Sub => "-",
            Self::Mul => "*",
            Self::Div => "/",
            Self::Rem => "%",
            Self::Pow => "^",
        }
    }

    /// Binding power: higher binds tighter.
    fn precedence(self) -> u8 {
        match self {
            Self::Or => 1,
            Self::And => 2,
            Self::Eq | Self::Ne => 3,
            Self::Lt | Self::Gt | Self::Le | Self::Ge => 4,
            Self::Add | Self::Sub => 5,
            Self::Mul | Self::Div | Self::Rem => 6,
            Self::Pow => 7,
        }
    }
}

/// A syntax error; `column` counts characters from 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub column: usize,
    pub message: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "column {}: {}", self.column, self.message)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Int(i64),
    Float(f64),
    Str(String),
    Ident(String),
    Input(usize),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
    End,
}

/// Deeper nesting than this is refused: the tree is walked recursively.
const MAX_DEPTH: usize = 64;

struct Lexer {
    tokens: Vec<(usize, Token)>,
}

fn lex(text: &str) -> Result<Lexer, SyntaxError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    let err = |column: usize, message: String| SyntaxError { column, message };
    while i < chars.len() {
        let c = chars[i];
        let column = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric()
                    || chars[i] == '.'
                    || chars[i] == '_'
                    || ((chars[i] == '+' || chars[i] == '-')
                        && matches!(chars[i - 1], 'e' | 'E')
                        && !chars[start..i]
                            .iter()
                            .any(|c| c.is_ascii_alphabetic() && !matches!(c, 'e' | 'E'))))
            {
                i += 1;
            }
            let literal: String = chars[start..i].iter().collect();
            let token = if literal.contains(['.', 'e', 'E']) {
                match literal.parse::<f64>() {
                    Ok(v) if v.is_finite() => Token::Float(v),
                    _ => return Err(err(column, format!("`{literal}` is not a number"))),
                }
            } else {
                match literal.parse::<i64>() {
                    Ok(v) => Token::Int(v),
                    Err(_) if literal.chars().all(|c| c.is_ascii_digit()) => {
                        return Err(err(
                            column,
                            format!("`{literal}` is larger than a 64-bit integer"),
                        ))
                    }
                    Err(_) => return Err(err(column, format!("`{literal}` is not a number"))),
                }
            };
            tokens.push((column, token));
            continue;
        }
        if c == '"' || c == '\'' {
            let quote = c;
            let mut value = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => {
                        return Err(err(
                            column,
                            "this string has no closing quotation mark".into(),
                        ))
                    }
                    Some('\\') if matches!(chars.get(i + 1), Some(&q) if q == quote || q == '\\') =>
                    {
                        value.push(chars[i + 1]);
                        i += 2;
                    }
                    Some(&q) if q == quote => {
                        i += 1;
                        break;
                    }
                    Some(&other) => {
                        value.push(other);
                        i += 1;
                    }
                }
            }
            tokens.push((column, Token::Str(value)));
            continue;
        }
        if c == '$' {
            let start = i + 1;
            i += 1;
            while i < chars.len() && chars[i].is_ascii_alphanumeric() {
                i += 1;
            }
            let name: String = chars[start..i].iter().collect();
            match name.parse::<usize>() {
                Ok(n) if n >= 1 => tokens.push((column, Token::Input(n - 1))),
                _ if name.eq_ignore_ascii_case("last") => return Err(err(column, "`$last` belongs in an input (`temperature ? $last`), not in the expression".into())),
                _ if name == "metadata" || name == "context" || name == "source" => return Err(err(column, format!("`${name}` belongs in the rule's inputs, not in the expression: list it as an input and use its `$n` here"))),
                _ => return Err(err(column, format!("`${name}` is not an input: inputs are $1, $2, ... in the order of the rule's `inputs`"))),
            }
            continue;
        }
        if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric()
                    || chars[i] == '_'
                    || (chars[i] == ':' && chars.get(i + 1) == Some(&':')))
            {
                if chars[i] == ':' {
                    i += 1;
                }
                i += 1;
            }
            tokens.push((column, Token::Ident(chars[start..i].iter().collect())));
            continue;
        }
        let two: String = chars[i..chars.len().min(i + 2)].iter().collect();
        let op = match two.as_str() {
            "&&" | "||" | "==" | "!=" | "<=" | ">=" => Some(two.as_str()),
            _ => None,
        };
        if let Some(op) = op {
            let op: &'static str = ["&&", "||", "==", "!=", "<=", ">="]
                .into_iter()
                .find(|o| *o == op)
                .expect("listed");
            tokens.push((column, Token::Op(op)));
            i += 2;
            continue;
        }
        let token = match c {
            '(' => Token::LParen,
            ')' => Token::RParen,
            ',' => Token::Comma,
            '+' => Token::Op("+"),
            '-' => Token::Op("-"),
            '*' => Token::Op("*"),
            '/' => Token::Op("/"),
            '%' => Token::Op("%"),
            '^' => Token::Op("^"),
            '<' => Token::Op("<"),
            '>' => Token::Op(">"),
            '!' => Token::Op("!"),
            '=' => {
                return Err(err(
                    column,
                    "`=` is not an operator: compare with `==`".into(),
                ))
            }
            '&' => {
                return Err(err(
                    column,
                    "`&` is not an operator: logical AND is `&&`".into(),
                ))
            }
            '|' => {
                return Err(err(
                    column,
                    "`|` is not an operator: logical OR is `||`".into(),
                ))
            }
            other => {
                return Err(err(
                    column,
                    format!("`{other}` is not part of the expression language"),
                ))
            }
        };
        tokens.push((column, token));
        i += 1;
    }
    tokens.push((chars.len() + 1, Token::End));
    Ok(Lexer { tokens })
}

struct Parser {
    tokens: Vec<(usize, Token)>,
    at: usize,
    inputs: usize,
    depth: usize,
}

/// Parses an expression over `inputs` inputs (`$1..$inputs`).
pub fn parse(text: &str, inputs: usize) -> Result<Expr, SyntaxError> {
    let lexer = lex(text)?;
    let mut parser = Parser {
        tokens: lexer.tokens,
        at: 0,
        inputs,
        depth: 0,
    };
    if parser.peek() == &Token::End {
        return Err(SyntaxError {
            column: 1,
            message: "the expression is empty".into(),
        });
    }
    let expr = parser.expression(0)?;
    match parser.peek() {
        Token::End => Ok(expr),
        other => Err(parser.error(format!(
            "unexpected {} after a complete expression",
            describe(other)
        ))),
    }
}

fn describe(token: &Token) -> String {
    match token {
        Token::Int(v) => format!("`{v}`"),
        Token::Float(v) => format!("`{v}`"),
        Token::Str(s) => format!("the string {s:?}"),
        Token::Ident(name) => format!("`{name}`"),
        Token::Input(n) => format!("`${}`", n + 1),
        Token::Op(op) => format!("`{op}`"),
        Token::LParen => "`(`".into(),
        Token::RParen => "`)`".into(),
        Token::Comma => "`,`".into(),
        Token::End => "the end".into(),
    }
}

fn binary(op: &str) -> Option<BinaryOp> {
    Some(match op {
        "||" => BinaryOp::Or,
        "&&" => BinaryOp::And,
        "==" => BinaryOp::Eq,
        "!=" => BinaryOp::Ne,
        "<" => BinaryOp::Lt,
        ">" => BinaryOp::Gt,
        "<=" => BinaryOp::Le,
        ">=" => BinaryOp::Ge,
        "+" => BinaryOp::Add,
        "-" => BinaryOp::Sub,
        "*" => BinaryOp::Mul,
        "/" => BinaryOp::Div,
        "%" => BinaryOp::Rem,
        "^" => BinaryOp::Pow,
        _ => return None,
    })
}

impl Parser {
    fn peek(&self) -> &Token {
        &self.tokens[self.at].1
    }

    fn column(&self) -> usize {
        self.tokens[self.at].0
    }

    fn error(&self, message: String) -> SyntaxError {
        SyntaxError {
            column: self.column(),
            message,
        }
    }

    fn next(&mut self) -> (usize, Token) {
        let token = self.tokens[self.at].clone();
        if self.at + 1 < self.tokens.len() {
            self.at += 1;
        }
        token
    }

    fn expression(&mut self, min_precedence: u8) -> Result<Expr, SyntaxError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(format!("nested deeper than {MAX_DEPTH} levels")));
        }
        let mut left = self.unary()?;
        loop {
            if let Token::Ident(word) = self.peek() {
                if word == "and" || word == "or" {
                    return Err(self.error(format!("`{word}` is not an operator: write `&&` or `||` (concept-dataflow-graphs-expressions)")));
                }
            }
            let Token::Op(op) = self.peek() else { break };
            let Some(op) = binary(op) else {
                return Err(self.error(format!("`{op}` cannot stand between two values")));
            };
            let precedence = op.precedence();
            if precedence < min_precedence {
                break;
            }
            self.next();
            // `^` is right-associative: its right side may hold another `^`.
            let next_min = if op == BinaryOp::Pow {
                precedence
            } else {
                precedence + 1
            };
            let right = self.expression(next_min)?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
        self.depth -= 1;
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, SyntaxError> {
        match self.peek() {
            Token::Op("!") => {
                self.next();
                Ok(Expr::Unary(UnaryOp::Not, Box::new(self.nested_unary()?)))
            }
            Token::Op("-") => {
                self.next();
                Ok(Expr::Unary(UnaryOp::Negate, Box::new(self.nested_unary()?)))
            }
            _ => self.primary(),
        }
    }

    fn nested_unary(&mut self) -> Result<Expr, SyntaxError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(format!("nested deeper than {MAX_DEPTH} levels")));
        }
        let inner = self.unary();
        self.depth -= 1;
        inner
    }

    fn primary(&mut self) -> Result<Expr, SyntaxError> {
        let (column, token) = self.next();
        match token {
            Token::Int(v) => Ok(Expr::Int(v)),
            Token::Float(v) => Ok(Expr::Float(v)),
            Token::Str(s) => Ok(Expr::Str(s)),
            Token::Input(n) if n < self.inputs => Ok(Expr::Input(n)),
            Token::Input(n) => Err(SyntaxError {
                column,
                message: match self.inputs {
                    0 => format!("`${}`: this rule has no inputs", n + 1),
                    1 => format!("`${}`: this rule has one input, $1", n + 1),
                    count => format!("`${}`: this rule has {count} inputs, $1 to ${count}", n + 1),
                },
            }),
            Token::Ident(name) => match name.as_str() {
                "true" => Ok(Expr::Bool(true)),
                "false" => Ok(Expr::Bool(false)),
                "and" | "or" | "not" => Err(SyntaxError {
                    column,
                    message: format!("`{name}` is not an operator: write `&&`, `||` or `!` (concept-dataflow-graphs-expressions)"),
                }),
                _ => {
                    if self.peek() != &Token::LParen {
                        return Err(SyntaxError {
                            column,
                            message: format!("`{name}` is not a value: strings are quoted, inputs are $1, $2, ..."),
                        });
                    }
                    let function = Function::named(&name).map_err(|message| SyntaxError { column, message })?;
                    self.next();
                    let arguments = self.list()?;
                    function
                        .check_arity(arguments.len())
                        .map_err(|message| SyntaxError { column, message })?;
                    Ok(Expr::Call(function, arguments))
                }
            },
            Token::LParen => {
                let mut items = self.list()?;
                match items.len() {
                    0 => Ok(Expr::Empty),
                    1 => Ok(items.remove(0)),
                    _ => Ok(Expr::Tuple(items)),
                }
            }
            other => Err(SyntaxError {
                column,
                message: format!("expected a value, found {}", describe(&other)),
            }),
        }
    }

    /// Comma-separated expressions up to the closing parenthesis (already past the opening one).
    fn list(&mut self) -> Result<Vec<Expr>, SyntaxError> {
        let mut items = Vec::new();
        if self.peek() == &Token::RParen {
            self.next();
            return Ok(items);
        }
        loop {
            items.push(self.expression(0)?);
            match self.next() {
                (_, Token::Comma) => continue,
                (_, Token::RParen) => return Ok(items),
                (column, other) => {
                    return Err(SyntaxError {
                        column,
                        message: format!("expected `,` or `)`, found {}", describe(&other)),
                    })
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Expr {
        parse(text, 4).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    /// The precedence examples of concept-dataflow-graphs-expressions and -conversions.
    #[test]
    fn precedence_as_documented() {
        use BinaryOp::*;
        let b = |op, l, r| Expr::Binary(op, Box::new(l), Box::new(r));
        // `$1 * 2 ^ 3` is `$1 * 8`.
        assert_eq!(
            p("$1 * 2 ^ 3"),
            b(Mul, Expr::Input(0), b(Pow, Expr::Int(2), Expr::Int(3)))
        );
        // `$1 + 2 * 3` is `$1 + 6`.
        assert_eq!(
            p("$1 + 2 * 3"),
            b(Add, Expr::Input(0), b(Mul, Expr::Int(2), Expr::Int(3)))
        );
        // `$1 * 2 <= $2` is `($1 * 2) <= $2`.
        assert_eq!(
            p("$1 * 2 <= $2"),
            b(Le, b(Mul, Expr::Input(0), Expr::Int(2)), Expr::Input(1))
        );
        // `-$1 * 2` negates first.
        assert_eq!(
            p("-$1 * 2"),
            b(
                Mul,
                Expr::Unary(UnaryOp::Negate, Box::new(Expr::Input(0))),
                Expr::Int(2)
            )
        );
        // `&&` binds tighter than `||`; relational above equality.
        assert_eq!(
            p("$1 || $2 && $3"),
            b(Or, Expr::Input(0), b(And, Expr::Input(1), Expr::Input(2)))
        );
        assert_eq!(
            p("$1 < 2 == true"),
            b(Eq, b(Lt, Expr::Input(0), Expr::Int(2)), Expr::Bool(true))
        );
        assert_eq!(
            p("2 ^ 3 ^ 2"),
            b(Pow, Expr::Int(2), b(Pow, Expr::Int(3), Expr::Int(2)))
        );
        assert_eq!(
            p("($1, $2, 3)"),
            Expr::Tuple(vec![Expr::Input(0), Expr::Input(1), Expr::Int(3)])
        );
        assert_eq!(p("()"), Expr::Empty);
        assert_eq!(p("'High'"), Expr::Str("High".into()));
        assert_eq!(p("1.5e3"), Expr::Float(1500.0));
    }

    #[test]
    fn errors_name_the_column() {
        let e = parse("$1 * * 2", 1).unwrap_err();
        assert_eq!(e.column, 6, "{e}");
        let e = parse("cToF($1", 1).unwrap_err();
        assert_eq!(e.column, 8, "{e}");
        let e = parse("$3 + 1", 2).unwrap_err();
        assert!(e.message.contains("2 inputs"), "{e}");
        let e = parse("cToFF($1)", 1).unwrap_err();
        assert!(e.message.contains("cToF"), "{e}");
        let e = parse("$1 and $2", 2).unwrap_err();
        assert!(e.message.contains("&&"), "{e}");
        let e = parse("$1 = 2", 1).unwrap_err();
        assert_eq!(e.column, 4);
        let e = parse("cToF($1, 2)", 1).unwrap_err();
        assert!(e.message.contains("argument"), "{e}");
        assert!(parse("", 0).is_err());
        assert!(parse("1 2", 0).is_err());
        let deep = "(".repeat(500) + "1" + &")".repeat(500);
        assert!(parse(&deep, 0).unwrap_err().message.contains("nested"));
        let deep = "-".repeat(500) + "1";
        assert!(parse(&deep, 0).unwrap_err().message.contains("nested"));
    }
}
