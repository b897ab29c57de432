//! Turns a message into one row of the table: a Kusto-typed cell per column, chosen by the
//! column's source and converted only where the conversion loses nothing. Whatever does not
//! convert is a reason naming the column, the value and its type, never a silent null.

use std::borrow::Cow;
use std::fmt;

use crate::config::PathStep;
use crate::config::{ColumnPlan, ColumnSource, DestinationConfig};
use crate::datetime::{parse_timespan, DateTime};
use crate::message::{MessageRef, RejectionKind};
use crate::payload::{self, decode_string, kind_of, JsonKind, Payload};
use crate::scan::{self, WantedKeys};
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

/// Why a message could not become a row: its payload could not be read (`Payload`), or a
/// value did not fit its column (`Conversion`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversionError {
    pub kind: RejectionKind,
    pub reason: String,
}

impl fmt::Display for ConversionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

pub struct RowConverter {
    columns: Vec<ColumnPlan>,
    needs_payload: bool,
    /// The top-level payload keys the columns read, for the scanner's fast path.
    wanted: WantedKeys,
    /// Per column: the slot of the payload key it reads, if it reads one.
    slots: Vec<Option<usize>>,
}

impl RowConverter {
    /// Fails when a constant source cannot become its column's type.
    pub fn new(config: &DestinationConfig) -> Result<Self, String> {
        let needs_payload = config
            .columns
            .iter()
            .any(|p| matches!(p.source, ColumnSource::Field(_) | ColumnSource::Path(_)));
        for plan in &config.columns {
            if let ColumnSource::Constant(text) = &plan.source {
                text_cell(plan, Cow::Borrowed(text)).map_err(|problem| {
                    format!(
                        "columns.{}: the constant {} {problem} ({})",
                        plan.column.name,
                        quoted(text),
                        plan.column.kusto_type
                    )
                })?;
            }
        }
        let mut wanted = WantedKeys::default();
        let slots = config
            .columns
            .iter()
            .map(|plan| match &plan.source {
                ColumnSource::Field(name) => Some(wanted.slot_for(name)),
                ColumnSource::Path(steps) => match steps.first() {
                    Some(PathStep::Key(key)) => Some(wanted.slot_for(key)),
                    _ => None,
                },
                _ => None,
            })
            .collect();
        Ok(Self {
            columns: config.columns.clone(),
            needs_payload,
            wanted,
            slots,
        })
    }

    pub fn columns(&self) -> impl Iterator<Item = &Column> {
        self.columns.iter().map(|p| &p.column)
    }

    /// Fills `cells` with one cell per column, in schema order.
    pub fn convert<'m>(
        &self,
        message: &MessageRef<'m>,
        cells: &mut Vec<Cell<'m>>,
    ) -> Result<(), ConversionError> {
        cells.clear();
        let mut scratch = [None; scan::MAX_KEYS];
        let payload = if self.needs_payload {
            payload::read(message.payload, &self.wanted, &mut scratch).map_err(|reason| {
                ConversionError {
                    kind: RejectionKind::Payload,
                    reason,
                }
            })?
        } else {
            Payload::Unread
        };
        for (plan, &slot) in self.columns.iter().zip(&self.slots) {
            let cell = match self.value(plan, slot, message, &payload) {
                Some(Value::Json(raw)) => json_cell(plan, raw).map_err(|problem| {
                    let kind = kind_of(raw).name();
                    self.reject(plan, format!("{kind} {} {problem}", excerpt(raw)))
                })?,
                Some(Value::Text(text)) => text_cell(plan, text.clone()).map_err(|problem| {
                    self.reject(plan, format!("text {} {problem}", quoted(&text)))
                })?,
                None => Cell::Null,
            };
            if plan.required && cell == Cell::Null {
                return Err(self.reject(
                    plan,
                    format!(
                        "is required, but {} is missing or null",
                        plan.source.describe()
                    ),
                ));
            }
            cells.push(cell);
        }
        Ok(())
    }

    fn value<'m>(
        &self,
        plan: &ColumnPlan,
        slot: Option<usize>,
        message: &MessageRef<'m>,
        payload: &Payload<'m, '_>,
    ) -> Option<Value<'m>> {
        let text = |t: &'m str| Value::Text(Cow::Borrowed(t));
        match &plan.source {
            ColumnSource::Field(name) => payload.field(slot, name).map(Value::Json),
            ColumnSource::Path(steps) => payload.path(slot, steps).map(Value::Json),
            ColumnSource::Topic => Some(text(message.topic)),
            ColumnSource::ContentType => message.content_type.map(text),
            ColumnSource::UserProperty(key) => message.user_properties.get(key).map(text),
            // Cloned per row so that rows borrow only from their message.
            ColumnSource::Constant(constant) => Some(Value::Text(Cow::Owned(constant.clone()))),
        }
    }

    fn reject(&self, plan: &ColumnPlan, what: String) -> ConversionError {
        ConversionError {
            kind: RejectionKind::Conversion,
            reason: format!(
                "column `{}` ({}): {what}",
                plan.column.name, plan.column.kusto_type
            ),
        }
    }
}

