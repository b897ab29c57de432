//! The MQTT source: QoS 1 subscriptions on a persistent session, with manual
//! acknowledgements. A PUBACK leaves only when the pipeline says the message is settled
//! (ingested, or written to the dead-letter sink), in the order messages arrived, so a broker
//! keeps, and after a reconnect or a restart delivers again, everything not yet settled.
//! MQTT 5 by default (`v5.rs`); MQTT 3.1.1 for brokers that lack it (`v311.rs`).

mod v311;
mod v5;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Result};
use tokio::task::JoinHandle;

use super::{now_nanos, Acknowledger, SourceMessage, SourceSender};
use crate::config::MqttEndpoint;

/// Larger messages than this cannot be read; the plugin rejects rows over 4 MB anyway.
const MAX_PACKET_BYTES: u32 = 16 * 1024 * 1024;
const RECONNECT_DELAY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProtocolVersion {
    #[default]
    V5,
    V311,
}

impl std::str::FromStr for ProtocolVersion {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "5" | "5.0" => Ok(Self::V5),
            "3.1.1" | "4" => Ok(Self::V311),
            other => Err(format!("`{other}` is not an MQTT version (5 or 3.1.1)")),
        }
    }
}

#[derive(Debug, Clone)]
pub struct MqttSourceOptions {
    pub endpoint: MqttEndpoint,
    /// Stable across restarts: the broker keeps the session under this id.
    pub client_id: String,
    /// Topic filters as a Dataflow gives them (`$shared/<group>/<filter>` included).
    pub filters: Vec<String>,
    pub version: ProtocolVersion,
}

impl MqttSourceOptions {
    /// The in-flight bound. With MQTT 5 it is the receive maximum, so the broker sends no
    /// more unacknowledged messages than this; MQTT 3.1.1 has no such setting, and the
    /// broker's own limit applies (mosquitto's `max_inflight_messages`, 20 by default).
    pub fn window(&self) -> usize {
        usize::from(self.endpoint.max_inflight_messages)
    }

    /// Whether the pipeline should flush as soon as the broker stops sending: with MQTT
    /// 3.1.1 the broker may be waiting for acknowledgements at a limit the host cannot know.
    pub fn flush_when_idle(&self) -> bool {
        self.version == ProtocolVersion::V311
    }

    fn address(&self) -> String {
        format!("{}:{}", self.endpoint.host, self.endpoint.port)
    }
}

/// What the reader hears from a client library.
enum Incoming {
    Connected {
        session_present: bool,
    },
    /// The broker's answer to the subscription, per filter: why it refused it, if it did.
    Subscribed {
        refusals: Vec<Option<String>>,
    },
    Message {
        message: SourceMessage,
        pkid: u16,
    },
    /// The disconnect asked for by `stop` went out.
    Disconnected,
    Other,
}

/// One MQTT version's client, as the reader and the acknowledger need it.
trait Protocol: Send + 'static {
    type Client: Clone + Send + Sync + 'static;
    type Events: Send + 'static;

    fn connect(options: &MqttSourceOptions) -> (Self::Client, Self::Events);
    fn poll(events: &mut Self::Events) -> impl Future<Output = Result<Incoming, String>> + Send;
    fn subscribe(client: &Self::Client, filters: &[String]) -> Result<()>;
    /// Queues a PUBACK; false if the client could not take it.
    fn acknowledge(client: &Self::Client, pkid: u16) -> bool;
    /// After a lost connection: drops the PUBACKs still queued for it.
    fn forget_acknowledgements(events: &mut Self::Events);
    fn disconnect(client: &Self::Client);
}

/// A running MQTT source; `stop` disconnects after the acknowledgements given so far.
pub struct MqttSource {
    disconnect: Box<dyn Fn() + Send>,
    task: JoinHandle<Result<()>>,
}

impl MqttSource {
    /// Sends the acknowledgements given so far, then disconnects; the session (and what was
    /// not acknowledged) stays with the broker.
    pub async fn stop(self) -> Result<()> {
        (self.disconnect)();
        match tokio::time::timeout(Duration::from_secs(5), self.task).await {
            Ok(joined) => joined?,
            Err(_) => Ok(()),
        }
    }
}

/// Connects and starts reading; messages go to `sender` (whose capacity must be at least the
/// window, so that the connection is never stalled by a full channel).
pub fn start(
    options: &MqttSourceOptions,
    sender: SourceSender,
) -> (MqttSource, Box<dyn Acknowledger>) {
    match options.version {
        ProtocolVersion::V5 => start_with::<v5::V5>(options, sender),
        ProtocolVersion::V311 => start_with::<v311::V311>(options, sender),
    }
}

fn start_with<P: Protocol>(
    options: &MqttSourceOptions,
    sender: SourceSender,
) -> (MqttSource, Box<dyn Acknowledger>) {
    let (client, events) = P::connect(options);
    let connection = Arc::new(Mutex::new(Connection { generation: 0 }));
    let reader = Reader::<P> {
        client: client.clone(),
        connection: connection.clone(),
        filters: options.filters.iter().map(|f| standard_filter(f)).collect(),
        address: options.address(),
        sender,
    };
    let task = tokio::spawn(reader.run(events));
    let acknowledger = MqttAcknowledger::<P> {
        client: client.clone(),
        connection,
    };
    let source = MqttSource {
        disconnect: Box::new(move || P::disconnect(&client)),
        task,
    };
    (source, Box::new(acknowledger))
}

