//! Plugin runtime: compiles a destination component once, instantiates it per endpoint
//! through an `InstancePre`, and wraps its `sink` resource in plain async methods. The
//! contract's bindings (every version) are in `dataflow-contract`; this module gives them a
//! store with a memory cap, a per-call deadline and the outbound policy.
//!
//! A running plugin yields to the executor at every epoch tick, so a busy plugin does not
//! hold a worker thread, and the wall-clock deadline fires whether the plugin computes or
//! waits on the host.

mod cache;
pub mod directory;
pub mod engine;
mod failure;
mod state;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use dataflow_contract::host::{ComponentSummary, Plugin, PluginPre};
use dataflow_contract::version::{Version, VersionError};
use wasmtime::component::{Component, Linker, ResourceAny};
use wasmtime::{Store, UpdateDeadline};

pub use cache::{ArtifactCache, Loaded};
pub use dataflow_contract::host::{
    ClassifiedOutcome as Outcome, ClassifiedRejection as Rejection, DestinationError, ErrorClass,
    Message, RejectionKind, Statistics,
};
pub use failure::{DeadlineExceeded, FailureCause, PluginFailure};
pub use state::PluginLogLine;
use state::PluginState;

use crate::http_client::{HttpClient, Transport};
use crate::identity::TokenProvider;
use crate::outbound::{OutboundPolicy, RequestObserver};

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
    pre: PluginPre<PluginState>,
    limits: Limits,
    transport: Arc<dyn Transport>,
    observer: Option<Arc<dyn RequestObserver>>,
    /// How long compiling the component, or loading it from the cache, took.
    pub load_time: Duration,
    pub loaded: Loaded,
    /// The contract version the plugin implements.
    pub contract: Version,
}

/// Checks the contract version, then links the component against what the host provides:
/// its imports must be there and its exports must have the shape of the newest contract
/// version the plugin implements.
fn link(component: &Component) -> Result<PluginPre<PluginState>> {
    let engine = component.engine();
    let contract = ComponentSummary::of(engine, component)
        .check()
        .map_err(anyhow::Error::from)?;
    let mut linker: Linker<PluginState> = Linker::new(engine);
    // Rust's std imports wasi:cli and friends; the plugin gets them with nothing behind
    // them (no preopened directories, no environment, no sockets).
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    // One `log` for every 1.x plugin: the linker resolves semver-compatible imports.
    dataflow_contract::host::log::add_to_linker::<_, wasmtime::component::HasSelf<_>>(
        &mut linker,
        |state| state,
    )?;
    let instance = linker
        .instantiate_pre(component)
        .map_err(anyhow::Error::from)
        .context("the plugin imports something this host does not provide")?;
    PluginPre::new(contract, instance)
}

/// What a component file is, and whether this host runs it (`dataflow-host plugin inspect`):
/// its summary, and the contract version whose bindings would call it.
pub fn inspect(wasm: &[u8]) -> Result<(ComponentSummary, Result<Version>)> {
    let engine = engine::shared()?;
    let component = cache::compile(&engine, wasm)?;
    let summary = ComponentSummary::of(&engine, &component);
    let runs = link(&component).map(|pre| pre.bindings());
    Ok((summary, runs))
}

/// Why a component does not run here, when it is a matter of its contract version.
pub fn version_error(error: &anyhow::Error) -> Option<&VersionError> {
    error.downcast_ref::<VersionError>()
}

impl PluginRuntime {
    /// Compiles the component.
    pub fn new(wasm: &[u8], limits: Limits) -> Result<Self> {
        Self::load(wasm, limits, None)
    }

    /// Loads the component from `cache` when it holds it, or compiles it (and stores it).
    pub fn load(wasm: &[u8], limits: Limits, cache: Option<&ArtifactCache>) -> Result<Self> {
        let engine = engine::shared()?;
        let started = Instant::now();
        let (component, loaded) = match cache {
            Some(cache) => cache.load_or_compile(&engine, wasm)?,
            None => (cache::compile(&engine, wasm)?, Loaded::Compiled),
        };
        let load_time = started.elapsed();
        let contract = ComponentSummary::of(&engine, &component)
            .check()
            .map_err(anyhow::Error::from)?;
        let pre = link(&component)?;
        Ok(Self {
            pre,
            limits,
            transport: Arc::new(HttpClient::system()),
            observer: None,
            load_time,
            loaded,
            contract,
        })
    }

    /// The contract version whose bindings call this plugin (the newest both know).
    pub fn bindings(&self) -> Version {
        self.pre.bindings()
    }

    /// Where the plugins' allowed requests go: by default the network, through a client
    /// that trusts the webpki roots.
    pub fn with_transport(mut self, transport: Arc<dyn Transport>) -> Self {
        self.transport = transport;
        self
    }

    /// Who is told of the plugins' requests (status, latency, size).
    pub fn with_observer(mut self, observer: Arc<dyn RequestObserver>) -> Self {
        self.observer = Some(observer);
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
        SinkOpener(opening).open().await
    }
}

