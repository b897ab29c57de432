//! `Dataflow` resources: a source (endpoint and MQTT topic filters) and a destination
//! (endpoint and data destination, the table for Azure Data Explorer).

use super::problem::{join, Reader};
use super::profile::DEFAULT_PROFILE;
use super::transformation::{self, TransformationConfig};
use super::yaml::Mapping;

#[derive(Debug, Clone)]
pub struct Dataflow {
    pub name: String,
    pub source_endpoint: String,
    pub data_sources: Vec<String>,
    pub destination_endpoint: String,
    pub data_destination: String,
    /// Field paths of the two operations' settings, for error messages.
    pub source_path: String,
    pub destination_path: String,
    /// `spec.mode`: a Disabled dataflow is checked but does not run.
    pub enabled: bool,
    /// `spec.profileRef`: the DataflowProfile whose instances run it.
    pub profile: String,
    pub transformation: Option<TransformationConfig>,
    /// The operations' optional `name`s, as `operations[i]: name` (shown by `validate`).
    pub operation_names: Vec<String>,
}

const OPERATION_TYPES: &str = "Source, BuiltInTransformation, Destination";

/// `Enabled` or `Disabled`; the early v1beta1 documentation writes them in lower case.
fn enabled_or_disabled(r: &mut Reader, spec: &Mapping, key: &str, default: bool) -> bool {
    let path = join("spec", key);
    match spec.get(key) {
        None => default,
        Some(value) => match value.as_str() {
            Some(v) if v.eq_ignore_ascii_case("Enabled") => true,
            Some(v) if v.eq_ignore_ascii_case("Disabled") => false,
            _ => {
                let shown = value.scalar_text().unwrap_or_else(|| "this".into());
                r.report(&path, format!("`{shown}` is neither Enabled nor Disabled"));
                default
            }
        },
    }
}

pub fn read(r: &mut Reader, name: &str, spec: &Mapping) -> Option<Dataflow> {
    r.check_keys(
        spec,
        "spec",
        &["profileRef", "mode", "operations", "requestDiskPersistence"],
    );
    // Azure IoT Operations: "Mode for Dataflow. Optional; defaults to Enabled."
    let enabled = enabled_or_disabled(r, spec, "mode", true);
    // howto-create-dataflow, "Request disk persistence": the dataflow asks the broker, with an
    // MQTT 5 user property when it subscribes, to keep its subscriber queue on disk.
    if enabled_or_disabled(r, spec, "requestDiskPersistence", false) {
        r.report(
            "spec.requestDiskPersistence",
            "this host cannot ask the broker for disk persistence (the MQTT 5 user property Azure IoT Operations' broker reads is not documented); it keeps every message unacknowledged until its row is in Kusto, so a broker that persists its subscriber queues delivers them again after a restart: configure persistence on the broker and write Disabled",
        );
    }
    let profile = match spec.get("profileRef") {
        None => {
            r.report(
                "spec.profileRef",
                "required field is missing (the profile Azure IoT Operations creates is `default`)",
            );
            DEFAULT_PROFILE.to_string()
        }
        Some(_) => r
            .string(spec, "spec", "profileRef", true)
            .unwrap_or_else(|| DEFAULT_PROFILE.to_string()),
    };
    let operations = match r.list(spec, "spec", "operations") {
        Some(list) => list,
        None => {
            if !spec.contains_key("operations") {
                r.report("spec.operations", "required field is missing");
            }
            return None;
        }
    };
    let (mut source, mut destination, mut transformation) = (None, None, None);
    let mut operation_names = Vec::new();
    let (mut has_source, mut has_destination, mut has_transformation) = (false, false, false);
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
        if let Some(name) = r.string(operation, &path, "name", false) {
            operation_names.push(format!("operations[{index}]: {name}"));
            if name.chars().count() > 64 {
                r.report(
                    &join(&path, "name"),
                    "longer than the 64 characters Azure IoT Operations allows",
                );
            }
        }
        // The documentation writes `builtInTransformation` beside `Source` in one example, and
        // early v1beta1 pages write all three in lower case: the type is matched ignoring case.
        let operation_type = r.string(operation, &path, "operationType", true);
        let kind = operation_type.as_deref().map(str::to_ascii_lowercase);
        let settings_for = |kind: &str| match kind {
            "source" => "sourceSettings",
            "destination" => "destinationSettings",
            _ => "builtInTransformationSettings",
        };
        if let Some(kind) = kind
            .as_deref()
            .filter(|k| ["source", "destination", "builtintransformation"].contains(k))
        {
            for other in ["source", "destination", "builtintransformation"] {
                let key = settings_for(other);
                if other != kind && operation.contains_key(key) {
                    r.report(
                        &join(&path, key),
                        format!(
                            "belongs to a {} operation, and this one is {}",
                            settings_for(other).trim_end_matches("Settings"),
                            operation_type.as_deref().unwrap_or("?")
                        ),
                    );
                }
            }
        }
        let repeated = |r: &mut Reader, seen: bool, what: &str| {
            if seen {
                r.report(
                    &join(&path, "operationType"),
                    format!("a second {what} operation: a dataflow has one"),
                );
            }
        };
        match kind.as_deref() {
            Some("source") => {
                repeated(r, has_source, "Source");
                has_source = true;
                source = read_source(r, operation, &path).map(|s| (s, path));
            }
            Some("destination") => {
                repeated(r, has_destination, "Destination");
                has_destination = true;
                destination = read_destination(r, operation, &path).map(|d| (d, path));
            }
            Some("builtintransformation") => {
                repeated(r, has_transformation, "BuiltInTransformation");
                has_transformation = true;
                transformation = transformation::read(r, operation, &path);
            }
            Some(_) => r.report(
                &join(&path, "operationType"),
                format!(
                    "`{}` is not an operation type (known: {OPERATION_TYPES})",
                    operation_type.as_deref().unwrap_or_default()
                ),
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
    if has_transformation && transformation.is_none() {
        return None;
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
        enabled,
        profile,
        transformation,
        operation_names,
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
    if settings.contains_key("assetRef") {
        r.report(
            &join(&path, "assetRef"),
            "this host does not read assets from Azure Device Registry: name the asset's MQTT topics in dataSources",
        );
    }
    if let Some(format) = settings.get("serializationFormat") {
        // howto-configure-dataflow-source: "The only supported serialization format is JSON."
        if !format
            .as_str()
            .is_some_and(|f| f.eq_ignore_ascii_case("Json"))
        {
            r.report(
                &join(&path, "serializationFormat"),
                "the one serialization format of a source is Json",
            );
        }
    }
    if settings.contains_key("schemaRef") {
        // The API says messages that do not match are dropped, the schema registry page that
        // data flows do not validate against source schemas: neither is done silently here.
        r.report(
            &join(&path, "schemaRef"),
            "source schemas are not read by this host: the table's columns and the map's rules say what a message must hold, and a message that does not fit is dead-lettered with the reason; leave schemaRef out",
        );
    }
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
