//! Azure Data Explorer destination.
//!
//! The core (configuration, schema, conversion, encoding, batching, the Kusto request and
//! response rules) is plain Rust that compiles natively and to wasm; only `component`
//! touches WASI, and only when built for `wasm32`.

pub mod batch;
pub mod config;
pub mod convert;
pub mod destination;
pub mod encode;
pub mod kusto;
pub mod message;
pub mod payload;
pub mod scan;

// Kusto's own rules, shared with the local endpoint and the runtime.
pub use kusto_model::{datetime, schema};

#[cfg(target_arch = "wasm32")]
mod component;
