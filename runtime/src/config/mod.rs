//! Configuration from Azure IoT Operations resources: `DataflowEndpoint` and `Dataflow` YAML
//! as documented, plus this project's `KustoTable` for the table schema. Every problem is
//! reported at once, each with its file, resource and field path.

mod dataflow;
mod endpoint;
mod mqtt;
mod problem;
mod profile;
pub mod schema_registry;
mod table;
#[cfg(test)]
mod tests;
mod transformation;
mod yaml;

use std::path::{Path, PathBuf};

use kusto_model::schema::KustoType;
use yaml::Value;

pub use dataflow::{check_topic_filter, Dataflow};
pub use endpoint::{
    is_loopback, Authentication, DataExplorerEndpoint, Endpoint, EndpointKind, DEFAULT_AUDIENCE,
    DEFAULT_SCOPE, PLUGIN_ANNOTATION,
};
pub use mqtt::{MqttAuthentication, MqttEndpoint, MqttTls, DEFAULT_SERVICE_ACCOUNT_AUDIENCE};
use problem::Reader;
pub use problem::{did_you_mean, Problem};
pub use profile::{Profile, DEFAULT_PROFILE};
pub use table::{Table, TABLE_API_VERSION};
pub use transformation::TransformationConfig;

const AIO_API_VERSIONS: &[&str] = &[
    "connectivity.iotoperations.azure.com/v1beta1",
    "connectivity.iotoperations.azure.com/v1",
];
const KINDS: &str = "DataflowEndpoint, Dataflow, DataflowProfile, KustoTable";
/// Azure IoT Operations' built-in endpoint for its local MQTT broker.
const DEFAULT_MQTT_ENDPOINT: &str = "default";

#[derive(Debug, Clone, Default)]
pub struct Deployment {
    pub endpoints: Vec<Endpoint>,
    /// Every DataflowEndpoint seen, valid or not, with its endpointType: references to an
    /// endpoint that has problems of its own are not reported a second time.
    declared_endpoints: Vec<DeclaredEndpoint>,
    pub dataflows: Vec<Dataflow>,
    pub profiles: Vec<Profile>,
    pub tables: Vec<Table>,
}

#[derive(Debug, Clone)]
struct DeclaredEndpoint {
    name: String,
    endpoint_type: Option<String>,
    file: String,
}

/// A dataflow ready to run: its ADX endpoint and the plugin's configuration.
#[derive(Debug, Clone)]
pub struct DestinationPlan {
    pub dataflow: Dataflow,
    /// The source's broker; `None` for the built-in `default` endpoint, whose address the
    /// command line gives.
    pub source: Option<MqttEndpoint>,
    pub endpoint: DataExplorerEndpoint,
    pub plugin_config: Vec<(String, String)>,
}

impl Deployment {
    /// Reads every YAML file given (directories: their `*.yaml` and `*.yml` files).
    pub fn load(paths: &[PathBuf]) -> Result<Self, Vec<Problem>> {
        Self::load_with(paths, None)
    }

    /// As `load`, with the schema registry directory that `schemaRef`s are read from.
    pub fn load_with(paths: &[PathBuf], registry: Option<&Path>) -> Result<Self, Vec<Problem>> {
        let mut problems = Vec::new();
        let mut texts = Vec::new();
        for file in yaml_files(paths, &mut problems) {
            let shown = file.display().to_string();
            match crate::files::read_regular_text(&file, crate::files::MAX_CONFIG_BYTES) {
                Ok(text) => texts.push((shown, text)),
                Err(e) => problems.push(file_problem(&shown, e.to_string())),
            }
        }
        Self::from_texts_with(&texts, problems, registry)
    }

    /// Reads YAML texts, each named as its file; `problems` holds what was already found.
    pub fn from_texts(
        texts: &[(String, String)],
        problems: Vec<Problem>,
    ) -> Result<Self, Vec<Problem>> {
        Self::from_texts_with(texts, problems, None)
    }

    pub fn from_texts_with(
        texts: &[(String, String)],
        mut problems: Vec<Problem>,
        registry: Option<&Path>,
    ) -> Result<Self, Vec<Problem>> {
        let mut deployment = Deployment::default();
        let mut origins: Vec<(String, String)> = Vec::new(); // dataflow name -> file
        for (file, text) in texts {
            match yaml::documents(text) {
                Ok(documents) => {
                    for value in documents.iter().filter(|v| **v != Value::Null) {
                        if let Some(name) = deployment.read_resource(file, value, &mut problems) {
                            origins.push((name, file.clone()));
                        }
                    }
                }
                Err(e) => problems.push(file_problem(file, format!("not valid YAML: {e}"))),
            }
        }
        deployment.read_schemas(&origins, registry, &mut problems);
        deployment.check_references(&origins, &mut problems);
        if problems.is_empty() {
            Ok(deployment)
        } else {
            Err(problems)
        }
    }

