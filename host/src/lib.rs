//! The dataflow host: runs destination plugins (WASI 0.2 components) in wasmtime, feeds them
//! message streams, polices and authenticates their outbound HTTP, and ships a local
//! ADX-compatible endpoint.

pub mod bench;
pub mod broker;
pub mod bundled;
pub mod cli;
pub mod config;
pub mod dead_letter;
pub mod demo;
pub mod emulator;
pub mod files;
pub mod http_client;
pub mod identity;
pub mod kusto_client;
pub mod metrics;
pub mod outbound;
pub mod pipeline;
pub mod plugin;
pub mod progress;
pub mod run;
pub mod sources;
pub mod tls;
