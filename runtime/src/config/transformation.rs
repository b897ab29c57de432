//! A Dataflow's `BuiltInTransformation` operation: `datasets`, `filter` and `map` read into
//! the mapping language's rules and compiled, so that `validate` refuses what could not run
//! and names the rule, the field and the column. `serializationFormat` and `schemaRef` are
//! checked too: nothing is accepted that the host would not do.

use dataflow_transform::{
    DatasetSpec, FilterSpec, MapSpec, MappingType, Stage, Transformation, TransformationSpec,
};

use super::problem::{join, Reader};
use super::schema_registry::{OutputSchema, SchemaRef};
use super::yaml::{Mapping, Value};

/// A transformation as configured, and where it is (for messages about it).
#[derive(Debug, Clone)]
pub struct TransformationConfig {
    pub spec: TransformationSpec,
    /// `spec.operations[1].builtInTransformationSettings`
    pub path: String,
    /// `schemaRef`: the output schema in the schema registry, and, once the registry has
    /// been read, its columns.
    pub schema_ref: Option<SchemaRef>,
    pub schema: Option<OutputSchema>,
}

impl TransformationConfig {
    /// The compiled plan (the configuration was checked when read, so this does not fail).
    pub fn compile(&self) -> Transformation {
        Transformation::compile(&self.spec).expect("checked when the configuration was read")
    }

    /// The field path of a rule's field, as the configuration writes it.
    pub fn rule_path(&self, stage: Stage, rule: usize) -> String {
        format!("{}.{}[{rule}]", self.path, stage.field())
    }
}

const SETTINGS: &[&str] = &[
    "serializationFormat",
    "schemaRef",
    "datasets",
    "filter",
    "map",
];

