//! What a dataflow did, as Prometheus metrics: counters the pipeline and the outbound policy
//! update as they go, rendered in the text exposition format by `server.rs`.

mod registry;
mod server;

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use registry::Registry;
pub use server::serve;

use crate::identity::TokenProvider;
use crate::sources::mqtt::{MqttCounters, MqttTotals};
use dataflow_contract::host::{RejectionKind, Statistics};

/// Upper bounds of the request latency histogram, in seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn set(&self, n: u64) {
        self.0.store(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Counts by one label's value.
#[derive(Default)]
pub struct LabelledCounter(Mutex<BTreeMap<&'static str, u64>>);

impl LabelledCounter {
    pub fn add(&self, label: &'static str) {
        *self.0.lock().unwrap().entry(label).or_default() += 1;
    }
}

/// The `reason` label of a rejection, by the kind the plugin (contract 1.2) or the host gave
/// it; a plugin of an older contract does not classify, and its rejections count as `other`.
pub fn rejection_label(kind: RejectionKind) -> &'static str {
    match kind {
        RejectionKind::Conversion => "conversion",
        RejectionKind::Payload => "payload",
        RejectionKind::Size => "size",
        RejectionKind::RefusedByDestination => "refused_by_destination",
        RejectionKind::Other => "other",
    }
}

#[derive(Default, Clone)]
struct Histogram {
    /// Counts per bucket of `LATENCY_BUCKETS` (not cumulative), then the overflow.
    buckets: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        if self.buckets.is_empty() {
            self.buckets = vec![0; LATENCY_BUCKETS.len() + 1];
        }
        let index = LATENCY_BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[index] += 1;
        self.sum += seconds;
        self.count += 1;
    }
}

/// The metrics of one dataflow (one endpoint and table).
pub struct Metrics {
    labels: String,
    pub received: Counter,
    pub ingested: Counter,
    pub dead_lettered: Counter,
    /// Messages a filter rule dropped (settled, acknowledged, not dead letters).
    pub filtered: Counter,
    pub retries: Counter,
    pub paused: Counter,
    /// Retries that held the whole in-flight window (the window limits throughput).
    pub window_full_retries: Counter,
    pub plugin_restarts: Counter,
    /// Dead-lettered messages by `rejection_class`.
    pub rejected_by_reason: LabelledCounter,
    /// Plugin failures by `failure_cause`.
    pub plugin_failures: LabelledCounter,
    pub in_flight: Counter,
    /// Whether a permanent error about the destination holds the dataflow now.
    pub paused_now: std::sync::atomic::AtomicBool,
    /// Whether the dataflow's source runs yet (its plugin loaded, its broker client started).
    source_started: std::sync::atomic::AtomicBool,
    /// Plugin statistics of instances that were replaced, plus the current one's.
    plugin_totals: Mutex<PluginTotals>,
    requests: Mutex<BTreeMap<u16, Histogram>>,
    request_bytes: Counter,
    tokens: Mutex<Option<Arc<dyn TokenProvider>>>,
    mqtt: Mutex<Option<Arc<MqttCounters>>>,
}

struct PluginTotals {
    earlier: Statistics,
    /// By lane (the pipeline's plugin instances side by side): which instance (restarts
    /// of that lane) and its statistics so far.
    current: Vec<(u64, Statistics)>,
}

impl Default for PluginTotals {
    fn default() -> Self {
        Self {
            earlier: zero(),
            current: Vec::new(),
        }
    }
}

fn zero() -> Statistics {
    Statistics {
        messages_accepted: 0,
        messages_ingested: 0,
        messages_rejected: 0,
        requests: 0,
        failed_requests: 0,
        bytes_encoded: 0,
        bytes_sent: 0,
    }
}

