//! Field paths as the mapping language writes them: dot-separated segments, a segment in
//! double quotes when it holds dots, one `*` wildcard, and the `$source.`, `$context(...)`,
//! `$context.` and `$metadata.` prefixes.
//!
//! Segmentation follows concept-dataflow-mapping ("Dot notation and escaping"): a segment that
//! starts with a quotation mark runs to the next quotation mark; any other segment runs to the
//! next dot. Quotation marks inside a segment are part of the name.

use std::fmt;

/// One segment of a path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    Field(String),
    /// `*`: one or more whole segments, the captured segment.
    Wildcard,
}

/// Where a path reads from or writes to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Root {
    /// The message's payload (no prefix, or `$source.`).
    Payload,
    /// `$context(<dataset>).`: the record that matched a dataset.
    Context(String),
    /// `$context.`: inside a dataset's own `inputs`, the dataset record being tested.
    DatasetRecord,
    /// `$metadata.`: the message's MQTT properties.
    Metadata(Metadata),
}

/// The MQTT properties a path can name (concept-dataflow-graphs-expressions, "Metadata").
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Metadata {
    /// `$metadata.topic`
    Topic,
    /// `$metadata.user_property.<key>`; the plural `user_properties` of howto-create-dataflow too.
    UserProperty(String),
    /// `$metadata.system_property.content_type`, or `$metadata.content_type`.
    ContentType,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FieldPath {
    pub root: Root,
    pub segments: Vec<Segment>,
}

/// A path that does not parse; `column` counts characters from 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathError {
    pub column: usize,
    pub message: String,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "column {}: {}", self.column, self.message)
    }
}

/// An input path and whether it falls back to the field's last known value (`? $last`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputPath {
    pub path: FieldPath,
    pub last_known: bool,
}

impl FieldPath {
    pub fn payload(segments: Vec<Segment>) -> Self {
        Self {
            root: Root::Payload,
            segments,
        }
    }

    pub fn wildcard_index(&self) -> Option<usize> {
        self.segments.iter().position(|s| *s == Segment::Wildcard)
    }

    pub fn has_wildcard(&self) -> bool {
        self.wildcard_index().is_some()
    }

    /// The path with its wildcard replaced by `captured`.
    pub fn substitute(&self, captured: &[String]) -> Vec<String> {
        let mut out = Vec::with_capacity(self.segments.len() + captured.len());
        for segment in &self.segments {
            match segment {
                Segment::Field(name) => out.push(name.clone()),
                Segment::Wildcard => out.extend(captured.iter().cloned()),
            }
        }
        out
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut write_segment = |f: &mut fmt::Formatter<'_>, text: &str| {
            if !first {
                f.write_str(".")?;
            }
            first = false;
            f.write_str(text)
        };
        match &self.root {
            Root::Payload => {}
            Root::Context(name) => write_segment(f, &format!("$context({name})"))?,
            Root::DatasetRecord => write_segment(f, "$context")?,
            Root::Metadata(Metadata::Topic) => write_segment(f, "$metadata.topic")?,
            Root::Metadata(Metadata::ContentType) => {
                write_segment(f, "$metadata.system_property.content_type")?
            }
            Root::Metadata(Metadata::UserProperty(key)) => {
                write_segment(f, &format!("$metadata.user_property.{}", quoted(key)))?
            }
        }
        for segment in &self.segments {
            match segment {
                Segment::Wildcard => write_segment(f, "*")?,
                Segment::Field(name) => write_segment(f, &quoted(name))?,
            }
        }
        Ok(())
    }
}

fn quoted(name: &str) -> String {
    if name.contains('.') || name.starts_with('"') || name == "*" || name.is_empty() {
        format!("\"{name}\"")
    } else {
        name.to_string()
    }
}