/// Which connection a receipt belongs to: acknowledgements of an earlier connection are
/// dropped (the broker delivers those messages again), never sent on a later one, where the
/// same packet id may name another message.
struct Connection {
    generation: u64,
}

fn receipt(generation: u64, pkid: u16) -> u64 {
    (generation << 16) | u64::from(pkid)
}

struct MqttAcknowledger<P: Protocol> {
    client: P::Client,
    connection: Arc<Mutex<Connection>>,
}

impl<P: Protocol> Acknowledger for MqttAcknowledger<P> {
    fn acknowledge(&mut self, receipts: &[u64]) {
        let connection = self.connection.lock().expect("connection lock");
        for &r in receipts {
            if r >> 16 == connection.generation {
                // The request channel holds more than the in-flight window, so this only
                // fails when the connection is going away; the broker then delivers the
                // message again.
                P::acknowledge(&self.client, r as u16);
            }
        }
    }
}

/// The MQTT 5 form of a filter: the `$shared/<group>/` of Azure IoT Operations is the
/// standard `$share/<group>/`.
pub fn standard_filter(filter: &str) -> String {
    match filter.strip_prefix("$shared/") {
        Some(rest) => format!("$share/{rest}"),
        None => filter.to_string(),
    }
}

struct Reader<P: Protocol> {
    client: P::Client,
    connection: Arc<Mutex<Connection>>,
    filters: Vec<String>,
    address: String,
    sender: SourceSender,
}

impl<P: Protocol> Reader<P> {
    async fn run(self, mut events: P::Events) -> Result<()> {
        let mut connected_once = false;
        loop {
            match P::poll(&mut events).await {
                Ok(Incoming::Connected { session_present }) => {
                    let generation = self.generation();
                    tracing::info!(
                        "connected to the MQTT broker at {} (session {}, connection {generation})",
                        self.address,
                        if session_present { "resumed" } else { "new" }
                    );
                    // Subscribed again even on a resumed session: the same subscription
                    // replaces itself, and some brokers do not restore shared subscriptions
                    // from their persistence after a restart (mosquitto 2.0 does not).
                    P::subscribe(&self.client, &self.filters)?;
                    connected_once = true;
                }
                Ok(Incoming::Subscribed { refusals }) => {
                    let refused =
                        self.filters
                            .iter()
                            .zip(&refusals)
                            .find_map(|(filter, refusal)| {
                                refusal.as_ref().map(|reason| (filter, reason))
                            });
                    if let Some((filter, reason)) = refused {
                        bail!(
                            "the broker at {} refused the subscription to `{filter}`: {reason}",
                            self.address
                        );
                    }
                    tracing::info!("subscribed to {}", self.filters.join(", "));
                }
                Ok(Incoming::Message { mut message, pkid }) => {
                    message.receipt = Some(receipt(self.generation(), pkid));
                    if self.sender.send(message).await.is_err() {
                        return Ok(()); // the pipeline stopped reading
                    }
                }
                Ok(Incoming::Disconnected) => return Ok(()),
                Ok(Incoming::Other) => {}
                Err(e) => {
                    if self.sender.is_closed() {
                        return Ok(());
                    }
                    tracing::warn!(
                        "MQTT connection to {} {}: {e}; reconnecting in {} s",
                        self.address,
                        if connected_once { "lost" } else { "failed" },
                        RECONNECT_DELAY.as_secs()
                    );
                    {
                        let mut connection = self.connection.lock().expect("connection lock");
                        connection.generation += 1;
                        P::forget_acknowledgements(&mut events);
                    }
                    tokio::time::sleep(RECONNECT_DELAY).await;
                }
            }
        }
    }

    fn generation(&self) -> u64 {
        self.connection.lock().expect("connection lock").generation
    }
}

/// A received message, before its receipt is known.
fn source_message(
    topic: String,
    payload: &[u8],
    content_type: Option<String>,
    user_properties: Vec<(String, String)>,
) -> SourceMessage {
    SourceMessage {
        origin: format!("mqtt {topic}"),
        topic,
        payload: payload.to_vec(),
        content_type,
        user_properties,
        timestamp_nanos: now_nanos(),
        receipt: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_subscriptions_take_the_mqtt_standard_form() {
        assert_eq!(
            standard_filter("$shared/g1/factory/#"),
            "$share/g1/factory/#"
        );
        assert_eq!(
            standard_filter("$share/g1/factory/#"),
            "$share/g1/factory/#"
        );
        assert_eq!(standard_filter("factory/+/t"), "factory/+/t");
    }

    #[test]
    fn receipts_carry_the_connection_and_the_packet_id() {
        let r = receipt(3, 65535);
        assert_eq!((r >> 16, r as u16), (3, 65535));
    }

    #[test]
    fn versions_are_named_as_users_write_them() {
        assert_eq!("5".parse(), Ok(ProtocolVersion::V5));
        assert_eq!("3.1.1".parse(), Ok(ProtocolVersion::V311));
        assert!("3"
            .parse::<ProtocolVersion>()
            .unwrap_err()
            .contains("5 or 3.1.1"));
    }
}
