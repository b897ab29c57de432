//! Ingestion mappings as Kusto keeps them: named per table and kind (`json` or `csv`),
//! created with `.create[-or-alter] table T ingestion json|csv mapping "name" '[…]'`,
//! applied to a streaming ingestion that names one (`mappingName`).
//!
//! Element forms accepted, as the mapping pages document them
//! (learn.microsoft.com/kusto/management/mappings, json-mapping, csv-mapping):
//! `{"Column": C, "DataType"?: T, "Properties": {"Path" | "Ordinal" | "ConstValue", "Transform"?}}`,
//! and the older flat forms `{"column", "path", "datatype", "transform"}` (JSON) and
//! `{"Name", "DataType", "Ordinal", "ConstValue", "CsvDataType"}` (CSV, as `.show` prints it).
//! A key outside these is refused, never ignored.

use serde_json::{Map, Value};

use kusto_model::datetime::DateTime;
use kusto_model::schema::{Column, KustoType};

use super::formats::convert;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MappingKind {
    Json,
    Csv,
}

impl MappingKind {
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "json" => Some(Self::Json),
            "csv" => Some(Self::Csv),
            _ => None,
        }
    }

    /// As `.show … ingestion mappings` prints it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Json => "Json",
            Self::Csv => "Csv",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Source {
    Path(Vec<PathStep>),
    Ordinal(usize),
    Const(String),
    /// Only a transform gives the value (`SourceLineNumber`).
    Nothing,
}

#[derive(Debug, Clone, PartialEq)]
enum PathStep {
    Field(String),
    Index(usize),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Transform {
    DateTimeFromUnix { per_second: i64 },
    PropertyBagArrayToDictionary,
    SourceLineNumber,
    SourceLocation,
}

#[derive(Debug, Clone, PartialEq)]
struct Element {
    column: String,
    source: Source,
    transform: Option<Transform>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    pub kind: MappingKind,
    elements: Vec<Element>,
    /// The definition as given, for `.show`.
    pub text: String,
}

impl Mapping {
    pub fn parse(kind: MappingKind, text: &str) -> Result<Self, String> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| format!("the mapping is not JSON: {e}"))?;
        let Value::Array(items) = value else {
            return Err("the mapping must be a JSON array of column mappings".into());
        };
        if items.is_empty() {
            return Err("the mapping has no column mappings".into());
        }
        let elements = items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                parse_element(kind, item).map_err(|e| format!("mapping element {i}: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            kind,
            elements,
            text: text.to_string(),
        })
    }

    /// The columns the mapping writes that the table does not have.
    pub fn unknown_columns(&self, columns: &[Column]) -> Vec<String> {
        self.elements
            .iter()
            .filter(|e| !columns.iter().any(|c| c.name == e.column))
            .map(|e| e.column.clone())
            .collect()
    }

    /// One row from a JSON record (`record`) or CSV fields (`fields`), numbered from 1.
    pub fn apply(
        &self,
        columns: &[Column],
        record: Option<&Value>,
        fields: Option<&[String]>,
        line: usize,
    ) -> Result<Vec<Value>, String> {
        let mut row: Vec<Value> = columns
            .iter()
            .map(|c| convert(c.kusto_type, &Value::Null))
            .collect();
        for element in &self.elements {
            let index = columns
                .iter()
                .position(|c| c.name == element.column)
                .ok_or_else(|| format!("column '{}' is not in the table", element.column))?;
            let raw = match &element.source {
                Source::Path(steps) => record
                    .and_then(|r| lookup(r, steps))
                    .cloned()
                    .unwrap_or(Value::Null),
                Source::Ordinal(i) => fields
                    .and_then(|f| f.get(*i))
                    .map_or(Value::Null, |f| Value::String(f.clone())),
                Source::Const(text) => Value::String(text.clone()),
                Source::Nothing => Value::Null,
            };
            let value = match element.transform {
                None => raw,
                Some(Transform::DateTimeFromUnix { per_second }) => unix_datetime(&raw, per_second),
                Some(Transform::PropertyBagArrayToDictionary) => bag_array_to_dictionary(raw),
                Some(Transform::SourceLineNumber) => Value::from(line),
                Some(Transform::SourceLocation) => return Err(
                    "the SourceLocation transform names a blob, and streaming ingestion has none"
                        .into(),
                ),
            };
            let ty = columns[index].kusto_type;
            row[index] = match (&value, ty) {
                // CSV text holding JSON fills a dynamic column with the JSON.
                (Value::String(text), KustoType::Dynamic) if fields.is_some() => {
                    serde_json::from_str(text).unwrap_or(value.clone())
                }
                _ => convert(ty, &value),
            };
        }
        Ok(row)
    }
}