/// Where a cell's value comes from: JSON text from the payload, or plain text from metadata.
enum Value<'a> {
    Json(&'a str),
    Text(Cow<'a, str>),
}

/// A JSON value from the payload. Errors describe the problem only; the caller names the value.
fn json_cell<'a>(plan: &ColumnPlan, raw: &'a str) -> Result<Cell<'a>, String> {
    let ty = plan.column.kusto_type;
    match kind_of(raw) {
        JsonKind::Null => Ok(Cell::Null),
        JsonKind::String => match ty {
            KustoType::String => Ok(Cell::JsonString(raw)),
            KustoType::Dynamic => Ok(Cell::Json(raw)),
            _ => text_cell(plan, decode_string(raw)),
        },
        JsonKind::Boolean => match ty {
            KustoType::Bool => Ok(Cell::Bool(raw == "true")),
            KustoType::String => Ok(Cell::Text(Cow::Borrowed(raw))),
            KustoType::Dynamic => Ok(Cell::Json(raw)),
            _ => Err(format!("cannot become a {ty}")),
        },
        JsonKind::Object | JsonKind::Array => match ty {
            KustoType::Dynamic => dynamic(raw),
            KustoType::String => Ok(Cell::Text(Cow::Borrowed(raw))),
            _ => Err(format!("cannot become a {ty}")),
        },
        JsonKind::Number => number_cell(plan, raw),
    }
}

fn number_cell<'a>(plan: &ColumnPlan, raw: &'a str) -> Result<Cell<'a>, String> {
    let ty = plan.column.kusto_type;
    match ty {
        KustoType::Int => integer(raw, i32::MIN as i64, i32::MAX as i64, ty),
        KustoType::Long => integer(raw, i64::MIN, i64::MAX, ty),
        // Without an exponent, a number this short is finite: no need to parse it.
        KustoType::Real if raw.len() < 300 && !raw.bytes().any(|b| (b | 0x20) == b'e') => {
            Ok(Cell::Number(Cow::Borrowed(raw)))
        }
        KustoType::Real => match raw.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(Cell::Number(Cow::Borrowed(raw))),
            _ => Err("is outside the real range".into()),
        },
        // Sent as text so that every digit survives: no float round trip.
        KustoType::Decimal => Ok(Cell::Text(Cow::Borrowed(raw))),
        KustoType::String => Ok(Cell::Text(Cow::Borrowed(raw))),
        KustoType::Dynamic => dynamic(raw),
        KustoType::Bool => match raw {
            "0" => Ok(Cell::Bool(false)),
            "1" => Ok(Cell::Bool(true)),
            _ => Err("cannot become a bool (only 0 and 1 do)".into()),
        },
        KustoType::DateTime => match plan.unit.per_second() {
            Some(per_second) => DateTime::from_unix_number(raw, per_second).map(Cell::DateTime),
            None => Err(format!(
                "cannot become a datetime without a unit (set units.{} or numericDatetimes to unixSeconds, unixMilliseconds, unixMicroseconds or unixNanoseconds)",
                plan.column.name
            )),
        },
        KustoType::TimeSpan | KustoType::Guid => Err(format!("cannot become a {ty}")),
    }
}

