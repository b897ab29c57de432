//! A plugin that traps, overruns its deadline or outgrows its memory cap is stopped, reported
//! with the cause, and replaced by a fresh instance that gets its unsettled messages again:
//! nothing is lost. Meanwhile another endpoint in the same process, with the ADX plugin,
//! delivers all of its own messages.

use std::sync::Arc;
use std::time::Duration;

use dataflow_runtime::identity::StaticToken;
use dataflow_runtime::metrics::Metrics;
use dataflow_runtime::pipeline::{self, Delivery, PipelineOptions};
use dataflow_runtime::plugin::{Limits, PluginRuntime};
use end_to_end_tests::{adx_runtime, http_probe_wasm, numbered_messages, LocalAdx, DATABASE};

async fn run_misbehaving(
    misbehave: &str,
) -> (dataflow_runtime::pipeline::PipelineReport, Vec<u64>, String) {
    let adx = LocalAdx::start(".create table t (n: long)", true).await;
    let limits = Limits {
        call_deadline: Duration::from_secs(1),
        max_memory_bytes: 64 << 20,
    };
    let runtime = PluginRuntime::new(&http_probe_wasm(), limits).unwrap();
    let url = adx.emulator.url();
    let config = vec![
        (
            "url".to_string(),
            format!("{url}/v1/rest/ingest/{DATABASE}/t?streamFormat=json"),
        ),
        ("misbehave".to_string(), misbehave.to_string()),
    ];
    let sink = runtime
        .open(
            "probe",
            &url,
            Arc::new(StaticToken(adx.token.clone())),
            config,
        )
        .await
        .unwrap();
    let receiver = numbered_messages(100, Duration::ZERO);
    let options = PipelineOptions {
        feed_chunk: 10,
        ..PipelineOptions::default()
    };
    let metrics = Metrics::new("probe", "t");
    let delivery = Delivery {
        metrics: Some(metrics.clone()),
        ..Delivery::default()
    };
    let report = pipeline::run_with(sink, receiver, delivery, &options)
        .await
        .unwrap();
    let mut numbers = adx.numbers("t");
    numbers.dedup();
    (report, numbers, metrics.render())
}

/// Another endpoint of the same process: the ADX plugin into its own table, 100 messages in
/// batches of 10, one every 30 ms, while the misbehaving plugin runs.
async fn run_neighbour() -> (dataflow_runtime::pipeline::PipelineReport, usize) {
    let table = ".create table t (n: long)";
    let adx = LocalAdx::start(table, true).await;
    let runtime = adx_runtime();
    let sink = adx
        .open(
            &runtime,
            adx.adx_config("t", table, &[("batching.maxMessages", "10")]),
        )
        .await;
    let report = pipeline::run(
        sink,
        numbered_messages(100, Duration::from_millis(30)),
        &PipelineOptions::default(),
    )
    .await
    .unwrap();
    (report, adx.emulator.rows(DATABASE, "t").len())
}

async fn contained(misbehave: &str, cause: &str, class: &str) {
    let neighbour = tokio::spawn(run_neighbour());
    let (report, numbers, metrics) = run_misbehaving(misbehave).await;
    let (neighbour, rows) = neighbour.await.unwrap();
    assert!(neighbour.all_accounted_for(), "{neighbour:?}");
    assert_eq!((neighbour.ingested, rows), (100, 100), "{neighbour:?}");
    assert_eq!(neighbour.plugin_restarts, 0);
    let failures = metrics
        .lines()
        .find(|l| l.contains(&format!("cause=\"{class}\"")))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse::<u32>().ok());
    assert_eq!(failures, Some(report.plugin_restarts), "{metrics}");
    assert!(report.all_accounted_for(), "{misbehave}: {report:?}");
    assert_eq!(report.ingested, 100, "{misbehave}: {report:?}");
    assert_eq!(numbers, (0..100).collect::<Vec<_>>(), "{misbehave}");
    // Each fresh instance misbehaves again at its third call.
    assert!(report.plugin_restarts >= 3, "{misbehave}: {report:?}");
    assert!(
        report.plugin_failures.iter().all(|f| f.contains(cause)),
        "{misbehave}: {:?}",
        report.plugin_failures
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_that_traps_is_replaced_and_loses_nothing() {
    contained("panic@3", "wasm trap", "trap").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_that_loops_forever_is_stopped_at_its_deadline_and_replaced() {
    contained("loop@3", "interrupt", "deadline").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_that_grows_without_end_is_stopped_at_its_memory_cap_and_replaced() {
    contained("grow@3", "memory", "memory").await;
}
