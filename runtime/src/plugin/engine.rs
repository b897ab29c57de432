//! One wasmtime `Engine` for the whole process, and one thread that advances its epoch.
//! Every plugin, every dataflow and every live swap compiles and runs on it: compiled code,
//! the artifact cache key and the epoch are shared, and a swap starts no thread.

use std::sync::OnceLock;
use std::time::Duration;

use anyhow::Result;
use wasmtime::{Config, Engine};

/// How often the epoch ticks: a running plugin yields to the executor at each tick.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

static ENGINE: OnceLock<Engine> = OnceLock::new();

fn configured() -> Result<Engine> {
    let mut config = Config::new();
    config.epoch_interruption(true);
    // For profiling the plugin with `perf`: DATAFLOW_WASM_PROFILER=perfmap names the
    // compiled wasm functions in /tmp/perf-<pid>.map (see BENCHMARKS.md).
    if std::env::var("DATAFLOW_WASM_PROFILER").as_deref() == Ok("perfmap") {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    Engine::new(&config).map_err(anyhow::Error::from)
}

/// The process's engine; the first call makes it and starts its epoch ticker.
pub fn shared() -> Result<Engine> {
    if let Some(engine) = ENGINE.get() {
        return Ok(engine.clone());
    }
    let made = configured()?;
    Ok(ENGINE
        .get_or_init(|| {
            let ticking = made.clone();
            std::thread::Builder::new()
                .name("wasm-epoch".into())
                .spawn(move || loop {
                    std::thread::sleep(EPOCH_TICK);
                    ticking.increment_epoch();
                })
                .expect("starting the epoch thread");
            made
        })
        .clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_caller_gets_the_same_engine() {
        let (a, b) = (shared().unwrap(), shared().unwrap());
        assert!(Engine::same(&a, &b));
    }
}
