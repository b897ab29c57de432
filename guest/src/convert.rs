//! Turns a message into one row of the table: a Kusto-typed cell per column, chosen by the
//! column's source and converted only where the conversion loses nothing. Whatever does not
//! convert is a reason naming the column, never a silent null.

use std::borrow::Cow;
use std::fmt;

use serde_json::value::RawValue;

use crate::config::{ColumnSource, DestinationConfig, NumericDatetimes};
use crate::datetime::{is_timespan, DateTime};
use crate::message::Message;
use crate::schema::{Column, KustoType};

/// A typed value ready for encoding. Borrowed from the message where possible.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell<'a> {
    Null,
    /// A JSON string literal as it appeared in the payload: quoted and escaped already.
    JsonString(&'a str),
    /// Text that still needs quoting for the output format.
    Text(Cow<'a, str>),
    /// A JSON number literal.
    Number(Cow<'a, str>),
    Bool(bool),
    DateTime(DateTime),
    /// JSON text of a `dynamic` value.
    Json(&'a str),
}

/// Why a message could not become a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversionError(pub String);

impl fmt::Display for ConversionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub struct RowConverter {
    columns: Vec<(Column, ColumnSource)>,
    numeric_datetimes: NumericDatetimes,
    needs_payload: bool,
}

impl RowConverter {
    pub fn new(config: &DestinationConfig) -> Self {
        let columns: Vec<_> = config
            .schema
            .columns
            .iter()
            .cloned()
            .zip(config.column_sources.iter().cloned())
            .collect();
        let needs_payload = columns
            .iter()
            .any(|(_, s)| matches!(s, ColumnSource::Field(_)));
        Self {
            columns,
            numeric_datetimes: config.numeric_datetimes,
            needs_payload,
        }
    }

    pub fn columns(&self) -> impl Iterator<Item = &Column> {
        self.columns.iter().map(|(c, _)| c)
    }

    /// Fills `cells` with one cell per column, in schema order.
    pub fn convert<'m>(
        &self,
        message: &'m Message,
        cells: &mut Vec<Cell<'m>>,
    ) -> Result<(), ConversionError> {
        cells.clear();
        let fields = if self.needs_payload {
            parse_object(&message.payload)?
        } else {
            Fields::default()
        };
        for (column, source) in &self.columns {
            let converted = match source {
                ColumnSource::Field(name) => match fields.get(name) {
                    Some(raw) => self.json_cell(column.kusto_type, raw),
                    None => Ok(Cell::Null),
                },
                ColumnSource::Topic => {
                    self.text_cell(column.kusto_type, Cow::Borrowed(&message.topic))
                }
                ColumnSource::ContentType => match &message.content_type {
                    Some(ct) => self.text_cell(column.kusto_type, Cow::Borrowed(ct)),
                    None => Ok(Cell::Null),
                },
                ColumnSource::UserProperty(key) => {
                    match message.user_properties.iter().find(|(k, _)| k == key) {
                        Some((_, v)) => self.text_cell(column.kusto_type, Cow::Borrowed(v)),
                        None => Ok(Cell::Null),
                    }
                }
            };
            let cell = converted.map_err(|reason| {
                ConversionError(format!(
                    "column `{}` ({}): {reason}",
                    column.name, column.kusto_type
                ))
            })?;
            cells.push(cell);
        }
        Ok(())
    }

    /// A JSON value from the payload.
    fn json_cell<'a>(&self, ty: KustoType, raw: &'a str) -> Result<Cell<'a>, String> {
        let kind = raw.as_bytes()[0];
        match kind {
            b'n' => Ok(Cell::Null),
            b'"' => match ty {
                KustoType::String => Ok(Cell::JsonString(raw)),
                KustoType::Dynamic => Ok(Cell::Json(raw)),
                _ => self.text_cell(ty, decode_string(raw)),
            },
            b't' | b'f' => {
                let value = kind == b't';
                match ty {
                    KustoType::Bool => Ok(Cell::Bool(value)),
                    KustoType::String => Ok(Cell::Text(Cow::Borrowed(raw))),
                    KustoType::Dynamic => Ok(Cell::Json(raw)),
                    _ => Err(format!("{raw} is a boolean, not a {ty}")),
                }
            }
            b'{' | b'[' => match ty {
                KustoType::Dynamic => Ok(Cell::Json(raw)),
                KustoType::String => Ok(Cell::Text(Cow::Borrowed(raw))),
                _ => Err(format!(
                    "{} is a JSON {}, not a {ty}",
                    excerpt(raw),
                    if kind == b'{' { "object" } else { "array" }
                )),
            },
            _ => self.number_cell(ty, raw),
        }
    }

    fn number_cell<'a>(&self, ty: KustoType, raw: &'a str) -> Result<Cell<'a>, String> {
        match ty {
            KustoType::Int => integer(raw, i32::MIN as i64, i32::MAX as i64, ty),
            KustoType::Long => integer(raw, i64::MIN, i64::MAX, ty),
            KustoType::Real => finite(raw).map(|_| Cell::Number(Cow::Borrowed(raw))),
            // Sent as text so that all 28 significant digits survive.
            KustoType::Decimal => Ok(Cell::Text(Cow::Borrowed(raw))),
            KustoType::String => Ok(Cell::Text(Cow::Borrowed(raw))),
            KustoType::Dynamic => Ok(Cell::Json(raw)),
            KustoType::Bool => match raw {
                "0" => Ok(Cell::Bool(false)),
                "1" => Ok(Cell::Bool(true)),
                _ => Err(format!(
                    "{raw} is a number, not a bool (only 0 and 1 convert)"
                )),
            },
            KustoType::DateTime => {
                let scale = match self.numeric_datetimes {
                    NumericDatetimes::UnixSeconds => 1,
                    NumericDatetimes::UnixMilliseconds => 1000,
                    NumericDatetimes::Reject => {
                        return Err(format!(
                            "{raw} is a number, not an ISO 8601 datetime (set numericDatetimes to unixSeconds or unixMilliseconds to read numbers as Unix time)"
                        ))
                    }
                };
                DateTime::from_unix_number(raw, scale).map(Cell::DateTime)
            }
            KustoType::TimeSpan | KustoType::Guid => Err(format!("{raw} is a number, not a {ty}")),
        }
    }

    /// Text: a JSON string's content, a topic, a user property.
    fn text_cell<'a>(&self, ty: KustoType, text: Cow<'a, str>) -> Result<Cell<'a>, String> {
        let trimmed = text.trim();
        match ty {
            KustoType::String => Ok(Cell::Text(text)),
            KustoType::Dynamic => Ok(Cell::Text(text)),
            KustoType::Bool => match trimmed.to_ascii_lowercase().as_str() {
                "true" => Ok(Cell::Bool(true)),
                "false" => Ok(Cell::Bool(false)),
                _ => Err(format!("{} is not true or false", quoted(&text))),
            },
            KustoType::Int | KustoType::Long => {
                let (min, max) = if ty == KustoType::Int {
                    (i32::MIN as i64, i32::MAX as i64)
                } else {
                    (i64::MIN, i64::MAX)
                };
                match trimmed.parse::<i64>() {
                    Ok(v) if (min..=max).contains(&v) => {
                        Ok(Cell::Number(Cow::Owned(v.to_string())))
                    }
                    Ok(_) => Err(format!("{} is outside the {ty} range", quoted(&text))),
                    Err(_) => Err(format!("{} is not an integer", quoted(&text))),
                }
            }
            KustoType::Real => match trimmed.parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(Cell::Number(Cow::Owned(format!("{v:?}")))),
                _ => Err(format!("{} is not a number", quoted(&text))),
            },
            KustoType::Decimal => {
                if is_decimal(trimmed) {
                    Ok(Cell::Text(Cow::Owned(trimmed.to_string())))
                } else {
                    Err(format!("{} is not a decimal number", quoted(&text)))
                }
            }
            KustoType::DateTime => DateTime::parse_iso8601(trimmed).map(Cell::DateTime),
            KustoType::TimeSpan => {
                if is_timespan(trimmed) {
                    Ok(Cell::Text(Cow::Owned(trimmed.to_string())))
                } else {
                    Err(format!(
                        "{} is not a timespan ([-][d.]hh:mm[:ss[.fffffff]])",
                        quoted(&text)
                    ))
                }
            }
            KustoType::Guid => {
                if is_guid(trimmed) {
                    Ok(Cell::Text(Cow::Owned(trimmed.to_ascii_lowercase())))
                } else {
                    Err(format!("{} is not a guid", quoted(&text)))
                }
            }
        }
    }
}

