//! YAML documents as a tree the configuration reader walks, keys in the order written.
//!
//! Parsed with serde-saphyr (maintained, no unsafe code) under its budgets: nesting deeper
//! than 64 levels, alias expansion beyond its limits (the "billion laughs") and duplicate keys
//! are refused at once, with line and column. Scalars follow YAML 1.2's core schema, as
//! Kubernetes' own `yes`/`on` do not count as booleans here: `true` and `false` only, and a
//! number with a leading zero stays text.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Number;

/// One YAML node.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Sequence(Vec<Value>),
    Mapping(Mapping),
}

/// A YAML mapping with string keys, in document order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mapping(Vec<(String, Value)>);

impl Mapping {
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_str())
    }
}

impl Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_mapping(&self) -> Option<&Mapping> {
        match self {
            Self::Mapping(m) => Some(m),
            _ => None,
        }
    }

    /// The value as YAML would show a scalar (for constants given as numbers or booleans).
    pub fn scalar_text(&self) -> Option<String> {
        match self {
            Self::String(s) => Some(s.clone()),
            Self::Number(n) => Some(n.to_string()),
            Self::Bool(b) => Some(b.to_string()),
            Self::Null => Some("null".into()),
            Self::Sequence(_) | Self::Mapping(_) => None,
        }
    }
}

/// Every document of `text` (empty ones are skipped), or why it is not valid YAML.
pub fn documents(text: &str) -> Result<Vec<Value>, String> {
    let mut options = serde_saphyr::Options::default();
    options.strict_booleans = true;
    options.leading_zero_numbers_as_strings = true;
    options.with_snippet = false;
    serde_saphyr::from_multiple_with_options(text, options).map_err(|e| {
        // What and where ("… at line L, column C"), without the parser's advice to its
        // own callers.
        e.to_string()
            .replace(", set DuplicateKeyPolicy in Options if acceptable", "")
    })
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a YAML value")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }
    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Value, E> {
        Number::from_f64(n)
            .map(Value::Number)
            .ok_or_else(|| E::custom(format!("{n} is not a finite number")))
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_string()))
    }
    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Sequence(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some((key, value)) = map.next_entry::<String, Value>()? {
            entries.push((key, value));
        }
        Ok(Value::Mapping(Mapping(entries)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn documents_keep_their_key_order_and_yaml_1_2_scalars() {
        let docs = documents("b: yes\na: 010\nc: 1.5\nd: true\n---\n---\nx: [1, ~]\n").unwrap();
        assert_eq!(docs.len(), 2);
        let first = docs[0].as_mapping().unwrap();
        assert_eq!(first.keys().collect::<Vec<_>>(), ["b", "a", "c", "d"]);
        assert_eq!(first.get("b"), Some(&Value::String("yes".into())));
        assert_eq!(first.get("a"), Some(&Value::String("010".into())));
        assert_eq!(first.get("d"), Some(&Value::Bool(true)));
        assert_eq!(
            first.get("c").and_then(Value::scalar_text).as_deref(),
            Some("1.5")
        );
    }

    #[test]
    fn hostile_documents_are_refused_at_once_with_where() {
        let deep = "[".repeat(100_000) + &"]".repeat(100_000);
        let started = Instant::now();
        let error = documents(&deep).unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        assert!(
            error.starts_with("recursion limit exceeded at line 1, column "),
            "{error}"
        );

        let mut bomb = String::from(
            "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
        );
        for (name, previous) in ["b", "c", "d", "e", "f", "g", "h", "i"]
            .iter()
            .zip(["a", "b", "c", "d", "e", "f", "g", "h"])
        {
            bomb += &format!(
                "{name}: &{name} [{}]\n",
                vec![format!("*{previous}"); 9].join(",")
            );
        }
        let started = Instant::now();
        let error = documents(&bomb).unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert!(error.contains("budget"), "{error}");

        let error = documents("a: 1\na: 2\n").unwrap_err();
        assert_eq!(error, "duplicate mapping key: a at line 2, column 1");
    }
}
