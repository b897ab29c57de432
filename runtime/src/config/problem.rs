//! A configuration problem, located by file, resource and field path, and the helpers that
//! find them while reading a YAML resource.

use std::fmt;
use std::ops::RangeInclusive;

use super::yaml::{Mapping, Value};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    /// `Kind/name`, empty for problems of the file itself.
    pub resource: String,
    /// Dotted field path, empty for problems of the resource as a whole.
    pub path: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.file)?;
        if !self.resource.is_empty() {
            write!(f, "{}: ", self.resource)?;
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// Reads one resource, collecting every problem instead of stopping at the first.
pub struct Reader<'p> {
    pub file: String,
    pub resource: String,
    pub problems: &'p mut Vec<Problem>,
}

pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
    }
}

impl Reader<'_> {
    pub fn report(&mut self, path: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            file: self.file.clone(),
            resource: self.resource.clone(),
            path: path.to_string(),
            message: message.into(),
        });
    }

    /// A mapping whose keys must all be in `allowed`; unknown ones are reported with a guess.
    pub fn mapping<'v>(
        &mut self,
        value: &'v Value,
        path: &str,
        allowed: &[&str],
    ) -> Option<&'v Mapping> {
        let mapping = self.any_mapping(value, path)?;
        self.check_keys(mapping, path, allowed);
        Some(mapping)
    }

    /// A mapping, whatever its keys.
    pub fn any_mapping<'v>(&mut self, value: &'v Value, path: &str) -> Option<&'v Mapping> {
        match value {
            Value::Mapping(mapping) => Some(mapping),
            other => {
                self.report(
                    path,
                    format!("expected a mapping, found {}", type_name(other)),
                );
                None
            }
        }
    }

    pub fn check_keys(&mut self, mapping: &Mapping, path: &str, allowed: &[&str]) {
        for key in mapping.keys() {
            if !allowed.contains(&key) {
                let hint = match did_you_mean(key, allowed) {
                    _ if allowed.is_empty() => " (this mapping takes no fields: `{}`)".to_string(),
                    Some(guess) => format!(" (did you mean `{guess}`?)"),
                    None => format!(" (known fields: {})", allowed.join(", ")),
                };
                self.report(&join(path, key), format!("unknown field{hint}"));
            }
        }
    }

    /// A required mapping field.
    pub fn required_mapping<'v>(
        &mut self,
        parent: &'v Mapping,
        path: &str,
        key: &str,
        allowed: &[&str],
    ) -> Option<&'v Mapping> {
        match parent.get(key) {
            Some(value) => self.mapping(value, &join(path, key), allowed),
            None => {
                self.report(&join(path, key), "required field is missing");
                None
            }
        }
    }

    pub fn optional_mapping<'v>(
        &mut self,
        parent: &'v Mapping,
        path: &str,
        key: &str,
        allowed: &[&str],
    ) -> Option<&'v Mapping> {
        match parent.get(key) {
            None | Some(Value::Null) => None,
            Some(value) => self.mapping(value, &join(path, key), allowed),
        }
    }

    pub fn string(
        &mut self,
        parent: &Mapping,
        path: &str,
        key: &str,
        required: bool,
    ) -> Option<String> {
        let path = join(path, key);
        match parent.get(key) {
            None | Some(Value::Null) => {
                if required {
                    self.report(&path, "required field is missing");
                }
                None
            }
            Some(Value::String(text)) if text.trim().is_empty() => {
                self.report(&path, "must not be empty");
                None
            }
            Some(Value::String(text)) => {
                if let Some(placeholder) = placeholder(text) {
                    self.report(&path, format!("the placeholder `{placeholder}` was left in: replace it with the real value"));
                    return None;
                }
                Some(text.trim().to_string())
            }
            Some(other) => {
                self.report(
                    &path,
                    format!("expected a string, found {}", type_name(other)),
                );
                None
            }
        }
    }

    pub fn integer(
        &mut self,
        parent: &Mapping,
        path: &str,
        key: &str,
        range: RangeInclusive<u64>,
    ) -> Option<u64> {
        let path = join(path, key);
        let value = parent.get(key)?;
        let number = match value {
            Value::Number(n) => n,
            other => {
                self.report(
                    &path,
                    format!("expected a whole number, found {}", type_name(other)),
                );
                return None;
            }
        };
        let shown = number.to_string();
        match number.as_u64() {
            Some(v) if range.contains(&v) => Some(v),
            _ if number.as_i64().is_some() || number.as_u64().is_some() => {
                self.report(
                    &path,
                    format!("{shown} is outside {}..{}", range.start(), range.end()),
                );
                None
            }
            _ => {
                self.report(&path, format!("{shown} is not a whole number"));
                None
            }
        }
    }

    pub fn boolean(&mut self, parent: &Mapping, path: &str, key: &str) -> Option<bool> {
        match parent.get(key)? {
            Value::Bool(b) => Some(*b),
            other => {
                self.report(
                    &join(path, key),
                    format!("expected true or false, found {}", type_name(other)),
                );
                None
            }
        }
    }

    pub fn list<'v>(
        &mut self,
        parent: &'v Mapping,
        path: &str,
        key: &str,
    ) -> Option<&'v Vec<Value>> {
        match parent.get(key)? {
            Value::Sequence(items) => Some(items),
            other => {
                self.report(
                    &join(path, key),
                    format!("expected a list, found {}", type_name(other)),
                );
                None
            }
        }
    }
}

/// `<your cluster>` and the like, as documentation examples write them.
pub fn placeholder(text: &str) -> Option<&str> {
    let start = text.find('<')?;
    let end = start + text[start..].find('>')?;
    Some(&text[start..=end])
}

/// The allowed name closest to `word`, if it is close enough to be a typo.
pub fn did_you_mean<'a>(word: &str, allowed: &[&'a str]) -> Option<&'a str> {
    allowed
        .iter()
        .map(|candidate| {
            (
                edit_distance(&word.to_lowercase(), &candidate.to_lowercase()),
                *candidate,
            )
        })
        .filter(|(distance, candidate)| *distance <= 2.max(candidate.len() / 4))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guesses_typos_but_not_strangers() {
        let allowed = ["latencySeconds", "maxMessages"];
        assert_eq!(
            did_you_mean("latencySecond", &allowed),
            Some("latencySeconds")
        );
        assert_eq!(did_you_mean("maxmessages", &allowed), Some("maxMessages"));
        assert_eq!(did_you_mean("colour", &allowed), None);
    }

    #[test]
    fn finds_placeholders() {
        assert_eq!(
            placeholder("<your cluster>.westeurope.kusto.windows.net"),
            Some("<your cluster>")
        );
        assert_eq!(placeholder("mycluster.westeurope.kusto.windows.net"), None);
    }
}
