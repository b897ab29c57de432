//! Drives one source through one plugin sink: feeds messages in chunks, flushes when the
//! plugin's latency bound is due, retries transient failures with backoff, pauses on
//! permanent errors about the destination until they are fixed, writes rejected messages to
//! the dead-letter sink, and tells the source, in order, which messages are settled. Every
//! message ends ingested, dead-lettered with a reason, or unacknowledged (and so delivered
//! again by a source that keeps them, like an MQTT broker).

mod lanes;
mod ledger;
mod retry;
mod transform;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use tokio::sync::{mpsc, watch};

use crate::dead_letter::DeadLetterSink;
use crate::metrics::Metrics;
use crate::plugin::{
    describe, ErrorClass, FailureCause, Message, Outcome, PluginSink, Rejection, RejectionKind,
    Statistics,
};
use crate::sources::mqtt::MqttTotals;
use crate::sources::{Acknowledger, Origin, SourceReceiver};
pub use lanes::MAX_LANES;
use lanes::{Call, Lane, Lanes, Returned};
use ledger::Ledger;
pub use retry::{RetryPolicy, Shutdown, Waited};
pub use transform::TransformStage;

#[derive(Debug, Clone)]
pub struct PipelineOptions {
    /// Messages handed to the plugin per call.
    pub feed_chunk: usize,
    /// Plugin instances side by side, each with one call (and so one request to the
    /// destination) at a time: while one sends, the next messages go to another. 1 sends
    /// one request at a time. At most `MAX_LANES`.
    pub requests_in_flight: usize,
    /// Messages taken from the source and not yet released back to it. At this bound the
    /// pipeline stops reading and flushes: the source (the broker) holds the rest.
    pub max_in_flight: usize,
    /// Backoff for transient failures.
    pub retry: RetryPolicy,
    /// Probing interval while the endpoint is paused by a permanent error.
    pub pause: RetryPolicy,
    /// After a shutdown request: how long to keep trying to deliver what was taken.
    pub shutdown_grace: Duration,
    /// Backoff between fresh instances of a plugin that keeps failing.
    pub restart: RetryPolicy,
    /// Flush as soon as the source has nothing more for a moment (`IDLE_FLUSH`): for sources
    /// that stop sending at an unknown number of unacknowledged messages (MQTT 3.1.1).
    pub flush_when_idle: bool,
    /// Messages with a larger payload are dead-lettered by the host, never handed to the
    /// plugin: no Kusto row can be made of them, and one could exhaust the plugin's memory
    /// at every restart.
    pub max_message_bytes: usize,
}

/// The default `max_message_bytes`: four times the largest row Kusto's streaming ingestion
/// takes (4 MB), for payloads of which the table reads only part.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// The default `requests_in_flight`.
pub const REQUESTS_IN_FLIGHT: usize = 4;

/// How often the host repeats that the in-flight window limits throughput.
const WINDOW_WARNING_INTERVAL: Duration = Duration::from_secs(60);

/// How long a source may be quiet before `flush_when_idle` flushes.
const IDLE_FLUSH: Duration = Duration::from_millis(50);

impl Default for PipelineOptions {
    fn default() -> Self {
        Self {
            feed_chunk: 1000,
            requests_in_flight: REQUESTS_IN_FLIGHT,
            max_in_flight: 200_000,
            retry: RetryPolicy::default(),
            pause: RetryPolicy::pause(),
            shutdown_grace: Duration::from_secs(30),
            restart: RetryPolicy {
                initial: Duration::from_millis(200),
                max: Duration::from_secs(30),
                max_attempts: None,
            },
            flush_when_idle: false,
            max_message_bytes: MAX_MESSAGE_BYTES,
        }
    }
}

/// Where settled messages are reported: the source's acknowledgements, the dead-letter sink,
/// the signal that asks the pipeline to stop, and sinks that take over (a live swap).
pub struct Delivery {
    pub acknowledger: Option<Box<dyn Acknowledger>>,
    /// Counters for `--metrics-addr`, if it serves them.
    pub metrics: Option<Arc<Metrics>>,
    pub dead_letters: DeadLetterSink,
    pub shutdown: Option<watch::Receiver<bool>>,
    /// Each sink received here replaces the running one: the running one sends everything it
    /// holds and is closed, then the new one takes the stream (and anything left unsettled).
    pub swaps: Option<mpsc::Receiver<PluginSink>>,
    /// The dataflow's transformation, applied to each message before the plugin sees it.
    pub transform: Option<TransformStage>,
}

