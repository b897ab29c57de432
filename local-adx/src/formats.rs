//! Reads ingested data the way Kusto does: JSON formats map top-level properties to columns
//! of the same name, CSV maps by position, and a value that does not fit its column's type
//! becomes null without complaint (that is the service's documented behaviour, which the
//! plugin exists to avoid; this endpoint reproduces it faithfully).

use serde_json::{Number, Value};

use kusto_model::datetime::{parse_timespan, DateTime};
use kusto_model::schema::{Column, KustoType};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    MultiJson,
    Csv,
}

impl Format {
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "json" => Some(Self::Json),
            "multijson" => Some(Self::MultiJson),
            "csv" => Some(Self::Csv),
            _ => None,
        }
    }
}

/// Rows in column order, or the reason the data could not be read at all.
pub fn parse_rows(
    format: Format,
    data: &str,
    columns: &[Column],
) -> Result<Vec<Vec<Value>>, String> {
    match format {
        Format::Json | Format::MultiJson => parse_json(format, data, columns),
        Format::Csv => Ok(parse_csv(data)?
            .into_iter()
            .map(|fields| {
                columns
                    .iter()
                    .enumerate()
                    .map(|(i, c)| match fields.get(i) {
                        Some(f) if f.is_empty() && c.kusto_type != KustoType::String => Value::Null,
                        Some(f) if c.kusto_type == KustoType::Dynamic => {
                            serde_json::from_str(f).unwrap_or_else(|_| Value::String(f.clone()))
                        }
                        Some(f) => convert(c.kusto_type, &Value::String(f.clone())),
                        None => convert(c.kusto_type, &Value::Null),
                    })
                    .collect()
            })
            .collect()),
    }
}

/// The records of JSON data: one per line (`json`), or any sequence of objects and arrays of
/// objects (`multijson`).
pub fn json_records(format: Format, data: &str) -> Result<Vec<Value>, String> {
    let mut records = Vec::new();
    if format == Format::Json {
        for (i, line) in data.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let value: Value = serde_json::from_str(line)
                .map_err(|e| format!("json record on line {} is invalid: {e}", i + 1))?;
            records.push(value);
        }
    } else {
        for value in serde_json::Deserializer::from_str(data).into_iter::<Value>() {
            match value.map_err(|e| format!("multijson data is invalid: {e}"))? {
                Value::Array(items) => records.extend(items),
                other => records.push(other),
            }
        }
    }
    Ok(records)
}

fn parse_json(format: Format, data: &str, columns: &[Column]) -> Result<Vec<Vec<Value>>, String> {
    json_records(format, data)?
        .into_iter()
        .map(|record| match record {
            Value::Object(fields) => Ok(columns
                .iter()
                .map(|c| {
                    // A missing field is a null, which a string column holds as "".
                    convert(c.kusto_type, fields.get(&c.name).unwrap_or(&Value::Null))
                })
                .collect()),
            other => Err(format!("a record is not a JSON object: {other}")),
        })
        .collect()
}

/// Kusto's lenient conversion: what does not fit is null.
pub fn convert(ty: KustoType, value: &Value) -> Value {
    let text = match value {
        Value::String(s) => Some(s.trim()),
        _ => None,
    };
    match ty {
        KustoType::String => match value {
            Value::Null => Value::String(String::new()),
            Value::String(s) => Value::String(s.clone()),
            other => Value::String(other.to_string()),
        },
        KustoType::Dynamic => value.clone(),
        KustoType::Bool => match (value, text) {
            (Value::Bool(b), _) => Value::Bool(*b),
            (Value::Number(n), _) => n.as_f64().map_or(Value::Null, |f| Value::Bool(f != 0.0)),
            (_, Some(t)) if t.eq_ignore_ascii_case("true") => Value::Bool(true),
            (_, Some(t)) if t.eq_ignore_ascii_case("false") => Value::Bool(false),
            _ => Value::Null,
        },
        KustoType::Int | KustoType::Long => {
            let (min, max) = if ty == KustoType::Int {
                (i32::MIN as i64, i32::MAX as i64)
            } else {
                (i64::MIN, i64::MAX)
            };
            let parsed = match (value, text) {
                (Value::Number(n), _) => n
                    .as_i64()
                    .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
                (_, Some(t)) => t.parse::<i64>().ok(),
                _ => None,
            };
            parsed
                .filter(|v| (min..=max).contains(v))
                .map_or(Value::Null, |v| Value::Number(v.into()))
        }
        KustoType::Real => {
            let parsed = match (value, text) {
                (Value::Number(n), _) => n.as_f64(),
                (_, Some(t)) => t.parse::<f64>().ok(),
                _ => None,
            };
            // JSON has no NaN or infinities; keep them as the names Kusto prints.
            match parsed {
                Some(v) if v.is_nan() => Value::String("NaN".into()),
                Some(v) if v.is_infinite() => {
                    Value::String(if v > 0.0 { "Infinity" } else { "-Infinity" }.into())
                }
                other => other
                    .and_then(Number::from_f64)
                    .map_or(Value::Null, Value::Number),
            }
        }
        KustoType::Decimal => match (value, text) {
            (Value::Number(n), _) => Value::String(n.to_string()),
            (_, Some(t)) if t.parse::<f64>().is_ok() => Value::String(t.to_string()),
            _ => Value::Null,
        },
        KustoType::DateTime => text
            .and_then(|t| DateTime::parse(t).ok())
            .map_or(Value::Null, |dt| Value::String(dt.to_string())),
        KustoType::TimeSpan => text
            .and_then(|t| parse_timespan(t).ok())
            .map_or(Value::Null, Value::String),
        KustoType::Guid => text
            .filter(|t| t.len() == 36 && t.chars().filter(|c| *c == '-').count() == 4)
            .map_or(Value::Null, |t| Value::String(t.to_ascii_lowercase())),
    }
}