fn parse_element(kind: MappingKind, item: &Value) -> Result<Element, String> {
    let Value::Object(fields) = item else {
        return Err("not a JSON object".into());
    };
    let mut column = None;
    let mut properties = Map::new();
    for (key, value) in fields {
        match key.to_ascii_lowercase().as_str() {
            "column" | "name" => column = Some(text_of(key, value)?),
            // Used by Kusto only to create a missing column in queued ingestion; checked
            // here to be a type, and a missing column is refused at ingestion.
            "datatype" | "csvdatatype" => {
                if !value.is_null() && KustoType::parse(&text_of(key, value)?).is_none() {
                    return Err(format!("{key}: `{value}` is not a Kusto type"));
                }
            }
            "properties" => match value {
                Value::Object(p) => {
                    properties.extend(p.iter().map(|(k, v)| (k.clone(), v.clone())))
                }
                _ => return Err("Properties must be an object".into()),
            },
            "path" | "ordinal" | "constvalue" | "transform" | "field" => {
                properties.insert(key.clone(), value.clone());
            }
            _ => {
                return Err(format!(
                    "`{key}` is not a field of a {} mapping",
                    kind.name()
                ))
            }
        }
    }
    let column = column.ok_or("no Column")?;
    let mut source = Source::Nothing;
    let mut transform = None;
    for (key, value) in &properties {
        if value.is_null() {
            continue;
        }
        match (key.to_ascii_lowercase().as_str(), kind) {
            ("path", MappingKind::Json) => {
                let path = text_of(key, value)?;
                source = if path.starts_with('$') {
                    Source::Path(parse_path(&path)?)
                } else {
                    // The JSON mapping page: a Path without `$` is a constant.
                    Source::Const(path)
                };
            }
            ("field", MappingKind::Json) => {
                source = Source::Path(vec![PathStep::Field(text_of(key, value)?)])
            }
            ("ordinal", MappingKind::Csv) => {
                let text = match value {
                    Value::Number(n) => n.to_string(),
                    other => text_of(key, other)?,
                };
                source = Source::Ordinal(
                    text.parse()
                        .map_err(|_| format!("Ordinal `{text}` is not a column position"))?,
                );
            }
            ("constvalue", _) => source = Source::Const(text_of(key, value)?),
            ("transform", _) => transform = Some(parse_transform(&text_of(key, value)?)?),
            _ => {
                return Err(format!(
                    "`{key}` is not a property of a {} mapping",
                    kind.name()
                ))
            }
        }
    }
    if source == Source::Nothing
        && !matches!(
            transform,
            Some(Transform::SourceLineNumber | Transform::SourceLocation)
        )
    {
        return Err(format!(
            "column '{column}' has no {}, ConstValue or source transform",
            if kind == MappingKind::Json {
                "Path"
            } else {
                "Ordinal"
            }
        ));
    }
    Ok(Element {
        column,
        source,
        transform,
    })
}

fn text_of(key: &str, value: &Value) -> Result<String, String> {
    value
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("{key} must be a string, found {value}"))
}

