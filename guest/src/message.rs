//! The types the core shares with the contract, independent of the generated bindings.

/// One message from a source.
#[derive(Debug, Clone, Default)]
pub struct Message {
    pub sequence: u64,
    pub topic: String,
    pub payload: Vec<u8>,
    pub content_type: Option<String>,
    pub user_properties: Vec<(String, String)>,
    pub timestamp_nanos: u64,
}

/// A message borrowed from wherever the platform keeps it: an owned `Message`, or a packed
/// batch (`packed`). This is what the conversion reads.
#[derive(Debug, Clone, Copy)]
pub struct MessageRef<'a> {
    pub sequence: u64,
    pub topic: &'a str,
    pub payload: &'a [u8],
    pub content_type: Option<&'a str>,
    pub user_properties: Properties<'a>,
    pub timestamp_nanos: u64,
}

/// User properties, as an owned message or a packed batch holds them.
#[derive(Debug, Clone, Copy)]
pub enum Properties<'a> {
    Owned(&'a [(String, String)]),
    Borrowed(&'a [(&'a str, &'a str)]),
}

impl<'a> Properties<'a> {
    /// The first property named `name`.
    pub fn get(self, name: &str) -> Option<&'a str> {
        match self {
            Self::Owned(pairs) => pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str()),
            Self::Borrowed(pairs) => pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| *v),
        }
    }

    pub fn to_vec(self) -> Vec<(&'a str, &'a str)> {
        match self {
            Self::Owned(pairs) => pairs
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
            Self::Borrowed(pairs) => pairs.to_vec(),
        }
    }
}

impl Message {
    /// Packs owned messages into the contract's `message-batch`, as a host does.
    pub fn pack(messages: &[Message]) -> dataflow_contract::packed::MessageBatch {
        dataflow_contract::packed::MessageBatch::pack(messages.iter().map(|m| {
            dataflow_contract::packed::Unpacked {
                sequence: m.sequence,
                timestamp_nanos: m.timestamp_nanos,
                topic: &m.topic,
                payload: &m.payload,
                content_type: m.content_type.as_deref(),
                user_properties: m
                    .user_properties
                    .iter()
                    .map(|(name, value)| (name.as_str(), value.as_str())),
            }
        }))
    }

    pub fn view(&self) -> MessageRef<'_> {
        MessageRef {
            sequence: self.sequence,
            topic: &self.topic,
            payload: &self.payload,
            content_type: self.content_type.as_deref(),
            user_properties: Properties::Owned(&self.user_properties),
            timestamp_nanos: self.timestamp_nanos,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    Configuration,
    Transient,
    Permanent,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestinationError {
    pub class: ErrorClass,
    pub message: String,
    pub retry_after_ms: Option<u64>,
}

impl DestinationError {
    pub fn configuration(message: impl Into<String>) -> Self {
        Self {
            class: ErrorClass::Configuration,
            message: message.into(),
            retry_after_ms: None,
        }
    }
    pub fn transient(message: impl Into<String>, retry_after_ms: Option<u64>) -> Self {
        Self {
            class: ErrorClass::Transient,
            message: message.into(),
            retry_after_ms,
        }
    }
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            class: ErrorClass::Permanent,
            message: message.into(),
            retry_after_ms: None,
        }
    }
}

impl std::fmt::Display for DestinationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let class = match self.class {
            ErrorClass::Configuration => "configuration error",
            ErrorClass::Transient => "transient error",
            ErrorClass::Permanent => "permanent error",
        };
        write!(f, "{class}: {}", self.message)
    }
}

impl std::error::Error for DestinationError {}

/// Why a message will never be accepted: the contract's `rejection-kind` (since 1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectionKind {
    Conversion,
    Payload,
    Size,
    RefusedByDestination,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub sequence: u64,
    pub kind: RejectionKind,
    pub reason: String,
}

/// Acknowledgements from one call; see `outcome` in the WIT contract.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    pub ingested: Vec<u64>,
    pub rejected: Vec<Rejection>,
    pub failure: Option<DestinationError>,
}

impl Outcome {
    pub fn absorb(&mut self, other: Outcome) {
        self.ingested.extend(other.ingested);
        self.rejected.extend(other.rejected);
        if other.failure.is_some() {
            self.failure = other.failure;
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Statistics {
    pub messages_accepted: u64,
    pub messages_ingested: u64,
    pub messages_rejected: u64,
    pub requests: u64,
    pub failed_requests: u64,
    pub bytes_encoded: u64,
    pub bytes_sent: u64,
}