/// Text: a JSON string's content, a topic, a user property, a constant.
fn text_cell<'a>(plan: &ColumnPlan, text: Cow<'a, str>) -> Result<Cell<'a>, String> {
    let ty = plan.column.kusto_type;
    let trimmed = trim(&text);
    match ty {
        KustoType::String | KustoType::Dynamic => Ok(Cell::Text(text)),
        KustoType::Bool => match trimmed.to_ascii_lowercase().as_str() {
            "true" => Ok(Cell::Bool(true)),
            "false" => Ok(Cell::Bool(false)),
            _ => Err("is not true or false".into()),
        },
        KustoType::Int | KustoType::Long => {
            let (min, max) = if ty == KustoType::Int {
                (i32::MIN as i64, i32::MAX as i64)
            } else {
                (i64::MIN, i64::MAX)
            };
            match trimmed.parse::<i64>() {
                Ok(v) if (min..=max).contains(&v) => Ok(Cell::Number(Cow::Owned(v.to_string()))),
                Ok(_) => Err(format!("is outside the {ty} range")),
                Err(_) if trimmed.parse::<i128>().is_ok() => {
                    Err(format!("is outside the {ty} range"))
                }
                Err(_) => Err("is not an integer".into()),
            }
        }
        KustoType::Real => real_text(trimmed),
        KustoType::Decimal => {
            if is_decimal(trimmed) {
                Ok(Cell::Text(trimmed_cow(&text)))
            } else {
                Err("is not a decimal number".into())
            }
        }
        KustoType::DateTime => DateTime::parse(trimmed).map(Cell::DateTime),
        KustoType::TimeSpan => parse_timespan(trimmed).map(|t| Cell::Text(Cow::Owned(t))),
        KustoType::Guid => {
            if is_guid(trimmed) {
                Ok(Cell::Text(
                    match trimmed.bytes().any(|b| b.is_ascii_uppercase()) {
                        true => Cow::Owned(trimmed.to_ascii_lowercase()),
                        false => trimmed_cow(&text),
                    },
                ))
            } else {
                Err("is not a guid (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)".into())
            }
        }
    }
}

/// Any JSON, except numbers no JSON reader can hold (`1e999`): one such value would make
/// Kusto refuse the whole request, so it rejects only its own message.
fn dynamic(raw: &str) -> Result<Cell<'_>, String> {
    match serde_json::from_str::<crate::payload::NumbersInRange>(raw) {
        Ok(_) => Ok(Cell::Json(raw)),
        Err(_) => Err("holds a number outside the real range".into()),
    }
}

/// Numbers, and NaN / Infinity / -Infinity written as Kusto writes them.
fn real_text(text: &str) -> Result<Cell<'static>, String> {
    let special = match text.to_ascii_lowercase().as_str() {
        "nan" => Some("NaN"),
        "infinity" | "+infinity" | "inf" | "+inf" => Some("Infinity"),
        "-infinity" | "-inf" => Some("-Infinity"),
        _ => None,
    };
    if let Some(name) = special {
        return Ok(Cell::Text(Cow::Borrowed(name)));
    }
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(Cell::Number(Cow::Owned(format!("{v:?}")))),
        Ok(_) => Err("is outside the real range".into()),
        Err(_) => Err("is not a number".into()),
    }
}

fn integer<'a>(raw: &'a str, min: i64, max: i64, ty: KustoType) -> Result<Cell<'a>, String> {
    if let Ok(v) = raw.parse::<i64>() {
        return if (min..=max).contains(&v) {
            Ok(Cell::Number(Cow::Borrowed(raw)))
        } else {
            Err(format!("is outside the {ty} range"))
        };
    }
    // 3.0 or 1e3 are integers written differently; 3.5 is not.
    let v: f64 = raw.parse().map_err(|_| "is not a number".to_string())?;
    if !v.is_finite() || v < min as f64 || v >= max as f64 + 1.0 {
        return Err(format!("is outside the {ty} range"));
    }
    if v.fract() != 0.0 {
        return Err("is not an integer".into());
    }
    Ok(Cell::Number(Cow::Owned((v as i64).to_string())))
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

/// `text.trim()`, without Unicode's tables when neither end can be white space: ASCII above
/// the space is never white space, and such ends are the usual case.
fn trim(text: &str) -> &str {
    let plain = |b: &u8| (b'!'..0x80).contains(b);
    match (text.as_bytes().first(), text.as_bytes().last()) {
        (Some(first), Some(last)) if plain(first) && plain(last) => text,
        _ => text.trim(),
    }
}

/// `trim(text)`, borrowed as long as `text` is.
fn trimmed_cow<'a>(text: &Cow<'a, str>) -> Cow<'a, str> {
    match text {
        Cow::Borrowed(text) => Cow::Borrowed(trim(text)),
        Cow::Owned(text) => Cow::Owned(trim(text).to_string()),
    }
}

