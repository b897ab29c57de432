//! Plugins built with the host and embedded in it, so the demo needs no files.

/// The Azure Data Explorer destination component (`guest/`), built for `wasm32-wasip2`.
pub const ADX_DESTINATION: &[u8] = include_bytes!(env!("ADX_DESTINATION_WASM"));
