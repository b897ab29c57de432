//! The MQTT source: QoS 1 subscriptions on a persistent MQTT 5 session, with manual
//! acknowledgements. A PUBACK leaves only when the pipeline says the message is settled
//! (ingested, or written to the dead-letter sink), in the order messages arrived, so a broker
//! keeps, and after a reconnect or a restart delivers again, everything not yet settled.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Result};
use rumqttc::v5::mqttbytes::v5::{Filter, Packet, Publish, SubscribeReasonCode};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions};
use rumqttc::Outgoing;
use tokio::task::JoinHandle;

use super::{now_nanos, Acknowledger, SourceMessage, SourceSender};
use crate::config::MqttEndpoint;

/// Larger messages than this cannot be read; the plugin rejects rows over 4 MB anyway.
const MAX_PACKET_BYTES: u32 = 16 * 1024 * 1024;
const RECONNECT_DELAY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct MqttSourceOptions {
    pub endpoint: MqttEndpoint,
    /// Stable across restarts: the broker keeps the session under this id.
    pub client_id: String,
    /// Topic filters as a Dataflow gives them (`$shared/<group>/<filter>` included).
    pub filters: Vec<String>,
}

impl MqttSourceOptions {
    /// The in-flight bound: the broker sends no more unacknowledged messages than this.
    pub fn window(&self) -> usize {
        usize::from(self.endpoint.max_inflight_messages)
    }
}

/// A running MQTT source; `stop` disconnects after the acknowledgements given so far.
pub struct MqttSource {
    client: AsyncClient,
    task: JoinHandle<Result<()>>,
}

/// Which connection a receipt belongs to: acknowledgements of an earlier connection are
/// dropped (the broker delivers those messages again), never sent on a later one, where the
/// same packet id may name another message.
struct Connection {
    generation: u64,
}

struct MqttAcknowledger {
    client: AsyncClient,
    connection: Arc<Mutex<Connection>>,
}

fn receipt(generation: u64, pkid: u16) -> u64 {
    (generation << 16) | u64::from(pkid)
}

