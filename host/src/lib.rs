//! `dataflow-host`: the one command. It runs dataflows (`dataflow-runtime`), serves the local
//! ADX-compatible endpoint (`local-adx`), runs the demo and the benchmark (`dataflow-bench`),
//! and carries the bundled ADX plugin.

pub mod bundled;
pub mod cli;
pub mod demo;