impl Metrics {
    pub fn new(endpoint: &str, table: &str) -> Arc<Self> {
        Arc::new(Self {
            labels: format!(
                "endpoint=\"{}\",table=\"{}\"",
                escape(endpoint),
                escape(table)
            ),
            received: Counter::default(),
            ingested: Counter::default(),
            dead_lettered: Counter::default(),
            filtered: Counter::default(),
            retries: Counter::default(),
            paused: Counter::default(),
            window_full_retries: Counter::default(),
            plugin_restarts: Counter::default(),
            rejected_by_reason: LabelledCounter::default(),
            plugin_failures: LabelledCounter::default(),
            in_flight: Counter::default(),
            paused_now: Default::default(),
            source_started: Default::default(),
            plugin_totals: Mutex::new(PluginTotals::default()),
            requests: Mutex::new(BTreeMap::new()),
            request_bytes: Counter::default(),
            tokens: Mutex::new(None),
            mqtt: Mutex::new(None),
        })
    }

    /// Token refreshes are read from the endpoint's token provider.
    pub fn watch_tokens(&self, tokens: Arc<dyn TokenProvider>) {
        *self.tokens.lock().unwrap() = Some(tokens);
    }

    /// The MQTT source's own counts (acknowledgements, reconnects) are read from it.
    pub fn watch_mqtt(&self, counters: Arc<MqttCounters>) {
        *self.mqtt.lock().unwrap() = Some(counters);
        self.source_started();
    }