impl Acknowledger for MqttAcknowledger {
    fn acknowledge(&mut self, receipts: &[u64]) {
        let connection = self.connection.lock().expect("connection lock");
        for &r in receipts {
            if r >> 16 != connection.generation {
                continue;
            }
            let ack = Publish {
                qos: QoS::AtLeastOnce,
                pkid: r as u16,
                ..Publish::default()
            };
            // The request channel holds more than the in-flight window, so this only fails
            // when the connection is going away; the broker then delivers the message again.
            let _ = self.client.try_ack(&ack);
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

/// Connects and starts reading; messages go to `sender` (whose capacity must be at least the
/// window, so that the connection is never stalled by a full channel).
pub fn start(
    options: &MqttSourceOptions,
    sender: SourceSender,
) -> (MqttSource, Box<dyn Acknowledger>) {
    let endpoint = &options.endpoint;
    let mut mqtt = MqttOptions::new(&options.client_id, &endpoint.host, endpoint.port);
    mqtt.set_clean_start(false)
        .set_session_expiry_interval(Some(endpoint.session_expiry_seconds))
        .set_receive_maximum(Some(endpoint.max_inflight_messages))
        .set_keep_alive(Duration::from_secs(u64::from(
            endpoint.keep_alive_seconds.max(5),
        )))
        .set_max_packet_size(Some(MAX_PACKET_BYTES))
        .set_manual_acks(true)
        .set_request_channel_capacity(2 * options.window() + 16);
    let (client, eventloop) = AsyncClient::new(mqtt, 2 * options.window() + 16);
    let connection = Arc::new(Mutex::new(Connection { generation: 0 }));
    let reader = Reader {
        client: client.clone(),
        connection: connection.clone(),
        filters: options.filters.iter().map(|f| standard_filter(f)).collect(),
        address: format!("{}:{}", endpoint.host, endpoint.port),
        sender,
    };
    let task = tokio::spawn(reader.run(eventloop));
    let acknowledger = MqttAcknowledger {
        client: client.clone(),
        connection,
    };
    (MqttSource { client, task }, Box::new(acknowledger))
}

impl MqttSource {
    /// Sends the acknowledgements given so far, then disconnects; the session (and what was
    /// not acknowledged) stays with the broker.
    pub async fn stop(self) -> Result<()> {
        let _ = self.client.try_disconnect();
        match tokio::time::timeout(Duration::from_secs(5), self.task).await {
            Ok(joined) => joined?,
            Err(_) => Ok(()),
        }
    }
}

struct Reader {
    client: AsyncClient,
    connection: Arc<Mutex<Connection>>,
    filters: Vec<String>,
    address: String,
    sender: SourceSender,
}

impl Reader {
    async fn run(self, mut eventloop: EventLoop) -> Result<()> {
        let mut connected_once = false;
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    let generation = self.connection.lock().expect("connection lock").generation;
                    eprintln!(
                        "connected to the MQTT broker at {} (session {}, connection {generation})",
                        self.address,
                        if ack.session_present {
                            "resumed"
                        } else {
                            "new"
                        }
                    );
                    // Subscribed again even on a resumed session: the same subscription
                    // replaces itself, and some brokers do not restore shared subscriptions
                    // from their persistence after a restart (mosquitto 2.0 does not).
                    let filters = self
                        .filters
                        .iter()
                        .map(|f| Filter::new(f, QoS::AtLeastOnce));
                    self.client.try_subscribe_many(filters)?;
                    connected_once = true;
                }
                Ok(Event::Incoming(Packet::SubAck(ack))) => {
                    for (filter, code) in self.filters.iter().zip(&ack.return_codes) {
                        if !matches!(code, SubscribeReasonCode::Success(_)) {
                            bail!(
                                "the broker at {} refused the subscription to `{filter}`: {code:?}",
                                self.address
                            );
                        }
                    }
                    eprintln!("subscribed to {}", self.filters.join(", "));
                }
                Ok(Event::Incoming(Packet::Publish(publish))) => {
                    let generation = self.connection.lock().expect("connection lock").generation;
                    let message = source_message(publish, generation);
                    if self.sender.send(message).await.is_err() {
                        return Ok(()); // the pipeline stopped reading
                    }
                }
                Ok(Event::Outgoing(Outgoing::Disconnect)) => return Ok(()),
                Ok(_) => {}
                Err(e) => {
                    if self.sender.is_closed() {
                        return Ok(());
                    }
                    eprintln!(
                        "MQTT connection to {} {}: {e}; reconnecting in {} s",
                        self.address,
                        if connected_once { "lost" } else { "failed" },
                        RECONNECT_DELAY.as_secs()
                    );
                    self.forget_acknowledgements(&mut eventloop);
                    tokio::time::sleep(RECONNECT_DELAY).await;
                }
            }
        }
    }

    /// After a lost connection: acknowledgements not yet sent belong to it; the broker
    /// delivers those messages again on the next connection.
    fn forget_acknowledgements(&self, eventloop: &mut EventLoop) {
        let mut connection = self.connection.lock().expect("connection lock");
        connection.generation += 1;
        eventloop.clean();
        eventloop
            .pending
            .retain(|request| !matches!(request, rumqttc::v5::Request::PubAck(_)));
    }
}

fn source_message(publish: Publish, generation: u64) -> SourceMessage {
    let topic = String::from_utf8_lossy(&publish.topic).into_owned();
    let (content_type, user_properties) = match publish.properties {
        Some(p) => (p.content_type, p.user_properties),
        None => (None, Vec::new()),
    };
    SourceMessage {
        origin: format!("mqtt {topic}"),
        topic,
        payload: publish.payload.to_vec(),
        content_type,
        user_properties,
        timestamp_nanos: now_nanos(),
        receipt: Some(receipt(generation, publish.pkid)),
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
}