impl Default for Delivery {
    fn default() -> Self {
        Self {
            acknowledger: None,
            metrics: None,
            dead_letters: DeadLetterSink::ReportOnly,
            shutdown: None,
            swaps: None,
            transform: None,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct PipelineReport {
    pub messages_in: u64,
    pub ingested: u64,
    pub rejected: u64,
    /// Dropped by a filter rule of the transformation: settled, neither a row nor a dead letter.
    pub filtered: u64,
    /// `(origin, reason)` of the first rejected messages.
    pub rejections: Vec<(String, String)>,
    /// Messages neither ingested nor rejected when the pipeline stopped.
    pub unacknowledged: u64,
    /// The most messages taken but not yet settled at any one time.
    pub peak_in_flight: u64,
    /// Why the pipeline stopped early, if it did.
    pub failure: Option<String>,
    /// Statistics of the plugin instances at the end, added up.
    pub statistics: Option<Statistics>,
    /// The largest linear memories the plugin instances (one per request in flight) grew to,
    /// added up, in bytes.
    pub plugin_peak_memory: usize,
    /// Plugin instances side by side at the end (`PipelineOptions::requests_in_flight` at most).
    pub plugin_instances: usize,
    /// Live swaps: sinks that took over from a closed one.
    pub plugin_swaps: u32,
    /// Fresh instances that replaced failed ones, and the first failures' causes.
    pub plugin_restarts: u32,
    pub plugin_failures: Vec<String>,
    /// What an MQTT source counted: PUBACKs written, lost with a connection, reconnects.
    pub mqtt: Option<MqttTotals>,
    pub elapsed: Duration,
}

impl PipelineReport {
    /// A short account of the run, one figure per line.
    pub fn summary(&self) -> Vec<String> {
        let seconds = self.elapsed.as_secs_f64();
        let mut lines = vec![
            format!("messages in        {}", self.messages_in),
            format!("rows ingested      {}", self.ingested),
            format!("rejected           {}", self.rejected),
            format!("filtered           {}", self.filtered),
            format!("unacknowledged     {}", self.unacknowledged),
            format!("peak in flight     {}", self.peak_in_flight),
        ];
        if let Some(stats) = &self.statistics {
            let mb = |b: u64| b as f64 / 1_000_000.0;
            lines.push(format!(
                "requests           {} ({} failed)",
                stats.requests, stats.failed_requests
            ));
            lines.push(format!(
                "bytes before gzip  {:.2} MB",
                mb(stats.bytes_encoded)
            ));
            lines.push(format!(
                "bytes after gzip   {:.2} MB ({:.1}x smaller)",
                mb(stats.bytes_sent),
                stats.bytes_encoded as f64 / stats.bytes_sent.max(1) as f64
            ));
            lines.push(format!(
                "plugin memory      {:.1} MB (the largest linear memories of its {} instance(s), added up)",
                mb(self.plugin_peak_memory as u64),
                self.plugin_instances
            ));
        }
        if let Some(mqtt) = &self.mqtt {
            lines.push(format!(
                "MQTT               {} received, {} acknowledged (PUBACK), {} reconnect(s)",
                mqtt.received, mqtt.acknowledged, mqtt.reconnects
            ));
            if mqtt.acknowledgements_lost > 0 {
                lines.push(format!(
                    "acks lost          {} (settled, but their connection was lost first: delivered again)",
                    mqtt.acknowledgements_lost
                ));
            }
            if mqtt.beyond_receive_maximum > 0 {
                lines.push(format!(
                    "broker over window {} message(s) beyond the receive maximum",
                    mqtt.beyond_receive_maximum
                ));
            }
        }
        if self.plugin_swaps > 0 {
            lines.push(format!("plugin swaps       {}", self.plugin_swaps));
        }
        if self.plugin_restarts > 0 {
            lines.push(format!(
                "plugin restarts    {} (first cause: {})",
                self.plugin_restarts,
                self.plugin_failures.first().map_or("?", String::as_str)
            ));
        }
        lines.push(format!("elapsed            {seconds:.3} s"));
        lines.push(format!(
            "throughput         {:.0} msgs/s",
            self.messages_in as f64 / seconds.max(1e-9)
        ));
        for (origin, reason) in &self.rejections {
            lines.push(format!("rejected {origin}: {reason}"));
        }
        lines
    }

    /// Every message ingested or rejected with a reason, and nothing failed.
    pub fn all_accounted_for(&self) -> bool {
        self.failure.is_none()
            && self.unacknowledged == 0
            && self.ingested + self.rejected + self.filtered == self.messages_in
    }
}

/// Runs until the source ends: every message is settled or the report says why not.
pub async fn run(
    sink: PluginSink,
    source: SourceReceiver,
    options: &PipelineOptions,
) -> Result<PipelineReport> {
    run_with(sink, source, Delivery::default(), options).await
}

/// Runs until the source ends or a shutdown is requested. `sink` is the first of the plugin
/// instances (`PipelineOptions::requests_in_flight`); all are closed at the end.
pub async fn run_with(
    sink: PluginSink,
    mut source: SourceReceiver,
    delivery: Delivery,
    options: &PipelineOptions,
) -> Result<PipelineReport> {
    let started = Instant::now();
    let mut run = Run {
        ledger: Ledger::new(),
        dead_letters: delivery.dead_letters,
        acknowledger: delivery.acknowledger,
        shutdown: Shutdown::new(delivery.shutdown, options.shutdown_grace),
        options,
        failures_in_a_row: 0,
        metrics: delivery.metrics,
        window_warned: None,
    };
    let mut lanes = Lanes::new(sink, options.requests_in_flight);
    let mut buffer = Vec::with_capacity(options.feed_chunk);
    let mut swaps = delivery.swaps;
    let mut transform = delivery.transform;
    let mut swapped = 0;

    let mut stopped = loop {
        if run.shutdown.is_requested() {
            break None;
        }
        // A lane back from its call is settled before anything else.
        if let Some(returned) = lanes.try_returned() {
            match run
                .settle_returned(&mut lanes, returned?)
                .await?
                .stop_reason()
            {
                Some(reason) => break Some(reason),
                None => continue,
            }
        }
        let room = options.max_in_flight.saturating_sub(run.ledger.in_flight());
        if room == 0 {
            // The window is full: what the lanes hold is sent, and nothing more is read until
            // some of it is settled.
            if !lanes.any_away() {
                let holding = lanes
                    .home()
                    .into_iter()
                    .filter(|&index| run.ledger.unsettled_in(index) > 0)
                    .collect::<Vec<_>>();
                for index in holding {
                    lanes.send(index, Call::Flush);
                }
            }
            if lanes.any_away() {
                let returned = lanes.returned().await?;
                match run
                    .settle_returned(&mut lanes, returned)
                    .await?
                    .stop_reason()
                {
                    Some(reason) => break Some(reason),
                    None => continue,
                }
            }
        }
        // The soonest latency bound of the lanes at home that hold messages.
        let mut due: Option<(Duration, lanes::LaneIndex)> = None;
        let mut failed = None;
        for index in lanes.home() {
            if run.ledger.unsettled_in(index) == 0 {
                continue;
            }
            match lanes.home_mut(index).sink.next_flush_due().await {
                Ok(lane_due) => {
                    let lane_due = match options.flush_when_idle {
                        true => Some(lane_due.map_or(IDLE_FLUSH, |d| d.min(IDLE_FLUSH))),
                        false => lane_due,
                    };
                    if let Some(lane_due) = lane_due {
                        if due.is_none_or(|(soonest, _)| lane_due < soonest) {
                            due = Some((lane_due, index));
                        }
                    }
                }
                Err(error) => {
                    failed = Some((index, error));
                    break;
                }
            }
        }
        if let Some((index, error)) = failed {
            let mut lane = lanes.take(index);
            let settled = run
                .recover_and_settle(&mut lane, error.into(), Then::Flush)
                .await;
            lanes.put_back(lane);
            match settled?.stop_reason() {
                Some(reason) => break Some(reason),
                None => continue,
            }
        }
        let feed = match room {
            0 => None,
            _ => lanes.feedable().await,
        };
        let settled = tokio::select! {
            biased;
            returned = lanes.returned(), if lanes.any_away() => {
                run.settle_returned(&mut lanes, returned?).await?
            }
            received = source.recv_many(&mut buffer, options.feed_chunk.min(room)), if feed.is_some() => {
                if received == 0 {
                    break None;
                }
                let lane = feed.expect("a lane to feed");
                let first = run.ledger.next_sequence();
                let (messages, sources): (Vec<Message>, Vec<(Origin, Option<u64>)>) = buffer
                    .drain(..)
                    .zip(first..)
                    .map(|(m, sequence)| {
                        let receipt = m.receipt;
                        let (message, origin) = m.into_plugin_message(sequence);
                        (message, (origin, receipt))
                    })
                    .unzip();
                // Oversize payloads and, with a transformation, messages it filters out or
                // fails on are settled here, before the plugin is called, so that no replay
                // after a plugin failure hands them to it either.
                let mut screened = oversize_rejections(&messages, options.max_message_bytes);
                let mut filtered = Vec::new();
                let mut messages = messages;
                if let Some(stage) = &mut transform {
                    stage.apply(&mut messages, &mut screened, &mut filtered, options.max_message_bytes);
                }
                run.ledger.admit(&messages, &sources, lane);
                if !screened.is_empty() || !filtered.is_empty() {
                    let settled: std::collections::HashSet<u64> = screened
                        .iter()
                        .map(|r| r.sequence)
                        .chain(filtered.iter().copied())
                        .collect();
                    run.ledger.filter_out(&filtered, lane);
                    messages.retain(|m| !settled.contains(&m.sequence));
                    if let Some(metrics) = &run.metrics {
                        metrics.filtered.set(run.ledger.report.filtered);
                    }
                    run.record(
                        &Outcome {
                            ingested: Vec::new(),
                            rejected: screened,
                            failure: None,
                        },
                        lane,
                    )
                    .await?;
                }
                if !messages.is_empty() {
                    lanes.send(lane, Call::Accept(messages));
                }
                continue;
            }
            _ = tokio::time::sleep(due.map(|(d, _)| d).unwrap_or_default()), if due.is_some() => {
                let (_, lane) = due.expect("a lane due");
                lanes.send(lane, Call::Flush);
                continue;
            }
            Some(next) = next_swap(&mut swaps) => {
                let settled = run.swap(&mut lanes, next).await?;
                if !matches!(settled, Settled::Stop(_)) {
                    swapped += 1;
                }
                settled
            }
            _ = run.shutdown.requested() => continue,
        };
        if let Some(reason) = settled.stop_reason() {
            break Some(reason);
        }
    };

    // The source ended or a shutdown was asked for: send what the plugin holds. After a
    // shutdown request, retries last at most the grace period.
    if stopped.is_none() {
        run.shutdown.start_grace();
        if let Some(reason) = run.close_all(&mut lanes).await? {
            stopped = Some(reason);
        } else if run.ledger.unsettled() > 0 {
            stopped = Some(format!(
                "shut down with {} message(s) not yet accepted by the destination; the source delivers them again",
                run.ledger.unsettled()
            ));
        }
    } else {
        run.gather(&mut lanes).await?;
    }

    let mut report = std::mem::take(&mut run.ledger.report);
    report.failure = stopped;
    report.unacknowledged = run.ledger.unsettled() as u64;
    report.statistics = lanes.statistics().await;
    report.plugin_peak_memory = lanes.peak_memory_bytes();
    report.plugin_instances = lanes.count();
    report.plugin_restarts = lanes.restarts();
    report.plugin_swaps = swapped;
    report.elapsed = started.elapsed();
    Ok(report)
}

/// Messages whose payload is over `max_bytes`, rejected with the reason.
fn oversize_rejections(messages: &[Message], max_bytes: usize) -> Vec<Rejection> {
    messages
        .iter()
        .filter(|m| m.payload.len() > max_bytes)
        .map(|m| Rejection {
            sequence: m.sequence,
            kind: RejectionKind::Size,
            reason: format!(
                "the message is {} bytes, more than the {max_bytes} this host hands to a plugin (a Kusto row is at most 4 MB)",
                m.payload.len()
            ),
        })
        .collect()
}

/// The next sink to take over, if there are swaps to wait for.
async fn next_swap(swaps: &mut Option<mpsc::Receiver<PluginSink>>) -> Option<PluginSink> {
    match swaps {
        Some(receiver) => receiver.recv().await,
        None => std::future::pending().await,
    }
}

/// What a plugin call was doing, to do it again on a fresh instance.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Then {
    Flush,
    Close,
    Nothing,
}

/// Kept plugin failure causes; beyond this only the restart count grows.
const MAX_KEPT_FAILURES: usize = 100;

fn empty_outcome() -> Outcome {
    Outcome {
        ingested: Vec::new(),
        rejected: Vec::new(),
        failure: None,
    }
}

fn absorb(into: &mut Outcome, other: Outcome) {
    into.ingested.extend(other.ingested);
    into.rejected.extend(other.rejected);
    if other.failure.is_some() {
        into.failure = other.failure;
    }
}

/// The plugin's statistics into the metrics (a call into the plugin: only with metrics).
async fn observe_plugin(metrics: Option<Arc<Metrics>>, lane: &mut Lane) {
    if let Some(metrics) = metrics {
        if let Ok(statistics) = lane.sink.statistics().await {
            metrics.plugin_statistics(usize::from(lane.index), lane.instance(), statistics);
        }
    }
}

enum Settled {
    /// Everything in the outcome is recorded and nothing failed.
    Clear,
    /// A shutdown was asked for while waiting to retry.
    Interrupted,
    /// The pipeline cannot go on.
    Stop(String),
}

impl Settled {
    /// Why the pipeline stops, if it does; the loop goes on otherwise (after a shutdown
    /// request too: the loop's own check ends it).
    fn stop_reason(self) -> Option<String> {
        match self {
            Self::Stop(reason) => Some(reason),
            Self::Clear | Self::Interrupted => None,
        }
    }
}

struct Run<'a> {
    ledger: Ledger,
    dead_letters: DeadLetterSink,
    acknowledger: Option<Box<dyn Acknowledger>>,
    shutdown: Shutdown,
    options: &'a PipelineOptions,
    /// Plugin failures since the last progress: the restart backoff grows with it.
    failures_in_a_row: u32,
    metrics: Option<Arc<Metrics>>,
    /// When the host last said that the in-flight window limits throughput.
    window_warned: Option<Instant>,
}

impl Run<'_> {
    /// Records an outcome (dead letters written before anything is acknowledged) and, on a
    /// failure, waits and flushes again until it clears: transient failures with backoff,
    /// permanent ones (about the destination) by probing at the pause interval.
    async fn settle(&mut self, lane: &mut Lane, mut outcome: Outcome) -> Result<Settled> {
        let mut attempt = 0;
        loop {
            self.record(&outcome, lane.index).await?;
            let paused_now = |metrics: &Option<Arc<Metrics>>, paused: bool| {
                if let Some(metrics) = metrics {
                    metrics
                        .paused_now
                        .store(paused, std::sync::atomic::Ordering::Relaxed);
                }
            };
            let Some(failure) = outcome.failure.take() else {
                paused_now(&self.metrics, false);
                observe_plugin(self.metrics.clone(), lane).await;
                return Ok(Settled::Clear);
            };
            paused_now(&self.metrics, failure.class == ErrorClass::Permanent);
            if let Some(metrics) = &self.metrics {
                match failure.class {
                    ErrorClass::Transient => metrics.retries.add(1),
                    ErrorClass::Permanent => metrics.paused.add(1),
                    ErrorClass::Configuration => {}
                }
            }
            let policy = match failure.class {
                ErrorClass::Transient => &self.options.retry,
                ErrorClass::Permanent => &self.options.pause,
                ErrorClass::Configuration => return Ok(Settled::Stop(describe(&failure))),
            };
            attempt += 1;
            if policy.max_attempts.is_some_and(|max| attempt >= max) {
                return Ok(Settled::Stop(format!(
                    "{} (gave up after {attempt} attempts)",
                    describe(&failure)
                )));
            }
            let delay = policy.delay(
                attempt - 1,
                failure.retry_after_ms.map(Duration::from_millis),
            );
            self.note_full_window(delay);
            let state = match failure.class {
                ErrorClass::Permanent => "endpoint paused, nothing acknowledged; trying again",
                _ => "retrying",
            };
            tracing::warn!(
                "{}; {state} in {:.1} s",
                describe(&failure),
                delay.as_secs_f64()
            );
            match self.shutdown.wait(delay).await {
                Waited::Elapsed => {}
                Waited::ShutdownRequested => return Ok(Settled::Interrupted),
                Waited::OutOfTime => {
                    return Ok(Settled::Stop(format!(
                        "{} (the shutdown grace period ran out)",
                        describe(&failure)
                    )))
                }
            }
            outcome = self.call(lane, Then::Flush).await?;
        }
    }

