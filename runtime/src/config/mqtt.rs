//! An MQTT broker endpoint (`endpointType: Mqtt`) as a dataflow source: the documented
//! `mqttSettings`, with what this host supports checked field by field.

use super::endpoint::{read_managed_identity, settings_of_other_methods, Authentication};
use super::problem::{join, Reader};
use super::yaml::Mapping;

/// Azure IoT Operations' defaults for `mqttSettings`.
const DEFAULT_KEEP_ALIVE_SECONDS: u64 = 60;
const DEFAULT_MAX_INFLIGHT: u64 = 100;
const DEFAULT_SESSION_EXPIRY_SECONDS: u64 = 3600;
/// The audience of a service account token when `serviceAccountTokenSettings` names none
/// (the API reference of `DataflowEndpointMqttAuthentication`: "Default audience if not set
/// is aio-internal").
pub const DEFAULT_SERVICE_ACCOUNT_AUDIENCE: &str = "aio-internal";
/// Event Grid's audience and scope for managed identities (howto-configure-mqtt-endpoint).
const EVENT_GRID_AUDIENCE: &str = "https://eventgrid.azure.net";
const EVENT_GRID_SCOPE: &str = "https://eventgrid.azure.net/.default";

/// `mqttSettings.tls` with `mode: Enabled`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttTls {
    /// The ConfigMap of CA certificates (PEM) trusted besides the system's.
    pub trusted_ca_config_map: Option<String>,
}

/// `mqttSettings.authentication`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MqttAuthentication {
    Anonymous,
    /// A Kubernetes service account token for `audience`, by MQTT 5 enhanced authentication.
    ServiceAccountToken {
        audience: String,
    },
    /// A client certificate and key from the Secret `secret`, in the TLS handshake.
    X509Certificate {
        secret: String,
    },
    /// An Entra ID token (Event Grid's `OAUTH2-JWT`), from a managed identity.
    ManagedIdentity(Authentication),
}

