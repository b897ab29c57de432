//! `DataflowEndpoint` resources, as the Azure IoT Operations documentation writes them.

use super::yaml::Mapping;

use super::mqtt::{self, MqttEndpoint};
use super::problem::{join, Reader};

pub const DEFAULT_AUDIENCE: &str = "https://api.kusto.windows.net";
pub const DEFAULT_SCOPE: &str = "https://api.kusto.windows.net/.default";
/// Annotation naming the plugin an endpoint runs (a `.wasm` path); the bundled one by default.
pub const PLUGIN_ANNOTATION: &str = "dataflow-host/plugin";

const AUTH_METHODS: &str =
    "SystemAssignedManagedIdentity, UserAssignedManagedIdentity (and DevelopmentToken for a loopback endpoint)";

/// Domains of Kusto clusters across the Azure clouds and Fabric.
const KUSTO_DOMAINS: &[&str] = &[
    ".kusto.windows.net",
    ".kustomfa.windows.net",
    ".kusto.usgovcloudapi.net",
    ".kusto.chinacloudapi.cn",
    ".kusto.azuresynapse.net",
    ".kusto.fabric.microsoft.com",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authentication {
    SystemAssignedManagedIdentity {
        audience: String,
    },
    UserAssignedManagedIdentity {
        client_id: String,
        tenant_id: String,
        scope: String,
    },
    /// A fixed token for the local endpoint: given inline or read from a file.
    DevelopmentToken {
        token: Option<String>,
        token_file: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataExplorerEndpoint {
    /// `https://cluster.region.kusto.windows.net` or `http://127.0.0.1:port`.
    pub host: String,
    pub database: String,
    pub authentication: Authentication,
    pub latency_seconds: u64,
    pub max_messages: u64,
    /// A `.wasm` file; `None` for the plugin bundled with the host.
    pub plugin: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointKind {
    DataExplorer(DataExplorerEndpoint),
    Mqtt(MqttEndpoint),
    /// Another endpoint type of Azure IoT Operations this host does not run.
    Other(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub name: String,
    pub kind: EndpointKind,
}

const SETTINGS_FOR: &[(&str, &str)] = &[
    ("DataExplorer", "dataExplorerSettings"),
    ("Mqtt", "mqttSettings"),
    ("Kafka", "kafkaSettings"),
    ("LocalStorage", "localStorageSettings"),
    ("FabricOneLake", "fabricOneLakeSettings"),
    ("DataLakeStorage", "dataLakeStorageSettings"),
    ("OpenTelemetry", "openTelemetrySettings"),
];

pub fn read(
    r: &mut Reader,
    name: &str,
    spec: &Mapping,
    annotations: Option<&Mapping>,
) -> Option<Endpoint> {
    let endpoint_type = r.string(spec, "spec", "endpointType", true)?;
    let types: Vec<&str> = SETTINGS_FOR.iter().map(|(t, _)| *t).collect();
    let Some((_, settings_key)) = SETTINGS_FOR.iter().find(|(t, _)| *t == endpoint_type) else {
        r.report(
            "spec.endpointType",
            format!(
                "`{endpoint_type}` is not an endpoint type (known: {})",
                types.join(", ")
            ),
        );
        return None;
    };
    let settings_keys: Vec<&str> = SETTINGS_FOR.iter().map(|(_, s)| *s).collect();
    let mut allowed = vec!["endpointType", "hostType"];
    allowed.extend(&settings_keys);
    r.check_keys(spec, "spec", &allowed);
    for other in settings_keys.iter().filter(|k| *k != settings_key) {
        if spec.contains_key(other) {
            r.report(
                &join("spec", other),
                format!("does not belong to a {endpoint_type} endpoint (use {settings_key})"),
            );
        }
    }
    let kind = match endpoint_type.as_str() {
        "DataExplorer" => {
            let settings = r.required_mapping(
                spec,
                "spec",
                settings_key,
                &["host", "database", "authentication", "batching"],
            )?;
            let plugin = annotations
                .and_then(|a| a.get(PLUGIN_ANNOTATION))
                .and_then(|v| v.as_str())
                .map(str::to_string);
            EndpointKind::DataExplorer(read_data_explorer(r, settings, plugin)?)
        }
        "Mqtt" => {
            let settings = r.required_mapping(spec, "spec", settings_key, mqtt::SETTINGS)?;
            EndpointKind::Mqtt(mqtt::read(r, settings, "spec.mqttSettings")?)
        }
        other => EndpointKind::Other(other.to_string()),
    };
    Some(Endpoint {
        name: name.to_string(),
        kind,
    })
}

fn read_data_explorer(
    r: &mut Reader,
    settings: &Mapping,
    plugin: Option<String>,
) -> Option<DataExplorerEndpoint> {
    let path = "spec.dataExplorerSettings";
    let host = r
        .string(settings, path, "host", true)
        .and_then(|h| match normalize_host(&h) {
            Ok(host) => Some(host),
            Err(e) => {
                r.report(&join(path, "host"), e);
                None
            }
        });
    let database = r.string(settings, path, "database", true);
    let authentication = read_authentication(r, settings, path, host.as_deref());
    let (mut latency_seconds, mut max_messages) = (60, 100_000);
    if let Some(batching) = r.optional_mapping(
        settings,
        path,
        "batching",
        &["latencySeconds", "maxMessages"],
    ) {
        let batching_path = join(path, "batching");
        latency_seconds = r
            .integer(batching, &batching_path, "latencySeconds", 0..=65_535)
            .unwrap_or(60);
        max_messages = r
            .integer(batching, &batching_path, "maxMessages", 0..=4_294_967_295)
            .unwrap_or(100_000);
    }
    Some(DataExplorerEndpoint {
        host: host?,
        database: database?,
        authentication: authentication?,
        latency_seconds,
        max_messages,
        plugin,
    })
}

fn read_authentication(
    r: &mut Reader,
    settings: &Mapping,
    path: &str,
    host: Option<&str>,
) -> Option<Authentication> {
    let allowed = [
        "method",
        "systemAssignedManagedIdentitySettings",
        "userAssignedManagedIdentitySettings",
        "developmentTokenSettings",
    ];
    let auth = r.required_mapping(settings, path, "authentication", &allowed)?;
    let path = join(path, "authentication");
    let method = r.string(auth, &path, "method", true)?;
    let methods = [
        (
            "SystemAssignedManagedIdentity",
            "systemAssignedManagedIdentitySettings",
        ),
        (
            "UserAssignedManagedIdentity",
            "userAssignedManagedIdentitySettings",
        ),
        ("DevelopmentToken", "developmentTokenSettings"),
    ];
    let known = methods.iter().any(|(m, _)| *m == method);
    if known && settings_of_other_methods(r, auth, &path, &method, &methods) {
        return None;
    }
    match method.as_str() {
        "SystemAssignedManagedIdentity" | "UserAssignedManagedIdentity" => {
            read_managed_identity(r, auth, &path, &method, DEFAULT_AUDIENCE, DEFAULT_SCOPE)
        }
        "DevelopmentToken" => {
            if host.is_some_and(|h| !is_loopback(h)) {
                r.report(&join(&path, "method"), "DevelopmentToken is only for a loopback endpoint (http://127.0.0.1:…); a cluster needs a managed identity");
                return None;
            }
            let key = "developmentTokenSettings";
            let settings = r.required_mapping(auth, &path, key, &["token", "tokenFile"])?;
            let settings_path = join(&path, key);
            let token = r.string(settings, &settings_path, "token", false);
            let token_file = r.string(settings, &settings_path, "tokenFile", false);
            if token.is_some() == token_file.is_some() {
                r.report(&settings_path, "give exactly one of token and tokenFile");
                return None;
            }
            Some(Authentication::DevelopmentToken { token, token_file })
        }
        other => {
            r.report(&join(&path, "method"), format!("`{other}` is not an authentication method for Azure Data Explorer (allowed: {AUTH_METHODS})"));
            None
        }
    }
}

/// Reports each settings key under `auth` that belongs to another method than `method`
/// (`methods`: each method and its settings key); true if there was one. Such settings would
/// otherwise be read and ignored.
pub(super) fn settings_of_other_methods(
    r: &mut Reader,
    auth: &Mapping,
    path: &str,
    method: &str,
    methods: &[(&str, &str)],
) -> bool {
    let mut misplaced = false;
    for (other, key) in methods {
        if *other != method && auth.contains_key(key) {
            r.report(
                &join(path, key),
                format!("settings of {other}, and the method is {method}"),
            );
            misplaced = true;
        }
    }
    misplaced
}

/// The settings of `SystemAssignedManagedIdentity` or `UserAssignedManagedIdentity` (`method`)
/// under `auth`, with the audience and scope of the service they are for when none is given.
pub(super) fn read_managed_identity(
    r: &mut Reader,
    auth: &Mapping,
    path: &str,
    method: &str,
    default_audience: &str,
    default_scope: &str,
) -> Option<Authentication> {
    if method == "SystemAssignedManagedIdentity" {
        let key = "systemAssignedManagedIdentitySettings";
        let settings = r.optional_mapping(auth, path, key, &["audience"]);
        let audience = settings
            .and_then(|s| r.string(s, &join(path, key), "audience", false))
            .unwrap_or_else(|| default_audience.to_string());
        return Some(Authentication::SystemAssignedManagedIdentity { audience });
    }
    let key = "userAssignedManagedIdentitySettings";
    let settings = r.required_mapping(auth, path, key, &["clientId", "tenantId", "scope"])?;
    let settings_path = join(path, key);
    let client_id = r.string(settings, &settings_path, "clientId", true);
    let tenant_id = r.string(settings, &settings_path, "tenantId", true);
    let scope = r
        .string(settings, &settings_path, "scope", false)
        .unwrap_or_else(|| default_scope.to_string());
    Some(Authentication::UserAssignedManagedIdentity {
        client_id: client_id?,
        tenant_id: tenant_id?,
        scope,
    })
}

/// `cluster.region.kusto.windows.net` with or without `https://`, or a loopback `http://` URL.
fn normalize_host(host: &str) -> Result<String, String> {
    let (scheme, rest) = match host.split_once("://") {
        Some((s @ ("https" | "http"), rest)) => (s, rest),
        Some((s, _)) => return Err(format!("scheme `{s}` is not https")),
        None => ("https", host),
    };
    let authority = rest.trim_end_matches('/');
    if authority.is_empty() || authority.contains(['/', '?', '#', ' ']) {
        return Err(format!("`{host}` is not a host name (expected for example `mycluster.westeurope.kusto.windows.net`)"));
    }
    let url = format!("{scheme}://{authority}");
    let name = authority.rsplit_once(':').map_or(authority, |(n, port)| {
        if port.chars().all(|c| c.is_ascii_digit()) {
            n
        } else {
            authority
        }
    });
    if is_loopback(&url) {
        return Ok(url);
    }
    if scheme == "http" {
        return Err(format!(
            "`{host}`: plain http is only for a loopback endpoint; a cluster is reached over https"
        ));
    }
    if !KUSTO_DOMAINS
        .iter()
        .any(|d| name.to_ascii_lowercase().ends_with(d))
    {
        return Err(format!(
            "`{host}` is not an Azure Data Explorer host (expected <cluster>.<region>.kusto.windows.net or another Kusto domain: {})",
            KUSTO_DOMAINS.join(", ")
        ));
    }
    Ok(url)
}

pub fn is_loopback(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = if rest.starts_with('[') {
        rest.split(']').next().map(|h| &h[1..]).unwrap_or_default()
    } else {
        rest.split(':').next().unwrap_or_default()
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}