fn parse_transform(name: &str) -> Result<Transform, String> {
    Ok(match name {
        "DateTimeFromUnixSeconds" => Transform::DateTimeFromUnix { per_second: 1 },
        "DateTimeFromUnixMilliseconds" => Transform::DateTimeFromUnix { per_second: 1_000 },
        "DateTimeFromUnixMicroseconds" => Transform::DateTimeFromUnix { per_second: 1_000_000 },
        "DateTimeFromUnixNanoseconds" => Transform::DateTimeFromUnix { per_second: 1_000_000_000 },
        "PropertyBagArrayToDictionary" => Transform::PropertyBagArrayToDictionary,
        "SourceLineNumber" => Transform::SourceLineNumber,
        "SourceLocation" => Transform::SourceLocation,
        other => {
            return Err(format!(
                "Transform `{other}` is not one of DateTimeFromUnixSeconds, DateTimeFromUnixMilliseconds, \
                 DateTimeFromUnixMicroseconds, DateTimeFromUnixNanoseconds, PropertyBagArrayToDictionary, \
                 SourceLineNumber, SourceLocation"
            ))
        }
    })
}

/// `$`, `$.a.b`, `$['a b']`, `$["a"]`, `$.a[0]`.
fn parse_path(path: &str) -> Result<Vec<PathStep>, String> {
    let bad = |why: &str| format!("Path `{path}`: {why}");
    let mut rest = path
        .strip_prefix('$')
        .ok_or_else(|| bad("must start with $"))?;
    let mut steps = Vec::new();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            if end == 0 {
                return Err(bad("a `.` is not followed by a name"));
            }
            steps.push(PathStep::Field(after[..end].to_string()));
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix('[') {
            let close = after.find(']').ok_or_else(|| bad("a `[` is not closed"))?;
            let inner = after[..close].trim();
            let quoted = inner
                .strip_prefix('\'')
                .and_then(|s| s.strip_suffix('\''))
                .or_else(|| inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')));
            steps.push(match quoted {
                Some(name) => PathStep::Field(name.to_string()),
                None => {
                    PathStep::Index(inner.parse().map_err(|_| bad("an index is not a number"))?)
                }
            });
            rest = &after[close + 1..];
        } else {
            return Err(bad("expected `.name` or `[…]`"));
        }
    }
    Ok(steps)
}

fn lookup<'a>(value: &'a Value, steps: &[PathStep]) -> Option<&'a Value> {
    steps.iter().try_fold(value, |v, step| match step {
        PathStep::Field(name) => v.get(name),
        PathStep::Index(i) => v.get(i),
    })
}

/// The DateTimeFromUnix… transforms: a number (or numeric text) of units since 1970; what
/// is not one is null, as Kusto's lenient ingestion gives.
fn unix_datetime(value: &Value, per_second: i64) -> Value {
    let text = match value {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_string(),
        _ => return Value::Null,
    };
    DateTime::from_unix_number(&text, per_second)
        .map_or(Value::Null, |dt| Value::String(dt.to_string()))
}

