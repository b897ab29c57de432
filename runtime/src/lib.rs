//! The dataflow runtime: runs destination plugins (WASI 0.2 components) in wasmtime, feeds
//! them message streams from their sources, settles every message in order, polices and
//! authenticates their outbound HTTP, and reads Azure IoT Operations resources.
//!
//! The contract with plugins is the `dataflow-contract` crate; this crate is its host.

pub mod config;
pub mod dead_letter;
pub mod files;
pub mod http_client;
pub mod identity;
pub mod metrics;
pub mod mounts;
pub mod outbound;
pub mod pipeline;
pub mod plugin;
pub mod progress;
pub mod run;
pub mod sources;
pub mod state_store;
pub mod tls;