    /// Returns the dataflow's name when the resource was a Dataflow (for cross-checks).
    fn read_resource(
        &mut self,
        file: &str,
        value: &Value,
        problems: &mut Vec<Problem>,
    ) -> Option<String> {
        let mut r = Reader {
            file: file.to_string(),
            resource: String::new(),
            problems,
        };
        let document = r.mapping(value, "", &["apiVersion", "kind", "metadata", "spec"])?;
        let kind = r.string(document, "", "kind", true)?;
        r.resource = format!("{kind}/?");
        let metadata = r.required_mapping(
            document,
            "",
            "metadata",
            &["name", "namespace", "labels", "annotations"],
        );
        let name = metadata.and_then(|m| r.string(m, "metadata", "name", true));
        r.resource = format!("{kind}/{}", name.as_deref().unwrap_or("?"));
        let api_version = r.string(document, "", "apiVersion", true);
        let expected: &[&str] = match kind.as_str() {
            "DataflowEndpoint" | "Dataflow" | "DataflowProfile" => AIO_API_VERSIONS,
            "KustoTable" => &[TABLE_API_VERSION],
            // The broker's own resources configure the broker, not a dataflow.
            "Broker" | "BrokerListener" | "BrokerAuthentication" | "BrokerAuthorization" => {
                return None
            }
            other => {
                r.report(
                    "kind",
                    format!("`{other}` is not a resource this host reads (known: {KINDS})"),
                );
                return None;
            }
        };
        if let Some(version) = &api_version {
            if !expected.contains(&version.as_str()) {
                r.report(
                    "apiVersion",
                    format!(
                        "`{version}` is not supported for {kind} (supported: {})",
                        expected.join(", ")
                    ),
                );
            }
        }
        let annotations = metadata
            .and_then(|m| m.get("annotations"))
            .and_then(Value::as_mapping);
        // Each kind's reader checks the keys of its own spec.
        let spec = match document.get("spec") {
            Some(value) => r.any_mapping(value, "spec"),
            None => {
                r.report("spec", "required field is missing");
                None
            }
        };
        let (name, spec) = (name?, spec?);
        match kind.as_str() {
            "DataflowEndpoint" => {
                let endpoint_type = spec
                    .get("endpointType")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                self.declared_endpoints.push(DeclaredEndpoint {
                    name: name.clone(),
                    endpoint_type,
                    file: file.to_string(),
                });
                self.endpoints
                    .extend(endpoint::read(&mut r, &name, spec, annotations));
            }
            "Dataflow" => {
                let dataflow = dataflow::read(&mut r, &name, spec)?;
                self.dataflows.push(dataflow);
                return Some(name);
            }
            "DataflowProfile" => {
                if self.profiles.iter().any(|p| p.name == name) {
                    r.report("metadata.name", "another DataflowProfile has this name");
                }
                self.profiles.extend(profile::read(&mut r, &name, spec));
            }
            _ => self.tables.extend(table::read(&mut r, &name, spec)),
        }
        None
    }

    /// Reads the output schema each transformation's `schemaRef` names.
    fn read_schemas(
        &mut self,
        origins: &[(String, String)],
        registry: Option<&Path>,
        problems: &mut Vec<Problem>,
    ) {
        for dataflow in &mut self.dataflows {
            let Some(t) = &mut dataflow.transformation else {
                continue;
            };
            let Some(reference) = &t.schema_ref else {
                continue;
            };
            let file = origin_file(origins, &dataflow.name);
            let resource = format!("Dataflow/{}", dataflow.name);
            let path = format!("{}.schemaRef", t.path);
            match registry {
                None => problems.push(resource_problem(file, &resource, &path, &format!(
                    "{reference} is in the schema registry: give its directory with --schema-registry DIR (the schema is DIR/{}/{}/{}.json)",
                    reference.namespace, reference.name, reference.version
                ))),
                Some(dir) => match schema_registry::read(dir, reference) {
                    Ok(schema) => t.schema = Some(schema),
                    Err(e) => problems.push(resource_problem(file, &resource, &path, &e)),
                },
            }
        }
    }