    /// Settles what a lane's call came back with (a failed instance is replaced first) and
    /// puts the lane back home.
    async fn settle_returned(&mut self, lanes: &mut Lanes, returned: Returned) -> Result<Settled> {
        lanes.note(&returned);
        let Returned {
            mut lane,
            then,
            result,
        } = returned;
        let settled = match result {
            Ok(outcome) => self.settle(&mut lane, outcome).await,
            Err(failure) => {
                self.recover_and_settle(&mut lane, failure.into(), then)
                    .await
            }
        };
        lanes.put_back(lane);
        settled
    }

    /// Replaces the lane's failed instance (`recover`) and settles what the fresh one did.
    async fn recover_and_settle(
        &mut self,
        lane: &mut Lane,
        error: anyhow::Error,
        then: Then,
    ) -> Result<Settled> {
        let outcome = self.recover(lane, error, then).await?;
        self.settle(lane, outcome).await
    }

    /// Settles the calls still out, then closes every lane (side by side) and settles what
    /// they sent; the reason if the pipeline cannot go on.
    async fn close_all(&mut self, lanes: &mut Lanes) -> Result<Option<String>> {
        while lanes.any_away() {
            let returned = lanes.returned().await?;
            if let Some(reason) = self.settle_returned(lanes, returned).await?.stop_reason() {
                self.gather(lanes).await?;
                return Ok(Some(reason));
            }
        }
        for index in lanes.home() {
            lanes.send(index, Call::Close);
        }
        while lanes.any_away() {
            let returned = lanes.returned().await?;
            if let Some(reason) = self.settle_returned(lanes, returned).await?.stop_reason() {
                self.gather(lanes).await?;
                return Ok(Some(reason));
            }
        }
        Ok(None)
    }

