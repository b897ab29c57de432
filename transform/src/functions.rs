//! The built-in functions: those of concept-dataflow-conversions and of
//! concept-dataflow-graphs-expressions ("Functions") that data flows support. Names are
//! resolved when a rule is loaded, with their number of arguments.

use crate::value::{to_text, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    // Unit conversions: one number in, a float out.
    CToF,
    FToC,
    PsiToBar,
    BarToPsi,
    InToCm,
    CmToIn,
    FtToM,
    MToFt,
    LbToKg,
    KgToLb,
    GalToL,
    LToGal,
    // Numbers.
    Min,
    Max,
    Floor,
    Round,
    Ceil,
    RoundN,
    Scale,
    Abs,
    Sqrt,
    Cbrt,
    Ln,
    Log2,
    Log10,
    Log,
    Exp,
    Exp2,
    Pow,
    Cos,
    Sin,
    Tan,
    Acos,
    Asin,
    Atan,
    Atan2,
    Hypot,
    // Conditions, strings and tuples.
    If,
    Len,
    Lowercase,
    Uppercase,
    Trim,
    ToText,
    Substring,
    Contains,
    ContainsAny,
    TypeOf,
}

/// (name, function, least and most arguments; `usize::MAX` for any number).
const TABLE: &[(&str, Function, usize, usize)] = &[
    ("cToF", Function::CToF, 1, 1),
    ("fToC", Function::FToC, 1, 1),
    ("psiToBar", Function::PsiToBar, 1, 1),
    ("barToPsi", Function::BarToPsi, 1, 1),
    ("inToCm", Function::InToCm, 1, 1),
    ("cmToIn", Function::CmToIn, 1, 1),
    ("ftToM", Function::FtToM, 1, 1),
    ("mToFt", Function::MToFt, 1, 1),
    ("lbToKg", Function::LbToKg, 1, 1),
    ("kgToLb", Function::KgToLb, 1, 1),
    ("galToL", Function::GalToL, 1, 1),
    ("lToGal", Function::LToGal, 1, 1),
    ("min", Function::Min, 1, usize::MAX),
    ("max", Function::Max, 1, usize::MAX),
    ("floor", Function::Floor, 1, 1),
    ("round", Function::Round, 1, 1),
    ("ceil", Function::Ceil, 1, 1),
    ("round_n", Function::RoundN, 2, 2),
    ("scale", Function::Scale, 5, 5),
    ("abs", Function::Abs, 1, 1),
    ("math::abs", Function::Abs, 1, 1),
    ("math::sqrt", Function::Sqrt, 1, 1),
    ("math::cbrt", Function::Cbrt, 1, 1),
    ("math::ln", Function::Ln, 1, 1),
    ("math::log2", Function::Log2, 1, 1),
    ("math::log10", Function::Log10, 1, 1),
    ("math::log", Function::Log, 2, 2),
    ("math::exp", Function::Exp, 1, 1),
    ("math::exp2", Function::Exp2, 1, 1),
    ("math::pow", Function::Pow, 2, 2),
    ("math::cos", Function::Cos, 1, 1),
    ("math::sin", Function::Sin, 1, 1),
    ("math::tan", Function::Tan, 1, 1),
    ("math::acos", Function::Acos, 1, 1),
    ("math::asin", Function::Asin, 1, 1),
    ("math::atan", Function::Atan, 1, 1),
    ("math::atan2", Function::Atan2, 2, 2),
    ("math::hypot", Function::Hypot, 2, 2),
    ("if", Function::If, 3, 3),
    ("len", Function::Len, 1, usize::MAX),
    ("str::to_lowercase", Function::Lowercase, 1, 1),
    ("str::to_uppercase", Function::Uppercase, 1, 1),
    ("str::trim", Function::Trim, 1, 1),
    ("str::from", Function::ToText, 1, 1),
    ("str::substring", Function::Substring, 3, 3),
    ("contains", Function::Contains, 2, 2),
    ("contains_any", Function::ContainsAny, 2, 2),
    ("typeof", Function::TypeOf, 1, 1),
];

/// Names the documentation mentions that a Dataflow cannot use, and why.
const REFUSED: &[(&str, &str)] = &[
    (
        "str::regex_matches",
        "is available in data flow graphs only (concept-dataflow-graphs-expressions)",
    ),
    (
        "str::regex_replace",
        "is available in data flow graphs only (concept-dataflow-graphs-expressions)",
    ),
    (
        "average",
        "is an aggregation of window transforms in data flow graphs, not of map or filter rules",
    ),
    (
        "sum",
        "is an aggregation of window transforms in data flow graphs, not of map or filter rules",
    ),
    (
        "count",
        "is an aggregation of window transforms in data flow graphs, not of map or filter rules",
    ),
    (
        "first",
        "is an aggregation of window transforms in data flow graphs, not of map or filter rules",
    ),
    (
        "last",
        "is an aggregation of window transforms in data flow graphs, not of map or filter rules",
    ),
];

