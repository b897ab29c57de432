//! Reading a JSON payload without building a tree: the top-level fields (and, for JSON paths,
//! nested objects and arrays) are borrowed slices of the payload text.

use std::borrow::Cow;
use std::fmt;

use serde_json::value::RawValue;

use crate::config::PathStep;
use crate::scan::{self, WantedKeys};

/// An object's fields, borrowed from the JSON text.
#[derive(Default)]
pub struct Fields<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'a> Fields<'a> {
    /// The first key the table reads that appears more than once, and how often. JSON
    /// leaves duplicates to the reader (RFC 8259 §4); Kusto's reader keeps the last value, so
    /// the same message would mean different rows to different readers.
    pub fn duplicated(&self, wanted: &WantedKeys) -> Option<(&str, usize)> {
        self.0.iter().find_map(|(key, _)| {
            wanted.contains(key)?;
            let count = self.0.iter().filter(|(k, _)| k == key).count();
            (count > 1).then_some((key.as_ref(), count))
        })
    }

    /// The raw JSON text of a field; of duplicates (in nested objects; `read` refuses them at
    /// the top level), the last, as Kusto reads them.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.get())
    }

    /// Follows a JSON path from this object; `None` when a step finds nothing.
    pub fn path(&self, steps: &[PathStep]) -> Option<&'a str> {
        let (first, rest) = steps.split_first()?;
        let current = match first {
            PathStep::Key(key) => self.get(key)?,
            PathStep::Index(_) => return None,
        };
        follow(current, rest)
    }
}

/// Follows the rest of a JSON path from a value's raw text; `None` when a step finds nothing.
pub fn follow<'a>(mut current: &'a str, steps: &[PathStep]) -> Option<&'a str> {
    for step in steps {
        current = match step {
            PathStep::Key(key) => match object(current) {
                Ok(Some(fields)) => fields.get(key)?,
                _ => return None,
            },
            PathStep::Index(index) => {
                let items: Vec<&RawValue> = serde_json::from_str(current).ok()?;
                items.get(*index)?.get()
            }
        };
    }
    Some(current)
}

/// A payload read for one row: by the scanner's fast path when it can, else in general.
pub enum Payload<'m, 's> {
    /// The table reads nothing from the payload.
    Unread,
    /// Each wanted top-level key's value, by slot (see `scan::WantedKeys`).
    Scanned(&'s [Option<&'m str>]),
    Parsed(Fields<'m>),
}

/// Reads the payload as a JSON object, or says why it is not one.
pub fn read<'m, 's>(
    payload: &'m [u8],
    wanted: &WantedKeys,
    scratch: &'s mut [Option<&'m str>; scan::MAX_KEYS],
) -> Result<Payload<'m, 's>, String> {
    if wanted.len() <= scan::MAX_KEYS {
        if let Some(text) = dataflow_contract::packed::utf8(payload) {
            let values = &mut scratch[..wanted.len()];
            if scan::scan_object(text, wanted, values).is_some() {
                return Ok(Payload::Scanned(values));
            }
        }
    }
    let fields = parse_object(payload)?;
    if let Some((key, count)) = fields.duplicated(wanted) {
        return Err(format!(
            "payload has the key `{key}` {count} times: which value is meant is ambiguous (Kusto would keep the last one without a word), so the message is not ingested"
        ));
    }
    Ok(Payload::Parsed(fields))
}

impl<'m> Payload<'m, '_> {
    /// A top-level field, found by its slot or its name.
    pub fn field(&self, slot: Option<usize>, name: &str) -> Option<&'m str> {
        match self {
            Self::Unread => None,
            Self::Scanned(values) => values[slot?],
            Self::Parsed(fields) => fields.get(name),
        }
    }

    /// A JSON path, whose first step (a key) has the slot given.
    pub fn path(&self, slot: Option<usize>, steps: &[PathStep]) -> Option<&'m str> {
        match self {
            Self::Unread => None,
            Self::Scanned(values) => follow(values[slot?]?, steps.get(1..)?),
            Self::Parsed(fields) => fields.path(steps),
        }
    }
}

