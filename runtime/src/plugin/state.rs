//! What a plugin's store holds: its WASI context (nothing inherited), its HTTP context with
//! the outbound policy as hooks, its resource limits, and its log.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::outbound::OutboundPolicy;
use dataflow_contract::host::log::{Host as LogHost, Level};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginLogLine {
    pub level: String,
    pub message: String,
}

pub type LogBuffer = Arc<Mutex<Vec<PluginLogLine>>>;

/// Plugin log lines kept for inspection; older ones are dropped.
const MAX_KEPT_LOG_LINES: usize = 1000;

pub struct PluginState {
    name: String,
    /// The contract the plugin implements, to tag its log lines.
    contract: String,
    table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    policy: OutboundPolicy,
    pub limits: TrackedLimits,
    logs: LogBuffer,
}

/// The store's limits, the largest linear memory the plugin has grown to, and whether it
/// asked for more than its cap (the cause of the trap that follows).
pub struct TrackedLimits {
    inner: StoreLimits,
    pub peak_memory_bytes: usize,
    /// Shared with the instance, which reads it when a call fails.
    pub reached_cap: Arc<AtomicBool>,
}

impl ResourceLimiter for TrackedLimits {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.inner.memory_growing(current, desired, maximum);
        match allowed {
            Ok(true) => self.peak_memory_bytes = self.peak_memory_bytes.max(desired),
            _ => self.reached_cap.store(true, Ordering::Relaxed),
        }
        allowed
    }
    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.inner.memory_grow_failed(error)
    }
    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.inner.table_growing(current, desired, maximum)
    }
    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.inner.table_grow_failed(error)
    }
    fn instances(&self) -> usize {
        self.inner.instances()
    }
    fn tables(&self) -> usize {
        self.inner.tables()
    }
    fn memories(&self) -> usize {
        self.inner.memories()
    }
}

impl PluginState {
    pub fn new(
        name: &str,
        contract: String,
        policy: OutboundPolicy,
        max_memory_bytes: usize,
    ) -> Self {
        Self {
            name: name.to_string(),
            contract,
            table: ResourceTable::new(),
            wasi: WasiCtx::builder().build(),
            http: WasiHttpCtx::new(),
            policy,
            limits: TrackedLimits {
                inner: StoreLimitsBuilder::new()
                    .memory_size(max_memory_bytes)
                    // A plugin at its cap is stopped with a cause that says so, instead of
                    // seeing an allocation fail (a Rust guest then aborts with a bare trap).
                    .trap_on_grow_failure(true)
                    .instances(4)
                    .build(),
                peak_memory_bytes: 0,
                reached_cap: Arc::default(),
            },
            logs: LogBuffer::default(),
        }
    }

    pub fn logs(&self) -> LogBuffer {
        self.logs.clone()
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for PluginState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.policy,
        }
    }
}

impl LogHost for PluginState {
    fn log(&mut self, level: Level, message: String) {
        let level = match level {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
        .to_string();
        // Target `plugin`: its lines can be filtered apart from the host's
        // (`DATAFLOW_LOG=info,plugin=debug`).
        let (endpoint, plugin) = (&self.name, &self.contract);
        match level.as_str() {
            "error" => tracing::error!(target: "plugin", endpoint, plugin, "{message}"),
            "warn" => tracing::warn!(target: "plugin", endpoint, plugin, "{message}"),
            "info" => tracing::info!(target: "plugin", endpoint, plugin, "{message}"),
            "debug" => tracing::debug!(target: "plugin", endpoint, plugin, "{message}"),
            _ => tracing::trace!(target: "plugin", endpoint, plugin, "{message}"),
        }
        let mut logs = self.logs.lock().unwrap();
        if logs.len() == MAX_KEPT_LOG_LINES {
            logs.remove(0);
        }
        logs.push(PluginLogLine { level, message });
    }
}