    fn check_references(&self, origins: &[(String, String)], problems: &mut Vec<Problem>) {
        let names: Vec<&str> = self
            .declared_endpoints
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        for (i, endpoint) in self.declared_endpoints.iter().enumerate() {
            if names[..i].contains(&endpoint.name.as_str()) {
                let resource = format!("DataflowEndpoint/{}", endpoint.name);
                problems.push(resource_problem(
                    &endpoint.file,
                    &resource,
                    "metadata.name",
                    "another DataflowEndpoint has this name",
                ));
            }
        }
        let endpoint_type = |name: &str| {
            self.declared_endpoints
                .iter()
                .find(|e| e.name == name)
                .map(|e| e.endpoint_type.as_deref())
        };
        for dataflow in &self.dataflows {
            let file = origin_file(origins, &dataflow.name);
            let resource = format!("Dataflow/{}", dataflow.name);
            let report = |problems: &mut Vec<Problem>, path: String, message: String| {
                problems.push(resource_problem(file, &resource, &path, &message));
            };
            if dataflow.profile != DEFAULT_PROFILE && self.profile(&dataflow.profile).is_none() {
                let known: Vec<&str> = std::iter::once(DEFAULT_PROFILE)
                    .chain(self.profiles.iter().map(|p| p.name.as_str()))
                    .collect();
                let hint = match did_you_mean(&dataflow.profile, &known) {
                    Some(guess) => format!("did you mean `{guess}`?"),
                    None => format!("profiles: {}", known.join(", ")),
                };
                report(
                    problems,
                    "spec.profileRef".into(),
                    format!("names no DataflowProfile `{}` ({hint})", dataflow.profile),
                );
            }
            let source_path = format!("{}.endpointRef", dataflow.source_path);
            match endpoint_type(&dataflow.source_endpoint) {
                Some(Some("DataExplorer")) => report(
                    problems,
                    source_path,
                    format!("`{}` is an Azure Data Explorer endpoint: Azure Data Explorer is a destination only", dataflow.source_endpoint),
                ),
                None if dataflow.source_endpoint != DEFAULT_MQTT_ENDPOINT => {
                    report(problems, source_path, unknown_endpoint(&dataflow.source_endpoint, &names))
                }
                _ => {}
            }
            let destination_path = format!("{}.endpointRef", dataflow.destination_path);
            match endpoint_type(&dataflow.destination_endpoint) {
                None if dataflow.destination_endpoint == DEFAULT_MQTT_ENDPOINT => report(
                    problems,
                    destination_path,
                    "`default` is Azure IoT Operations' local MQTT broker: this host runs dataflows into Azure Data Explorer (a DataflowEndpoint with endpointType DataExplorer)".into(),
                ),
                None => report(
                    problems,
                    destination_path,
                    unknown_endpoint(&dataflow.destination_endpoint, &names),
                ),
                Some(Some("DataExplorer")) => {
                    for (path, message) in self.check_destination_columns(dataflow) {
                        report(problems, path, message);
                    }
                }
                Some(_) => {}
            }
        }
    }