/// Splits a path into segments (with the column each starts at).
fn split(text: &str) -> Result<Vec<(usize, String, bool)>, PathError> {
    let chars: Vec<char> = text.chars().collect();
    let mut segments = Vec::new();
    let mut i = 0;
    loop {
        let start = i;
        if chars.get(i) == Some(&'"') {
            let Some(close) = chars[i + 1..].iter().position(|&c| c == '"') else {
                return Err(PathError {
                    column: start + 1,
                    message: "this quoted segment has no closing quotation mark".into(),
                });
            };
            let name: String = chars[i + 1..i + 1 + close].iter().collect();
            i += close + 2;
            segments.push((start + 1, name, true));
            match chars.get(i) {
                None => break,
                Some('.') => i += 1,
                Some(_) => {
                    return Err(PathError {
                        column: i + 1,
                        message: "a quoted segment must be followed by a dot or end the path"
                            .into(),
                    })
                }
            }
        } else {
            let end = chars[i..]
                .iter()
                .position(|&c| c == '.')
                .map_or(chars.len(), |p| i + p);
            let name: String = chars[i..end].iter().collect();
            segments.push((start + 1, name, false));
            if end == chars.len() {
                break;
            }
            i = end + 1;
        }
    }
    for (column, name, quoted) in &segments {
        if name.is_empty() && !quoted {
            return Err(PathError {
                column: *column,
                message: "empty segment (two dots in a row, or a dot at an end)".into(),
            });
        }
    }
    Ok(segments)
}

/// Where a path may appear decides which prefixes it may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// A map or filter input: payload, `$context(<dataset>)`, `$metadata`.
    RuleInput,
    /// A map output: payload or `$metadata`.
    Output,
    /// A dataset's own input: `$source.` or `$context.` (or `$context(<itself>)`).
    DatasetInput,
}

pub fn parse(text: &str, place: Place) -> Result<FieldPath, PathError> {
    if text.trim().is_empty() {
        return Err(PathError {
            column: 1,
            message: "the path is empty".into(),
        });
    }
    if text.trim() != text {
        return Err(PathError {
            column: 1,
            message: "the path has spaces at its start or end".into(),
        });
    }
    let segments = split(text)?;
    let (first_column, first, first_quoted) = &segments[0];
    let mut rest = &segments[1..];
    let at = |column: usize, message: String| PathError { column, message };
    let root = if *first_quoted || !first.starts_with('$') {
        if place == Place::DatasetInput {
            return Err(at(
                1,
                "a dataset input starts with `$source.` (the message) or `$context.` (the dataset record)".into(),
            ));
        }
        rest = &segments[..];
        Root::Payload
    } else if first == "$source" {
        Root::Payload
    } else if first == "$context" {
        if place != Place::DatasetInput {
            return Err(at(
                *first_column,
                "`$context.` names the dataset record only in a dataset's inputs; elsewhere write `$context(<dataset>).<field>`".into(),
            ));
        }
        Root::DatasetRecord
    } else if let Some(name) = first
        .strip_prefix("$context(")
        .and_then(|s| s.strip_suffix(')'))
    {
        if name.trim().is_empty() {
            return Err(at(*first_column, "`$context()` names no dataset".into()));
        }
        if place == Place::Output {
            return Err(at(
                *first_column,
                "a dataset is read-only: `$context(...)` cannot be an output".into(),
            ));
        }
        Root::Context(name.trim().to_string())
    } else if first == "$metadata" {
        let (metadata, used) = metadata(rest, *first_column)?;
        rest = &rest[used..];
        if !rest.is_empty() {
            return Err(at(
                rest[0].0,
                format!(
                    "`{}` has no fields below it",
                    segments[0].1.clone() + "." + &join_names(&segments[1..=used])
                ),
            ));
        }
        if place == Place::DatasetInput {
            return Err(at(
                1,
                "a dataset input starts with `$source.` (the message) or `$context.` (the dataset record)".into(),
            ));
        }
        Root::Metadata(metadata)
    } else {
        return Err(at(
            *first_column,
            format!("`{first}` is not a prefix of the mapping language (known: $source, $context(<dataset>), $metadata)"),
        ));
    };
    if matches!(root, Root::Payload) && rest.is_empty() && first == "$source" {
        return Err(at(*first_column, "`$source` names no field".into()));
    }
    let mut out = Vec::with_capacity(rest.len());
    for (column, name, quoted) in rest {
        if !quoted && name == "*" {
            out.push(Segment::Wildcard);
        } else if !quoted && name.contains('*') {
            return Err(at(
                *column,
                format!("`{name}`: the wildcard `*` must be a whole segment"),
            ));
        } else {
            out.push(Segment::Field(name.clone()));
        }
    }
    if out.iter().filter(|s| **s == Segment::Wildcard).count() > 1 {
        return Err(at(1, "only one `*` is allowed in a path".into()));
    }
    Ok(FieldPath {
        root,
        segments: out,
    })
}

