//! A local schema registry: the schemas a transformation's `schemaRef` names
//! (`aio-sr://<namespace>/<name>:<version>`, concept-schema-registry), read from a directory
//! laid out as the registry stores them, `<namespace>/<name>/<version>` (".json" optional).
//! Both documented formats are read: Delta (`"$schema": "Delta/1.0"`, for storage
//! destinations, Azure Data Explorer among them) and JSON Schema draft-07. Each top-level field
//! becomes a column with a Kusto type.

use std::path::{Path, PathBuf};

use kusto_model::schema::KustoType;
use serde_json::Value as Json;

const PREFIX: &str = "aio-sr://";
const MAX_SCHEMA_BYTES: u64 = 4 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaRef {
    pub namespace: String,
    pub name: String,
    pub version: String,
}

impl SchemaRef {
    pub fn parse(text: &str) -> Result<Self, String> {
        let form = "the form is aio-sr://<namespace>/<name>:<version>";
        let rest = text
            .strip_prefix(PREFIX)
            .ok_or_else(|| format!("`{text}` is not a schema registry reference: {form}"))?;
        let (path, version) = rest
            .rsplit_once(':')
            .ok_or_else(|| format!("`{text}` names no version: {form}"))?;
        let (namespace, name) = path
            .split_once('/')
            .ok_or_else(|| format!("`{text}` names no namespace: {form}"))?;
        let part_ok = |p: &str| {
            !p.is_empty() && !p.starts_with('.') && !p.contains(['/', '\\', ' ']) && p != ".."
        };
        if !part_ok(namespace) || !part_ok(name) || !part_ok(version) {
            return Err(format!("`{text}`: {form}, each part a name"));
        }
        Ok(Self {
            namespace: namespace.into(),
            name: name.into(),
            version: version.into(),
        })
    }
}

impl std::fmt::Display for SchemaRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{PREFIX}{}/{}:{}",
            self.namespace, self.name, self.version
        )
    }
}

/// A column of an output schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaColumn {
    pub name: String,
    pub kusto_type: KustoType,
    pub nullable: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputSchema {
    pub reference: SchemaRef,
    pub file: PathBuf,
    pub columns: Vec<SchemaColumn>,
}

impl OutputSchema {
    /// The table this schema describes, as a KustoTable would give it: its columns by name,
    /// each from the top-level field of that name; the non-nullable ones required.
    pub fn table(&self, name: &str) -> super::Table {
        let columns: Vec<String> = self
            .columns
            .iter()
            .map(|c| {
                format!(
                    "['{}']: {}",
                    c.name.replace('\'', "\\'"),
                    c.kusto_type.name()
                )
            })
            .collect();
        let mut settings = vec![(
            "schema".to_string(),
            format!(".create table ['{name}'] ({})", columns.join(", ")),
        )];
        let required: Vec<&str> = self
            .columns
            .iter()
            .filter(|c| !c.nullable)
            .map(|c| c.name.as_str())
            .collect();
        if !required.is_empty() {
            settings.push(("required".into(), required.join(",")));
        }
        super::Table {
            name: name.to_string(),
            settings,
        }
    }
}

/// Reads the schema `reference` names from the registry directory `dir`.
pub fn read(dir: &Path, reference: &SchemaRef) -> Result<OutputSchema, String> {
    let base = dir
        .join(&reference.namespace)
        .join(&reference.name)
        .join(&reference.version);
    let mut with_extension = base.clone().into_os_string();
    with_extension.push(".json");
    let file = [base.clone(), PathBuf::from(with_extension)]
        .into_iter()
        .find(|p| p.is_file())
        .ok_or_else(|| {
            format!(
                "{reference} is not in the schema registry {}: no file {}[.json]",
                dir.display(),
                base.display()
            )
        })?;
    let text = crate::files::read_regular_text(&file, MAX_SCHEMA_BYTES)
        .map_err(|e| format!("{reference}: {e}"))?;
    let document: Json = serde_json::from_str(&text)
        .map_err(|e| format!("{reference} ({}) is not JSON: {e}", file.display()))?;
    let columns =
        columns(&document).map_err(|e| format!("{reference} ({}): {e}", file.display()))?;
    Ok(OutputSchema {
        reference: reference.clone(),
        file,
        columns,
    })
}

