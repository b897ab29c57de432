//! The contract between a dataflow host and its destination plugins, in one place.
//!
//! - `wit/<version>/destination.wit`: every version of the contract, 1.0.0, 1.1.0 and
//!   1.2.0, side by side (a guest generates its bindings from the version it implements).
//! - [`version`]: which contract a component implements and whether a host runs it.
//! - [`packed`]: the `message-batch` encoding (since 1.1); the host packs with it and guests
//!   read with it, so both sides agree on the layout by construction. Guests map the WIT's
//!   `message-batch` records onto these types (`with` in `wit_bindgen::generate!`), so the
//!   generated code checks at compile time that they match the WIT.
//! - [`host`] (feature `host`): wasmtime bindings generated for each version, and one typed
//!   face over them that calls a plugin through the newest version it implements.

pub mod packed;
pub mod version;

#[cfg(feature = "host")]
pub mod host;

/// Where the WIT of `version` is, for tools and build scripts.
pub fn wit_dir(version: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("wit")
        .join(version)
}
