//! `dataflow-host bench`: what the plugin itself costs. The same thermostat messages go
//! through the ADX plugin component in wasmtime (its HTTP answered in-process, so no network
//! is measured) and through the same core compiled natively, in one run, for each stream
//! format, gzip level and batch size.

mod connections;
pub mod distant;
pub mod drain;
pub mod end_to_end;
mod loopback;
pub mod official_sdk;
pub mod transformation;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use adx_destination::destination::{Destination, Platform, TransportError};
use adx_destination::kusto::{HttpRequest, HttpResponse};
use adx_destination::message::Message as CoreMessage;

use dataflow_runtime::http_client::Discard;
use dataflow_runtime::identity::StaticToken;
use dataflow_runtime::plugin::{ArtifactCache, Limits, Loaded, Message, PluginRuntime};
use dataflow_runtime::sources::synthetic::{thermostat_message, THERMOSTAT_TABLE};

#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub messages: usize,
    pub batch_sizes: Vec<usize>,
    pub runs: usize,
    /// End to end through a local mosquitto, one run per case.
    pub end_to_end: Vec<end_to_end::Case>,
    /// HTTPS requests per client in the keep-alive comparison.
    pub https_requests: usize,
    /// The host's own command (`dataflow-host`) and a Python with the official Kusto client:
    /// both are needed for the comparison with it.
    pub host_command: Option<PathBuf>,
    pub python: Option<PathBuf>,
}

impl BenchOptions {
    /// A few seconds: enough to keep the command from rotting in CI.
    pub fn quick() -> Self {
        Self {
            messages: 20_000,
            batch_sizes: vec![1000],
            runs: 1,
            end_to_end: end_to_end::Case::standard(Duration::from_secs(1)),
            https_requests: 100,
            host_command: None,
            python: None,
        }
    }
}

impl Default for BenchOptions {
    fn default() -> Self {
        Self {
            messages: 100_000,
            batch_sizes: vec![100, 1000, 10_000],
            runs: 5,
            end_to_end: end_to_end::Case::standard(Duration::from_secs(10)),
            https_requests: 1000,
            host_command: None,
            python: None,
        }
    }
}

/// Median, min and max of several runs.
#[derive(Debug, Clone, Copy)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    fn of(mut values: Vec<f64>) -> Self {
        values.sort_by(|a, b| a.total_cmp(b));
        Self {
            median: values[values.len() / 2],
            min: values[0],
            max: values[values.len() - 1],
        }
    }
}

#[derive(Debug, Clone)]
pub struct Throughput {
    pub format: &'static str,
    pub compression_level: u32,
    pub batch: usize,
    /// Messages per second.
    pub wasm: Spread,
    pub native: Spread,
    /// Payload megabytes per second through the plugin.
    pub wasm_input_mb_per_s: f64,
    /// Bytes sent over bytes encoded (1 without gzip).
    pub sent_fraction: f64,
    /// The largest linear memory the plugin grew to, in bytes.
    pub peak_guest_memory: usize,
}

#[derive(Debug, Clone)]
pub struct BenchReport {
    pub cores: usize,
    pub messages: usize,
    pub payload_bytes: usize,
    pub throughput: Vec<Throughput>,
    /// One message per call, sent at once (latencySeconds 0): wasm and native.
    pub call_wasm: Duration,
    pub call_native: Duration,
    pub compile: Duration,
    /// Loading the compiled component from the artifact cache, in seconds.
    pub cache_load: Spread,
    /// MQTT publish → row on loopback; the reason when it could not run (no mosquitto).
    pub end_to_end: Vec<Result<end_to_end::EndToEnd, String>>,

