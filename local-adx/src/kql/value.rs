//! Values while a query runs, typed as Kusto types them, and their conversion from and to
//! the JSON a table row holds.

use std::cmp::Ordering;

use serde_json::{Number, Value};

use kusto_model::datetime::{format_timespan, timespan_ticks, DateTime};
use kusto_model::schema::KustoType;

#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Null,
    Bool(bool),
    Long(i64),
    Real(f64),
    Str(String),
    /// Ticks (100 ns) since the Unix epoch.
    DateTime(i64),
    /// Ticks (100 ns).
    TimeSpan(i64),
    Dynamic(Value),
}

impl Scalar {
    /// A cell of a column of type `ty`, as the table holds it.
    pub fn from_cell(value: &Value, ty: KustoType) -> Scalar {
        match (value, ty) {
            (Value::Null, KustoType::String) => Scalar::Str(String::new()),
            (Value::Null, _) => Scalar::Null,
            (v, KustoType::Dynamic) => Scalar::Dynamic(v.clone()),
            (Value::Bool(b), _) => Scalar::Bool(*b),
            (Value::Number(n), KustoType::Int | KustoType::Long) => {
                n.as_i64().map_or(Scalar::Null, Scalar::Long)
            }
            (Value::Number(n), _) => n.as_f64().map_or(Scalar::Null, Scalar::Real),
            (Value::String(s), KustoType::DateTime) => {
                DateTime::parse(s).map_or(Scalar::Null, |dt| Scalar::DateTime(dt.unix_ticks()))
            }
            (Value::String(s), KustoType::TimeSpan) => {
                timespan_ticks(s).map_or(Scalar::Null, |t| Scalar::TimeSpan(t as i64))
            }
            (Value::String(s), KustoType::Real) => match s.as_str() {
                "NaN" => Scalar::Real(f64::NAN),
                "Infinity" => Scalar::Real(f64::INFINITY),
                "-Infinity" => Scalar::Real(f64::NEG_INFINITY),
                _ => Scalar::Null,
            },
            (Value::String(s), KustoType::Decimal) => s.parse().map_or(Scalar::Null, Scalar::Real),
            (Value::String(s), _) => Scalar::Str(s.clone()),
            (other, _) => Scalar::Dynamic(other.clone()),
        }
    }

    /// As a result cell in a column of type `ty`.
    pub fn into_cell(self, ty: KustoType) -> Value {
        match self {
            Scalar::Null if ty == KustoType::String => Value::String(String::new()),
            Scalar::Null => Value::Null,
            Scalar::Bool(b) => Value::Bool(b),
            Scalar::Long(v) if ty == KustoType::Real => real_cell(v as f64),
            Scalar::Long(v) => Value::from(v),
            Scalar::Real(v) if ty == KustoType::Decimal => Value::String(v.to_string()),
            Scalar::Real(v) => real_cell(v),
            Scalar::Str(s) => Value::String(s),
            Scalar::DateTime(t) => {
                DateTime::from_unix_ticks(t).map_or(Value::Null, |dt| Value::String(dt.to_string()))
            }
            Scalar::TimeSpan(t) => Value::String(format_timespan(t as i128)),
            Scalar::Dynamic(v) => v,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Scalar::Null) || matches!(self, Scalar::Dynamic(Value::Null))
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Scalar::Long(v) => Some(*v as f64),
            Scalar::Real(v) => Some(*v),
            _ => None,
        }
    }

    /// The text `tostring()` gives.
    pub fn to_text(&self) -> String {
        match self {
            Scalar::Null => String::new(),
            Scalar::Str(s) => s.clone(),
            Scalar::Dynamic(Value::String(s)) => s.clone(),
            Scalar::Dynamic(v) => v.to_string(),
            Scalar::Bool(b) => b.to_string(),
            Scalar::Long(v) => v.to_string(),
            Scalar::Real(v) => v.to_string(),
            other => match other.clone().into_cell(KustoType::String) {
                Value::String(s) => s,
                v => v.to_string(),
            },
        }
    }
}

fn real_cell(v: f64) -> Value {
    if v.is_nan() {
        Value::String("NaN".into())
    } else if v.is_infinite() {
        Value::String(if v > 0.0 { "Infinity" } else { "-Infinity" }.into())
    } else {
        Number::from_f64(v).map_or(Value::Null, Value::Number)
    }
}

/// Kusto's order within one type: nulls are placed by the caller.
pub fn compare(a: &Scalar, b: &Scalar) -> Ordering {
    match (a, b) {
        (Scalar::Long(x), Scalar::Long(y)) => x.cmp(y),
        (Scalar::DateTime(x), Scalar::DateTime(y)) | (Scalar::TimeSpan(x), Scalar::TimeSpan(y)) => {
            x.cmp(y)
        }
        (Scalar::Bool(x), Scalar::Bool(y)) => x.cmp(y),
        (Scalar::Str(x), Scalar::Str(y)) => x.cmp(y),
        _ => match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
            _ => a.to_text().cmp(&b.to_text()),
        },
    }
}

/// A key for grouping and `distinct`: equal values, equal keys.
pub fn group_key(value: &Scalar) -> String {
    match value {
        Scalar::Null => "\u{0}null".into(),
        Scalar::Long(v) => format!("n{}", *v as f64),
        Scalar::Real(v) => format!("n{v}"),
        Scalar::Str(s) => format!("s{s}"),
        Scalar::Bool(b) => format!("b{b}"),
        Scalar::DateTime(t) => format!("d{t}"),
        Scalar::TimeSpan(t) => format!("t{t}"),
        Scalar::Dynamic(v) => format!("j{v}"),
    }
}