impl Function {
    pub fn named(name: &str) -> Result<Function, String> {
        if let Some((_, function, _, _)) = TABLE.iter().find(|(n, ..)| *n == name) {
            return Ok(*function);
        }
        if let Some((_, why)) = REFUSED.iter().find(|(n, _)| *n == name) {
            return Err(format!("`{name}` {why}"));
        }
        let names: Vec<&str> = TABLE.iter().map(|(n, ..)| *n).collect();
        let guess = names
            .iter()
            .filter(|n| n.eq_ignore_ascii_case(name) || distance(n, name) <= 2)
            .min_by_key(|n| distance(n, name));
        Err(match guess {
            Some(guess) => format!("`{name}` is not a function (did you mean `{guess}`?)"),
            None => format!("`{name}` is not a function (known: {})", names.join(", ")),
        })
    }

    pub fn name(self) -> &'static str {
        TABLE
            .iter()
            .find(|(_, f, ..)| *f == self)
            .map_or("?", |(n, ..)| n)
    }

    pub fn check_arity(self, count: usize) -> Result<(), String> {
        let (name, _, least, most) = TABLE
            .iter()
            .find(|(_, f, ..)| *f == self)
            .expect("in the table");
        if count < *least || count > *most {
            let wanted = match (least, most) {
                (l, m) if l == m && *l == 1 => "1 argument".to_string(),
                (l, m) if l == m => format!("{l} arguments"),
                (l, _) => format!("at least {l} argument(s)"),
            };
            return Err(format!("`{name}` takes {wanted}, not {count}"));
        }
        Ok(())
    }

    /// Applies the function to evaluated arguments (`if` is evaluated lazily by the caller).
    pub fn call(self, args: Vec<Value>) -> Result<Value, String> {
        use Function::*;
        let name = self.name();
        let number = |i: usize| -> Result<f64, String> { as_number(name, i, &args[i]) };
        let unit = |factor: f64| -> Result<Value, String> { Ok(Value::Float(number(0)? * factor)) };
        let float = |v: f64| -> Result<Value, String> { Ok(Value::Float(v)) };
        match self {
            CToF => float(number(0)? * 9.0 / 5.0 + 32.0),
            FToC => float((number(0)? - 32.0) * 5.0 / 9.0),
            PsiToBar => unit(0.0689476),
            BarToPsi => float(number(0)? / 0.0689476),
            InToCm => unit(2.54),
            CmToIn => float(number(0)? / 2.54),
            FtToM => unit(0.3048),
            MToFt => float(number(0)? / 0.3048),
            LbToKg => unit(0.453592),
            KgToLb => float(number(0)? / 0.453592),
            GalToL => unit(3.78541),
            LToGal => float(number(0)? / 3.78541),
            Min | Max => extreme(name, self == Max, args),
            Floor => whole(name, number(0)?.floor()),
            Round => whole(name, number(0)?.round()),
            Ceil => whole(name, number(0)?.ceil()),
            RoundN => {
                let places = match &args[1] {
                    Value::Int(n) if (0..=15).contains(n) => *n as i32,
                    other => {
                        return Err(format!(
                            "`round_n`: the decimals are a whole number 0 to 15, not {other}"
                        ))
                    }
                };
                let factor = 10f64.powi(places);
                float((number(0)? * factor).round() / factor)
            }
            Scale => {
                let (v, a, b, c, d) = (number(0)?, number(1)?, number(2)?, number(3)?, number(4)?);
                if a == b {
                    return Err("`scale`: the source range is empty (its bounds are equal)".into());
                }
                float(c + (v - a) * (d - c) / (b - a))
            }
            Abs => match &args[0] {
                Value::Int(i) => i
                    .checked_abs()
                    .map(Value::Int)
                    .ok_or_else(|| "`abs`: the result is larger than a 64-bit integer".to_string()),
                _ => float(number(0)?.abs()),
            },
            Sqrt => float(number(0)?.sqrt()),
            Cbrt => float(number(0)?.cbrt()),
            Ln => float(number(0)?.ln()),
            Log2 => float(number(0)?.log2()),
            Log10 => float(number(0)?.log10()),
            Log => float(number(0)?.log(number(1)?)),
            Exp => float(number(0)?.exp()),
            Exp2 => float(number(0)?.exp2()),
            Pow => float(number(0)?.powf(number(1)?)),
            Cos => float(number(0)?.cos()),
            Sin => float(number(0)?.sin()),
            Tan => float(number(0)?.tan()),
            Acos => float(number(0)?.acos()),
            Asin => float(number(0)?.asin()),
            Atan => float(number(0)?.atan()),
            Atan2 => float(number(0)?.atan2(number(1)?)),
            Hypot => float(number(0)?.hypot(number(1)?)),
            If => unreachable!("`if` is evaluated by the caller"),
            Len => match args.as_slice() {
                [Value::Str(s)] => Ok(Value::Int(s.chars().count() as i64)),
                [Value::Tuple(items)] => Ok(Value::Int(items.len() as i64)),
                [single] => Err(format!("`len` takes a string or a tuple, not {single}")),
                many => Ok(Value::Int(many.len() as i64)),
            },
            Lowercase => Ok(Value::Str(text(name, &args[0])?.to_lowercase())),
            Uppercase => Ok(Value::Str(text(name, &args[0])?.to_uppercase())),
            Trim => Ok(Value::Str(text(name, &args[0])?.trim().to_string())),
            ToText => Ok(Value::Str(to_text(&args[0]))),
            Substring => {
                let s = text(name, &args[0])?;
                let index = |i: usize| {
                    match &args[i] {
                    Value::Int(n) if *n >= 0 => Ok(*n as usize),
                    other => Err(format!("`str::substring`: argument {} is a character index (0 or more), not {other}", i + 1)),
                }
                };
                let (start, end) = (index(1)?, index(2)?);
                let count = s.chars().count();
                if start > end || end > count {
                    return Err(format!("`str::substring`: {start}..{end} is outside the string's {count} characters"));
                }
                Ok(Value::Str(
                    s.chars().skip(start).take(end - start).collect(),
                ))
            }
            Contains => match &args[0] {
                Value::Tuple(items) => Ok(Value::Bool(
                    items.iter().any(|i| loosely_equal(i, &args[1])),
                )),
                other => Err(format!("`contains` takes a tuple first, not {other}")),
            },
            ContainsAny => match (&args[0], &args[1]) {
                (Value::Tuple(items), Value::Tuple(candidates)) => Ok(Value::Bool(
                    candidates
                        .iter()
                        .any(|c| items.iter().any(|i| loosely_equal(i, c))),
                )),
                (a, b) => Err(format!("`contains_any` takes two tuples, not {a} and {b}")),
            },
            TypeOf => Ok(Value::Str(args[0].type_name().to_string())),
        }
    }
}

