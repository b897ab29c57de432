//! Plugin runtime: compiles a destination component once, instantiates it per endpoint
//! through an `InstancePre`, and wraps its `sink` resource in plain async methods.
//! Each instance has its own store with a memory cap and a per-call deadline.

mod batch;
mod cache;
pub mod contract;
pub mod directory;
mod state;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use wasmtime::component::{Component, ComponentExportIndex, Linker, ResourceAny};
use wasmtime::{Config, Engine, Store};

pub use cache::{ArtifactCache, Loaded};
use contract::{ComponentSummary, Version, DESTINATION_INTERFACE, HOST_CONTRACT};
pub use state::PluginLogLine;
use state::PluginState;

use crate::http_client::{HttpClient, Transport};
use crate::identity::TokenProvider;
use crate::metrics::Metrics;
use crate::outbound::OutboundPolicy;

wasmtime::component::bindgen!({
    path: "../wit/1.0.0",
    world: "dataflow:destination/destination-plugin",
    exports: { default: async },
    with: {
        "wasi:http": wasmtime_wasi_http::p2::bindings::http,
        "wasi:io": wasmtime_wasi::p2::bindings::io,
        "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
        "wasi:random": wasmtime_wasi::p2::bindings::random,
    },
});

pub use dataflow::destination::types::{
    DestinationError, ErrorClass, Message, Outcome, Rejection, Statistics,
};

/// How often the epoch ticks; deadlines are counted in these.
const EPOCH_TICK: Duration = Duration::from_millis(10);

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Linear memory and tables of one instance.
    pub max_memory_bytes: usize,
    /// Wall-clock bound on one call into the plugin, including the HTTP it waits for.
    pub call_deadline: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_memory_bytes: 512 * 1024 * 1024,
            call_deadline: Duration::from_secs(300),
        }
    }
}

/// A compiled plugin, ready to instantiate many times (cheap to clone).
#[derive(Clone)]
pub struct PluginRuntime {
    engine: Engine,
    pre: DestinationPluginPre<PluginState>,
    /// The plugin's `accept-batch` (contract 1.1), if it has one.
    accept_batch: Option<ComponentExportIndex>,
    limits: Limits,
    transport: Arc<dyn Transport>,
    metrics: Option<Arc<Metrics>>,
    /// How long compiling the component, or loading it from the cache, took.
    pub load_time: Duration,
    pub loaded: Loaded,
    /// The contract version the plugin implements.
    pub contract: Version,
    _ticker: Arc<EpochTicker>,
}