/// The methods and their settings keys.
const AUTHENTICATION_METHODS: &[(&str, &str)] = &[
    ("Anonymous", "anonymousSettings"),
    ("ServiceAccountToken", "serviceAccountTokenSettings"),
    ("X509Certificate", "x509CertificateSettings"),
    (
        "SystemAssignedManagedIdentity",
        "systemAssignedManagedIdentitySettings",
    ),
    (
        "UserAssignedManagedIdentity",
        "userAssignedManagedIdentitySettings",
    ),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttEndpoint {
    /// `host:port`.
    pub host: String,
    pub port: u16,
    pub client_id_prefix: Option<String>,
    pub keep_alive_seconds: u16,
    /// Messages the broker may have sent and not yet had acknowledged: the MQTT 5 receive
    /// maximum, and so the in-flight bound of the dataflow.
    pub max_inflight_messages: u16,
    /// How long the broker keeps the session (and its unacknowledged messages) after a
    /// disconnect.
    pub session_expiry_seconds: u32,
    /// `None`: plain TCP (`tls.mode: Disabled`).
    pub tls: Option<MqttTls>,
    pub authentication: MqttAuthentication,
}

impl MqttEndpoint {
    /// The broker of the built-in `default` endpoint, at an address given on the command line:
    /// plain TCP and anonymous, as a broker on this machine is (a DataflowEndpoint resource
    /// says otherwise).
    pub fn at(address: &str) -> Result<Self, String> {
        let (host, port) = split_address(address)?;
        Ok(Self {
            host,
            port,
            client_id_prefix: None,
            keep_alive_seconds: DEFAULT_KEEP_ALIVE_SECONDS as u16,
            max_inflight_messages: DEFAULT_MAX_INFLIGHT as u16,
            session_expiry_seconds: DEFAULT_SESSION_EXPIRY_SECONDS as u32,
            tls: None,
            authentication: MqttAuthentication::Anonymous,
        })
    }
}

impl MqttEndpoint {
    /// What the host connects with, for `validate`.
    pub fn describe(&self) -> String {
        let tls = match &self.tls {
            None => "plain TCP".to_string(),
            Some(MqttTls {
                trusted_ca_config_map: Some(name),
            }) => format!("TLS, trusting the system roots and ConfigMap {name}"),
            Some(MqttTls { .. }) => "TLS, trusting the system roots".to_string(),
        };
        let authentication = match &self.authentication {
            MqttAuthentication::Anonymous => "anonymous".to_string(),
            MqttAuthentication::ServiceAccountToken { audience } => {
                format!("K8S-SAT with the service account token for {audience}")
            }
            MqttAuthentication::X509Certificate { secret } => {
                format!("client certificate from Secret {secret}")
            }
            MqttAuthentication::ManagedIdentity(Authentication::UserAssignedManagedIdentity {
                scope,
                ..
            }) => format!("OAUTH2-JWT with a user-assigned managed identity's token for {scope}"),
            MqttAuthentication::ManagedIdentity(
                Authentication::SystemAssignedManagedIdentity { audience },
            ) => format!(
                "OAUTH2-JWT with the system-assigned managed identity's token for {audience}"
            ),
            // Not read for a broker (a development token is for a loopback ADX endpoint).
            MqttAuthentication::ManagedIdentity(_) => "OAUTH2-JWT".to_string(),
        };
        format!("{}:{}, {tls}, {authentication}", self.host, self.port)
    }
}

/// `host:port` (the MQTT port 1883 when none is given).
fn split_address(address: &str) -> Result<(String, u16), String> {
    let address = address.trim();
    let (host, port) = match address.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || host.starts_with('[') => {
            let port = port
                .parse::<u16>()
                .map_err(|_| format!("`{address}`: the port `{port}` is not a number 1..65535"))?;
            (host, port)
        }
        _ => (address, 1883),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host.contains(['/', ' ']) || port == 0 {
        return Err(format!(
            "`{address}` is not host:port (for example `localhost:1883`)"
        ));
    }
    Ok((host.to_string(), port))
}

pub fn read(r: &mut Reader, settings: &Mapping, path: &str) -> Option<MqttEndpoint> {
    let address = r.string(settings, path, "host", true);
    let mut endpoint = address.and_then(|a| match MqttEndpoint::at(&a) {
        Ok(endpoint) => Some(endpoint),
        Err(e) => {
            r.report(&join(path, "host"), e);
            None
        }
    });
    let client_id_prefix = r.string(settings, path, "clientIdPrefix", false);
    let keep_alive = r
        .integer(settings, path, "keepAliveSeconds", 0..=65_535)
        .unwrap_or(DEFAULT_KEEP_ALIVE_SECONDS);
    let max_inflight = r
        .integer(settings, path, "maxInflightMessages", 1..=65_535)
        .unwrap_or(DEFAULT_MAX_INFLIGHT);
    let session_expiry = r
        .integer(settings, path, "sessionExpirySeconds", 0..=4_294_967_295)
        .unwrap_or(DEFAULT_SESSION_EXPIRY_SECONDS);
    if let Some(qos) = r.integer(settings, path, "qos", 0..=1) {
        if qos != 1 {
            r.report(
                &join(path, "qos"),
                "this host reads with QoS 1 only (at least once): QoS 0 can lose messages",
            );
        }
    }
    if let Some(protocol) = r.string(settings, path, "protocol", false) {
        if protocol != "Mqtt" {
            r.report(
                &join(path, "protocol"),
                format!("`{protocol}` is not supported by this host (supported: Mqtt)"),
            );
        }
    }
    let tls = read_tls(r, settings, path);
    let authentication = read_authentication(r, settings, path);
    if let (Some(None), Some(MqttAuthentication::X509Certificate { .. })) = (&tls, &authentication)
    {
        r.report(
            &join(path, "authentication.method"),
            "X509Certificate authenticates in the TLS handshake: it needs `tls.mode: Enabled`",
        );
    }
    if let Some(endpoint) = &mut endpoint {
        endpoint.client_id_prefix = client_id_prefix;
        endpoint.keep_alive_seconds = keep_alive as u16;
        endpoint.max_inflight_messages = max_inflight as u16;
        endpoint.session_expiry_seconds = session_expiry as u32;
        endpoint.tls = tls?;
        endpoint.authentication = authentication?;
    }
    endpoint
}

/// `tls`: Enabled unless it says `Disabled` (the API's default mode is `Enabled`). `None` if
/// it has a problem; `Some(None)` for plain TCP.
fn read_tls(r: &mut Reader, settings: &Mapping, path: &str) -> Option<Option<MqttTls>> {
    let keys = ["mode", "trustedCaCertificateConfigMapRef"];
    let Some(tls) = r.optional_mapping(settings, path, "tls", &keys) else {
        return Some(Some(MqttTls {
            trusted_ca_config_map: None,
        }));
    };
    let tls_path = join(path, "tls");
    let mode = r.string(tls, &tls_path, "mode", false);
    let config_map = r.string(tls, &tls_path, "trustedCaCertificateConfigMapRef", false);
    match mode.as_deref() {
        None | Some("Enabled") => Some(Some(MqttTls {
            trusted_ca_config_map: config_map,
        })),
        Some("Disabled") => {
            if config_map.is_some() {
                r.report(
                    &join(&tls_path, "trustedCaCertificateConfigMapRef"),
                    "a trusted CA is for TLS, and `mode` is `Disabled`: enable TLS or remove the reference",
                );
                return None;
            }
            Some(None)
        }
        Some(other) => {
            r.report(
                &join(&tls_path, "mode"),
                format!("`{other}` is not a TLS mode (Enabled or Disabled)"),
            );
            None
        }
    }
}

/// `authentication`: the method and its settings, and no settings of another method. Without
/// it, a service account token for `aio-internal`, the API's default.
fn read_authentication(
    r: &mut Reader,
    settings: &Mapping,
    path: &str,
) -> Option<MqttAuthentication> {
    let mut keys = vec!["method"];
    keys.extend(AUTHENTICATION_METHODS.iter().map(|(_, key)| *key));
    let Some(auth) = r.optional_mapping(settings, path, "authentication", &keys) else {
        return Some(MqttAuthentication::ServiceAccountToken {
            audience: DEFAULT_SERVICE_ACCOUNT_AUDIENCE.into(),
        });
    };
    let path = join(path, "authentication");
    let method = r.string(auth, &path, "method", true)?;
    let Some(&(_, own_key)) = AUTHENTICATION_METHODS.iter().find(|(m, _)| *m == method) else {
        let names: Vec<&str> = AUTHENTICATION_METHODS.iter().map(|(m, _)| *m).collect();
        r.report(
            &join(&path, "method"),
            format!(
                "`{method}` is not an authentication method for an MQTT broker (allowed: {})",
                names.join(", ")
            ),
        );
        return None;
    };
    let misplaced = settings_of_other_methods(r, auth, &path, &method, AUTHENTICATION_METHODS);
    let authentication = match method.as_str() {
        "Anonymous" => {
            // Documented as `anonymousSettings: {}`: nothing may be in it.
            r.optional_mapping(auth, &path, own_key, &[]);
            Some(MqttAuthentication::Anonymous)
        }
        "ServiceAccountToken" => {
            let settings = r.optional_mapping(auth, &path, own_key, &["audience"]);
            let audience = settings
                .and_then(|s| r.string(s, &join(&path, own_key), "audience", false))
                .unwrap_or_else(|| DEFAULT_SERVICE_ACCOUNT_AUDIENCE.into());
            Some(MqttAuthentication::ServiceAccountToken { audience })
        }
        "X509Certificate" => {
            let settings = r.required_mapping(auth, &path, own_key, &["secretRef"])?;
            let secret = r.string(settings, &join(&path, own_key), "secretRef", true)?;
            Some(MqttAuthentication::X509Certificate { secret })
        }
        _ => read_managed_identity(
            r,
            auth,
            &path,
            &method,
            EVENT_GRID_AUDIENCE,
            EVENT_GRID_SCOPE,
        )
        .map(MqttAuthentication::ManagedIdentity),
    };
    authentication.filter(|_| !misplaced)
}

/// The settings keys `read` knows.
pub const SETTINGS: &[&str] = &[
    "host",
    "protocol",
    "clientIdPrefix",
    "keepAliveSeconds",
    "maxInflightMessages",
    "qos",
    "retain",
    "sessionExpirySeconds",
    "tls",
    "authentication",
    "cloudEventAttributes",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_take_the_mqtt_port_by_default() {
        assert_eq!(split_address("localhost"), Ok(("localhost".into(), 1883)));
        assert_eq!(
            split_address("127.0.0.1:2883"),
            Ok(("127.0.0.1".into(), 2883))
        );
        assert_eq!(split_address("[::1]:2883"), Ok(("::1".into(), 2883)));
        assert!(split_address("host:port")
            .unwrap_err()
            .contains("not a number"));
        assert!(split_address(":1883").is_err());
    }
}
