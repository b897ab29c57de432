//! Drives one source through one plugin sink: feeds messages in chunks, flushes when the
//! plugin's latency bound is due, retries transient failures with backoff, and accounts for
//! every message: ingested, rejected with a reason, or still unacknowledged.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::plugin::{describe, ErrorClass, Message, Outcome, PluginSink, Statistics};
use crate::sources::SourceReceiver;

#[derive(Debug, Clone)]
pub struct PipelineOptions {
    /// Messages handed to the plugin per call.
    pub feed_chunk: usize,
    /// Unacknowledged messages at which the pipeline stops reading and flushes.
    pub max_in_flight: usize,
    pub retry: RetryPolicy,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        Self {
            feed_chunk: 1000,
            max_in_flight: 200_000,
            retry: RetryPolicy::default(),
        }
    }
}

/// Exponential backoff with jitter, as the Kusto SDKs do (about 1 s, doubling).
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub initial: Duration,
    pub max: Duration,
    /// Give up after this many consecutive failed attempts; `None` retries forever.
    pub max_attempts: Option<u32>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
            max_attempts: None,
        }
    }
}

impl RetryPolicy {
    fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exponential = self
            .initial
            .saturating_mul(1 << attempt.min(16))
            .min(self.max);
        // Up to 25% jitter so that many hosts do not retry in lockstep.
        let jitter_range = exponential.as_millis() as u64 / 4;
        let jitter = if jitter_range == 0 {
            0
        } else {
            crate::sources::now_nanos() % jitter_range
        };
        (exponential + Duration::from_millis(jitter)).max(retry_after.unwrap_or_default())
    }
}

/// Kept rejection details; beyond this only the count grows.
const MAX_KEPT_REJECTIONS: usize = 1000;

#[derive(Debug, Clone, Default)]
pub struct PipelineReport {
    pub messages_in: u64,
    pub ingested: u64,
    pub rejected: u64,
    /// `(origin, reason)` of the first rejected messages.
    pub rejections: Vec<(String, String)>,
    /// Messages neither ingested nor rejected when the pipeline stopped.
    pub unacknowledged: u64,
    /// Why the pipeline stopped early, if it did.
    pub failure: Option<String>,
    pub statistics: Option<Statistics>,
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
            format!("unacknowledged     {}", self.unacknowledged),
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
            && self.ingested + self.rejected == self.messages_in
    }
}

struct Ledger {
    /// Unacknowledged sequence numbers and where each message came from.
    pending: HashMap<u64, String>,
    report: PipelineReport,
}

impl Ledger {
    fn record(&mut self, outcome: &Outcome) {
        for sequence in &outcome.ingested {
            if self.pending.remove(sequence).is_some() {
                self.report.ingested += 1;
            }
        }
        for rejection in &outcome.rejected {
            if let Some(origin) = self.pending.remove(&rejection.sequence) {
                self.report.rejected += 1;
                if self.report.rejections.len() < MAX_KEPT_REJECTIONS {
                    self.report
                        .rejections
                        .push((origin, rejection.reason.clone()));
                }
            }
        }
    }
}

pub async fn run(
    sink: &mut PluginSink,
    mut source: SourceReceiver,
    options: &PipelineOptions,
) -> Result<PipelineReport> {
    let started = Instant::now();
    let mut ledger = Ledger {
        pending: HashMap::new(),
        report: PipelineReport::default(),
    };
    let mut next_sequence = 1u64;
    let mut buffer = Vec::with_capacity(options.feed_chunk);
    let mut source_done = false;

    let stopped = loop {
        if source_done {
            let outcome = sink.close().await?;
            break settle(sink, outcome, &mut ledger, &options.retry).await?;
        }
        if ledger.pending.len() >= options.max_in_flight {
            let outcome = sink.flush().await?;
            if let Some(stop) = settle(sink, outcome, &mut ledger, &options.retry).await? {
                break Some(stop);
            }
            continue;
        }
        let due = if ledger.pending.is_empty() {
            None
        } else {
            sink.next_flush_due().await?
        };
        let outcome = tokio::select! {
            received = source.recv_many(&mut buffer, options.feed_chunk) => {
                if received == 0 {
                    source_done = true;
                    continue;
                }
                let messages: Vec<Message> = buffer
                    .drain(..)
                    .map(|m| {
                        let (message, origin) = m.into_plugin_message(next_sequence);
                        ledger.pending.insert(next_sequence, origin);
                        next_sequence += 1;
                        message
                    })
                    .collect();
                ledger.report.messages_in += messages.len() as u64;
                sink.accept(&messages).await?
            }
            _ = tokio::time::sleep(due.unwrap_or_default()), if due.is_some() => sink.flush().await?,
        };
        if let Some(stop) = settle(sink, outcome, &mut ledger, &options.retry).await? {
            break Some(stop);
        }
    };

    let mut report = ledger.report;
    report.failure = stopped;
    report.unacknowledged = ledger.pending.len() as u64;
    report.statistics = Some(sink.statistics().await?);
    report.elapsed = started.elapsed();
    Ok(report)
}

/// Records an outcome's acknowledgements and retries a transient failure until it clears.
/// Returns why the pipeline must stop, if it must.
async fn settle(
    sink: &mut PluginSink,
    mut outcome: Outcome,
    ledger: &mut Ledger,
    retry: &RetryPolicy,
) -> Result<Option<String>> {
    let mut attempt = 0;
    loop {
        ledger.record(&outcome);
        let Some(failure) = outcome.failure.take() else {
            return Ok(None);
        };
        if failure.class != ErrorClass::Transient {
            return Ok(Some(describe(&failure)));
        }
        attempt += 1;
        if retry.max_attempts.is_some_and(|max| attempt >= max) {
            return Ok(Some(format!(
                "{} (gave up after {attempt} attempts)",
                describe(&failure)
            )));
        }
        let delay = retry.delay(
            attempt - 1,
            failure.retry_after_ms.map(Duration::from_millis),
        );
        eprintln!(
            "{}; retrying in {:.1} s",
            describe(&failure),
            delay.as_secs_f64()
        );
        tokio::time::sleep(delay).await;
        outcome = sink.flush().await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_honours_retry_after() {
        let policy = RetryPolicy {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(8),
            max_attempts: None,
        };
        let d0 = policy.delay(0, None);
        assert!(
            d0 >= Duration::from_secs(1) && d0 <= Duration::from_millis(1250),
            "{d0:?}"
        );
        let d2 = policy.delay(2, None);
        assert!(
            d2 >= Duration::from_secs(4) && d2 <= Duration::from_secs(5),
            "{d2:?}"
        );
        assert!(policy.delay(10, None) <= Duration::from_secs(10));
        assert!(policy.delay(0, Some(Duration::from_secs(30))) >= Duration::from_secs(30));
    }
}
