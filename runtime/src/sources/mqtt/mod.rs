//! The MQTT source: QoS 1 subscriptions on a persistent session, with manual
//! acknowledgements. A PUBACK leaves only when the pipeline says the message is settled
//! (ingested, or written to the dead-letter sink), in the order messages arrived, so a broker
//! keeps, and after a reconnect or a restart delivers again, everything not yet settled.
//! MQTT 5 by default (`v5.rs`); MQTT 3.1.1 for brokers that lack it (`v311.rs`).

mod credential;
mod frames;
mod link;
mod v311;
mod v5;

pub use credential::Credential;

use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{now_nanos, Acknowledger, Origin, SourceMessage};
use crate::config::MqttEndpoint;

/// The largest packet MQTT can carry (its variable-length size field), advertised as the
/// client's maximum packet size: a broker never drops a message as too large for this host.
/// What no plugin can take is dead-lettered by the pipeline instead (`max_message_bytes`).
const MAX_PACKET_BYTES: u32 = 268_435_455;
const RECONNECT_DELAY: Duration = Duration::from_secs(1);
/// How long the acknowledgement writer waits when the client's request queue is full.
const ACK_QUEUE_FULL_WAIT: Duration = Duration::from_millis(1);

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
    /// TLS to the broker with this configuration (its CAs, and a client certificate for
    /// `X509Certificate`); the server's name is checked against the endpoint's host.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// A token presented by MQTT 5 enhanced authentication, renewed by re-authentication.
    pub credential: Option<Arc<Credential>>,
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

/// What the source did, counted as it goes: for the run's summary, the metrics, and a
/// comparison with the broker's own log.
#[derive(Debug, Default)]
pub struct MqttCounters {
    /// PUBLISH packets received (QoS 0 and 1).
    pub received: AtomicU64,
    /// PUBACKs written to the broker.
    pub acknowledged: AtomicU64,
    /// Settled messages whose PUBACK never reached the connection they came on, because it
    /// was lost first: the broker delivers them again.
    pub acknowledgements_lost: AtomicU64,
    /// Messages the broker sent beyond the receive maximum (MQTT 5): a broker fault.
    pub beyond_receive_maximum: AtomicU64,
    /// Connections lost (or refused) after the first one.
    pub reconnects: AtomicU64,
    /// Renewed tokens the broker accepted by re-authentication, on the same connection.
    pub reauthentications: AtomicU64,
    /// Whether the source holds a connection to the broker now (for readiness).
    pub connected: AtomicBool,
}

/// The counters' values at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MqttTotals {
    pub received: u64,
    pub acknowledged: u64,
    pub acknowledgements_lost: u64,
    pub beyond_receive_maximum: u64,
    pub reconnects: u64,
    pub reauthentications: u64,
    pub connected: bool,
}

impl MqttCounters {
    pub fn totals(&self) -> MqttTotals {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MqttTotals {
            received: get(&self.received),
            acknowledged: get(&self.acknowledged),
            acknowledgements_lost: get(&self.acknowledgements_lost),
            beyond_receive_maximum: get(&self.beyond_receive_maximum),
            reconnects: get(&self.reconnects),
            reauthentications: get(&self.reauthentications),
            connected: self.connected.load(Ordering::Relaxed),
        }
    }

    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
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
    /// A message; `pkid` is `None` for QoS 0, which takes no acknowledgement.
    Message {
        message: SourceMessage,
        pkid: Option<u16>,
    },
    /// A PUBACK went out to the broker.
    Acknowledged,
    /// The disconnect asked for by `stop` went out.
    Disconnected,
    Other,
}