    /// Instantiation from the `InstancePre`, warm, in seconds.
    pub instantiate: Spread,
    /// HTTPS requests to the local endpoint with keep-alive and without.
    pub connections: Result<connections::Connections, String>,
    /// The pipeline with howto-create-dataflow's thermostat transformation and without.
    pub transformation: transformation::TransformationCost,
    /// A queued backlog drained by the host against `mosquitto_sub`, plain and TLS, with and
    /// without the thermostat transformation.
    pub drain: Result<drain::Drain, String>,
    /// The pipeline against an endpoint whose answers come late, with one request in flight
    /// and with several.
    pub distant: Result<distant::Distant, String>,
    /// The whole host against a script around the official Python client, in CPU.
    pub official_sdk: Result<official_sdk::SdkComparison, String>,
}

const CASES: &[(&str, u32)] = &[
    ("multijson", 0),
    ("csv", 0),
    ("multijson", 1),
    ("multijson", 6),
];

fn config(
    format: &str,
    compression_level: u32,
    batch: usize,
    latency_seconds: u64,
) -> Vec<(String, String)> {
    [
        (
            "host",
            "https://bench.westeurope.kusto.windows.net".to_string(),
        ),
        ("database", "bench".to_string()),
        ("schema", THERMOSTAT_TABLE.to_string()),
        ("columns.MqttTopic", "$metadata.topic".to_string()),
        ("format", format.to_string()),
        ("compressionLevel", compression_level.to_string()),
        ("batching.maxMessages", batch.to_string()),
        ("batching.latencySeconds", latency_seconds.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The native side's platform: answers 200 at once, like `Discard` does for the plugin.
struct NativeDiscard {
    started: Instant,
    requests: u64,
}

impl Platform for NativeDiscard {
    fn send(&mut self, _request: HttpRequest) -> Result<HttpResponse, TransportError> {
        Ok(HttpResponse {
            status: 200,
            ..Default::default()
        })
    }
    fn now_nanos(&self) -> u64 {
        self.started.elapsed().as_nanos() as u64
    }
    fn request_id(&mut self) -> String {
        self.requests += 1;
        self.requests.to_string()
    }
}

fn native_destination(config: &[(String, String)]) -> Result<Destination<NativeDiscard>> {
    Ok(Destination::open(
        config,
        NativeDiscard {
            started: Instant::now(),
            requests: 0,
        },
    )?)
}

/// Measures `plugin` (the ADX destination component; `dataflow-host` passes its bundled one).
pub async fn run(options: &BenchOptions, plugin: &[u8]) -> Result<BenchReport> {
    let base = dataflow_runtime::sources::now_nanos();
    let wasm: Vec<Message> = (0..options.messages as u64)
        .map(|i| thermostat_message(i, base).into_plugin_message(i).0)
        .collect();
    let payload_bytes: usize = wasm.iter().map(|m| m.payload.len()).sum();
    let core: Vec<CoreMessage> = wasm
        .iter()
        .map(|m| CoreMessage {
            sequence: m.sequence,
            topic: m.topic.clone(),
            payload: m.payload.clone(),
            content_type: m.content_type.clone(),
            user_properties: m.user_properties.clone(),
            timestamp_nanos: m.timestamp_nanos,
        })
        .collect();

    let runtime = PluginRuntime::new(plugin, Limits::default())?.with_transport(Arc::new(Discard));
    let tokens = Arc::new(StaticToken("bench".into()));
    let endpoint = "https://bench.westeurope.kusto.windows.net";
    let mut throughput = Vec::new();
    let instantiate = measure_instantiation(&runtime, endpoint, &tokens).await?;
    for &(format, level) in CASES {
        for &batch in &options.batch_sizes {
            let settings = config(format, level, batch, 60);
            let (mut wasm_rates, mut native_rates) = (Vec::new(), Vec::new());
            let mut sent_fraction = 1.0;
            let mut peak_guest_memory = 0;
            for _ in 0..options.runs {
                let mut sink = runtime
                    .open("bench", endpoint, tokens.clone(), settings.clone())
                    .await?;
                let started = Instant::now();
                let mut ingested = 0;
                for chunk in wasm.chunks(batch) {
                    let outcome = sink.accept(chunk).await?;
                    if let Some(failure) = outcome.failure {
                        bail!("the plugin failed: {}", failure.message);
                    }
                    ingested += outcome.ingested.len();
                }
                let elapsed = started.elapsed();
                if ingested != wasm.len() {
                    bail!("{ingested} of {} messages ingested", wasm.len());
                }
                wasm_rates.push(wasm.len() as f64 / elapsed.as_secs_f64());
                peak_guest_memory = peak_guest_memory.max(sink.peak_memory_bytes());
                let statistics = sink.statistics().await?;
                sent_fraction =
                    statistics.bytes_sent as f64 / statistics.bytes_encoded.max(1) as f64;

                let mut destination = native_destination(&settings)?;
                let chunks: Vec<Vec<CoreMessage>> =
                    core.chunks(batch).map(<[CoreMessage]>::to_vec).collect();
                let started = Instant::now();
                let ingested: usize = chunks
                    .into_iter()
                    .map(|c| destination.accept(c).ingested.len())
                    .sum();
                let elapsed = started.elapsed();
                if ingested != core.len() {
                    bail!("{ingested} of {} messages ingested natively", core.len());
                }
                native_rates.push(core.len() as f64 / elapsed.as_secs_f64());
            }
            let wasm = Spread::of(wasm_rates);
            // Progress: a full run takes minutes.
            eprintln!(
                "bench: {format}, gzip level {level}, batch {batch}: wasm {:.0}k msgs/s, native {:.0}k msgs/s",
                wasm.median / 1000.0,
                Spread::of(native_rates.clone()).median / 1000.0
            );
            throughput.push(Throughput {
                format,
                compression_level: level,
                batch,
                wasm_input_mb_per_s: wasm.median * payload_bytes as f64
                    / options.messages as f64
                    / 1e6,
                wasm,
                native: Spread::of(native_rates),
                sent_fraction,
                peak_guest_memory,
            });
        }
    }

    // One message per call, sent at once: the fixed cost of a call and of a request.
    let calls = 2000.min(options.messages);
    let single = config("multijson", 1, 1, 0);
    let mut sink = runtime
        .open("bench", endpoint, tokens.clone(), single.clone())
        .await?;
    let started = Instant::now();
    for message in &wasm[..calls] {
        sink.accept(std::slice::from_ref(message)).await?;
    }
    let call_wasm = started.elapsed() / calls as u32;
    let mut destination = native_destination(&single)?;
    let started = Instant::now();
    for message in &core[..calls] {
        destination.accept(vec![message.clone()]);
    }
    let call_native = started.elapsed() / calls as u32;

    Ok(BenchReport {
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        messages: options.messages,
        payload_bytes,
        throughput,
        call_wasm,
        call_native,
        compile: runtime.load_time,
        cache_load: measure_cache_load(plugin, options.runs)?,
        end_to_end: {
            let mut runs = Vec::new();
            for case in &options.end_to_end {
                runs.push(
                    end_to_end::measure(&runtime, case)
                        .await
                        .map_err(|e| format!("{e:#}")),
                );
            }
            runs
        },

        instantiate,
        transformation: transformation::measure(plugin, options.messages, options.runs).await?,
        connections: connections::measure(options.https_requests)
            .await
            .map_err(|e| format!("{e:#}")),
        drain: drain::measure(&runtime, (options.messages / 5).max(100))
            .await
            .map_err(|e| format!("{e:#}")),
        distant: distant::measure(&runtime, (options.messages / 5).max(1000))
            .await
            .map_err(|e| format!("{e:#}")),
        official_sdk: match (&options.host_command, &options.python) {
            (Some(host), Some(python)) => {
                official_sdk::measure(host, python, options.messages, options.runs.min(3))
                    .await
                    .map_err(|e| format!("{e:#}"))
            }
            (None, _) => Err("the host's own command is not known here".into()),
            (_, None) => Err(official_sdk::skipped_without_python()),
        },
    })
}

/// Instantiation from the `InstancePre`, once warm: an endpoint opened and closed many
/// times, as restarts do. (Opening also parses the configuration inside the plugin.)
async fn measure_instantiation(
    runtime: &PluginRuntime,
    endpoint: &str,
    tokens: &Arc<StaticToken>,
) -> Result<Spread> {
    let settings = config("multijson", 1, 1000, 60);
    let mut times = Vec::new();
    for _ in 0..300 {
        let sink = runtime
            .open("bench", endpoint, tokens.clone(), settings.clone())
            .await?;
        times.push(sink.instantiate_time().as_secs_f64());
    }
    Ok(Spread::of(times))
}

/// Loads the bundled plugin from a fresh artifact cache: once to fill it (a compile), then
/// `runs` times from it.
fn measure_cache_load(plugin: &[u8], runs: usize) -> Result<Spread> {
    let dir = std::env::temp_dir().join(format!("bench-artifacts-{}", std::process::id()));
    let cache = ArtifactCache::new(&dir);
    let first = PluginRuntime::load(plugin, Limits::default(), Some(&cache))?;
    if first.loaded != Loaded::Compiled {
        bail!("a fresh cache held the plugin already");
    }
    let mut loads = Vec::new();
    for _ in 0..runs.max(3) {
        let runtime = PluginRuntime::load(plugin, Limits::default(), Some(&cache))?;
        if runtime.loaded != Loaded::FromCache {
            bail!("the artifact cache missed");
        }
        loads.push(runtime.load_time.as_secs_f64());
    }
    std::fs::remove_dir_all(&dir).ok();
    Ok(Spread::of(loads))
}

impl BenchReport {
    pub fn render(&self) -> String {
        let k = |v: f64| format!("{:.0}k", v / 1000.0);
        let mut out = vec![
            format!(
                "{} thermostat messages ({} bytes of payload on average), {} core(s); msgs/s as median (min–max)",
                self.messages,
                self.payload_bytes / self.messages.max(1),
                self.cores
            ),
            String::new(),
            "| format | gzip | batch | wasm msgs/s | native msgs/s | wasm time / native | wasm input MB/s | bytes sent | guest memory |".into(),
            "|---|---|---|---|---|---|---|---|---|".into(),
        ];
        for t in &self.throughput {
            out.push(format!(
                "| {} | {} | {} | {} ({}–{}) | {} ({}–{}) | {:.2}× | {:.0} | {:.1} % | {:.1} MB |",
                t.format,
                if t.compression_level == 0 {
                    "none".to_string()
                } else {
                    format!("level {}", t.compression_level)
                },
                t.batch,
                k(t.wasm.median),
                k(t.wasm.min),
                k(t.wasm.max),
                k(t.native.median),
                k(t.native.min),
                k(t.native.max),
                t.native.median / t.wasm.median,
                t.wasm_input_mb_per_s,
                t.sent_fraction * 100.0,
                t.peak_guest_memory as f64 / 1e6
            ));
        }
        out.push(String::new());
        out.push(format!(
            "one message per call, sent at once: {:.1} µs in wasm, {:.1} µs native",
            self.call_wasm.as_secs_f64() * 1e6,
            self.call_native.as_secs_f64() * 1e6
        ));
        out.push(format!(
            "component compile {:.3} s; load from the artifact cache {:.2} ms median ({:.2}–{:.2}); instantiation {:.0} µs median ({:.0}–{:.0}) over 300 opens",
            self.compile.as_secs_f64(),
            self.cache_load.median * 1e3,
            self.cache_load.min * 1e3,
            self.cache_load.max * 1e3,
            self.instantiate.median * 1e6,
            self.instantiate.min * 1e6,
            self.instantiate.max * 1e6
        ));
        for run in &self.end_to_end {
            out.push(match run {
            Ok(e) => format!(
                "end to end on loopback (mosquitto_pub → mosquitto → MQTT source, maxInflightMessages {} → plugin, latencySeconds 0 → local endpoint): {} messages at {} msgs/s offered, {:.0} reached; publish → row p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                e.case.max_inflight,
                e.messages,
                e.case.rate,
                e.achieved_rate,
                e.p50 * 1e3,
                e.p99 * 1e3,
                e.max * 1e3
            ),
            Err(reason) => format!("end to end on loopback: not measured ({reason})"),
        });
        }
        let t = &self.transformation;
        out.push(format!(
            "pipeline (channel → transformation → plugin in wasm, HTTP answered in-process), {} messages: without a transformation {} msgs/s ({}–{}), with howto-create-dataflow's thermostat filter and map {} msgs/s ({}–{}): {:.2} µs more per message; the transformation stage alone {:.2} µs per message",
            t.messages,
            k(t.without.median),
            k(t.without.min),
            k(t.without.max),
            k(t.with.median),
            k(t.with.min),
            k(t.with.max),
            t.added_micros(),
            t.stage_micros
        ));
        out.push(match &self.connections {
            Ok(c) => format!(
                "HTTPS to the local endpoint, {} ingestion requests: kept alive {} new handshake(s), latency p50 {:.2} ms, p99 {:.2} ms; a connection per request {} handshakes, p50 {:.2} ms, p99 {:.2} ms ({:.1}× the kept-alive p50)",
                c.pooled.requests,
                c.pooled.handshakes,
                c.pooled.p50 * 1e3,
                c.pooled.p99 * 1e3,
                c.per_request.handshakes,
                c.per_request.p50 * 1e3,
                c.per_request.p99 * 1e3,
                c.per_request.p50 / c.pooled.p50
            ),
            Err(reason) => format!("HTTPS to the local endpoint: not measured ({reason})"),
        });
        match &self.drain {
            Ok(d) => {
                out.push(format!("draining a backlog of {} messages queued by mosquitto (QoS 1, receive maximum 100): the host into the local endpoint against mosquitto_sub", d.messages));
                for c in &d.cases {
                    if !c.tls && !c.transformed {
                        out.push(match c.broker_nodelay {
                            false => " mosquitto as installed (set_tcp_nodelay false: small packets wait for the client's TCP acknowledgement)".to_string(),
                            true => " mosquitto with set_tcp_nodelay true (each packet sent at once: the broker's own rate)".to_string(),
                        });
                    }
                    out.push(format!(
                        "  {}, {}: mosquitto_sub {:.0} msgs/s, the host {:.0} msgs/s: {:.0} % of mosquitto_sub",
                        if c.tls { "TLS" } else { "plain TCP" },
                        if c.transformed { "thermostat filter and map" } else { "no transformation" },
                        d.messages as f64 / c.subscriber,
                        d.messages as f64 / c.host,
                        c.share() * 100.0
                    ));
                }
            }
            Err(reason) => out.push(format!("draining a backlog: not measured ({reason})")),
        }
        out.push(match &self.distant {
            Ok(d) => {
                let one = d.rates.first().map_or(f64::NAN, |(_, rate)| *rate);
                let cases: Vec<String> = d
                    .rates
                    .iter()
                    .map(|(n, rate)| format!("{n} in flight {rate:.0} msgs/s ({:.1}×)", rate / one))
                    .collect();
                format!(
                    "an endpoint answering {} ms late (a cluster in another region), {} thermostat messages, batches of 1000 sent when full: {}",
                    distant::DELAY.as_millis(),
                    d.messages,
                    cases.join(", ")
                )
            }
            Err(reason) => format!("a distant endpoint: not measured ({reason})"),
        });
        out.push(match &self.official_sdk {
            Ok(s) => format!(
                "the whole host (`run --input`) against a script around the official Python client (azure-kusto-ingest streaming), {} thermostat messages each, multijson, batches of 1000, gzip level 1, {} alternating pair(s): CPU host {:.2} s ({:.2}–{:.2}), Python {:.2} s ({:.2}–{:.2}); Python uses {:.1}× the host's CPU ({:.1}–{:.1})",
                s.messages,
                s.pairs,
                s.host.median,
                s.host.min,
                s.host.max,
                s.python.median,
                s.python.min,
                s.python.max,
                s.ratio.median,
                s.ratio.min,
                s.ratio.max
            ),
            Err(reason) => format!("the official Python client: not measured ({reason})"),
        });
        out.join("\n")
    }
}
