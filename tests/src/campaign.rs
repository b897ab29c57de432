//! A delivery campaign as a user would rehearse production: numbered QoS 1 messages
//! published at a steady rate into a real mosquitto, the host as a process reading them
//! into the local endpoint while it injects faults, the host SIGKILLed and restarted, the
//! broker restarted. At the end every number is counted in the table and the dead-letter
//! files, and the broker's own log (every packet) is compared with the host's summary.
//!
//! The delivery tests run short campaigns; `cargo run --release -p end-to-end-tests --bin
//! delivery-campaign -- --soak` runs a million messages per scenario.

use std::time::{Duration, Instant};

use dataflow_testkit::broker::PacketCounts;

use crate::delivery::{numbered, Scenario, ScenarioOptions, Tally};
use dataflow_testkit::publisher::publish_all;

#[derive(Debug, Clone)]
pub struct Campaign {
    pub name: String,
    pub messages: u64,
    pub per_second: u64,
    /// The source endpoint's `maxInflightMessages`.
    pub window: u16,
    /// Faults the endpoint injects into ingestion (`429=1s:0.15`, `slow=300ms:0.05`, ...).
    pub faults: Vec<String>,
    /// SIGKILLs of the host, spread over the publishing time; each restart after 1–3 s.
    pub kills: u32,
    /// Broker restarts (graceful, it keeps its sessions), half way through.
    pub broker_restarts: u32,
    /// How long the host may take to drain what is left once publishing ends.
    pub drain_timeout: Duration,
}

/// The faults of the rehearsal: a sixth of requests throttled with `Retry-After:
/// 1`, one in twenty answered 503, one in twenty answered after 300 ms.
pub fn rehearsal_faults() -> Vec<String> {
    ["429=1s:0.15", "503:0.05", "slow=300ms:0.05"]
        .map(String::from)
        .to_vec()
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub campaign: Campaign,
    pub tally: Tally,
    /// What the broker's log says it exchanged with the host.
    pub broker: PacketCounts,
    /// The host's own counts, summed over its runs that ended with a summary (a killed one
    /// prints none): MQTT messages received and PUBACKs written.
    pub host_received: u64,
    pub host_acknowledged: u64,
    /// Whether every host run printed its summary (none was killed).
    pub host_counts_complete: bool,
    /// Connections the host lost and made again (from its logs).
    pub reconnects: u64,
    /// Messages the publisher sent again because a broker restart cut off their PUBACK.
    pub republished: u64,
    pub elapsed: Duration,
}

impl Outcome {
    /// The most duplicates at-least-once allows: what the broker had sent the host and not had
    /// acknowledged whenever the host connected again (after a kill or a lost connection), by
    /// the broker's own log, and what the publisher itself sent twice. That is a window per
    /// kill or reconnect at most while the broker honours the receive maximum; mosquitto
    /// 2.0.11 sends a resumed session more (its backlog at once).
    pub fn duplicate_bound(&self) -> u64 {
        self.broker.unacknowledged_at_reconnect + self.republished
    }

    pub const HEADER: &'static str = "| scenario | published | distinct ingested | dead-lettered | duplicates (bound) | lost | broker PUBLISH → host | broker PUBACK ← host | host received / acknowledged | time |\n|---|---|---|---|---|---|---|---|---|---|";

    /// One row of the table RELIABILITY.md shows.
    pub fn row(&self) -> String {
        let host = if self.host_counts_complete {
            format!("{} / {}", self.host_received, self.host_acknowledged)
        } else {
            "(killed runs print none)".to_string()
        };
        format!(
            "| {} | {} | {} | {} | {} ({}) | {} | {} | {} | {host} | {:.0} s |",
            self.campaign.name,
            self.tally.published,
            self.tally.ingested,
            self.tally.dead_lettered,
            self.tally.duplicates,
            self.duplicate_bound(),
            self.tally.lost.len(),
            self.broker.publish_sent,
            self.broker.puback_received,
            self.elapsed.as_secs_f64()
        )
    }

