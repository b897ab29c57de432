//! `Dataflow` resources: a source (endpoint and MQTT topic filters) and a destination
//! (endpoint and data destination, the table for Azure Data Explorer).

use super::yaml::Mapping;

use super::problem::{join, Reader};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataflow {
    pub name: String,
    pub source_endpoint: String,
    pub data_sources: Vec<String>,
    pub destination_endpoint: String,
    pub data_destination: String,
    /// Field paths of the two operations' settings, for error messages.
    pub source_path: String,
    pub destination_path: String,
}

const OPERATION_TYPES: &str = "Source, BuiltInTransformation, Destination";

pub fn read(r: &mut Reader, name: &str, spec: &Mapping) -> Option<Dataflow> {
    r.check_keys(
        spec,
        "spec",
        &["profileRef", "mode", "operations", "requestDiskPersistence"],
    );
    let operations = match r.list(spec, "spec", "operations") {
        Some(list) => list,
        None => {
            if !spec.contains_key("operations") {
                r.report("spec.operations", "required field is missing");
            }
            return None;
        }
    };
    let (mut source, mut destination) = (None, None);
    let (mut has_source, mut has_destination) = (false, false);
    for (index, operation) in operations.iter().enumerate() {
        let path = format!("spec.operations[{index}]");
        let allowed = [
            "operationType",
            "name",
            "sourceSettings",
            "builtInTransformationSettings",
            "destinationSettings",
        ];
        let Some(operation) = r.mapping(operation, &path, &allowed) else {
            continue;
        };
        match r.string(operation, &path, "operationType", true).as_deref() {
            Some("Source") => {
                has_source = true;
                source = read_source(r, operation, &path).map(|s| (s, path));
            }
            Some("Destination") => {
                has_destination = true;
                destination = read_destination(r, operation, &path).map(|d| (d, path));
            }
            Some("BuiltInTransformation") => {}
            Some(other) => r.report(
                &join(&path, "operationType"),
                format!("`{other}` is not an operation type (known: {OPERATION_TYPES})"),
            ),
            None => {}
        }
    }
    // An operation that is there but has problems was reported already.
    if !has_source {
        r.report("spec.operations", "no Source operation");
    }
    if !has_destination {
        r.report("spec.operations", "no Destination operation");
    }
    let ((source_endpoint, data_sources), source_path) = source?;
    let ((destination_endpoint, data_destination), destination_path) = destination?;
    Some(Dataflow {
        name: name.to_string(),
        source_endpoint,
        data_sources,
        destination_endpoint,
        data_destination,
        source_path: join(&source_path, "sourceSettings"),
        destination_path: join(&destination_path, "destinationSettings"),
    })
}

fn read_source(r: &mut Reader, operation: &Mapping, path: &str) -> Option<(String, Vec<String>)> {
    let allowed = [
        "endpointRef",
        "dataSources",
        "assetRef",
        "serializationFormat",
        "schemaRef",
    ];
    let settings = r.required_mapping(operation, path, "sourceSettings", &allowed)?;
    let path = join(path, "sourceSettings");
    let endpoint = r.string(settings, &path, "endpointRef", true);
    let mut filters = Vec::new();
    match r.list(settings, &path, "dataSources") {
        Some(items) => {
            for (i, item) in items.iter().enumerate() {
                let item_path = format!("{path}.dataSources[{i}]");
                match item.as_str() {
                    Some(filter) => match check_topic_filter(filter) {
                        Ok(()) => filters.push(filter.to_string()),
                        Err(e) => r.report(&item_path, e),
                    },
                    None => r.report(&item_path, "expected a topic filter string"),
                }
            }
        }
        None if !settings.contains_key("dataSources") => {
            r.report(&join(&path, "dataSources"), "required field is missing")
        }
        None => {}
    }
    Some((endpoint?, filters))
}

fn read_destination(r: &mut Reader, operation: &Mapping, path: &str) -> Option<(String, String)> {
    let settings = r.required_mapping(
        operation,
        path,
        "destinationSettings",
        &["endpointRef", "dataDestination"],
    )?;
    let path = join(path, "destinationSettings");
    let endpoint = r.string(settings, &path, "endpointRef", true);
    let destination = r.string(settings, &path, "dataDestination", true);
    Some((endpoint?, destination?))
}

/// MQTT topic filters with `+` and `#`, also as `$shared/<group>/<filter>`.
pub fn check_topic_filter(filter: &str) -> Result<(), String> {
    let inner = match filter
        .strip_prefix("$shared/")
        .or_else(|| filter.strip_prefix("$share/"))
    {
        Some(rest) => match rest.split_once('/') {
            Some((group, inner)) if !group.is_empty() && !group.contains(['+', '#']) => inner,
            _ => {
                return Err(format!(
                    "`{filter}`: a shared subscription is $shared/<group>/<filter>"
                ))
            }
        },
        None => filter,
    };
    if inner.is_empty() {
        return Err("a topic filter must not be empty".into());
    }
    let levels: Vec<&str> = inner.split('/').collect();
    for (i, level) in levels.iter().enumerate() {
        if level.contains('#') && (*level != "#" || i != levels.len() - 1) {
            return Err(format!(
                "`{filter}`: `#` must be a whole level and the last one"
            ));
        }
        if level.contains('+') && *level != "+" {
            return Err(format!("`{filter}`: `+` must be a whole level"));
        }
    }
    Ok(())
}