    /// After the pipeline stopped: records what the calls still out come back with (what they
    /// sent is settled, not sent again), without retrying anything.
    async fn gather(&mut self, lanes: &mut Lanes) -> Result<()> {
        while lanes.any_away() {
            let Returned { lane, result, .. } = lanes.returned().await?;
            match &result {
                Ok(outcome) => self.record(outcome, lane.index).await?,
                // Its messages stay unsettled: counted as unacknowledged, delivered again.
                Err(failure) => tracing::warn!(
                    "plugin failed after the pipeline stopped ({}); its {} unsettled message(s) stay unacknowledged",
                    failure.error.root_cause(),
                    self.ledger.unsettled_in(lane.index)
                ),
            }
            lanes.put_back(lane);
        }
        Ok(())
    }

    /// A retry while the whole in-flight window waits on it stalls the source: the broker
    /// holds everything else until the window has room. Counted, and said now and then with
    /// what to change.
    fn note_full_window(&mut self, delay: Duration) {
        let window = self.options.max_in_flight;
        if self.ledger.in_flight() < window {
            return;
        }
        if let Some(metrics) = &self.metrics {
            metrics.window_full_retries.add(1);
        }
        if self
            .window_warned
            .is_some_and(|at| at.elapsed() < WINDOW_WARNING_INTERVAL)
        {
            return;
        }
        self.window_warned = Some(Instant::now());
        tracing::warn!(
            "the in-flight window is full ({window} message(s), maxInflightMessages) while a request is retried: nothing more is read until it clears, so throughput is at most about {window} message(s) per {:.1} s now; raise maxInflightMessages to what arrives during a retry (see RELIABILITY.md)",
            delay.as_secs_f64()
        );
    }