fn is_guid(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DestinationConfig;
    use crate::message::Message;

    #[test]
    fn trim_agrees_with_the_standard_trim() {
        let ends = [
            "", " ", "\t", "\u{1c}", "\u{7f}", "\u{85}", "\u{a0}", "\u{3000}", "é", "x", "!",
        ];
        for start in ends {
            for end in ends {
                for middle in ["", "a", " a b "] {
                    let text = format!("{start}{middle}{end}");
                    assert_eq!(trim(&text), text.trim(), "{text:?}");
                }
            }
        }
    }

    #[test]
    fn a_guid_in_lower_case_is_borrowed_and_one_in_upper_case_is_lowered() {
        let plan = |ty| ColumnPlan {
            column: Column {
                name: "g".into(),
                kusto_type: ty,
            },
            source: ColumnSource::Field("g".into()),
            unit: crate::config::NumericDatetimes::Reject,
            required: false,
        };
        let lower = "a5c9e2f1-0000-4000-8000-000000000000";
        let cell = text_cell(&plan(KustoType::Guid), Cow::Borrowed(lower)).unwrap();
        assert!(matches!(cell, Cell::Text(Cow::Borrowed(t)) if t == lower));
        let upper = format!(" {} ", lower.to_uppercase());
        let cell = text_cell(&plan(KustoType::Guid), Cow::Owned(upper)).unwrap();
        assert_eq!(cell, Cell::Text(Cow::Borrowed(lower)));
    }

    fn converter(schema: &str, extra: &[(&str, &str)]) -> RowConverter {
        let mut pairs = vec![
            ("host".to_string(), "c.kusto.windows.net".to_string()),
            ("database".to_string(), "db".to_string()),
            ("table".to_string(), "t".to_string()),
            ("schema".to_string(), schema.to_string()),
        ];
        pairs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        RowConverter::new(&DestinationConfig::from_pairs(&pairs).unwrap()).unwrap()
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

    /// Converts the JSON `value` in a one-column table `v` of type `ty`, as the encoded
    /// multijson value or the rejection reason.
    fn one(ty: &str, value: &str, extra: &[(&str, &str)]) -> Result<String, String> {
        let conv = converter(&format!("v: {ty}"), extra);
        let msg = message(&format!("{{\"v\": {value}}}"));
        let mut cells = Vec::new();
        conv.convert(&msg.view(), &mut cells)
            .map_err(|e| e.reason)?;
        let encoder =
            crate::encode::RowEncoder::new(crate::config::StreamFormat::MultiJson, conv.columns());
        let mut out = Vec::new();
        encoder.encode(&cells, &mut out);
        let row = String::from_utf8(out).unwrap();
        Ok(row
            .trim_end()
            .strip_prefix("{\"v\":")
            .unwrap()
            .strip_suffix('}')
            .unwrap()
            .to_string())
    }

    /// (type, extra config, good inputs with their encoded values, bad inputs with their reasons)
    type Case = (
        &'static str,
        &'static [(&'static str, &'static str)],
        &'static [(&'static str, &'static str)],
        &'static [(&'static str, &'static str)],
    );

    const CASES: &[Case] = &[
        ("bool", &[], &[
            ("true", "true"), ("false", "false"), ("\"TRUE\"", "true"), ("\" false \"", "false"), ("1", "true"), ("0", "false"), ("null", "null"),
        ], &[
            ("2", "number 2 cannot become a bool (only 0 and 1 do)"),
            ("\"yes\"", "string \"yes\" is not true or false"),
            ("1.0", "number 1.0 cannot become a bool (only 0 and 1 do)"),
            ("[]", "array [] cannot become a bool"),
            ("{}", "object {} cannot become a bool"),
        ]),
        ("int", &[], &[
            ("0", "0"), ("-2147483648", "-2147483648"), ("2147483647", "2147483647"), ("3.0", "3"), ("1e3", "1000"), ("\"42\"", "42"), ("\" -7 \"", "-7"),
        ], &[
            ("2147483648", "number 2147483648 is outside the int range"),
            ("3.5", "number 3.5 is not an integer"),
            ("\"4x\"", "string \"4x\" is not an integer"),
            ("\"9999999999\"", "string \"9999999999\" is outside the int range"),
            ("true", "boolean true cannot become a int"),
            ("{\"a\":1}", "object {\"a\":1} cannot become a int"),
        ]),
        ("long", &[], &[
            ("9223372036854775807", "9223372036854775807"), ("-9223372036854775808", "-9223372036854775808"), ("12", "12"), ("2.0e2", "200"), ("\"123456789012\"", "123456789012"),
        ], &[
            ("9223372036854775808", "number 9223372036854775808 is outside the long range"),
            ("1e30", "number 1e30 is outside the long range"),
            ("0.5", "number 0.5 is not an integer"),
            ("\"12.5\"", "string \"12.5\" is not an integer"),
            ("\"99999999999999999999\"", "string \"99999999999999999999\" is outside the long range"),
            ("[1]", "array [1] cannot become a long"),
        ]),
        ("real", &[], &[
            ("21.5", "21.5"), ("-1e-3", "-1e-3"), ("7", "7"), ("\"21.5\"", "21.5"), ("\"NaN\"", "\"NaN\""), ("\"Infinity\"", "\"Infinity\""), ("\"-inf\"", "\"-Infinity\""), ("\"1e3\"", "1000.0"),
        ], &[
            ("\"hot\"", "string \"hot\" is not a number"),
            ("1e999", "number 1e999 is outside the real range"),
            ("\"1e999\"", "string \"1e999\" is outside the real range"),
            ("true", "boolean true cannot become a real"),
            ("[1.5]", "array [1.5] cannot become a real"),
            ("\"\"", "string \"\" is not a number"),
        ]),
        ("decimal", &[], &[
            ("12345678901234567890.123456789", "\"12345678901234567890.123456789\""), ("0.1", "\"0.1\""), ("\"-1.5e3\"", "\"-1.5e3\""), ("\"+.5\"", "\"+.5\""), ("-7", "\"-7\""),
        ], &[
            ("\"1.2.3\"", "string \"1.2.3\" is not a decimal number"),
            ("\"12,5\"", "string \"12,5\" is not a decimal number"),
            ("\"\"", "string \"\" is not a decimal number"),
            ("\"1e\"", "string \"1e\" is not a decimal number"),
            ("false", "boolean false cannot become a decimal"),
            ("{}", "object {} cannot become a decimal"),
        ]),
        ("string", &[], &[
            ("\"a\\\"b\"", "\"a\\\"b\""), ("12.5", "\"12.5\""), ("true", "\"true\""), ("{\"x\":1}", "\"{\\\"x\\\":1}\""), ("[1, 2]", "\"[1, 2]\""), ("\"\"", "\"\""), ("null", "null"),
        ], &[]),
        ("datetime", &[], &[
            ("\"2026-11-28T10:20:30.1234567Z\"", "\"2026-11-28T10:20:30.1234567Z\""),
            ("\"2026-11-28T10:20:30.123+01:00\"", "\"2026-11-28T09:20:30.123Z\""),
            ("\"2026-11-28\"", "\"2026-11-28T00:00:00Z\""),
            ("\"2026-11-28 10:20\"", "\"2026-11-28T10:20:00Z\""),
            ("\"Sat, 28 Nov 2026 10:20:30 GMT\"", "\"2026-11-28T10:20:30Z\""),
        ], &[
            ("1764325230", "number 1764325230 cannot become a datetime without a unit (set units.v or numericDatetimes to unixSeconds, unixMilliseconds, unixMicroseconds or unixNanoseconds)"),
            ("\"yesterday\"", "string \"yesterday\" is not an ISO 8601 or RFC 1123 datetime"),
            ("\"2023-02-29\"", "string \"2023-02-29\" is not a valid calendar date"),
            ("\"2026-11-28T25:00:00Z\"", "string \"2026-11-28T25:00:00Z\" has an invalid time of day"),
            ("true", "boolean true cannot become a datetime"),
            ("\"28/11/2026\"", "string \"28/11/2026\" is not an ISO 8601 or RFC 1123 datetime"),
        ]),
        ("datetime", &[("units.v", "unixMilliseconds")], &[
            ("1764325230123", "\"2025-11-28T10:20:30.123Z\""), ("0", "\"1970-01-01T00:00:00Z\""), ("-1", "\"1969-12-31T23:59:59.999Z\""), ("1764325230123.5", "\"2025-11-28T10:20:30.1235Z\""), ("\"2026-11-28\"", "\"2026-11-28T00:00:00Z\""),
        ], &[
            ("1e300", "number 1e300 is outside the datetime range 0001-01-01..9999-12-31"),
            ("253402300800000", "number 253402300800000 is outside the datetime range 0001-01-01..9999-12-31"),
            ("-62135596800001", "number -62135596800001 is outside the datetime range 0001-01-01..9999-12-31"),
            ("[1]", "array [1] cannot become a datetime"),
            ("false", "boolean false cannot become a datetime"),
        ]),
        ("timespan", &[], &[
            ("\"1.02:03:04.5\"", "\"1.02:03:04.5\""), ("\"00:01\"", "\"00:01:00\""), ("\"PT1H30M\"", "\"01:30:00\""), ("\"P1DT0.25S\"", "\"1.00:00:00.25\""), ("\"-00:00:05\"", "\"-00:00:05\""),
        ], &[
            ("60", "number 60 cannot become a timespan"),
            ("\"1h\"", "string \"1h\" is not a timespan ([-][d.]hh:mm[:ss[.fffffff]] or an ISO 8601 duration such as PT1H30M)"),
            ("\"25:00:00\"", "string \"25:00:00\" is not a timespan ([-][d.]hh:mm[:ss[.fffffff]] or an ISO 8601 duration such as PT1H30M)"),
            ("\"P\"", "string \"P\" is not a timespan ([-][d.]hh:mm[:ss[.fffffff]] or an ISO 8601 duration such as PT1H30M)"),
            ("true", "boolean true cannot become a timespan"),
        ]),
        ("guid", &[], &[
            ("\"0F8FAD5B-D9CB-469F-A165-70867728950E\"", "\"0f8fad5b-d9cb-469f-a165-70867728950e\""),
            ("\"00000000-0000-0000-0000-000000000000\"", "\"00000000-0000-0000-0000-000000000000\""),
            ("\" 0f8fad5b-d9cb-469f-a165-70867728950e \"", "\"0f8fad5b-d9cb-469f-a165-70867728950e\""),
            ("\"ffffffff-ffff-ffff-ffff-ffffffffffff\"", "\"ffffffff-ffff-ffff-ffff-ffffffffffff\""),
            ("\"12345678-90ab-cdef-1234-567890abcdef\"", "\"12345678-90ab-cdef-1234-567890abcdef\""),
        ], &[
            ("\"not-a-guid\"", "string \"not-a-guid\" is not a guid (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)"),
            ("\"0F8FAD5BD9CB469FA16570867728950E\"", "string \"0F8FAD5BD9CB469FA16570867728950E\" is not a guid (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)"),
            ("\"0F8FAD5B-D9CB-469F-A165-70867728950G\"", "string \"0F8FAD5B-D9CB-469F-A165-70867728950G\" is not a guid (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)"),
            ("42", "number 42 cannot become a guid"),
            ("{}", "object {} cannot become a guid"),
        ]),
        ("dynamic", &[], &[
            ("{\"a\": [1, 2]}", "{\"a\": [1, 2]}"), ("7", "7"), ("\"text\"", "\"text\""), ("[true, null]", "[true, null]"), ("{\"a\":\n 1}", "{\"a\":1}"), ("null", "null"),
        ], &[
            ("{\"a\": [1e999]}", "object {\"a\": [1e999]} holds a number outside the real range"),
            ("1e999", "number 1e999 holds a number outside the real range"),
            ("[1, 1E400]", "array [1, 1E400] holds a number outside the real range"),
            ("{\"x\": {\"y\": -1e999}}", "object {\"x\": {\"y\": -1e999}} holds a number outside the real range"),
            ("[[2e308]]", "array [[2e308]] holds a number outside the real range"),
        ]),
    ];

    #[test]
    fn every_kusto_type_converts_good_values_and_rejects_bad_ones_with_reasons() {
        for (ty, extra, good, bad) in CASES {
            for (input, expected) in *good {
                assert_eq!(
                    one(ty, input, extra).as_deref(),
                    Ok(*expected),
                    "{ty} from {input}"
                );
            }
            for (input, reason) in *bad {
                let expected = format!(
                    "column `v` ({}): {reason}",
                    crate::schema::KustoType::parse(ty).unwrap()
                );
                assert_eq!(one(ty, input, extra), Err(expected), "{ty} from {input}");
            }
        }
        let with_enough = CASES
            .iter()
            .filter(|(_, _, good, bad)| good.len() >= 5 && (bad.len() >= 5 || bad.is_empty()));
        assert_eq!(with_enough.count(), CASES.len());
    }

    #[test]
    fn metadata_paths_constants_and_missing_fields() {
        let conv = converter(
            "Topic: string, Site: long, Ct: string, Missing: real, Deep: real, Plant: string",
            &[
                ("columns.Topic", "$metadata.topic"),
                ("columns.Site", "$metadata.user_property.site"),
                ("columns.Ct", "$metadata.system_property.content_type"),
                ("columns.Deep", "$.sensor.readings[1]"),
                ("columns.Plant", "$const:plant-7"),
            ],
        );
        let msg = message(r#"{"sensor": {"readings": [1.5, 2.5]}}"#);
        let mut cells = Vec::new();
        conv.convert(&msg.view(), &mut cells).unwrap();
        let text = |s: &str| Cell::Text(Cow::Owned(s.to_string()));
        assert_eq!(
            cells,
            vec![
                text("factory/line1/thermostat"),
                Cell::Number(Cow::Owned("42".into())),
                text("application/json"),
                Cell::Null,
                Cell::Number(Cow::Owned("2.5".into())),
                text("plant-7"),
            ]
        );
    }

    #[test]
    fn a_key_the_table_reads_twice_rejects_the_message_naming_it() {
        let conv = converter("n: long, s: string", &[]);
        let mut cells = Vec::new();
        let twice = message(r#"{"n": 900008, "n": 900009, "s": "x"}"#);
        let e = conv.convert(&twice.view(), &mut cells).unwrap_err();
        assert!(
            e.reason
                .starts_with("payload has the key `n` 2 times: which value is meant is ambiguous"),
            "{}",
            e.reason
        );
        assert_eq!(e.kind, RejectionKind::Payload);
        // A duplicate of a key no column reads changes no row.
        let unread = message(r#"{"n": 1, "x": 1, "x": 2, "s": "y"}"#);
        conv.convert(&unread.view(), &mut cells).unwrap();
        assert_eq!(cells.len(), 2);
    }

    #[test]
    fn a_required_column_without_a_value_rejects_the_message() {
        let conv = converter(
            "a: long, b: string",
            &[("required", "a"), ("columns.a", "$.x.y")],
        );
        for payload in [r#"{"b": "x"}"#, r#"{"x": {"y": null}}"#] {
            let mut cells = Vec::new();
            let msg = message(payload);
            let e = conv.convert(&msg.view(), &mut cells).unwrap_err();
            assert_eq!(
                e.reason,
                "column `a` (long): is required, but path `$.x.y` is missing or null"
            );
            assert_eq!(e.kind, RejectionKind::Conversion);
        }
        let msg = message(r#"{"x": {"y": 5}}"#);
        conv.convert(&msg.view(), &mut Vec::new()).unwrap();
    }

    #[test]
    fn a_constant_that_does_not_fit_its_column_is_a_configuration_error() {
        let pairs: Vec<(String, String)> = [
            ("host", "c.kusto.windows.net"),
            ("database", "db"),
            ("schema", ".create table t (n: long)"),
            ("columns.n", "$const:many"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let e = RowConverter::new(&DestinationConfig::from_pairs(&pairs).unwrap())
            .err()
            .unwrap();
        assert_eq!(
            e,
            "columns.n: the constant \"many\" is not an integer (long)"
        );
    }

    #[test]
    fn payloads_that_are_not_objects_are_rejected_with_the_reason() {
        let conv = converter("a: string", &[]);
        let mut cells = Vec::new();
        let not_json = message("{not json");
        let e = conv.convert(&not_json.view(), &mut cells).unwrap_err();
        assert!(e.reason.starts_with("payload is not JSON"), "{e}");
        assert_eq!(e.kind, RejectionKind::Payload);
        let array = message("[1,2]");
        let e = conv.convert(&array.view(), &mut cells).unwrap_err();
        assert_eq!(e.reason, "payload is an array, not a JSON object");
    }

    #[test]
    fn keys_with_escapes_are_matched_by_their_content() {
        let conv = converter("a: long", &[]);
        let mut cells = Vec::new();
        let msg = message(r#"{"\u0061": 5}"#);
        conv.convert(&msg.view(), &mut cells).unwrap();
        assert_eq!(cells, vec![Cell::Number(Cow::Borrowed("5"))]);
    }
}
