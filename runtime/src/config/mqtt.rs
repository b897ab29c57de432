//! An MQTT broker endpoint (`endpointType: Mqtt`) as a dataflow source: the documented
//! `mqttSettings`, with what this host supports checked field by field.

use super::yaml::Mapping;

use super::problem::{join, Reader};

/// Azure IoT Operations' defaults for `mqttSettings`.
const DEFAULT_KEEP_ALIVE_SECONDS: u64 = 60;
const DEFAULT_MAX_INFLIGHT: u64 = 100;
const DEFAULT_SESSION_EXPIRY_SECONDS: u64 = 3600;

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
}

impl MqttEndpoint {
    /// The broker of the built-in `default` endpoint, at an address given on the command line.
    pub fn at(address: &str) -> Result<Self, String> {
        let (host, port) = split_address(address)?;
        Ok(Self {
            host,
            port,
            client_id_prefix: None,
            keep_alive_seconds: DEFAULT_KEEP_ALIVE_SECONDS as u16,
            max_inflight_messages: DEFAULT_MAX_INFLIGHT as u16,
            session_expiry_seconds: DEFAULT_SESSION_EXPIRY_SECONDS as u32,
        })
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
    if let Some(tls) = r.optional_mapping(
        settings,
        path,
        "tls",
        &["mode", "trustedCaCertificateConfigMapRef"],
    ) {
        if let Some(mode) = r.string(tls, &join(path, "tls"), "mode", false) {
            if mode != "Disabled" {
                r.report(
                    &join(path, "tls.mode"),
                    format!("`{mode}`: this host connects to brokers without TLS only (set `Disabled`, for a broker on this machine or a trusted network)"),
                );
            }
        }
    }
    if let Some(auth) = r.optional_mapping(settings, path, "authentication", &["method"]) {
        if let Some(method) = r.string(auth, &join(path, "authentication"), "method", true) {
            if method != "Anonymous" {
                r.report(
                    &join(path, "authentication.method"),
                    format!("`{method}` is not supported by this host for brokers (supported: Anonymous)"),
                );
            }
        }
    }
    if let Some(endpoint) = &mut endpoint {
        endpoint.client_id_prefix = client_id_prefix;
        endpoint.keep_alive_seconds = keep_alive as u16;
        endpoint.max_inflight_messages = max_inflight as u16;
        endpoint.session_expiry_seconds = session_expiry as u32;
    }
    endpoint
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