    /// Flushes or closes a lane's plugin; a plugin that fails doing so is replaced
    /// (`recover`).
    async fn call(&mut self, lane: &mut Lane, call: Then) -> Result<Outcome> {
        let result = match call {
            Then::Flush => lane.sink.flush().await,
            Then::Close => lane.sink.close().await,
            Then::Nothing => return Ok(empty_outcome()),
        };
        match result {
            Ok(outcome) => Ok(outcome),
            Err(error) => self.recover(lane, error.into(), call).await,
        }
    }

    /// A plugin call failed (a trap, the memory cap, the deadline): the lane's instance is
    /// dropped, a fresh one takes its place and gets the lane's unsettled messages again,
    /// then does `then`. Repeated failures back off; only the end of a shutdown's grace
    /// period gives up.
    async fn recover(
        &mut self,
        lane: &mut Lane,
        mut error: anyhow::Error,
        then: Then,
    ) -> Result<Outcome> {
        loop {
            // The root cause names it (a trap, the memory cap, the deadline); the rest of
            // the chain is a wasm backtrace.
            let cause = error.root_cause().to_string();
            let delay = self.options.restart.delay(self.failures_in_a_row, None);
            self.failures_in_a_row += 1;
            tracing::error!(
                "plugin failed: {cause}; a fresh instance takes over in {:.1} s with the {} unsettled message(s)",
                delay.as_secs_f64(),
                self.ledger.unsettled_in(lane.index)
            );
            if self.ledger.report.plugin_failures.len() < MAX_KEPT_FAILURES {
                self.ledger.report.plugin_failures.push(cause.clone());
            }
            if self.shutdown.wait(delay).await == Waited::OutOfTime {
                return Err(
                    error.context("the shutdown grace period ran out restarting the plugin")
                );
            }
            if let Some(metrics) = &self.metrics {
                metrics.plugin_restarts.add(1);
                metrics
                    .plugin_failures
                    .add(FailureCause::of(&error).label());
            }
            match self.replay(lane, then).await {
                Ok(outcome) => return Ok(outcome),
                Err(e) => error = e,
            }
        }
    }