/// concept-schema-registry: "Both formats require `type: "object"` and a `properties` field".
fn columns(document: &Json) -> Result<Vec<SchemaColumn>, String> {
    if document
        .get("type")
        .and_then(Json::as_str)
        .map(str::to_ascii_lowercase)
        .as_deref()
        != Some("object")
    {
        return Err("`type` must be \"object\"".into());
    }
    let properties = document.get("properties").ok_or("it has no `properties`")?;
    match document.get("$schema").and_then(Json::as_str) {
        Some("Delta/1.0") => delta_columns(properties),
        Some(s) if s.starts_with("http://json-schema.org/draft-07/schema") => {
            json_schema_columns(document, properties)
        }
        Some(other) => Err(format!("`$schema` is `{other}`; the registry's formats are Delta/1.0 and http://json-schema.org/draft-07/schema#")),
        None => Err("it has no `$schema` (Delta/1.0 or http://json-schema.org/draft-07/schema#)".into()),
    }
}

fn delta_columns(properties: &Json) -> Result<Vec<SchemaColumn>, String> {
    if properties.get("type").and_then(Json::as_str) != Some("struct") {
        return Err(
            "a Delta schema's `properties` is a struct: {\"type\": \"struct\", \"fields\": [...]}"
                .into(),
        );
    }
    let fields = properties
        .get("fields")
        .and_then(Json::as_array)
        .ok_or("a Delta struct has a `fields` list")?;
    let mut out = Vec::with_capacity(fields.len());
    for (i, field) in fields.iter().enumerate() {
        let name = field
            .get("name")
            .and_then(Json::as_str)
            .ok_or_else(|| format!("fields[{i}] has no name"))?;
        let kind = field
            .get("type")
            .ok_or_else(|| format!("field `{name}` has no type"))?;
        let kusto_type = match kind {
            Json::String(t) => delta_type(t).ok_or_else(|| format!("field `{name}`: `{t}` is not a Delta type this host maps to Kusto (string, boolean, byte, short, integer, long, float, double, decimal, date, timestamp, timestamp_ntz, struct, array, map)"))?,
            // struct, array and map: JSON objects and arrays, a `dynamic` column.
            Json::Object(_) => KustoType::Dynamic,
            _ => return Err(format!("field `{name}`: its type is a name or a struct")),
        };
        let nullable = match field.get("nullable") {
            None => true,
            Some(Json::Bool(b)) => *b,
            Some(_) => return Err(format!("field `{name}`: `nullable` is true or false")),
        };
        out.push(SchemaColumn {
            name: name.into(),
            kusto_type,
            nullable,
        });
    }
    Ok(out)
}

/// Delta primitive types (the Delta protocol's schema serialization) and their Kusto columns.
fn delta_type(name: &str) -> Option<KustoType> {
    Some(match name {
        "string" => KustoType::String,
        "boolean" => KustoType::Bool,
        "byte" | "short" | "integer" | "long" => KustoType::Long,
        "float" | "double" => KustoType::Real,
        "date" | "timestamp" | "timestamp_ntz" => KustoType::DateTime,
        d if d == "decimal" || (d.starts_with("decimal(") && d.ends_with(')')) => {
            KustoType::Decimal
        }
        _ => return None,
    })
}