fn integer<'a>(raw: &'a str, min: i64, max: i64, ty: KustoType) -> Result<Cell<'a>, String> {
    if let Ok(v) = raw.parse::<i64>() {
        return if (min..=max).contains(&v) {
            Ok(Cell::Number(Cow::Borrowed(raw)))
        } else {
            Err(format!("{raw} is outside the {ty} range"))
        };
    }
    // 3.0 or 1e3 are integers written differently; 3.5 is not.
    let v = finite(raw)?;
    if v.fract() != 0.0 {
        return Err(format!("{raw} is not an integer"));
    }
    if v < min as f64 || v >= max as f64 + 1.0 {
        return Err(format!("{raw} is outside the {ty} range"));
    }
    Ok(Cell::Number(Cow::Owned((v as i64).to_string())))
}

fn finite(raw: &str) -> Result<f64, String> {
    match raw.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(format!("{} is not a finite number", excerpt(raw))),
    }
}

fn is_decimal(text: &str) -> bool {
    let body = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (mantissa, exponent) = match body.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e)),
        None => (body, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |s: &str| s.bytes().all(|c| c.is_ascii_digit());
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    !(int.is_empty() && frac.is_empty()) && digits(int) && digits(frac) && exponent_ok
}

fn is_guid(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// The content of a JSON string literal.
fn decode_string(raw: &str) -> Cow<'_, str> {
    let inner = &raw[1..raw.len() - 1];
    if inner.contains('\\') {
        Cow::Owned(serde_json::from_str::<String>(raw).unwrap_or_default())
    } else {
        Cow::Borrowed(inner)
    }
}