    /// What must hold, as a list of what did not (empty when the campaign passed).
    pub fn violations(&self) -> Vec<String> {
        let mut wrong = Vec::new();
        if !self.tally.lost.is_empty() {
            wrong.push(format!(
                "{} message(s) lost (first: {:?})",
                self.tally.lost.len(),
                self.tally.first_lost()
            ));
        }
        let nothing_interrupted = self.campaign.kills == 0 && self.reconnects == 0;
        if nothing_interrupted && self.tally.duplicates > self.republished {
            wrong.push(format!(
                "{} duplicate(s) with nothing killed or reconnected",
                self.tally.duplicates
            ));
        }
        if self.tally.duplicates > self.duplicate_bound() {
            wrong.push(format!(
                "{} duplicate(s), more than the broker had unacknowledged when the host connected again ({}, by its log)",
                self.tally.duplicates,
                self.duplicate_bound()
            ));
        }
        if self.broker.publish_sent == 0 {
            wrong.push("the broker's log records no PUBLISH to the host".to_string());
        }
        if self.host_counts_complete {
            if self.broker.publish_sent != self.host_received {
                wrong.push(format!(
                    "the broker sent {} PUBLISH, the host received {}",
                    self.broker.publish_sent, self.host_received
                ));
            }
            if self.broker.puback_received != self.host_acknowledged {
                wrong.push(format!(
                    "the host wrote {} PUBACK, the broker received {}",
                    self.host_acknowledged, self.broker.puback_received
                ));
            }
        }
        // Every delivery the host kept was acknowledged: the broker holds nothing back.
        if nothing_interrupted && self.broker.puback_received != self.broker.publish_sent {
            wrong.push(format!(
                "the broker sent {} PUBLISH but received {} PUBACK",
                self.broker.publish_sent, self.broker.puback_received
            ));
        }
        wrong
    }
}

/// Runs one campaign to its end and counts what became of every message.
pub async fn run(campaign: &Campaign) -> (Outcome, Scenario) {
    let started = Instant::now();
    let options = ScenarioOptions {
        max_inflight_messages: campaign.window,
        // As examples/local: requests of up to 1000 rows, sent at least every second.
        max_messages: 1000,
        broker_logs_packets: true,
        ..ScenarioOptions::default()
    };
    let slug: String = campaign
        .name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let mut scenario = Scenario::start(&format!("campaign-{slug}"), options).await;
    let faults = campaign
        .faults
        .iter()
        .map(|f| f.parse().expect("a fault"))
        .collect();
    scenario.adx.emulator.set_faults(faults);

    let mut host = scenario.start_host_ready("a", 1).await;
    let mut connections = 1;
    let port = scenario.broker.port;
    let publisher = tokio::spawn(publish_all(
        port,
        numbered(0..campaign.messages, None),
        Some(campaign.per_second),
    ));

    // Kills spread over the publishing time, the broker restart half way.
    let publishing = Duration::from_secs_f64(campaign.messages as f64 / campaign.per_second as f64);
    let mut events: Vec<(Duration, bool)> = (1..=campaign.kills)
        .map(|k| (publishing * k / (campaign.kills + 1), true))
        .collect();
    events.extend((1..=campaign.broker_restarts).map(|r| {
        let at = publishing * (2 * r - 1) / (2 * campaign.broker_restarts);
        (at + Duration::from_millis(250), false)
    }));
    events.sort();
    for (k, (at, is_kill)) in events.into_iter().enumerate() {
        tokio::time::sleep_until((started + at).into()).await;
        if is_kill {
            host.kill();
            // 1 to 3 s down, varied but the same every run.
            tokio::time::sleep(Duration::from_millis(1000 + (k as u64 * 700) % 2000)).await;
            connections += 1;
            host = scenario.start_host_ready("a", connections).await;
        } else {
            scenario.broker.restart(Duration::from_secs(1)).unwrap();
        }
    }
    let republished = publisher.await.unwrap();
    let tally = scenario
        .wait_for_all(campaign.messages, campaign.drain_timeout)
        .await;
    // Once everything is in, the last acknowledgements need a moment to reach the broker.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let status = host.terminate(Duration::from_secs(60)).await;
    let logs = scenario.host_logs();
    let (host_received, host_acknowledged, summaries) = host_counts(&logs);
    let reconnects = logs.matches("MQTT connection to").count() as u64;
    let outcome = Outcome {
        campaign: campaign.clone(),
        tally,
        broker: scenario
            .broker
            .packet_counts(&Scenario::host_client_id("a")),
        host_received,
        host_acknowledged,
        host_counts_complete: campaign.kills == 0 && summaries == 1 && status.success(),
        reconnects,
        republished,
        elapsed: started.elapsed(),
    };
    (outcome, scenario)
}

/// Sums the `MQTT … received, … acknowledged` lines of the host's summaries.
fn host_counts(logs: &str) -> (u64, u64, usize) {
    let mut totals = (0, 0, 0);
    for line in logs.lines().filter(|l| l.starts_with("MQTT  ")) {
        let numbers: Vec<u64> = line
            .split_whitespace()
            .filter_map(|word| word.parse().ok())
            .collect();
        if let [received, acknowledged, ..] = numbers[..] {
            totals.0 += received;
            totals.1 += acknowledged;
            totals.2 += 1;
        }
    }
    totals
}

/// Kept so that a failing campaign's host can be looked at; dropped with its scenario.
pub fn describe_failure(outcome: &Outcome, scenario: &Scenario) -> String {
    let logs = scenario.host_logs();
    let tail: Vec<&str> = logs.lines().rev().take(60).collect();
    format!(
        "{}\n{}\n{}\nlast host log lines:\n{}",
        Outcome::HEADER,
        outcome.row(),
        outcome.violations().join("\n"),
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    )
}