fn json_schema_columns(document: &Json, properties: &Json) -> Result<Vec<SchemaColumn>, String> {
    let properties = properties
        .as_object()
        .ok_or("`properties` is an object of fields")?;
    let required: Vec<&str> = document
        .get("required")
        .and_then(Json::as_array)
        .map(|r| r.iter().filter_map(Json::as_str).collect())
        .unwrap_or_default();
    let mut out = Vec::with_capacity(properties.len());
    for (name, field) in properties {
        let types: Vec<&str> = match field.get("type") {
            Some(Json::String(t)) => vec![t],
            Some(Json::Array(ts)) => ts.iter().filter_map(Json::as_str).collect(),
            _ => return Err(format!("field `{name}` has no `type`")),
        };
        let nullable = types.contains(&"null") || !required.contains(&name.as_str());
        let kinds: Vec<&str> = types.into_iter().filter(|t| *t != "null").collect();
        let kusto_type = match kinds.as_slice() {
            ["string"] if field.get("format").and_then(Json::as_str) == Some("date-time") => {
                KustoType::DateTime
            }
            ["string"] => KustoType::String,
            ["number"] => KustoType::Real,
            ["integer"] => KustoType::Long,
            ["boolean"] => KustoType::Bool,
            ["object"] | ["array"] => KustoType::Dynamic,
            other => {
                return Err(format!(
                    "field `{name}`: type {other:?} is not one column type"
                ))
            }
        };
        out.push(SchemaColumn {
            name: name.clone(),
            kusto_type,
            nullable,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_as_concept_schema_registry_writes_them() {
        let r = SchemaRef::parse("aio-sr://my-namespace/sensor-data:1").unwrap();
        assert_eq!(
            (r.namespace.as_str(), r.name.as_str(), r.version.as_str()),
            ("my-namespace", "sensor-data", "1")
        );
        assert_eq!(r.to_string(), "aio-sr://my-namespace/sensor-data:1");
        assert!(SchemaRef::parse("aio-sr://exampleNamespace/exampleAvroSchema:1.0.0").is_ok());
        assert!(SchemaRef::parse("aio-sr://opcua-schema:1")
            .unwrap_err()
            .contains("namespace"));
        assert!(SchemaRef::parse("aio-sr://ns/name")
            .unwrap_err()
            .contains("version"));
        assert!(SchemaRef::parse("sr://ns/name:1").is_err());
        assert!(SchemaRef::parse("aio-sr://../name:1").is_err());
    }

    fn shown(document: &str) -> Vec<(String, KustoType, bool)> {
        let document: Json = serde_json::from_str(document).unwrap();
        columns(&document)
            .unwrap()
            .into_iter()
            .map(|c| (c.name, c.kusto_type, c.nullable))
            .collect()
    }

    /// The Delta and JSON Schema examples of concept-schema-registry.
    #[test]
    fn documented_schemas_become_columns() {
        let delta = shown(
            r#"{"$schema": "Delta/1.0", "type": "object", "properties": {"type": "struct", "fields": [
            { "name": "asset_id", "type": "string", "nullable": true, "metadata": {} },
            { "name": "temperature", "type": "double", "nullable": false, "metadata": {} },
            { "name": "timestamp", "type": "string", "nullable": true, "metadata": {} },
            { "name": "nested", "type": {"type": "struct", "fields": []}, "nullable": true, "metadata": {} }]}}"#,
        );
        let column = |n: &str, t, nullable| (n.to_string(), t, nullable);
        assert_eq!(
            delta,
            [
                column("asset_id", KustoType::String, true),
                column("temperature", KustoType::Real, false),
                column("timestamp", KustoType::String, true),
                column("nested", KustoType::Dynamic, true)
            ]
        );
        let json = shown(
            r#"{"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "required": ["deviceId"], "properties": {
            "temperature": { "type": "number" }, "count": { "type": ["integer", "null"] }, "deviceId": { "type": "string" }, "at": {"type": "string", "format": "date-time"} }}"#,
        );
        assert_eq!(
            json,
            [
                column("at", KustoType::DateTime, true),
                column("count", KustoType::Long, true),
                column("deviceId", KustoType::String, false),
                column("temperature", KustoType::Real, true)
            ]
        );
        let bad: Json = serde_json::from_str(r#"{"$schema": "Delta/1.0", "type": "object", "properties": {"type": "struct", "fields": [{"name": "x", "type": "uuid"}]}}"#).unwrap();
        assert!(columns(&bad).unwrap_err().contains("`uuid`"));
    }
}
