//! Why a plugin call failed, as a type: the pipeline restarts the instance whatever the
//! cause, and metrics count by cause, without reading wasmtime's wording.

use std::fmt;
use std::time::Duration;

/// The cause of a failed plugin call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureCause {
    /// The instance reached its memory cap.
    Memory,
    /// The call ran past its deadline (busy in wasm, or waiting on the host).
    Deadline,
    /// The plugin trapped (a panic, `unreachable`, an out-of-bounds access).
    Trap,
    /// Anything else (a host error during the call).
    Other,
}

impl FailureCause {
    /// The label metrics use.
    pub fn label(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Deadline => "deadline",
            Self::Trap => "trap",
            Self::Other => "other",
        }
    }

    /// The cause of a plugin failure somewhere in `error`'s chain.
    pub fn of(error: &anyhow::Error) -> Self {
        error
            .chain()
            .find_map(|e| e.downcast_ref::<PluginFailure>())
            .map_or(Self::Other, |failure| failure.cause)
    }
}

/// A call was stopped at its deadline.
#[derive(Debug, Clone, Copy)]
pub struct DeadlineExceeded(pub Duration);

impl fmt::Display for DeadlineExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the plugin call was interrupted at its {:?} deadline",
            self.0
        )
    }
}

impl std::error::Error for DeadlineExceeded {}

/// A failed plugin call with its cause; the instance must not be used again.
#[derive(Debug)]
pub struct PluginFailure {
    pub cause: FailureCause,
    pub error: anyhow::Error,
}

impl fmt::Display for PluginFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.error)
    }
}

impl std::error::Error for PluginFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error.source()
    }
}