fn excerpt(text: &str) -> String {
    const MAX: usize = 64;
    if text.len() <= MAX {
        return text.to_string();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

fn quoted(text: &str) -> String {
    format!("\"{}\"", excerpt(text))
}

/// A payload's top-level fields, borrowed from the payload bytes.
#[derive(Default)]
struct Fields<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'a> Fields<'a> {
    fn get(&self, name: &str) -> Option<&'a str> {
        self.0
            .iter()
            .rev() // like Kusto, the last duplicate wins
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.get())
    }
}

fn parse_object(payload: &[u8]) -> Result<Fields<'_>, ConversionError> {
    let text = std::str::from_utf8(payload)
        .map_err(|e| ConversionError(format!("payload is not UTF-8 text: {e}")))?;
    serde_json::from_str::<FieldsOrOther>(text)
        .map_err(|e| ConversionError(format!("payload is not JSON: {e}")))?
        .0
        .ok_or_else(|| {
            let kind = match text.trim_start().as_bytes().first() {
                Some(b'[') => "an array",
                Some(b'"') => "a string",
                Some(b'n') => "null",
                Some(b't' | b'f') => "a boolean",
                _ => "a number",
            };
            ConversionError(format!("payload is {kind}, not a JSON object"))
        })
}

/// Deserializes a JSON object into borrowed fields, or notes that the value is something else.
struct FieldsOrOther<'a>(Option<Fields<'a>>);

impl<'de: 'a, 'a> serde::Deserialize<'de> for FieldsOrOther<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(FieldsVisitor)
    }
}

struct FieldsVisitor;

impl<'de> serde::de::Visitor<'de> for FieldsVisitor {
    type Value = FieldsOrOther<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = Vec::new();
        while let Some(key) = map.next_key::<Key<'de>>()? {
            let value: &'de RawValue = map.next_value()?;
            fields.push((key.0, value));
        }
        Ok(FieldsOrOther(Some(Fields(fields))))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(FieldsOrOther(None))
    }

    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(FieldsOrOther(None))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(FieldsOrOther(None))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(FieldsOrOther(None))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(FieldsOrOther(None))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(FieldsOrOther(None))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(FieldsOrOther(None))
    }
}

