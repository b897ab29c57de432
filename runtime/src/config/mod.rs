//! Configuration from Azure IoT Operations resources: `DataflowEndpoint` and `Dataflow` YAML
//! as documented, plus this project's `KustoTable` for the table schema. Every problem is
//! reported at once, each with its file, resource and field path.

mod dataflow;
mod endpoint;
mod mqtt;
mod problem;
mod profile;
mod table;
#[cfg(test)]
mod tests;
mod transformation;
mod yaml;

use std::path::{Path, PathBuf};

use yaml::Value;

pub use dataflow::{check_topic_filter, Dataflow};
pub use endpoint::{
    is_loopback, Authentication, DataExplorerEndpoint, Endpoint, EndpointKind, DEFAULT_AUDIENCE,
    DEFAULT_SCOPE, PLUGIN_ANNOTATION,
};
pub use mqtt::MqttEndpoint;
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
        let mut problems = Vec::new();
        let mut texts = Vec::new();
        for file in yaml_files(paths, &mut problems) {
            let shown = file.display().to_string();
            match crate::files::read_regular_text(&file, crate::files::MAX_CONFIG_BYTES) {
                Ok(text) => texts.push((shown, text)),
                Err(e) => problems.push(file_problem(&shown, e.to_string())),
            }
        }
        Self::from_texts(&texts, problems)
    }

    /// Reads YAML texts, each named as its file; `problems` holds what was already found.
    pub fn from_texts(
        texts: &[(String, String)],
        mut problems: Vec<Problem>,
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
            let file = origins
                .iter()
                .find(|(n, _)| *n == dataflow.name)
                .map(|(_, f)| f.as_str())
                .unwrap_or("");
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
                None => report(
                    problems,
                    destination_path,
                    unknown_endpoint(&dataflow.destination_endpoint, &names),
                ),
                Some(Some("DataExplorer"))
                    if !self
                        .tables
                        .iter()
                        .any(|t| t.name == dataflow.data_destination) =>
                {
                    report(
                        problems,
                        format!("{}.dataDestination", dataflow.destination_path),
                        format!(
                            "no KustoTable `{}` gives this table's schema",
                            dataflow.data_destination
                        ),
                    )
                }
                Some(_) => {}
            }
        }
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
            lines.push(format!(
                "  source       {}: {}",
                dataflow.source_endpoint,
                dataflow.data_sources.join(", ")
            ));
            match &dataflow.transformation {
                None => lines.push("  transform    none".into()),
                Some(t) => lines.extend(
                    dataflow_transform::Transformation::describe(&t.spec)
                        .into_iter()
                        .map(|l| format!("  {l}")),
                ),
            }
            let columns = self
                .tables
                .iter()
                .find(|t| t.name == dataflow.data_destination)
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
            lines.push(format!(
                "  destination  {}: table {}{columns}",
                dataflow.destination_endpoint, dataflow.data_destination
            ));
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
                    .find(|t| t.name == dataflow.data_destination)?;
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