    /// The source runs: readiness follows its connection from now on.
    pub fn source_started(&self) {
        self.source_started
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Why this dataflow is not ready to take messages now, if it is not: its broker is not
    /// connected, or its destination is paused by a permanent error.
    pub fn unready(&self) -> Option<String> {
        use std::sync::atomic::Ordering;
        let connected = self
            .mqtt
            .lock()
            .unwrap()
            .as_ref()
            .is_none_or(|c| c.connected.load(Ordering::Relaxed));
        let table = self.labels.as_str();
        if !self.source_started.load(Ordering::Relaxed) {
            return Some(format!("{table}: starting (its source does not run yet)"));
        }
        match (connected, self.paused_now.load(Ordering::Relaxed)) {
            (true, false) => None,
            (false, _) => Some(format!("{table}: not connected to its MQTT broker")),
            (true, true) => Some(format!(
                "{table}: the destination is paused by a permanent error"
            )),
        }
    }

    /// The plugin's own statistics, of the instance of `lane` that `instance` counts (its
    /// restarts: a fresh instance's statistics start over).
    pub fn plugin_statistics(&self, lane: usize, instance: u64, statistics: Statistics) {
        let mut totals = self.plugin_totals.lock().unwrap();
        if totals.current.len() <= lane {
            totals.current.resize(lane + 1, (0, zero()));
        }
        let (current_instance, current) = totals.current[lane];
        if instance != current_instance {
            add_statistics(&mut totals.earlier, &current);
        }
        totals.current[lane] = (instance, statistics);
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let l = &self.labels;
        let mut counter = |name: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name}{{{l}}} {value}"
            );
        };
        counter(
            "dataflow_messages_received_total",
            "Messages taken from the source.",
            self.received.get(),
        );
        counter(
            "dataflow_messages_ingested_total",
            "Messages the destination answered success for.",
            self.ingested.get(),
        );
        counter(
            "dataflow_messages_dead_lettered_total",
            "Messages rejected with a reason and written to the dead-letter sink.",
            self.dead_lettered.get(),
        );
        counter(
            "dataflow_messages_filtered_total",
            "Messages a filter rule of the dataflow's transformation dropped (acknowledged, not ingested).",
            self.filtered.get(),
        );
        counter(
            "dataflow_retries_total",
            "Transient failures retried with backoff.",
            self.retries.get(),
        );
        counter(
            "dataflow_paused_total",
            "Probes while paused by a permanent error about the destination.",
            self.paused.get(),
        );
        counter(
            "dataflow_window_full_retries_total",
            "Retries that held the whole in-flight window: raise maxInflightMessages.",
            self.window_full_retries.get(),
        );
        counter(
            "dataflow_plugin_restarts_total",
            "Fresh plugin instances that replaced a failed one.",
            self.plugin_restarts.get(),
        );
        let mut totals = zero();
        {
            let plugin = self.plugin_totals.lock().unwrap();
            add_statistics(&mut totals, &plugin.earlier);
            for (_, current) in &plugin.current {
                add_statistics(&mut totals, current);
            }
        }
        counter(
            "dataflow_rows_sent_total",
            "Rows the plugin sent and the destination accepted.",
            totals.messages_ingested,
        );
        counter(
            "dataflow_bytes_encoded_total",
            "Bytes of rows sent, before compression.",
            totals.bytes_encoded,
        );
        counter(
            "dataflow_bytes_sent_total",
            "Bytes of request bodies sent, after compression.",
            self.request_bytes.get(),
        );
        let refreshes = self
            .tokens
            .lock()
            .unwrap()
            .as_ref()
            .map_or(0, |t| t.refreshes());
        counter(
            "dataflow_token_refreshes_total",
            "Tokens fetched from the identity service.",
            refreshes,
        );
        let mqtt = self
            .mqtt
            .lock()
            .unwrap()
            .as_ref()
            .map_or(MqttTotals::default(), |c| c.totals());
        counter(
            "dataflow_mqtt_acknowledgements_total",
            "PUBACKs written to the broker.",
            mqtt.acknowledged,
        );
        counter(
            "dataflow_mqtt_acknowledgements_lost_total",
            "Settled messages not acknowledged because their connection was lost first; the broker delivers them again.",
            mqtt.acknowledgements_lost,
        );
        counter(
            "dataflow_mqtt_beyond_receive_maximum_total",
            "Messages the broker sent beyond the receive maximum (a broker fault).",
            mqtt.beyond_receive_maximum,
        );
        counter(
            "dataflow_mqtt_reconnects_total",
            "MQTT connections lost or refused and tried again.",
            mqtt.reconnects,
        );
        counter(
            "dataflow_mqtt_reauthentications_total",
            "Renewed tokens the broker accepted by re-authentication, on the same connection.",
            mqtt.reauthentications,
        );
        let _ = writeln!(
            out,
            "# HELP dataflow_ready Whether the dataflow takes messages now (its broker connected, its destination not paused).\n# TYPE dataflow_ready gauge\ndataflow_ready{{{l}}} {}",
            u8::from(self.unready().is_none())
        );
        let _ = writeln!(
            out,
            "# HELP dataflow_in_flight_messages Messages taken from the source and not yet settled.\n# TYPE dataflow_in_flight_messages gauge\ndataflow_in_flight_messages{{{l}}} {}",
            self.in_flight.get()
        );
        let name = "dataflow_request_duration_seconds";
        let _ = writeln!(out, "# HELP {name} Plugin requests to the endpoint, by answer status.\n# TYPE {name} histogram");
        for (status, histogram) in self.requests.lock().unwrap().iter() {
            let mut cumulative = 0;
            for (bound, count) in LATENCY_BUCKETS.iter().zip(&histogram.buckets) {
                cumulative += count;
                let _ = writeln!(
                    out,
                    "{name}_bucket{{{l},status=\"{status}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "{name}_bucket{{{l},status=\"{status}\",le=\"+Inf\"}} {}",
                histogram.count
            );
            let _ = writeln!(
                out,
                "{name}_sum{{{l},status=\"{status}\"}} {}",
                histogram.sum
            );
            let _ = writeln!(
                out,
                "{name}_count{{{l},status=\"{status}\"}} {}",
                histogram.count
            );
        }
        for (name, help, label, counts) in [
            (
                "dataflow_messages_rejected_total",
                "Dead-lettered messages by the class of their reason.",
                "reason",
                &self.rejected_by_reason,
            ),
            (
                "dataflow_plugin_failures_total",
                "Plugin instances stopped, by cause.",
                "cause",
                &self.plugin_failures,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (value, count) in counts.0.lock().unwrap().iter() {
                let _ = writeln!(out, "{name}{{{l},{label}=\"{value}\"}} {count}");
            }
        }
        out
    }
}

/// Adds `other`'s counts to `into`'s.
pub(crate) fn add_statistics(into: &mut Statistics, other: &Statistics) {
    into.messages_accepted += other.messages_accepted;
    into.messages_ingested += other.messages_ingested;
    into.messages_rejected += other.messages_rejected;
    into.requests += other.requests;
    into.failed_requests += other.failed_requests;
    into.bytes_encoded += other.bytes_encoded;
    into.bytes_sent += other.bytes_sent;
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The peak resident memory of this process (VmHWM), on Linux.
pub fn peak_resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kilobytes: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kilobytes * 1024)
}

impl crate::outbound::RequestObserver for Metrics {
    /// One HTTP request of the plugin, as the endpoint answered it.
    fn observe_request(&self, status: u16, latency: Duration, body_bytes: usize) {
        self.requests
            .lock()
            .unwrap()
            .entry(status)
            .or_default()
            .observe(latency.as_secs_f64());
        self.request_bytes.add(body_bytes as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbound::RequestObserver;

    #[test]
    fn renders_counters_and_a_cumulative_histogram() {
        let metrics = Metrics::new("adx", "readings");
        metrics.received.add(3);
        metrics.observe_request(200, Duration::from_millis(3), 100);
        metrics.observe_request(200, Duration::from_millis(30), 50);
        metrics.observe_request(503, Duration::from_secs(20), 10);
        let text = metrics.render();
        assert!(
            text.contains(
                "dataflow_messages_received_total{endpoint=\"adx\",table=\"readings\"} 3"
            ),
            "{text}"
        );
        assert!(text.contains("dataflow_request_duration_seconds_bucket{endpoint=\"adx\",table=\"readings\",status=\"200\",le=\"0.005\"} 1"), "{text}");
        assert!(text.contains("dataflow_request_duration_seconds_bucket{endpoint=\"adx\",table=\"readings\",status=\"200\",le=\"0.05\"} 2"), "{text}");
        assert!(text.contains("dataflow_request_duration_seconds_count{endpoint=\"adx\",table=\"readings\",status=\"503\"} 1"), "{text}");
        assert!(text.contains("dataflow_request_duration_seconds_bucket{endpoint=\"adx\",table=\"readings\",status=\"503\",le=\"10\"} 0"), "{text}");
        assert!(
            text.contains("dataflow_bytes_sent_total{endpoint=\"adx\",table=\"readings\"} 160"),
            "{text}"
        );
    }

    #[test]
    fn rejections_are_counted_by_kind() {
        let metrics = Metrics::new("adx", "t");
        metrics
            .rejected_by_reason
            .add(rejection_label(RejectionKind::Conversion));
        metrics
            .rejected_by_reason
            .add(rejection_label(RejectionKind::Conversion));
        metrics
            .rejected_by_reason
            .add(rejection_label(RejectionKind::RefusedByDestination));
        let text = metrics.render();
        assert!(text.contains("dataflow_messages_rejected_total{endpoint=\"adx\",table=\"t\",reason=\"conversion\"} 2"), "{text}");
        assert!(text.contains("dataflow_messages_rejected_total{endpoint=\"adx\",table=\"t\",reason=\"refused_by_destination\"} 1"), "{text}");
    }

    #[test]
    fn plugin_statistics_add_up_across_restarts_and_instances() {
        let metrics = Metrics::new("adx", "t");
        let stats = |rows| Statistics {
            messages_ingested: rows,
            bytes_encoded: rows * 10,
            ..zero()
        };
        metrics.plugin_statistics(0, 0, stats(5));
        metrics.plugin_statistics(0, 0, stats(7));
        metrics.plugin_statistics(0, 1, stats(2));
        // Another instance side by side counts in too.
        metrics.plugin_statistics(1, 0, stats(4));
        let text = metrics.render();
        assert!(
            text.contains("dataflow_rows_sent_total{endpoint=\"adx\",table=\"t\"} 13"),
            "{text}"
        );
        assert!(
            text.contains("dataflow_bytes_encoded_total{endpoint=\"adx\",table=\"t\"} 130"),
            "{text}"
        );
    }
}
