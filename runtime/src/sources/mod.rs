//! Message sources: each pushes messages into a bounded channel, so a slow destination slows
//! the source down instead of filling memory.

pub mod jsonl;
pub mod mqtt;
pub mod synthetic;

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::plugin::Message;

/// A message as a source delivers it, before the host assigns its sequence number.
#[derive(Debug, Clone, Default)]
pub struct SourceMessage {
    pub topic: String,
    pub payload: Vec<u8>,
    pub content_type: Option<String>,
    pub user_properties: Vec<(String, String)>,
    pub timestamp_nanos: u64,
    /// Where it came from, for error reports and dead letters.
    pub origin: Origin,
    /// What the source needs to acknowledge this message (an MQTT packet id); none for
    /// sources that take no acknowledgements.
    pub receipt: Option<u64>,
}

/// Where a message came from, as the dead-letter sink and the report name it
/// (`input.jsonl:12`, `mqtt factory/line1`, `generator:5`). Kept for every message in flight,
/// so it is cheap to make and to keep: a line of a file shares the file's name, and a message
/// from a broker is named by its topic, which it carries anyway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Line `line` of `source`.
    Line {
        source: Arc<str>,
        line: u64,
    },
    /// Received from the MQTT broker, on the message's topic.
    Mqtt,
    Text(String),
}

impl Origin {
    /// The origin in words; `topic` is the message's own.
    pub fn describe(&self, topic: &str) -> String {
        match self {
            Self::Line { source, line } => format!("{source}:{line}"),
            Self::Mqtt => format!("mqtt {topic}"),
            Self::Text(text) => text.clone(),
        }
    }
}

impl Default for Origin {
    fn default() -> Self {
        Self::Text(String::new())
    }
}

impl From<String> for Origin {
    fn from(text: String) -> Self {
        Self::Text(text)
    }
}

/// A source that wants to hear when its messages are settled (ingested, or dead-lettered
/// with a reason). Receipts arrive in the order the messages did.
pub trait Acknowledger: Send {
    fn acknowledge(&mut self, receipts: &[u64]);
}

impl SourceMessage {
    /// The message as a plugin receives it, with its host-assigned sequence number, and
    /// where it came from.
    pub fn into_plugin_message(self, sequence: u64) -> (Message, Origin) {
        let message = Message {
            sequence,
            topic: self.topic,
            payload: self.payload,
            content_type: self.content_type,
            user_properties: self.user_properties,
            timestamp_nanos: self.timestamp_nanos,
        };
        (message, self.origin)
    }
}

pub type SourceSender = mpsc::Sender<SourceMessage>;

/// Where the pipeline reads a source's messages. A source that can wait (a file) sends into
/// a bounded channel; a network client that must keep reading its connection (MQTT, whose
/// keep-alives and acknowledgements go out only while it is polled) sends into an unbounded
/// one, bounded instead by its protocol's in-flight window.
pub struct SourceReceiver(Receiver);

enum Receiver {
    Bounded(mpsc::Receiver<SourceMessage>),
    Unbounded(mpsc::UnboundedReceiver<SourceMessage>),
}

impl SourceReceiver {
    /// The next message; `None` once the source ended.
    pub async fn recv(&mut self) -> Option<SourceMessage> {
        match &mut self.0 {
            Receiver::Bounded(r) => r.recv().await,
            Receiver::Unbounded(r) => r.recv().await,
        }
    }

    /// Waits for at least one message and takes up to `limit`; 0 once the source ended.
    pub async fn recv_many(&mut self, buffer: &mut Vec<SourceMessage>, limit: usize) -> usize {
        match &mut self.0 {
            Receiver::Bounded(r) => r.recv_many(buffer, limit).await,
            Receiver::Unbounded(r) => r.recv_many(buffer, limit).await,
        }
    }
}

/// Messages a source may have in flight before it waits for the pipeline: two of the
/// pipeline's chunks (`feed_chunk`), so that the next is read while one is handed over.
/// Each is held whole until the pipeline takes it.
pub const CHANNEL_CAPACITY: usize = 2_000;

pub fn channel() -> (SourceSender, SourceReceiver) {
    let (sender, receiver) = mpsc::channel(CHANNEL_CAPACITY);
    (sender, SourceReceiver(Receiver::Bounded(receiver)))
}

/// For a source that must never wait on the pipeline: its own window bounds what it sends.
pub fn unbounded_channel() -> (mpsc::UnboundedSender<SourceMessage>, SourceReceiver) {
    let (sender, receiver) = mpsc::unbounded_channel();
    (sender, SourceReceiver(Receiver::Unbounded(receiver)))
}

pub fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default()
}
