//! The host's memory as a process: 100,000 messages of about 190 bytes from a file, with the
//! default batching (up to 100,000 rows a batch, 60 s), more than half of them in flight at
//! once (a request's worth of rows is sent as soon as it waits). Measured at 65 MB resident
//! with 55,000 in flight (BENCHMARKS.md); the bound here guards against a regression.

use std::time::Duration;

use dataflow_host::bundled;
use dataflow_runtime::plugin::{ArtifactCache, Limits, PluginRuntime};
use end_to_end_tests::delivery::{shared_artifact_cache, Scenario, ScenarioOptions};

const MESSAGES: u64 = 100_000;

fn figure<'a>(log: &'a str, label: &str) -> &'a str {
    let line = log
        .lines()
        .find(|l| l.starts_with(label))
        .unwrap_or_else(|| panic!("no `{label}` in\n{log}"));
    line[label.len()..].split_whitespace().next().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_messages_from_a_file_keep_the_host_under_96_mb() {
    let options = ScenarioOptions {
        max_messages: 100_000,
        latency_seconds: 60,
        ..ScenarioOptions::default()
    };
    let scenario = Scenario::start("memory", options).await;
    // The host loads the plugin from the cache, as a restarted host does: compiling it is a
    // one-off that costs its own 20 MB or so.
    PluginRuntime::load(
        bundled::ADX_DESTINATION,
        Limits::default(),
        Some(&ArtifactCache::new(shared_artifact_cache())),
    )
    .unwrap();
    let padding = "x".repeat(140);
    let lines: String = (0..MESSAGES)
        .map(|n| {
            format!(
                "{{\"n\":{n},\"site\":\"s{}\",\"note\":\"{padding}\"}}\n",
                n % 3
            )
        })
        .collect();
    let input = scenario.dir.join("input.jsonl");
    std::fs::write(&input, lines).unwrap();
    let dead_letters = scenario.dir.join("dead-letter.jsonl");
    let host = scenario.start_host_with(
        "a",
        &[
            "--input",
            &input.display().to_string(),
            "--dead-letter",
            &dead_letters.display().to_string(),
        ],
    );
    let status = host.wait(Duration::from_secs(120)).await;
    let log = scenario.host_logs();
    assert!(status.success(), "{status}\n{log}");
    assert_eq!(figure(&log, "rows ingested"), MESSAGES.to_string(), "{log}");
    let in_flight: u64 = figure(&log, "peak in flight").parse().unwrap();
    let megabytes: f64 = figure(&log, "peak memory").parse().unwrap();
    println!("{MESSAGES} messages from a file: peak in flight {in_flight}, peak memory {megabytes} MB resident");
    assert!(in_flight >= 50_000, "only {in_flight} in flight at most");
    assert!(megabytes < 96.0, "{megabytes} MB");
    assert_eq!(
        scenario
            .adx
            .emulator
            .rows(end_to_end_tests::DATABASE, "readings")
            .len() as u64,
        MESSAGES
    );
}