    /// The destination table's columns against the output schema and the map: a table must be
    /// given (a KustoTable, or the transformation's schemaRef); where both are, they agree;
    /// every top-level field the map writes is read by a column, and, unless a wildcard rule
    /// writes the whole record, every payload column is written by a rule (or it would be
    /// null in every row). Returns (field path, message) pairs.
    fn check_destination_columns(&self, dataflow: &Dataflow) -> Vec<(String, String)> {
        let mut found = Vec::new();
        let table_name = &dataflow.data_destination;
        let destination_path = format!("{}.dataDestination", dataflow.destination_path);
        let table = self.tables.iter().find(|t| t.name == *table_name);
        let transformation = dataflow.transformation.as_ref();
        let schema = transformation.and_then(|t| t.schema.as_ref());
        if transformation.is_some_and(|t| t.schema_ref.is_some()) && schema.is_none() {
            return found; // The schemaRef's own problem was reported.
        }
        let columns: Vec<(String, KustoType, Option<String>)> = match (table, schema) {
            (None, None) => {
                found.push((destination_path, format!("no KustoTable `{table_name}` gives this table's schema, and no transformation schemaRef does")));
                return found;
            }
            (Some(table), None) => table.columns(),
            (None, Some(schema)) => schema
                .columns
                .iter()
                .map(|c| (c.name.clone(), c.kusto_type, Some(c.name.clone())))
                .collect(),
            (Some(table), Some(schema)) => {
                let columns = table.columns();
                let path = format!("{}.schemaRef", transformation.expect("has a schema").path);
                for c in &schema.columns {
                    match columns.iter().find(|(n, ..)| *n == c.name) {
                        None => found.push((path.clone(), format!("{} has a field `{}` that table {table_name} (KustoTable) has no column for", schema.reference, c.name))),
                        Some((_, kind, _)) if *kind != c.kusto_type => found.push((path.clone(), format!(
                            "{} makes `{}` a {} column, and KustoTable {table_name} a {} one", schema.reference, c.name, c.kusto_type.name(), kind.name()
                        ))),
                        Some(_) => {}
                    }
                }
                for (name, ..) in &columns {
                    if !schema.columns.iter().any(|c| c.name == *name) {
                        found.push((path.clone(), format!("KustoTable {table_name} has a column `{name}` that {} has no field for", schema.reference)));
                    }
                }
                columns
            }
        };
        let Some(t) = transformation.filter(|t| !t.spec.map.is_empty()) else {
            return found;
        };
        let outputs = dataflow_transform::Transformation::top_level_outputs(&t.spec);
        let read: Vec<&str> = columns
            .iter()
            .filter_map(|(_, _, f)| f.as_deref())
            .collect();
        let mut written_everything = false;
        for (rule, output) in &outputs {
            match output {
                None => written_everything = true,
                Some(field) if !read.contains(&field.as_str()) => found.push((
                    format!("{}.map[{rule}].output", t.path),
                    format!("writes `{field}`, which no column of table {table_name} reads (columns: {}): it would be computed and thrown away", columns.iter().map(|(n, ..)| n.as_str()).collect::<Vec<_>>().join(", ")),
                )),
                Some(_) => {}
            }
        }
        if !written_everything {
            for (column, _, field) in &columns {
                let Some(field) = field else { continue };
                if !outputs
                    .iter()
                    .any(|(_, o)| o.as_deref() == Some(field.as_str()))
                {
                    found.push((
                        format!("{}.map", t.path),
                        format!("no rule writes `{field}`, which column `{column}` of table {table_name} reads: it would be null in every row (map it, or pass everything through with '*' -> '*')"),
                    ));
                }
            }
        }
        found
    }

    /// What runs, dataflow by dataflow: mode and instances, source topics, the
    /// transformation's rules, the destination table and its columns (for `validate`).
    pub fn describe(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for dataflow in &self.dataflows {
            let instances = self
                .profile(&dataflow.profile)
                .map_or(1, |p| p.instance_count);
            lines.push(format!(
                "dataflow {} ({}, profile {}: {instances} instance(s){})",
                dataflow.name,
                if dataflow.enabled {
                    "Enabled"
                } else {
                    "Disabled: checked, not run"
                },
                dataflow.profile,
                if instances > 1 {
                    ", sharing one subscription"
                } else {
                    ""
                }
            ));
            if !dataflow.operation_names.is_empty() {
                lines.push(format!(
                    "  names        {}",
                    dataflow.operation_names.join(", ")
                ));
            }
            lines.push(format!(
                "  source       {}: {}",
                dataflow.source_endpoint,
                dataflow.data_sources.join(", ")
            ));
            if let Some(broker) =
                self.endpoint(&dataflow.source_endpoint)
                    .and_then(|e| match &e.kind {
                        EndpointKind::Mqtt(mqtt) => Some(mqtt),
                        _ => None,
                    })
            {
                lines.push(format!("  broker       {}", broker.describe()));
            }
            match &dataflow.transformation {
                None => lines.push("  transform    none".into()),
                Some(t) => lines.extend(
                    dataflow_transform::Transformation::describe(&t.spec)
                        .into_iter()
                        .map(|l| format!("  {l}")),
                ),
            }
            let schema = dataflow
                .transformation
                .as_ref()
                .and_then(|t| t.schema.as_ref());
            let table = self
                .tables
                .iter()
                .find(|t| t.name == dataflow.data_destination)
                .cloned()
                .or_else(|| schema.map(|s| s.table(&dataflow.data_destination)));
            if let Some(schema) = schema {
                lines.push(format!(
                    "  schema       {} ({})",
                    schema.reference,
                    schema.file.display()
                ));
            }
            let columns = table
                .as_ref()
                .and_then(|t| t.settings.iter().find(|(k, _)| k == "schema"))
                .and_then(|(_, schema)| kusto_model::schema::TableSchema::parse(schema).ok())
                .map(|schema| {
                    let columns: Vec<String> = schema
                        .columns
                        .iter()
                        .map(|c| format!("{}: {}", c.name, c.kusto_type.name()))
                        .collect();
                    format!(" ({})", columns.join(", "))
                })
                .unwrap_or_default();
            let is_adx = matches!(
                self.endpoint(&dataflow.destination_endpoint)
                    .map(|e| &e.kind),
                Some(EndpointKind::DataExplorer(_))
            );
            lines.push(match is_adx {
                true => format!(
                    "  destination  {}: table {}{columns}",
                    dataflow.destination_endpoint, dataflow.data_destination
                ),
                false => format!(
                    "  destination  {}: not Azure Data Explorer, so this host does not run this dataflow",
                    dataflow.destination_endpoint
                ),
            });
        }
        lines
    }