/// One MQTT version's client, as the reader and the acknowledger need it.
trait Protocol: Send + 'static {
    type Client: Clone + Send + Sync + 'static;
    type Events: Send + 'static;

    /// A client of the link's socket.
    fn connect(options: &MqttSourceOptions, link: &Path) -> (Self::Client, Self::Events);
    fn poll(events: &mut Self::Events) -> impl Future<Output = Result<Incoming, String>> + Send;
    fn subscribe(client: &Self::Client, filters: &[String]) -> Result<()>;
    /// Queues a QoS 1 PUBACK; false if the client's request queue has no room now.
    fn acknowledge(client: &Self::Client, pkid: u16) -> bool;
    /// After a lost connection: drops the PUBACKs still queued for it.
    fn forget_acknowledgements(events: &mut Self::Events);
    /// Sets the enhanced authentication of the next CONNECT; false where the version has none.
    fn authenticate_with(events: &mut Self::Events, method: &str, data: Vec<u8>) -> bool;
    fn disconnect(client: &Self::Client);
}

/// A running MQTT source; `stop` disconnects after the acknowledgements given so far.
pub struct MqttSource {
    disconnect: Box<dyn Fn() + Send>,
    reader: JoinHandle<Result<()>>,
    writer: JoinHandle<()>,
    pub counters: Arc<MqttCounters>,
    /// Kept for as long as the source runs: rumqttc's way to the broker.
    _link: link::Link,
}

impl MqttSource {
    /// Writes the acknowledgements given so far (the acknowledger must be dropped first,
    /// which ends their stream), then disconnects; the session, and what was not
    /// acknowledged, stays with the broker.
    pub async fn stop(self) -> Result<()> {
        if tokio::time::timeout(Duration::from_secs(5), self.writer)
            .await
            .is_err()
        {
            tracing::warn!(
                "the last acknowledgements were not all queued within 5 s; the broker delivers what was not acknowledged again"
            );
        }
        // Queued behind every PUBACK, so they go out before it.
        (self.disconnect)();
        match tokio::time::timeout(Duration::from_secs(5), self.reader).await {
            Ok(joined) => joined?,
            Err(_) => Ok(()),
        }
    }
}

/// Connects and starts reading; messages go to `sender`, which never makes the reader wait:
/// the reader must keep polling the connection, or keep-alives and acknowledgements stop.
/// The in-flight window (the receive maximum) is what bounds the messages in the channel.
pub fn start(
    options: &MqttSourceOptions,
    sender: mpsc::UnboundedSender<SourceMessage>,
) -> Result<(MqttSource, Box<dyn Acknowledger>)> {
    match options.version {
        ProtocolVersion::V5 => start_with::<v5::V5>(options, sender),
        ProtocolVersion::V311 => start_with::<v311::V311>(options, sender),
    }
}

fn start_with<P: Protocol>(
    options: &MqttSourceOptions,
    sender: mpsc::UnboundedSender<SourceMessage>,
) -> Result<(MqttSource, Box<dyn Acknowledger>)> {
    let counters = Arc::new(MqttCounters::default());
    let link = link::Link::start(link::LinkOptions {
        host: options.endpoint.host.clone(),
        port: options.endpoint.port,
        tls: options.tls.clone(),
        credential: options.credential.clone(),
        counters: counters.clone(),
    })
    .context("starting the link to the broker")?;
    let (client, events) = P::connect(options, link.socket());
    let connection = Arc::new(Mutex::new(Connection::default()));
    let reader_done = Arc::new(AtomicBool::new(false));
    let reader = Reader::<P> {
        client: client.clone(),
        connection: connection.clone(),
        counters: counters.clone(),
        filters: options.filters.iter().map(|f| standard_filter(f)).collect(),
        address: options.address(),
        receive_maximum: match options.version {
            ProtocolVersion::V5 => Some(options.window() as u64),
            ProtocolVersion::V311 => None,
        },
        sender,
        done: reader_done.clone(),
        credential: options.credential.clone(),
        link: link.status.clone(),
    };
    let reader = tokio::spawn(reader.run(events));
    let (receipts, queued) = mpsc::unbounded_channel();
    let writer = AckWriter::<P> {
        client: client.clone(),
        connection,
        counters: counters.clone(),
        reader_done,
    };
    let writer = tokio::spawn(writer.run(queued));
    let source = MqttSource {
        disconnect: Box::new(move || P::disconnect(&client)),
        reader,
        writer,
        counters,
        _link: link,
    };
    let acknowledger = MqttAcknowledger {
        receipts,
        counters: source.counters.clone(),
    };
    Ok((source, Box::new(acknowledger)))
}

