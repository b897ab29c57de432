//! Reading and writing JSON by path segments, and enumerating what a wildcard captures.

use serde_json::{Map, Value as Json};

use crate::path::Segment;

pub fn get<'a>(mut node: &'a Json, path: &[String]) -> Option<&'a Json> {
    for segment in path {
        node = node.as_object()?.get(segment)?;
    }
    Some(node)
}

/// The value at `segments`, with `capture` standing for the wildcard (no path is built).
pub fn get_captured<'a>(
    mut node: &'a Json,
    segments: &[Segment],
    capture: &[&str],
) -> Option<&'a Json> {
    for segment in segments {
        match segment {
            Segment::Field(name) => node = node.as_object()?.get(name)?,
            Segment::Wildcard => {
                for name in capture {
                    node = node.as_object()?.get(*name)?;
                }
            }
        }
    }
    Some(node)
}

/// Writes `value` at `path`, making objects on the way. Fails when a value that is not an
/// object stands where the path goes on.
pub fn set(root: &mut Map<String, Json>, path: &[&str], value: Json) -> Result<(), String> {
    let (last, parents) = path.split_last().ok_or("an empty output path")?;
    let mut node = root;
    for (depth, segment) in parents.iter().enumerate() {
        if !node.contains_key(*segment) {
            node.insert(segment.to_string(), Json::Object(Map::new()));
        }
        node = match node.get_mut(*segment) {
            Some(Json::Object(map)) => map,
            _ => {
                return Err(format!(
                    "`{}` already holds a value that is not an object, so nothing can be written below it",
                    path[..=depth].join(".")
                ))
            }
        };
    }
    node.insert(last.to_string(), value);
    Ok(())
}

/// Every capture `C` under `base` such that `C` followed by `suffix` exists: with an empty
/// suffix, the paths of the leaves (values that are not non-empty objects), else the paths
/// of objects holding `suffix`. In document order.
/// A capture borrows its segments from `base`.
pub fn captures<'a>(base: &'a Json, suffix: &[String], out: &mut Vec<Vec<&'a str>>) {
    let mut current = Vec::new();
    walk(base, suffix, &mut current, out);
}

fn walk<'a>(
    node: &'a Json,
    suffix: &[String],
    current: &mut Vec<&'a str>,
    out: &mut Vec<Vec<&'a str>>,
) {
    let Some(map) = node.as_object() else { return };
    for (key, child) in map {
        current.push(key);
        if suffix.is_empty() {
            match child {
                Json::Object(inner) if !inner.is_empty() => walk(child, suffix, current, out),
                _ => out.push(current.clone()),
            }
        } else {
            if get(child, suffix).is_some() {
                out.push(current.clone());
            }
            if child.is_object() {
                walk(child, suffix, current, out);
            }
        }
        current.pop();
    }
}