fn engine() -> Result<Engine> {
    let mut config = Config::new();
    config.epoch_interruption(true);
    // For profiling the plugin with `perf`: DATAFLOW_WASM_PROFILER=perfmap names the
    // compiled wasm functions in /tmp/perf-<pid>.map (see BENCHMARKS.md).
    if std::env::var("DATAFLOW_WASM_PROFILER").as_deref() == Ok("perfmap") {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    Engine::new(&config).map_err(anyhow::Error::from)
}

/// Checks the contract version, then links the component against what the host provides:
/// its imports must be there and its exports must have the shape this host knows.
fn link(
    engine: &Engine,
    component: &Component,
) -> Result<(DestinationPluginPre<PluginState>, Version)> {
    let contract = ComponentSummary::of(engine, component).check()?;
    let mut linker: Linker<PluginState> = Linker::new(engine);
    // Rust's std imports wasi:cli and friends; the plugin gets them with nothing behind
    // them (no preopened directories, no environment, no sockets).
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    dataflow::destination::log::add_to_linker::<_, wasmtime::component::HasSelf<_>>(
        &mut linker,
        |state| state,
    )?;
    let instance = linker
        .instantiate_pre(component)
        .map_err(anyhow::Error::from)
        .context("the plugin imports something this host does not provide")?;
    let pre = DestinationPluginPre::new(instance)
        .map_err(anyhow::Error::from)
        .with_context(|| {
            format!("the plugin's {DESTINATION_INTERFACE}@{contract} does not have the shape this host knows ({HOST_CONTRACT})")
        })?;
    Ok((pre, contract))
}

/// What a component file is, and whether this host runs it (`dataflow-host plugin inspect`).
pub fn inspect(wasm: &[u8]) -> Result<(ComponentSummary, Result<Version>)> {
    let engine = engine()?;
    let component = cache::compile(&engine, wasm)?;
    let summary = ComponentSummary::of(&engine, &component);
    let runs = link(&engine, &component).map(|(_, version)| version);
    Ok((summary, runs))
}

impl PluginRuntime {
    /// Compiles the component.
    pub fn new(wasm: &[u8], limits: Limits) -> Result<Self> {
        Self::load(wasm, limits, None)
    }

    /// Loads the component from `cache` when it holds it, or compiles it (and stores it).
    pub fn load(wasm: &[u8], limits: Limits, cache: Option<&ArtifactCache>) -> Result<Self> {
        let engine = engine()?;
        let started = Instant::now();
        let (component, loaded) = match cache {
            Some(cache) => cache.load_or_compile(&engine, wasm)?,
            None => (cache::compile(&engine, wasm)?, Loaded::Compiled),
        };
        let load_time = started.elapsed();
        let (pre, contract) = link(&engine, &component)?;
        let accept_batch = batch::find(&component);
        let ticker = Arc::new(EpochTicker::start(engine.clone()));
        Ok(Self {
            engine,
            pre,
            accept_batch,
            limits,
            transport: Arc::new(HttpClient::system()),
            metrics: None,
            load_time,
            loaded,
            contract,
            _ticker: ticker,
        })
    }

    /// Where the plugins' allowed requests go: by default the network, through a client
    /// that trusts the webpki roots.
    pub fn with_transport(mut self, transport: Arc<dyn Transport>) -> Self {
        self.transport = transport;
        self
    }

    /// Where the plugins' requests are counted and timed.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Instantiates the plugin for one endpoint and opens its sink with `config`.
    /// `endpoint` is the only host its HTTP may reach; `tokens` authenticates it.
    pub async fn open(
        &self,
        name: &str,
        endpoint: &str,
        tokens: Arc<dyn TokenProvider>,
        config: Vec<(String, String)>,
    ) -> Result<PluginSink> {
        let opening = Opening {
            runtime: self.clone(),
            name: name.to_string(),
            endpoint: endpoint.to_string(),
            tokens,
            config,
        };
        let instance = opening.instantiate().await?;
        Ok(PluginSink {
            instance,
            opening,
            restarts: 0,
        })
    }

    fn deadline_ticks(&self) -> u64 {
        (self.limits.call_deadline.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64
    }
}

/// What opening a sink took, kept to open it again in a fresh instance.
struct Opening {
    runtime: PluginRuntime,
    name: String,
    endpoint: String,
    tokens: Arc<dyn TokenProvider>,
    config: Vec<(String, String)>,
}

impl Opening {
    async fn instantiate(&self) -> Result<Instance> {
        let runtime = &self.runtime;
        let policy = OutboundPolicy::new(
            &self.endpoint,
            self.tokens.clone(),
            runtime.transport.clone(),
        )?
        .observed_by(runtime.metrics.clone());
        let contract = format!("{DESTINATION_INTERFACE}@{}", runtime.contract);
        let state = PluginState::new(
            &self.name,
            contract,
            policy,
            runtime.limits.max_memory_bytes,
        );
        let logs = state.logs();
        let mut store = Store::new(&runtime.engine, state);
        store.limiter(|s| &mut s.limits);
        store.epoch_deadline_trap();
        let started = Instant::now();
        store.set_epoch_deadline(runtime.deadline_ticks());
        let instance = runtime
            .pre
            .instance_pre()
            .instantiate_async(&mut store)
            .await?;
        let bindings = DestinationPlugin::new(&mut store, &instance)?;
        let accept_batch = match &runtime.accept_batch {
            Some(index) => Some(batch::typed(&mut store, &instance, index)?),
            None => None,
        };
        let instantiate_time = started.elapsed();
        let sink = bindings
            .dataflow_destination_destination()
            .sink()
            .call_open(&mut store, &self.config)
            .await?
            .map_err(|e| anyhow!("plugin `{}`: {}", self.name, describe(&e)))?;
        Ok(Instance {
            store,
            bindings,
            accept_batch,
            sink,
            deadline_ticks: runtime.deadline_ticks(),
            call_deadline: runtime.limits.call_deadline,
            instantiate_time,
            logs,
        })
    }
}

/// One plugin instance with its open sink.
struct Instance {
    store: Store<PluginState>,
    bindings: DestinationPlugin,
    /// Present when the plugin implements contract 1.1 or later.
    accept_batch: Option<batch::AcceptBatch>,
    sink: ResourceAny,
    deadline_ticks: u64,
    call_deadline: Duration,
    instantiate_time: Duration,
    logs: state::LogBuffer,
}

/// One open sink of a plugin, in an instance that `restart` can replace.
pub struct PluginSink {
    instance: Instance,
    opening: Opening,
    /// Fresh instances that replaced a failed one.
    pub restarts: u32,
}

impl PluginSink {
    pub fn instantiate_time(&self) -> Duration {
        self.instance.instantiate_time
    }

    /// The largest linear memory the current instance has grown to, in bytes.
    pub fn peak_memory_bytes(&self) -> usize {
        self.instance.store.data().limits.peak_memory_bytes
    }

    /// Replaces the instance with a fresh one, opened with the same configuration: after a
    /// trap, a memory cap or a deadline, the old one must not be used again. What it held
    /// is gone; the caller gives the new one the unsettled messages again.
    pub async fn restart(&mut self) -> Result<()> {
        self.instance = self.opening.instantiate().await?;
        self.restarts += 1;
        Ok(())
    }

    /// What the plugin logged so far (of the current instance).
    pub fn logs(&self) -> Vec<PluginLogLine> {
        self.instance.logs.lock().unwrap().clone()
    }

    pub async fn accept(&mut self, messages: &[Message]) -> Result<Outcome> {
        self.instance.accept(messages).await
    }

    pub async fn next_flush_due(&mut self) -> Result<Option<Duration>> {
        self.instance.next_flush_due().await
    }

    pub async fn flush(&mut self) -> Result<Outcome> {
        self.instance.flush().await
    }

    pub async fn close(&mut self) -> Result<Outcome> {
        self.instance.close().await
    }

    pub async fn statistics(&mut self) -> Result<Statistics> {
        self.instance.statistics().await
    }
}

impl Instance {
    pub async fn accept(&mut self, messages: &[Message]) -> Result<Outcome> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        if let Some(accept_batch) = &self.accept_batch {
            let batch = batch::MessageBatch::pack(messages);
            let call = accept_batch.call_async(&mut self.store, (self.sink, batch));
            return within(self.call_deadline, call)
                .await
                .map(|(outcome,)| outcome);
        }
        let sink = self.bindings.dataflow_destination_destination().sink();
        within(
            self.call_deadline,
            sink.call_accept(&mut self.store, self.sink, messages),
        )
        .await
    }

    pub async fn next_flush_due(&mut self) -> Result<Option<Duration>> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        let sink = self.bindings.dataflow_destination_destination().sink();
        let ms = within(
            self.call_deadline,
            sink.call_next_flush_due_ms(&mut self.store, self.sink),
        )
        .await?;
        Ok(ms.map(Duration::from_millis))
    }

    pub async fn flush(&mut self) -> Result<Outcome> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        let sink = self.bindings.dataflow_destination_destination().sink();
        within(
            self.call_deadline,
            sink.call_flush(&mut self.store, self.sink),
        )
        .await
    }

    pub async fn close(&mut self) -> Result<Outcome> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        let sink = self.bindings.dataflow_destination_destination().sink();
        within(
            self.call_deadline,
            sink.call_close(&mut self.store, self.sink),
        )
        .await
    }

    pub async fn statistics(&mut self) -> Result<Statistics> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        let sink = self.bindings.dataflow_destination_destination().sink();
        within(
            self.call_deadline,
            sink.call_statistics(&mut self.store, self.sink),
        )
        .await
    }
}

/// Bounds a call in wall-clock time too: the epoch deadline only fires while wasm code runs,
/// not while the plugin waits on the host (an HTTP answer that never comes). After a timeout
/// the instance must not be used again.
async fn within<T>(
    deadline: Duration,
    call: impl std::future::Future<Output = wasmtime::Result<T>>,
) -> Result<T> {
    match tokio::time::timeout(deadline, call).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(anyhow!(
            "the plugin call did not finish within its {deadline:?} deadline"
        )),
    }
}

pub fn describe(e: &DestinationError) -> String {
    let class = match e.class {
        ErrorClass::Configuration => "configuration error",
        ErrorClass::Transient => "transient error",
        ErrorClass::Permanent => "permanent error",
    };
    format!("{class}: {}", e.message)
}

/// Advances the engine's epoch so that deadlines fire; stops when dropped.
struct EpochTicker {
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl EpochTicker {
    fn start(engine: Engine) -> Self {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                engine.increment_epoch();
            }
        });
        Self { stop }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}
