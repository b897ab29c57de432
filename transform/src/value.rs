//! Values as expressions see them (concept-dataflow-graphs-expressions, "Data types"): 64-bit
//! integers, floats, strings, booleans, tuples, the empty value `()`; JSON objects pass
//! through copies but take no part in expressions.

use std::fmt;

use serde_json::Value as Json;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(i64),
    Float(f64),
    Str(String),
    Bool(bool),
    Tuple(Vec<Value>),
    /// Missing, or JSON null.
    Empty,
    /// A JSON object (or a number no 64-bit type holds): copied as it is, refused in arithmetic.
    Json(Json),
}

impl Value {
    /// A JSON value as expressions see it; arrays become tuples.
    pub fn from_json(json: &Json) -> Value {
        match json {
            Json::Null => Value::Empty,
            Json::Bool(b) => Value::Bool(*b),
            Json::Number(n) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => Value::Int(i),
                (None, Some(f)) if n.is_f64() => Value::Float(f),
                _ => Value::Json(json.clone()),
            },
            Json::String(s) => Value::Str(s.clone()),
            Json::Array(items) => Value::Tuple(items.iter().map(Value::from_json).collect()),
            Json::Object(_) => Value::Json(json.clone()),
        }
    }

    /// The value as JSON; `None` for the empty value (nothing is written). Floats that JSON
    /// cannot carry (NaN, infinities) are an error.
    pub fn into_json(self) -> Result<Option<Json>, String> {
        Ok(Some(match self {
            Value::Empty => return Ok(None),
            Value::Int(i) => Json::from(i),
            Value::Float(f) => match serde_json::Number::from_f64(f) {
                Some(n) => Json::Number(n),
                None => return Err(format!("the result {f} is not a number JSON can carry")),
            },
            Value::Str(s) => Json::String(s),
            Value::Bool(b) => Json::Bool(b),
            Value::Tuple(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.push(item.into_json()?.unwrap_or(Json::Null));
                }
                Json::Array(out)
            }
            Value::Json(json) => json,
        }))
    }

    /// The type's name, as `typeof` returns it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "string",
            Value::Bool(_) => "boolean",
            Value::Tuple(_) => "tuple",
            Value::Empty => "empty",
            Value::Json(_) => "json",
        }
    }
}

/// Short, for error messages: `"abc"`, `12`, `()`.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(v) => write!(f, "{v}"),
            Value::Str(s) if s.chars().count() > 40 => {
                write!(f, "{:?}...", s.chars().take(40).collect::<String>())
            }
            Value::Str(s) => write!(f, "{s:?}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Empty => f.write_str("()"),
            Value::Tuple(items) => write!(f, "a tuple of {}", items.len()),
            Value::Json(_) => f.write_str("a JSON object"),
        }
    }
}

/// The text `+` and `str::from` make of a value.
pub fn to_text(value: &Value) -> String {
    match value {
        Value::Str(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Float(v) => v.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Empty => String::new(),
        Value::Tuple(items) => {
            let parts: Vec<String> = items.iter().map(to_text).collect();
            format!("({})", parts.join(", "))
        }
        Value::Json(json) => json.to_string(),
    }
}