fn join_names(segments: &[(usize, String, bool)]) -> String {
    segments
        .iter()
        .map(|(_, n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(".")
}

const METADATA_KNOWN: &str =
    "$metadata.topic, $metadata.user_property.<key>, $metadata.system_property.content_type";

fn metadata(rest: &[(usize, String, bool)], column: usize) -> Result<(Metadata, usize), PathError> {
    let at = |column: usize, message: String| PathError { column, message };
    let Some((column, name, _)) = rest.first() else {
        return Err(at(
            column,
            format!("`$metadata` names no property (known: {METADATA_KNOWN})"),
        ));
    };
    let key = |used: usize| -> Result<(String, usize), PathError> {
        match rest.get(used) {
            Some((_, key, _)) if !key.is_empty() => Ok((key.clone(), used + 1)),
            _ => Err(at(
                *column,
                format!("`$metadata.{name}` needs a key: `$metadata.{name}.<key>`"),
            )),
        }
    };
    match name.as_str() {
        "topic" => Ok((Metadata::Topic, 1)),
        "content_type" => Ok((Metadata::ContentType, 1)),
        "user_property" | "user_properties" => {
            let (key, used) = key(1)?;
            Ok((Metadata::UserProperty(key), used))
        }
        "system_property" => match rest.get(1).map(|(_, n, _)| n.as_str()) {
            Some("content_type") => Ok((Metadata::ContentType, 2)),
            Some(other) => Err(at(rest[1].0, format!("`{other}` is not a system property: the one there is is content_type"))),
            None => Err(at(*column, "`$metadata.system_property` needs a name: `$metadata.system_property.content_type`".into())),
        },
        "header" => Err(at(
            *column,
            "`$metadata.header.<key>` is a Kafka header; this host reads MQTT, whose equivalent is `$metadata.user_property.<key>`".into(),
        )),
        other => Err(at(
            *column,
            format!("`$metadata.{other}` is not a property this host reads from MQTT (known: {METADATA_KNOWN})"),
        )),
    }
}

/// An input with an optional `? $last` suffix (case-insensitive, any spaces). The data flow
/// graph-only `?? <default>` is refused by name.
pub fn parse_input(text: &str, place: Place) -> Result<InputPath, PathError> {
    let (body, last_known) = split_suffix(text)?;
    let path = parse(body, place)?;
    Ok(InputPath { path, last_known })
}

fn split_suffix(text: &str) -> Result<(&str, bool), PathError> {
    // A `?` outside quotation marks starts a suffix.
    let mut in_quotes = false;
    let mut at_segment_start = true;
    for (index, c) in text.char_indices() {
        match c {
            '"' if at_segment_start || in_quotes => in_quotes = !in_quotes,
            '?' if !in_quotes => {
                let column = text[..index].chars().count() + 1;
                let suffix = text[index..].trim();
                if suffix.starts_with("??") {
                    return Err(PathError {
                        column,
                        message: "`?? <default>` is available in data flow graphs only, not in a Dataflow's builtInTransformation (concept-dataflow-graphs-expressions)".into(),
                    });
                }
                let rest = suffix[1..].trim();
                if !rest.eq_ignore_ascii_case("$last") {
                    if rest.to_ascii_lowercase().starts_with("$last")
                        && rest[5..].trim_start().starts_with("??")
                    {
                        return Err(PathError {
                            column,
                            message: "`?? <default>` is available in data flow graphs only, not in a Dataflow's builtInTransformation (concept-dataflow-graphs-expressions)".into(),
                        });
                    }
                    return Err(PathError {
                        column,
                        message: format!("`{suffix}`: the one suffix of an input is `? $last`"),
                    });
                }
                return Ok((text[..index].trim_end(), true));
            }
            _ => {}
        }
        at_segment_start = c == '.' && !in_quotes;
    }
    Ok((text, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(text: &str) -> Vec<String> {
        parse(text, Place::RuleInput)
            .unwrap()
            .segments
            .into_iter()
            .map(|s| match s {
                Segment::Field(n) => n,
                Segment::Wildcard => "*".into(),
            })
            .collect()
    }

    /// The segmentation cases of concept-dataflow-mapping, "Dot notation and escaping".
    #[test]
    fn segments_as_the_mapping_page_splits_them() {
        assert_eq!(names("Person.Date of Birth"), ["Person", "Date of Birth"]);
        assert_eq!(
            names(r#"Payload."Tag.10".Value"#),
            ["Payload", "Tag.10", "Value"]
        );
        assert_eq!(
            names(r#"Payload."Tag.10".Measurements."Vibration.$12".Value"#),
            [
                "Payload",
                "Tag.10",
                "Measurements",
                "Vibration.$12",
                "Value"
            ]
        );
        assert_eq!(
            names(r#"Payload.He said: "Hello", and waved"#),
            ["Payload", r#"He said: "Hello", and waved"#]
        );
        assert_eq!(
            names(r#"Payload.He said: "No. It is done""#),
            ["Payload", r#"He said: "No"#, r#" It is done""#]
        );
        assert_eq!(names(":Person:.:name:"), [":Person:", ":name:"]);
        assert_eq!(names("100 celsius.hot"), ["100 celsius", "hot"]);
        assert_eq!(names(r#""Tag 10".Value"#), ["Tag 10", "Value"]);
        assert_eq!(names("ColorProperties.*"), ["ColorProperties", "*"]);
    }

    #[test]
    fn prefixes_name_their_roots() {
        let p = parse("$metadata.user_properties.site", Place::RuleInput).unwrap();
        assert_eq!(
            p.root,
            Root::Metadata(Metadata::UserProperty("site".into()))
        );
        let p = parse(r#"$metadata.user_property."weird key""#, Place::Output).unwrap();
        assert_eq!(
            p.root,
            Root::Metadata(Metadata::UserProperty("weird key".into()))
        );
        let p = parse("$context(position).BaseSalary", Place::RuleInput).unwrap();
        assert_eq!(p.root, Root::Context("position".into()));
        let p = parse("$source.deviceId", Place::DatasetInput).unwrap();
        assert_eq!(
            (p.root, names("deviceId")),
            (Root::Payload, vec!["deviceId".to_string()])
        );
        assert_eq!(
            parse("$context.Position", Place::DatasetInput)
                .unwrap()
                .root,
            Root::DatasetRecord
        );
    }

    #[test]
    fn bad_paths_name_the_column() {
        let e = parse("a..b", Place::RuleInput).unwrap_err();
        assert_eq!(e.column, 3, "{e}");
        let e = parse("a.par*tial", Place::RuleInput).unwrap_err();
        assert!(e.message.contains("whole segment"), "{e}");
        assert!(parse("*.a.*", Place::RuleInput)
            .unwrap_err()
            .message
            .contains("one `*`"));
        let e = parse("$metadata.topik", Place::RuleInput).unwrap_err();
        assert!(
            e.message.contains("topik") && e.message.contains("known"),
            "{e}"
        );
        assert!(parse("$metadata.header.x", Place::RuleInput)
            .unwrap_err()
            .message
            .contains("Kafka"));
        assert!(parse("$context(d).x", Place::Output).is_err());
        assert!(parse("deviceId", Place::DatasetInput).is_err());
        assert!(parse(r#"a."unclosed"#, Place::RuleInput)
            .unwrap_err()
            .message
            .contains("closing"));
    }

    #[test]
    fn last_known_value_suffix() {
        let i = parse_input("temperature ? $last", Place::RuleInput).unwrap();
        assert!(i.last_known);
        let i = parse_input("temperature?$LAST", Place::RuleInput).unwrap();
        assert!(i.last_known && i.path.to_string() == "temperature");
        let e = parse_input("temperature ?? 0", Place::RuleInput).unwrap_err();
        assert!(e.message.contains("graphs only"), "{e}");
        let e = parse_input("temperature ? $last ?? 0", Place::RuleInput).unwrap_err();
        assert!(e.message.contains("graphs only"), "{e}");
        assert!(parse_input("t ? $first", Place::RuleInput).is_err());
        let i = parse_input(r#""what?".x"#, Place::RuleInput).unwrap();
        assert!(!i.last_known);
    }
}
