//! End-to-end tests: the real `.wasm` plugin in the real wasmtime host, talking HTTP over
//! loopback to the local ADX-compatible endpoint.

mod artifact_cache;
mod broker_security;
mod delivery;
mod demo;
mod deployment;
mod emulator;
mod identity;
mod ingestion;
mod kql_and_mappings;
mod live_swap;
mod memory;
mod official_client;
mod outbound_policy;
mod page;
mod plugin_inspect;
mod plugin_limits;
mod plugin_restart;
mod requests_in_flight;
mod run_config;
mod sustained_faults;
mod tls;
mod transformation;
mod two_dataflows;
mod wasm_and_native;