/// An object key, borrowed unless it had escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> serde::de::Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DestinationConfig;

    fn converter(schema: &str, extra: &[(&str, &str)]) -> RowConverter {
        let mut pairs = vec![
            ("host".to_string(), "c.kusto.windows.net".to_string()),
            ("database".to_string(), "db".to_string()),
            ("table".to_string(), "t".to_string()),
            ("schema".to_string(), schema.to_string()),
        ];
        pairs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        RowConverter::new(&DestinationConfig::from_pairs(&pairs).unwrap())
    }

    fn message(payload: &str) -> Message {
        Message {
            sequence: 1,
            topic: "factory/line1/thermostat".into(),
            payload: payload.as_bytes().to_vec(),
            content_type: Some("application/json".into()),
            user_properties: vec![("site".into(), "42".into())],
            timestamp_nanos: 0,
        }
    }

    /// Converts `value` (JSON text) into a one-column table of type `ty`.
    fn one(ty: &str, value: &str) -> Result<Cell<'static>, String> {
        one_with(ty, value, &[])
    }

    fn one_with(ty: &str, value: &str, extra: &[(&str, &str)]) -> Result<Cell<'static>, String> {
        let conv = converter(&format!("v: {ty}"), extra);
        let msg = Box::leak(Box::new(message(&format!("{{\"v\": {value}}}"))));
        let mut cells = Vec::new();
        conv.convert(msg, &mut cells).map_err(|e| e.0)?;
        Ok(cells.pop().unwrap())
    }

    fn num(s: &str) -> Cell<'static> {
        Cell::Number(Cow::Owned(s.to_string()))
    }
    fn text(s: &str) -> Cell<'static> {
        Cell::Text(Cow::Owned(s.to_string()))
    }

    #[test]
    fn string_columns() {
        assert_eq!(
            one("string", r#""a\"b""#).unwrap(),
            Cell::JsonString(r#""a\"b""#)
        );
        assert_eq!(one("string", "12.5").unwrap(), text("12.5"));
        assert_eq!(one("string", r#"{"x":1}"#).unwrap(), text(r#"{"x":1}"#));
        assert_eq!(one("string", "null").unwrap(), Cell::Null);
    }

    #[test]
    fn real_columns() {
        assert_eq!(one("real", "21.5").unwrap(), num("21.5"));
        assert_eq!(one("real", "-1e-3").unwrap(), num("-1e-3"));
        assert_eq!(one("real", r#""21.5""#).unwrap(), num("21.5"));
        let e = one("real", r#""hot""#).unwrap_err();
        assert_eq!(e, r#"column `v` (real): "hot" is not a number"#);
        assert!(one("real", "true")
            .unwrap_err()
            .contains("is a boolean, not a real"));
        assert!(one("real", "1e999")
            .unwrap_err()
            .contains("not a finite number"));
        assert!(one("real", r#""NaN""#).is_err());
    }

    #[test]
    fn int_and_long_columns() {
        assert_eq!(one("int", "2147483647").unwrap(), num("2147483647"));
        assert!(one("int", "2147483648")
            .unwrap_err()
            .contains("outside the int range"));
        assert_eq!(one("int", "3.0").unwrap(), num("3"));
        assert!(one("int", "3.5")
            .unwrap_err()
            .contains("3.5 is not an integer"));
        assert_eq!(
            one("long", "9223372036854775807").unwrap(),
            num("9223372036854775807")
        );
        assert!(one("long", "9223372036854775808")
            .unwrap_err()
            .contains("outside the long range"));
        assert_eq!(one("long", r#"" 42 ""#).unwrap(), num("42"));
        assert!(one("long", r#""4x""#)
            .unwrap_err()
            .contains("is not an integer"));
        assert!(one("long", "[1]")
            .unwrap_err()
            .contains("is a JSON array, not a long"));
    }

    #[test]
    fn bool_columns() {
        assert_eq!(one("bool", "true").unwrap(), Cell::Bool(true));
        assert_eq!(one("bool", r#""False""#).unwrap(), Cell::Bool(false));
        assert_eq!(one("bool", "1").unwrap(), Cell::Bool(true));
        assert!(one("bool", "2").unwrap_err().contains("only 0 and 1"));
        assert!(one("bool", r#""yes""#)
            .unwrap_err()
            .contains("is not true or false"));
    }

    #[test]
    fn datetime_columns() {
        let cell = one("datetime", r#""2026-11-28T10:20:30.1234567+01:00""#).unwrap();
        let Cell::DateTime(dt) = cell else {
            panic!("{cell:?}")
        };
        assert_eq!(dt.to_string(), "2026-11-28T09:20:30.1234567Z");
        let e = one("datetime", "1764325230").unwrap_err();
        assert!(
            e.contains("column `v` (datetime): 1764325230 is a number"),
            "{e}"
        );
        let cell = one_with(
            "datetime",
            "1764325230123",
            &[("numericDatetimes", "unixMilliseconds")],
        )
        .unwrap();
        assert_eq!(
            cell,
            Cell::DateTime(DateTime::parse_iso8601("2025-11-28T10:20:30.123Z").unwrap())
        );
        assert!(one("datetime", r#""28/11/2026""#)
            .unwrap_err()
            .contains("not an ISO 8601 datetime"));
    }

    #[test]
    fn decimal_timespan_guid_dynamic_columns() {
        assert_eq!(
            one("decimal", "12345678901234567890.123456789").unwrap(),
            text("12345678901234567890.123456789")
        );
        assert_eq!(one("decimal", r#""-1.5e3""#).unwrap(), text("-1.5e3"));
        assert!(one("decimal", r#""1.2.3""#).is_err());
        assert_eq!(
            one("timespan", r#""1.02:03:04.5""#).unwrap(),
            text("1.02:03:04.5")
        );
        assert!(one("timespan", "60")
            .unwrap_err()
            .contains("is a number, not a timespan"));
        assert_eq!(
            one("guid", r#""0F8FAD5B-D9CB-469F-A165-70867728950E""#).unwrap(),
            text("0f8fad5b-d9cb-469f-a165-70867728950e")
        );
        assert!(one("guid", r#""not-a-guid""#).is_err());
        assert_eq!(
            one("dynamic", r#"{"a": [1, 2]}"#).unwrap(),
            Cell::Json(r#"{"a": [1, 2]}"#)
        );
        assert_eq!(one("dynamic", "7").unwrap(), Cell::Json("7"));
    }

    #[test]
    fn metadata_sources_and_missing_fields() {
        let conv = converter(
            "Topic: string, Site: long, Ct: string, Missing: real",
            &[
                ("columns.Topic", "$metadata.topic"),
                ("columns.Site", "$metadata.user_property.site"),
                ("columns.Ct", "$metadata.system_property.content_type"),
            ],
        );
        let msg = message("{}");
        let mut cells = Vec::new();
        conv.convert(&msg, &mut cells).unwrap();
        assert_eq!(
            cells,
            vec![
                text("factory/line1/thermostat"),
                num("42"),
                text("application/json"),
                Cell::Null
            ]
        );
    }

    #[test]
    fn payloads_that_are_not_objects_are_rejected_with_the_reason() {
        let conv = converter("a: string", &[]);
        let mut cells = Vec::new();
        let not_json = message("{not json");
        let e = conv.convert(&not_json, &mut cells).unwrap_err();
        assert!(e.0.starts_with("payload is not JSON"), "{e}");
        let array = message("[1,2]");
        let e = conv.convert(&array, &mut cells).unwrap_err();
        assert_eq!(e.0, "payload is an array, not a JSON object");
        let mut bad = message("");
        bad.payload = vec![0xff, 0xfe];
        assert!(conv
            .convert(&bad, &mut cells)
            .unwrap_err()
            .0
            .contains("not UTF-8"));
    }

    #[test]
    fn keys_with_escapes_are_matched_by_their_content() {
        let conv = converter("a: long", &[]);
        let mut cells = Vec::new();
        let msg = message(r#"{"\u0061": 5}"#);
        conv.convert(&msg, &mut cells).unwrap();
        assert_eq!(cells, vec![num("5")]);
    }
}