    /// The profile of that name; `default` exists whether it is declared or not.
    pub fn profile(&self, name: &str) -> Option<Profile> {
        match self.profiles.iter().find(|p| p.name == name) {
            Some(profile) => Some(profile.clone()),
            None if name == DEFAULT_PROFILE => Some(Profile::default_profile()),
            None => None,
        }
    }

    pub fn endpoint(&self, name: &str) -> Option<&Endpoint> {
        self.endpoints.iter().find(|e| e.name == name)
    }

    /// The dataflows that write to Azure Data Explorer, with their plugin configuration.
    pub fn destination_plans(&self) -> Vec<DestinationPlan> {
        self.dataflows
            .iter()
            .filter_map(|dataflow| {
                let Some(Endpoint {
                    kind: EndpointKind::DataExplorer(endpoint),
                    ..
                }) = self.endpoint(&dataflow.destination_endpoint)
                else {
                    return None;
                };
                let table = self
                    .tables
                    .iter()
                    .find(|t| t.name == dataflow.data_destination)
                    .cloned()
                    .or_else(|| {
                        let schema = dataflow.transformation.as_ref()?.schema.as_ref()?;
                        Some(schema.table(&dataflow.data_destination))
                    })?;
                let mut plugin_config = vec![
                    ("host".to_string(), endpoint.host.clone()),
                    ("database".to_string(), endpoint.database.clone()),
                    ("table".to_string(), table.name.clone()),
                    (
                        "batching.latencySeconds".to_string(),
                        endpoint.latency_seconds.to_string(),
                    ),
                    (
                        "batching.maxMessages".to_string(),
                        endpoint.max_messages.to_string(),
                    ),
                ];
                plugin_config.extend(table.settings.iter().cloned());
                let source = match self.endpoint(&dataflow.source_endpoint) {
                    Some(Endpoint {
                        kind: EndpointKind::Mqtt(mqtt),
                        ..
                    }) => Some(mqtt.clone()),
                    _ => None,
                };
                Some(DestinationPlan {
                    dataflow: dataflow.clone(),
                    source,
                    endpoint: endpoint.clone(),
                    plugin_config,
                })
            })
            .collect()
    }
}

fn origin_file<'a>(origins: &'a [(String, String)], dataflow: &str) -> &'a str {
    origins
        .iter()
        .find(|(n, _)| n == dataflow)
        .map(|(_, f)| f.as_str())
        .unwrap_or("")
}

fn unknown_endpoint(name: &str, known: &[&str]) -> String {
    let hint = match did_you_mean(name, known) {
        Some(guess) => format!(" (did you mean `{guess}`?)"),
        None if known.is_empty() => String::new(),
        None => format!(" (endpoints: {})", known.join(", ")),
    };
    format!("names no DataflowEndpoint `{name}`{hint}")
}

fn file_problem(file: &str, message: String) -> Problem {
    Problem {
        file: file.to_string(),
        resource: String::new(),
        path: String::new(),
        message,
    }
}

fn resource_problem(file: &str, resource: &str, path: &str, message: &str) -> Problem {
    Problem {
        file: file.to_string(),
        resource: resource.to_string(),
        path: path.to_string(),
        message: message.to_string(),
    }
}

fn yaml_files(paths: &[PathBuf], problems: &mut Vec<Problem>) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .map(|entries| {
                    entries
                        .filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|p| is_yaml(p))
                        .collect()
                })
                .unwrap_or_default();
            found.sort();
            if found.is_empty() {
                problems.push(file_problem(
                    &path.display().to_string(),
                    "no .yaml or .yml files in this directory".into(),
                ));
            }
            files.extend(found);
        } else if path.exists() {
            files.push(path.clone());
        } else {
            problems.push(file_problem(
                &path.display().to_string(),
                "no such file or directory".into(),
            ));
        }
    }
    files
}

fn is_yaml(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    )
}