    /// A live swap: the running lanes send what they hold and close (with the usual
    /// retries), then `next` takes their place as the only lane. Nothing settled is sent
    /// again; what the old ones could not send before a shutdown interrupted them goes to the
    /// new one.
    async fn swap(&mut self, lanes: &mut Lanes, next: PluginSink) -> Result<Settled> {
        let held = self.ledger.unsettled();
        if let Some(reason) = self.close_all(lanes).await? {
            return Ok(Settled::Stop(reason));
        }
        let old = lanes.replace_with(next);
        self.ledger.move_unsettled_to(0);
        let mut lane = lanes.take(0);
        observe_plugin(self.metrics.clone(), &mut lane).await;
        tracing::info!(
            "live swap: the new plugin instance took over; the old one(s) settled {} of the {held} message(s) in flight, {} left for the new one",
            held - self.ledger.unsettled(),
            self.ledger.unsettled()
        );
        drop(old);
        let settled = match self.feed_unsettled(&mut lane).await {
            Ok(outcome) => self.settle(&mut lane, outcome).await,
            Err(error) => {
                self.recover_and_settle(&mut lane, error, Then::Nothing)
                    .await
            }
        };
        lanes.put_back(lane);
        settled
    }

    async fn replay(&mut self, lane: &mut Lane, then: Then) -> Result<Outcome> {
        lane.sink.restart().await?;
        let mut outcome = self.feed_unsettled(lane).await?;
        match then {
            Then::Flush => absorb(&mut outcome, lane.sink.flush().await?),
            Then::Close => absorb(&mut outcome, lane.sink.close().await?),
            Then::Nothing => {}
        }
        Ok(outcome)
    }