/// Which connection a receipt belongs to: acknowledgements of an earlier connection are
/// dropped (the broker delivers those messages again), never sent on a later one, where the
/// same packet id may name another message.
#[derive(Default)]
struct Connection {
    generation: u64,
    /// PUBACKs handed to the client on this connection (the reader counts those written).
    queued: u64,
}

fn receipt(generation: u64, pkid: u16) -> u64 {
    (generation << 16) | u64::from(pkid)
}

/// Hands settled receipts to the writer task; never blocks the pipeline, never drops one.
struct MqttAcknowledger {
    receipts: mpsc::UnboundedSender<Vec<u64>>,
    counters: Arc<MqttCounters>,
}

impl Acknowledger for MqttAcknowledger {
    fn acknowledge(&mut self, receipts: &[u64]) {
        // Fails only if the writer is gone (the runtime is shutting down); the broker then
        // delivers them again.
        if self.receipts.send(receipts.to_vec()).is_err() {
            MqttCounters::add(&self.counters.acknowledgements_lost, receipts.len() as u64);
            tracing::warn!(
                "{} settled message(s) not acknowledged: the acknowledgement writer stopped; the broker delivers them again",
                receipts.len()
            );
        }
    }
}

/// Queues each receipt's PUBACK on the client, in order, waiting while its request queue is
/// full rather than dropping one: a PUBACK either goes out on the connection its message
/// came on, or that connection is gone and the receipt is counted as lost.
struct AckWriter<P: Protocol> {
    client: P::Client,
    connection: Arc<Mutex<Connection>>,
    counters: Arc<MqttCounters>,
    reader_done: Arc<AtomicBool>,
}

