//! `KustoTable` resources (this project's own kind): the destination table's schema and where
//! each column's value comes from. The schema is the `.create table` command the user runs in
//! Azure Data Explorer, or a column list.

use super::yaml::Mapping;

use adx_destination::config::{ColumnSource, NumericDatetimes};
use kusto_model::schema::{KustoType, TableSchema};

use super::problem::{join, Reader};

pub const TABLE_API_VERSION: &str = "dataflow-host/v1";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub name: String,
    /// Plugin settings for this table: `schema`, `columns.<C>`, `units.<C>`, `required`, …
    pub settings: Vec<(String, String)>,
}

impl Table {
    /// Each column with its Kusto type and the top-level payload field it reads (`None` for
    /// columns from metadata or a constant).
    pub fn columns(&self) -> Vec<(String, KustoType, Option<String>)> {
        let Some(schema) = self
            .settings
            .iter()
            .find(|(k, _)| k == "schema")
            .and_then(|(_, text)| TableSchema::parse(text).ok())
        else {
            return Vec::new();
        };
        schema
            .columns
            .iter()
            .map(|column| {
                let source = self
                    .settings
                    .iter()
                    .find(|(k, _)| k.strip_prefix("columns.") == Some(column.name.as_str()))
                    .map(|(_, v)| v.as_str());
                let field = match source {
                    None => Some(column.name.clone()),
                    Some(s) if s.starts_with("$metadata") || s.starts_with("$const:") => None,
                    Some(s) => Some(top_level_field(s)),
                };
                (column.name.clone(), column.kusto_type, field)
            })
            .collect()
    }
}

/// The first field a column source reads: `a` of `a`, `$.a.b`, `$['a'].b`, `$.a[0]`.
fn top_level_field(source: &str) -> String {
    let rest = source.strip_prefix('$').unwrap_or(source);
    if let Some(quoted) = rest.strip_prefix("['") {
        return quoted.split("']").next().unwrap_or_default().to_string();
    }
    let rest = rest.strip_prefix('.').unwrap_or(rest);
    rest.split(['.', '['])
        .next()
        .unwrap_or_default()
        .to_string()
}

const COLUMN_FIELDS: &[&str] = &["name", "type", "source", "constant", "unit", "required"];
const UNITS: &str = "unixSeconds, unixMilliseconds, unixMicroseconds, unixNanoseconds";

pub fn read(r: &mut Reader, name: &str, spec: &Mapping) -> Option<Table> {
    let allowed = [
        "schema",
        "columns",
        "format",
        "mappingName",
        "numericDatetimes",
    ];
    r.check_keys(spec, "spec", &allowed);
    let mut settings = Vec::new();
    let schema_text = r.string(spec, "spec", "schema", false);
    let mut schema = match &schema_text {
        Some(text) => match TableSchema::parse(text) {
            Ok(schema) => {
                if let Some(named) = schema.table.as_deref().filter(|t| *t != name) {
                    r.report(
                        "spec.schema",
                        format!("creates table `{named}`, but this resource is `{name}`"),
                    );
                }
                Some(schema)
            }
            Err(e) => {
                r.report("spec.schema", format!("does not parse: {e}"));
                return None;
            }
        },
        None => None,
    };
    let mut declared = Vec::new();
    let mut required = Vec::new();
    if let Some(columns) = r.list(spec, "spec", "columns") {
        for (index, column) in columns.iter().enumerate() {
            let path = format!("spec.columns[{index}]");
            let Some(column) = r.mapping(column, &path, COLUMN_FIELDS) else {
                continue;
            };
            let Some(column_name) = r.string(column, &path, "name", true) else {
                continue;
            };
            match (&schema_text, r.string(column, &path, "type", false)) {
                (Some(_), Some(_)) => r.report(&join(&path, "type"), "the type comes from spec.schema; give it in one place"),
                (None, Some(type_name)) => match KustoType::parse(&type_name) {
                    Some(kusto_type) => declared.push((column_name.clone(), kusto_type)),
                    None => r.report(&join(&path, "type"), format!("`{type_name}` is not a Kusto type (bool, int, long, real, decimal, string, datetime, timespan, guid, dynamic)")),
                },
                (None, None) => r.report(&join(&path, "type"), "required field is missing (or give spec.schema)"),
                (Some(_), None) => {
                    if schema.as_ref().is_some_and(|s| s.column(&column_name).is_none()) {
                        r.report(&join(&path, "name"), format!("the schema has no column `{column_name}`"));
                    }
                }
            }
            let source = r.string(column, &path, "source", false);
            let constant = column
                .get("constant")
                .map(|v| v.scalar_text().unwrap_or_default());
            match (source, constant) {
                (Some(_), Some(_)) => r.report(&path, "give source or constant, not both"),
                (Some(source), None) => match ColumnSource::parse(&source) {
                    Ok(_) => settings.push((format!("columns.{column_name}"), source)),
                    Err(e) => r.report(&join(&path, "source"), e),
                },
                (None, Some(constant)) => settings.push((
                    format!("columns.{column_name}"),
                    format!("$const:{constant}"),
                )),
                (None, None) => {}
            }
            if let Some(unit) = r.string(column, &path, "unit", false) {
                match NumericDatetimes::parse(&unit).filter(|u| *u != NumericDatetimes::Reject) {
                    Some(_) => settings.push((format!("units.{column_name}"), unit)),
                    None => r.report(
                        &join(&path, "unit"),
                        format!("`{unit}` is not a unit (known: {UNITS})"),
                    ),
                }
            }
            if r.boolean(column, &path, "required") == Some(true) {
                required.push(column_name);
            }
        }
    }
    if schema.is_none() {
        if declared.is_empty() {
            if !spec.contains_key("columns") {
                r.report("spec", "give the table's schema: spec.schema (the .create table command) or spec.columns with types");
            }
            return None;
        }
        let columns: Vec<String> = declared
            .iter()
            .map(|(n, t)| format!("['{n}']: {t}"))
            .collect();
        let text = format!(".create table ['{name}'] ({})", columns.join(", "));
        schema = TableSchema::parse(&text)
            .map_err(|e| r.report("spec.columns", e))
            .ok();
        settings.insert(0, ("schema".into(), text));
    } else {
        settings.insert(
            0,
            ("schema".into(), schema_text.clone().unwrap_or_default()),
        );
    }
    schema.as_ref()?;
    if !required.is_empty() {
        settings.push(("required".into(), required.join(",")));
    }
    for key in ["format", "mappingName", "numericDatetimes"] {
        if let Some(value) = r.string(spec, "spec", key, false) {
            let valid = match key {
                "format" => ["multijson", "json", "csv"].contains(&value.as_str()),
                "numericDatetimes" => NumericDatetimes::parse(&value).is_some(),
                _ => true,
            };
            if valid {
                settings.push((key.to_string(), value));
            } else {
                r.report(
                    &join("spec", key),
                    format!("`{value}` is not supported (see the README's plugin configuration)"),
                );
            }
        }
    }
    Some(Table {
        name: name.to_string(),
        settings,
    })
}
