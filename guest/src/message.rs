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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub sequence: u64,
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