pub fn read(r: &mut Reader, operation: &Mapping, path: &str) -> Option<TransformationConfig> {
    let settings =
        r.required_mapping(operation, path, "builtInTransformationSettings", SETTINGS)?;
    let path = join(path, "builtInTransformationSettings");
    let before = r.problems.len();
    if let Some(format) = settings.get("serializationFormat") {
        match format.as_str() {
            // howto-create-dataflow: "Otherwise, the system serializes the data in JSON with the
            // types inferred" — what this host hands its destination.
            Some(f) if f.eq_ignore_ascii_case("Json") => {}
            Some(f @ ("Delta" | "Parquet" | "delta" | "parquet")) => r.report(
                &join(&path, "serializationFormat"),
                format!("`{f}` writes files for storage endpoints; this host ingests JSON rows into Azure Data Explorer by streaming ingestion, with the table's columns from its KustoTable resource: leave serializationFormat out, or write Json"),
            ),
            _ => r.report(&join(&path, "serializationFormat"), "expected Json (Delta and Parquet are for storage files)"),
        }
    }
    let schema_ref = r
        .string(settings, &path, "schemaRef", false)
        .and_then(|text| match SchemaRef::parse(&text) {
            Ok(reference) => Some(reference),
            Err(e) => {
                r.report(&join(&path, "schemaRef"), e);
                None
            }
        });
    let mut spec = TransformationSpec::default();
    if let Some(items) = r.list(settings, &path, "datasets") {
        // The Azure IoT Operations API allows one dataset (DataflowBuiltInTransformationSettings.datasets, maxLength 1).
        if items.len() > 1 {
            r.report(
                &join(&path, "datasets"),
                format!(
                    "{} datasets: Azure IoT Operations takes at most one per transformation",
                    items.len()
                ),
            );
        }
        for (i, item) in items.iter().enumerate() {
            let item_path = format!("{path}.datasets[{i}]");
            let Some(m) = r.mapping(
                item,
                &item_path,
                &["key", "inputs", "expression", "description", "schemaRef"],
            ) else {
                continue;
            };
            if m.contains_key("schemaRef") {
                r.report(&join(&item_path, "schemaRef"), "dataset schemas from the schema registry are not read by this host yet; leave schemaRef out");
            }
            spec.datasets.push(DatasetSpec {
                key: required_text(r, m, &item_path, "key").unwrap_or_default(),
                inputs: inputs(r, m, &item_path, true),
                expression: required_text(r, m, &item_path, "expression").unwrap_or_default(),
                description: optional_text(r, m, &item_path, "description"),
            });
        }
    }
    if let Some(items) = r.list(settings, &path, "filter") {
        for (i, item) in items.iter().enumerate() {
            let item_path = format!("{path}.filter[{i}]");
            let Some(m) = r.mapping(
                item,
                &item_path,
                &["inputs", "expression", "description", "type"],
            ) else {
                continue;
            };
            if let Some(kind) = optional_text(r, m, &item_path, "type") {
                if kind != "Filter" {
                    r.report(
                        &join(&item_path, "type"),
                        format!("`{kind}`: the type of a filter rule is Filter"),
                    );
                }
            }
            spec.filter.push(FilterSpec {
                inputs: inputs(r, m, &item_path, true),
                expression: required_text(r, m, &item_path, "expression").unwrap_or_default(),
                description: optional_text(r, m, &item_path, "description"),
            });
        }
    }
    if let Some(items) = r.list(settings, &path, "map") {
        for (i, item) in items.iter().enumerate() {
            let item_path = format!("{path}.map[{i}]");
            let Some(m) = r.mapping(
                item,
                &item_path,
                &["inputs", "output", "expression", "description", "type"],
            ) else {
                continue;
            };
            let mapping_type = optional_text(r, m, &item_path, "type").and_then(|t| {
                let found = MappingType::named(&t);
                if found.is_none() {
                    r.report(
                        &join(&item_path, "type"),
                        format!(
                            "`{t}` is not a map rule type (known: {})",
                            MappingType::NAMES.join(", ")
                        ),
                    );
                }
                found
            });
            let output = match m.get("output") {
                None => {
                    r.report(
                        &join(&item_path, "output"),
                        "required field is missing (an empty output removes the inputs)",
                    );
                    None
                }
                // `output:` with nothing, as concept-dataflow-mapping writes a removal.
                Some(Value::Null) => None,
                Some(_) => optional_text(r, m, &item_path, "output"),
            };
            spec.map.push(MapSpec {
                inputs: inputs(r, m, &item_path, false),
                output,
                expression: optional_text(r, m, &item_path, "expression"),
                mapping_type,
                description: optional_text(r, m, &item_path, "description"),
            });
        }
    }
    if r.problems.len() > before {
        return None;
    }
    if let Err(errors) = Transformation::compile(&spec) {
        for e in errors {
            r.report(
                &format!("{path}.{}[{}].{}", e.stage.field(), e.rule, e.field),
                e.message,
            );
        }
        return None;
    }
    Some(TransformationConfig {
        spec,
        path,
        schema_ref,
        schema: None,
    })
}

/// A string as written (not trimmed, no placeholder check: `<` and `>` are operators here).
fn optional_text(r: &mut Reader, m: &Mapping, path: &str, key: &str) -> Option<String> {
    match m.get(key)? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => match other.scalar_text() {
            // `expression: true` or `expression: 5`: YAML read a scalar; its text is what was meant.
            Some(text) => Some(text),
            _ => {
                r.report(&join(path, key), "expected a string");
                None
            }
        },
    }
}

fn required_text(r: &mut Reader, m: &Mapping, path: &str, key: &str) -> Option<String> {
    match optional_text(r, m, path, key) {
        Some(text) if !text.trim().is_empty() => Some(text),
        Some(_) => {
            r.report(&join(path, key), "must not be empty");
            None
        }
        None => {
            if !m.contains_key(key) || m.get(key) == Some(&Value::Null) {
                r.report(&join(path, key), "required field is missing");
            }
            None
        }
    }
}

fn inputs(r: &mut Reader, m: &Mapping, path: &str, required: bool) -> Vec<String> {
    let Some(items) = r.list(m, path, "inputs") else {
        if required && !m.contains_key("inputs") {
            r.report(&join(path, "inputs"), "required field is missing");
        }
        return Vec::new();
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match item {
            Value::String(s) => out.push(s.clone()),
            other => match other.scalar_text() {
                Some(text) if !matches!(other, Value::Bool(_) | Value::Null) => out.push(text),
                _ => r.report(
                    &format!("{path}.inputs[{i}]"),
                    "expected a field path string",
                ),
            },
        }
    }
    out
}