/// RFC 4180 records: quoted fields may hold commas, doubled quotes and newlines.
pub fn parse_csv(data: &str) -> Result<Vec<Vec<String>>, String> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut chars = data.chars().peekable();
    let mut in_quotes = false;
    let mut field_started = false;
    while let Some(c) = chars.next() {
        if in_quotes {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => in_quotes = false,
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' if !field_started => {
                in_quotes = true;
                field_started = true;
            }
            ',' => {
                record.push(std::mem::take(&mut field));
                field_started = false;
            }
            '\r' => {}
            '\n' => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
                field_started = false;
            }
            _ => {
                field.push(c);
                field_started = true;
            }
        }
    }
    if in_quotes {
        return Err("csv data ends inside a quoted field".into());
    }
    if field_started || !record.is_empty() {
        record.push(field);
        records.push(record);
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kusto_model::schema::TableSchema;
    use serde_json::json;

    fn columns() -> Vec<Column> {
        TableSchema::parse("s: string, r: real, l: long, d: datetime, b: bool, j: dynamic")
            .unwrap()
            .columns
    }

    #[test]
    fn json_maps_by_name_and_nulls_what_does_not_fit() {
        let rows = parse_rows(
            Format::MultiJson,
            r#"{"s":"a","r":"1.5","l":2,"d":"2026-11-28T10:00:00.1234567Z","b":true,"j":{"x":1}}
               [{"s":5,"r":"hot","l":2.5,"d":"yesterday"}, {"r": 2}]"#,
            &columns(),
        )
        .unwrap();
        // Strings are not nullable in Kusto: a missing one is empty.
        assert_eq!(rows[2][0], json!(""));
        assert_eq!(rows[2][1], json!(2.0));
        assert_eq!(rows[2][2], Value::Null);
        assert_eq!(
            rows[0],
            vec![
                json!("a"),
                json!(1.5),
                json!(2),
                json!("2026-11-28T10:00:00.1234567Z"),
                json!(true),
                json!({"x":1})
            ]
        );
        assert_eq!(
            rows[1],
            vec![
                json!("5"),
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null
            ]
        );
    }

    #[test]
    fn csv_maps_by_position_with_quoting() {
        let rows = parse_rows(
            Format::Csv,
            "\"a,\"\"b\"\"\nc\",1.5,,2026-11-28,false,\"[1]\"\nx\n",
            &columns(),
        )
        .unwrap();
        assert_eq!(rows[0][0], json!("a,\"b\"\nc"));
        assert_eq!(rows[0][1], json!(1.5));
        assert_eq!(rows[0][2], Value::Null);
        assert_eq!(rows[0][3], json!("2026-11-28T00:00:00Z"));
        assert_eq!(rows[0][5], json!([1]));
        assert_eq!(
            rows[1],
            vec![
                json!("x"),
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null
            ]
        );
        assert!(parse_csv("\"open").is_err());
    }

    #[test]
    fn invalid_json_is_an_error() {
        assert!(parse_rows(Format::MultiJson, "{nope", &columns()).is_err());
        assert!(parse_rows(Format::Json, "[1]", &columns()).is_err());
    }
}