/// `[{"Key": k, "Value": v}, …]` (or `key`/`value`, `Name`/`Value`) to `{k: v, …}`.
fn bag_array_to_dictionary(value: Value) -> Value {
    let Value::Array(items) = value else {
        return value;
    };
    let mut bag = Map::new();
    for item in &items {
        let field = |names: &[&str]| names.iter().find_map(|n| item.get(*n));
        match (
            field(&["Key", "key", "Name", "name"]),
            field(&["Value", "value"]),
        ) {
            (Some(Value::String(k)), Some(v)) => {
                bag.insert(k.clone(), v.clone());
            }
            _ => return Value::Array(items),
        }
    }
    Value::Object(bag)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kusto_model::schema::TableSchema;
    use serde_json::json;

    fn columns() -> Vec<Column> {
        TableSchema::parse(
            "Ts: datetime, Device: string, Temp: real, Site: string, Line: long, Bag: dynamic",
        )
        .unwrap()
        .columns
    }

    #[test]
    fn json_paths_constants_and_transforms_fill_their_columns() {
        // The examples of learn.microsoft.com/kusto/management/json-mapping.
        let mapping = Mapping::parse(
            MappingKind::Json,
            r#"[{"Column": "Ts", "Properties": {"Path": "$.time", "Transform": "DateTimeFromUnixMilliseconds"}},
                {"Column": "Device", "Properties": {"Path": "$['device id']"}},
                {"column": "Temp", "path": "$.readings[1].value", "datatype": "real"},
                {"Column": "Site", "Properties": {"ConstValue": "plant-7"}},
                {"Column": "Line", "Properties": {"Transform": "SourceLineNumber"}},
                {"Column": "Bag", "Properties": {"Path": "$.props", "Transform": "PropertyBagArrayToDictionary"}}]"#,
        )
        .unwrap();
        let record = json!({"time": 1764583200123_i64, "device id": "d1",
            "readings": [{"value": 1}, {"value": 21.5}],
            "props": [{"Key": "a", "Value": 1}]});
        let row = mapping.apply(&columns(), Some(&record), None, 3).unwrap();
        assert_eq!(
            row,
            vec![
                json!("2025-12-01T10:00:00.123Z"),
                json!("d1"),
                json!(21.5),
                json!("plant-7"),
                json!(3),
                json!({"a": 1})
            ]
        );
        // A path that finds nothing is null (a string column holds it as "").
        let row = mapping
            .apply(&columns(), Some(&json!({})), None, 1)
            .unwrap();
        assert_eq!((&row[0], &row[1]), (&Value::Null, &json!("")));
    }

    #[test]
    fn csv_ordinals_and_the_shown_form_are_read() {
        let mapping = Mapping::parse(
            MappingKind::Csv,
            r#"[{"Column": "Device", "Properties": {"Ordinal": "1"}},
                {"Name": "Temp", "DataType": "real", "CsvDataType": null, "Ordinal": 0, "ConstValue": null}]"#,
        )
        .unwrap();
        let fields = vec!["21.5".to_string(), "d1".to_string()];
        let row = mapping.apply(&columns(), None, Some(&fields), 1).unwrap();
        assert_eq!((&row[1], &row[2]), (&json!("d1"), &json!(21.5)));
    }

    #[test]
    fn malformed_mappings_name_the_element_and_field() {
        let error = |kind, text| Mapping::parse(kind, text).unwrap_err();
        assert!(error(MappingKind::Json, "{}").contains("JSON array"));
        assert!(error(
            MappingKind::Json,
            r#"[{"Column": "a", "Properties": {"Path": "$.a"}, "Colour": 1}]"#
        )
        .contains("element 0: `Colour` is not a field"));
        assert!(error(
            MappingKind::Json,
            r#"[{"Column": "a", "Properties": {"Ordinal": "1"}}]"#
        )
        .contains("`Ordinal` is not a property of a Json mapping"));
        assert!(error(
            MappingKind::Json,
            r#"[{"Column": "a", "Properties": {"Path": "$.a", "Transform": "Upper"}}]"#
        )
        .contains("Transform `Upper`"));
        assert!(error(
            MappingKind::Json,
            r#"[{"Column": "a", "Properties": {"Path": "$.a["}}]"#
        )
        .contains("not closed"));
        assert!(
            error(MappingKind::Csv, r#"[{"Column": "a", "Properties": {}}]"#)
                .contains("no Ordinal")
        );
        let mapping = Mapping::parse(
            MappingKind::Json,
            r#"[{"Column": "Nope", "Properties": {"Path": "$.a"}}]"#,
        )
        .unwrap();
        assert_eq!(
            mapping.unknown_columns(&columns()),
            vec!["Nope".to_string()]
        );
    }
}