    /// Hands every message the lane holds unsettled to its sink again (a fresh or a new
    /// instance).
    async fn feed_unsettled(&mut self, lane: &mut Lane) -> Result<Outcome> {
        let mut outcome = empty_outcome();
        let unsettled = self.ledger.unsettled_messages(lane.index);
        for chunk in unsettled.chunks(self.options.feed_chunk.max(1)) {
            absorb(&mut outcome, lane.sink.accept(chunk).await?);
        }
        Ok(outcome)
    }

    async fn record(&mut self, outcome: &Outcome, lane: lanes::LaneIndex) -> Result<()> {
        if !outcome.ingested.is_empty() || !outcome.rejected.is_empty() {
            // Progress: a plugin that failed before is working again.
            self.failures_in_a_row = 0;
        }
        let letters = self.ledger.record(outcome, lane);
        self.dead_letters.write(&letters).await?;
        if let Some(metrics) = &self.metrics {
            for letter in &letters {
                metrics
                    .rejected_by_reason
                    .add(crate::metrics::rejection_label(letter.kind));
            }
        }
        let receipts = self.ledger.release();
        if let Some(metrics) = &self.metrics {
            let report = &self.ledger.report;
            metrics.received.set(report.messages_in);
            metrics.ingested.set(report.ingested);
            metrics.dead_lettered.set(report.rejected);
            metrics.in_flight.set(self.ledger.in_flight() as u64);
        }
        if let Some(acknowledger) = &mut self.acknowledger {
            if !receipts.is_empty() {
                acknowledger.acknowledge(&receipts);
            }
        }
        Ok(())
    }
}