/// What opening a sink took, kept to open it again in a fresh instance.
#[derive(Clone)]
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
        .observed_by(runtime.observer.clone());
        let contract = format!(
            "{}@{}",
            dataflow_contract::version::DESTINATION_INTERFACE,
            runtime.contract
        );
        let state = PluginState::new(
            &self.name,
            contract,
            policy,
            runtime.limits.max_memory_bytes,
        );
        let logs = state.logs();
        let reached_cap = state.limits.reached_cap.clone();
        let mut store = Store::new(runtime.pre.component().engine(), state);
        store.limiter(|s| &mut s.limits);
        // At every tick a running plugin hands the worker back to the executor; the deadline
        // is the wall-clock bound of `Instance::call`, which can then fire at once.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|_| {
            Ok(UpdateDeadline::YieldCustom(
                1,
                Box::pin(tokio::task::yield_now()),
            ))
        });
        let started = Instant::now();
        let deadline = runtime.limits.call_deadline;
        let plugin = within(deadline, runtime.pre.instantiate(&mut store)).await?;
        let instantiate_time = started.elapsed();
        let sink = within(deadline, plugin.open(&mut store, &self.config))
            .await?
            .map_err(|e| anyhow!("plugin `{}`: {}", self.name, describe(&e)))?;
        Ok(Instance {
            store,
            plugin,
            sink,
            call_deadline: deadline,
            instantiate_time,
            logs,
            reached_cap,
        })
    }
}

/// Opens sinks like one opened before (`PluginSink::opener`), each in an instance of its own.
#[derive(Clone)]
pub struct SinkOpener(Opening);

impl SinkOpener {
    pub async fn open(&self) -> Result<PluginSink> {
        let opening = self.0.clone();
        let instance = opening.instantiate().await?;
        Ok(PluginSink {
            instance,
            opening,
            restarts: 0,
        })
    }
}

/// One plugin instance with its open sink.
struct Instance {
    store: Store<PluginState>,
    plugin: Plugin,
    sink: ResourceAny,
    call_deadline: Duration,
    instantiate_time: Duration,
    logs: state::LogBuffer,
    /// Whether the instance asked for memory past its cap (the store's limiter sets it).
    reached_cap: Arc<std::sync::atomic::AtomicBool>,
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

    /// What opens more instances of this plugin with the same configuration: a pipeline
    /// keeps several side by side, so that one sends while another converts.
    pub fn opener(&self) -> SinkOpener {
        SinkOpener(self.opening.clone())
    }

    /// What the plugin logged so far (of the current instance).
    pub fn logs(&self) -> Vec<PluginLogLine> {
        self.instance.logs.lock().unwrap().clone()
    }

    pub async fn accept(&mut self, messages: &[Message]) -> Result<Outcome, PluginFailure> {
        self.instance
            .call(|plugin, store, sink| Box::pin(plugin.accept(store, sink, messages)))
            .await
    }

    pub async fn next_flush_due(&mut self) -> Result<Option<Duration>, PluginFailure> {
        let ms = self
            .instance
            .call(|plugin, store, sink| Box::pin(plugin.next_flush_due_ms(store, sink)))
            .await?;
        Ok(ms.map(Duration::from_millis))
    }

    pub async fn flush(&mut self) -> Result<Outcome, PluginFailure> {
        self.instance
            .call(|plugin, store, sink| Box::pin(plugin.flush(store, sink)))
            .await
    }

    pub async fn close(&mut self) -> Result<Outcome, PluginFailure> {
        self.instance
            .call(|plugin, store, sink| Box::pin(plugin.close(store, sink)))
            .await
    }

    pub async fn statistics(&mut self) -> Result<Statistics, PluginFailure> {
        self.instance
            .call(|plugin, store, sink| Box::pin(plugin.statistics(store, sink)))
            .await
    }
}

/// A call into the plugin, as the bindings return it.
type Call<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = wasmtime::Result<T>> + Send + 'a>>;

impl Instance {
    /// Makes one call within the deadline; a failure comes back with its cause, from what
    /// the store saw and the error's type.
    async fn call<'a, T>(
        &'a mut self,
        call: impl FnOnce(&'a Plugin, &'a mut Store<PluginState>, ResourceAny) -> Call<'a, T>,
    ) -> Result<T, PluginFailure> {
        let reached_cap = self.reached_cap.clone();
        let result = within(
            self.call_deadline,
            call(&self.plugin, &mut self.store, self.sink),
        )
        .await;
        result.map_err(|error| {
            let has = |is: fn(&(dyn std::error::Error + 'static)) -> bool| error.chain().any(is);
            let cause = if reached_cap.load(std::sync::atomic::Ordering::Relaxed) {
                FailureCause::Memory
            } else if has(|e| e.is::<DeadlineExceeded>()) {
                FailureCause::Deadline
            } else if has(|e| e.is::<wasmtime::Trap>()) {
                FailureCause::Trap
            } else {
                FailureCause::Other
            };
            PluginFailure { cause, error }
        })
    }
}

/// Bounds a call in wall-clock time, whether the plugin computes (it yields at every epoch
/// tick) or waits on the host (an HTTP answer that never comes). After a timeout the
/// instance must not be used again.
async fn within<T>(
    deadline: Duration,
    call: impl std::future::Future<Output = wasmtime::Result<T>>,
) -> Result<T> {
    match tokio::time::timeout(deadline, call).await {
        Ok(result) => result.map_err(anyhow::Error::from),
        Err(_) => Err(DeadlineExceeded(deadline).into()),
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