/// The payload as a JSON object, or why it is not one.
pub fn parse_object(payload: &[u8]) -> Result<Fields<'_>, String> {
    let text =
        std::str::from_utf8(payload).map_err(|e| format!("payload is not UTF-8 text: {e}"))?;
    match object(text) {
        Ok(Some(fields)) => Ok(fields),
        Ok(None) => Err(format!(
            "payload is {}, not a JSON object",
            kind_of(text.trim_start()).with_article()
        )),
        Err(e) => Err(format!("payload is not JSON: {e}")),
    }
}

fn object(text: &str) -> Result<Option<Fields<'_>>, serde_json::Error> {
    serde_json::from_str::<FieldsOrOther>(text).map(|f| f.0)
}

/// What kind of JSON value a raw text is, from its first character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonKind {
    Null,
    String,
    Boolean,
    Object,
    Array,
    Number,
}

pub fn kind_of(raw: &str) -> JsonKind {
    match raw.as_bytes().first() {
        Some(b'n') => JsonKind::Null,
        Some(b'"') => JsonKind::String,
        Some(b't' | b'f') => JsonKind::Boolean,
        Some(b'{') => JsonKind::Object,
        Some(b'[') => JsonKind::Array,
        _ => JsonKind::Number,
    }
}

impl JsonKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::String => "string",
            Self::Boolean => "boolean",
            Self::Object => "object",
            Self::Array => "array",
            Self::Number => "number",
        }
    }

    fn with_article(self) -> String {
        match self {
            Self::Null => "null".into(),
            Self::Array | Self::Object => format!("an {}", self.name()),
            _ => format!("a {}", self.name()),
        }
    }
}

/// The content of a JSON string literal.
pub fn decode_string(raw: &str) -> Cow<'_, str> {
    let inner = &raw[1..raw.len() - 1];
    if crate::scan::contains_backslash(inner.as_bytes()) {
        Cow::Owned(serde_json::from_str::<String>(raw).unwrap_or_default())
    } else {
        Cow::Borrowed(inner)
    }
}

/// Walks any JSON value, reading every number as a number: fails where `IgnoredAny` would
/// skip a number too large for any JSON reader (`1e999`). Allocates nothing.
pub struct NumbersInRange;

impl<'de> serde::Deserialize<'de> for NumbersInRange {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NumbersInRangeVisitor)
    }
}

struct NumbersInRangeVisitor;

impl<'de> serde::de::Visitor<'de> for NumbersInRangeVisitor {
    type Value = NumbersInRange;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map
            .next_entry::<serde::de::IgnoredAny, NumbersInRange>()?
            .is_some()
        {}
        Ok(NumbersInRange)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<NumbersInRange>()?.is_some() {}
        Ok(NumbersInRange)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(NumbersInRange)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(NumbersInRange)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(NumbersInRange)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(NumbersInRange)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(NumbersInRange)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(NumbersInRange)
    }
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
    use crate::config::ColumnSource;

    fn path(text: &str) -> Vec<PathStep> {
        match ColumnSource::parse(text).unwrap() {
            ColumnSource::Path(steps) => steps,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn follows_paths_through_objects_and_arrays() {
        let payload = br#"{"a": {"b": [10, {"c": "deep"}], "the key": true}, "top": 1}"#;
        let fields = parse_object(payload).unwrap();
        assert_eq!(fields.path(&path("$.a.b[0]")), Some("10"));
        assert_eq!(fields.path(&path("$.a.b[1].c")), Some("\"deep\""));
        assert_eq!(fields.path(&path("$.a['the key']")), Some("true"));
        assert_eq!(fields.path(&path("$.a.b[5]")), None);
        assert_eq!(fields.path(&path("$.top.x")), None);
        assert_eq!(fields.path(&path("$.missing")), None);
    }

    #[test]
    fn says_what_a_payload_that_is_not_an_object_is() {
        assert_eq!(
            parse_object(b"[1]").err().unwrap(),
            "payload is an array, not a JSON object"
        );
        assert_eq!(
            parse_object(b"null").err().unwrap(),
            "payload is null, not a JSON object"
        );
        assert_eq!(
            parse_object(b" 5").err().unwrap(),
            "payload is a number, not a JSON object"
        );
        assert!(parse_object(b"{")
            .err()
            .unwrap()
            .starts_with("payload is not JSON"));
        assert!(parse_object(&[0xff]).err().unwrap().contains("not UTF-8"));
    }
}