/// Equality as `==` has it: numbers by value whatever their type, others by kind and value.
pub fn loosely_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Int(x), Value::Float(y)) | (Value::Float(y), Value::Int(x)) => (*x as f64) == *y,
        _ => a == b,
    }
}

fn as_number(name: &str, index: usize, value: &Value) -> Result<f64, String> {
    match value {
        Value::Int(i) => Ok(*i as f64),
        Value::Float(f) => Ok(*f),
        other => Err(format!(
            "`{name}` needs a number as argument {}, not {other}",
            index + 1
        )),
    }
}

fn text<'v>(name: &str, value: &'v Value) -> Result<&'v str, String> {
    match value {
        Value::Str(s) => Ok(s),
        other => Err(format!("`{name}` needs a string, not {other}")),
    }
}

fn whole(name: &str, v: f64) -> Result<Value, String> {
    if v.is_finite() && v.abs() < 9.2e18 {
        Ok(Value::Int(v as i64))
    } else {
        Err(format!("`{name}`: {v} is not a 64-bit integer"))
    }
}

fn extreme(name: &str, largest: bool, args: Vec<Value>) -> Result<Value, String> {
    let items = match args.as_slice() {
        [Value::Tuple(items)] => items.clone(),
        _ => args,
    };
    let mut best: Option<Value> = None;
    for item in items {
        let v = match &item {
            Value::Int(_) | Value::Float(_) => item,
            other => return Err(format!("`{name}` compares numbers, not {other}")),
        };
        best = Some(match best {
            None => v,
            Some(b) => {
                let (x, y) = (as_number(name, 0, &b)?, as_number(name, 0, &v)?);
                if (largest && y > x) || (!largest && y < x) {
                    v
                } else {
                    b
                }
            }
        });
    }
    best.ok_or_else(|| format!("`{name}` of nothing"))
}

fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            let next = (row[j + 1] + 1).min(row[j] + 1).min(previous + cost);
            previous = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}