impl<P: Protocol> AckWriter<P> {
    async fn run(self, mut queued: mpsc::UnboundedReceiver<Vec<u64>>) {
        while let Some(receipts) = queued.recv().await {
            let mut next = 0;
            let mut stale = 0;
            while next < receipts.len() {
                {
                    let mut connection = self.connection.lock().expect("connection lock");
                    while let Some(&r) = receipts.get(next) {
                        if r >> 16 != connection.generation {
                            stale += 1;
                        } else if P::acknowledge(&self.client, r as u16) {
                            connection.queued += 1;
                        } else {
                            break;
                        }
                        next += 1;
                    }
                }
                if next < receipts.len() {
                    if self.reader_done.load(Ordering::Relaxed) {
                        stale += (receipts.len() - next) as u64;
                        break;
                    }
                    tokio::time::sleep(ACK_QUEUE_FULL_WAIT).await;
                }
            }
            if stale > 0 {
                MqttCounters::add(&self.counters.acknowledgements_lost, stale);
                tracing::warn!(
                    "{stale} settled message(s) came on a connection that is gone: not acknowledged, the broker delivers them again"
                );
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
    counters: Arc<MqttCounters>,
    filters: Vec<String>,
    address: String,
    /// MQTT 5's receive maximum: more unacknowledged messages than this is a broker fault.
    receive_maximum: Option<u64>,
    sender: mpsc::UnboundedSender<SourceMessage>,
    done: Arc<AtomicBool>,
    /// Read again before every connection: a restarted connection presents the token then
    /// current.
    credential: Option<Arc<Credential>>,
    /// Why the link's last connection failed (TLS, a refused TCP connection), which rumqttc
    /// sees only as a closed socket.
    link: Arc<link::LinkStatus>,
}

/// What the reader counts on the current connection.
#[derive(Default)]
struct ConnectionCounts {
    /// QoS 1 messages received.
    received: u64,
    /// PUBACKs written.
    acknowledged: u64,
    /// Whether the broker's excess over the receive maximum was reported.
    excess_reported: bool,
}

impl<P: Protocol> Reader<P> {
    async fn run(self, events: P::Events) -> Result<()> {
        let result = self.read(events).await;
        self.counters.connected.store(false, Ordering::Relaxed);
        self.done.store(true, Ordering::Relaxed);
        result
    }

    /// Polls the client without pause: nothing here waits on the pipeline.
    async fn read(&self, mut events: P::Events) -> Result<()> {
        let mut connected_once = false;
        let mut counts = ConnectionCounts::default();
        self.present_credential(&mut events).await?;
        loop {
            match P::poll(&mut events).await {
                Ok(Incoming::Connected { session_present }) => {
                    let generation = self.generation();
                    tracing::info!(
                        "connected to the MQTT broker at {} (session {}, connection {generation})",
                        self.address,
                        if session_present { "resumed" } else { "new" }
                    );
                    self.counters.connected.store(true, Ordering::Relaxed);
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
                    MqttCounters::add(&self.counters.received, 1);
                    if let Some(pkid) = pkid {
                        message.receipt = Some(receipt(self.generation(), pkid));
                        counts.received += 1;
                        self.check_receive_maximum(&mut counts);
                    }
                    if self.sender.send(message).is_err() {
                        return Ok(()); // the pipeline stopped reading
                    }
                }
                Ok(Incoming::Acknowledged) => {
                    counts.acknowledged += 1;
                    MqttCounters::add(&self.counters.acknowledged, 1);
                }
                Ok(Incoming::Disconnected) => return Ok(()),
                Ok(Incoming::Other) => {}
                Err(e) => {
                    if self.sender.is_closed() {
                        return Ok(());
                    }
                    let e = self.link.take_error().unwrap_or(e);
                    self.counters.connected.store(false, Ordering::Relaxed);
                    let unwritten = {
                        let mut connection = self.connection.lock().expect("connection lock");
                        connection.generation += 1;
                        P::forget_acknowledgements(&mut events);
                        std::mem::take(&mut connection.queued).saturating_sub(counts.acknowledged)
                    };
                    counts = ConnectionCounts::default();
                    MqttCounters::add(&self.counters.reconnects, 1);
                    MqttCounters::add(&self.counters.acknowledgements_lost, unwritten);
                    tracing::warn!(
                        "MQTT connection to {} {}: {e}; reconnecting in {} s{}",
                        self.address,
                        if connected_once { "lost" } else { "failed" },
                        RECONNECT_DELAY.as_secs(),
                        match unwritten {
                            0 => String::new(),
                            n => format!("; {n} settled message(s) were not acknowledged in time, the broker delivers them again"),
                        }
                    );
                    tokio::time::sleep(RECONNECT_DELAY).await;
                    self.present_credential(&mut events).await?;
                }
            }
        }
    }

    /// Puts the current token into the next CONNECT. A token that cannot be read now is
    /// reported, and the last one read is tried again (the broker says whether it still
    /// holds); before any was read, the reader waits for one rather than connect without.
    async fn present_credential(&self, events: &mut P::Events) -> Result<()> {
        let Some(credential) = &self.credential else {
            return Ok(());
        };
        let mut attempts = 0u64;
        loop {
            match credential.current().await {
                Ok(token) => {
                    if !P::authenticate_with(events, credential.method(), token.clone()) {
                        bail!(
                            "{} authentication needs MQTT 5 (enhanced authentication); this source speaks 3.1.1",
                            credential.method()
                        );
                    }
                    credential.presented(token);
                    return Ok(());
                }
                Err(e) if credential.was_presented() => {
                    tracing::warn!("{e}; connecting with the token read before");
                    return Ok(());
                }
                Err(e) => {
                    if attempts.is_multiple_of(30) {
                        tracing::warn!(
                            "{e}; not connecting to {} without it, trying again every {} s",
                            self.address,
                            RECONNECT_DELAY.as_secs()
                        );
                    }
                    attempts += 1;
                    if self.sender.is_closed() {
                        return Ok(());
                    }
                    tokio::time::sleep(RECONNECT_DELAY).await;
                }
            }
        }
    }

    /// A broker that sends more unacknowledged messages than the receive maximum breaks
    /// MQTT 5 (§3.3.4); the host keeps them all (nothing is dropped), and says so.
    fn check_receive_maximum(&self, counts: &mut ConnectionCounts) {
        let Some(maximum) = self.receive_maximum else {
            return;
        };
        let outstanding = counts.received.saturating_sub(counts.acknowledged);
        if outstanding > maximum {
            MqttCounters::add(&self.counters.beyond_receive_maximum, 1);
            if !counts.excess_reported {
                counts.excess_reported = true;
                tracing::warn!(
                    "the broker at {} sent more than the receive maximum of {maximum} unacknowledged messages; they are kept, but memory is no longer bounded by maxInflightMessages",
                    self.address
                );
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
        origin: Origin::Mqtt,
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

    /// A client whose request queue holds `capacity` PUBACKs until the test drains it.
    struct SmallQueue;

    #[derive(Clone, Default)]
    struct Queue(Arc<Mutex<(usize, Vec<u16>)>>);

    impl Protocol for SmallQueue {
        type Client = Queue;
        type Events = ();

        fn connect(_: &MqttSourceOptions, _: &Path) -> (Queue, ()) {
            unreachable!("the writer never connects")
        }
        async fn poll(_: &mut ()) -> Result<Incoming, String> {
            std::future::pending().await
        }
        fn subscribe(_: &Queue, _: &[String]) -> Result<()> {
            Ok(())
        }
        fn acknowledge(queue: &Queue, pkid: u16) -> bool {
            let mut queue = queue.0.lock().unwrap();
            let (capacity, queued) = &mut *queue;
            if queued.len() >= *capacity {
                return false;
            }
            queued.push(pkid);
            true
        }
        fn forget_acknowledgements(_: &mut ()) {}
        fn authenticate_with(_: &mut (), _: &str, _: Vec<u8>) -> bool {
            true
        }
        fn disconnect(_: &Queue) {}
    }

    #[tokio::test]
    async fn a_full_request_queue_delays_acknowledgements_but_drops_none() {
        let queue = Queue(Arc::new(Mutex::new((8, Vec::new()))));
        let connection = Arc::new(Mutex::new(Connection::default()));
        let counters = Arc::new(MqttCounters::default());
        let writer = AckWriter::<SmallQueue> {
            client: queue.clone(),
            connection: connection.clone(),
            counters: counters.clone(),
            reader_done: Arc::new(AtomicBool::new(false)),
        };
        let (receipts, queued) = mpsc::unbounded_channel();
        let writer = tokio::spawn(writer.run(queued));
        let mut acknowledger = MqttAcknowledger {
            receipts,
            counters: counters.clone(),
        };
        // Three batches of a window each, far more than the queue holds.
        for batch in 0..3u16 {
            let receipts: Vec<u64> = (1..=300).map(|k| receipt(0, batch * 300 + k)).collect();
            acknowledger.acknowledge(&receipts);
        }
        // The event loop takes a few at a time, as a busy connection would.
        let mut written = Vec::new();
        while written.len() < 900 {
            tokio::time::sleep(Duration::from_millis(1)).await;
            written.append(&mut queue.0.lock().unwrap().1);
        }
        assert_eq!(written, (1..=900).collect::<Vec<u16>>());
        assert_eq!(connection.lock().unwrap().queued, 900);

        // Receipts of a connection that is gone are counted, never sent on the new one.
        connection.lock().unwrap().generation = 1;
        acknowledger.acknowledge(&[receipt(0, 7), receipt(1, 8)]);
        drop(acknowledger);
        writer.await.unwrap();
        assert_eq!(queue.0.lock().unwrap().1, vec![8]);
        assert_eq!(counters.totals().acknowledgements_lost, 1);
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
