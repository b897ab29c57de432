//! The demo: the whole product on one machine. Starts the local ADX-compatible endpoint,
//! creates the documentation's thermostat table and enables streaming ingestion, pushes
//! messages through the bundled ADX plugin component, and reports what arrived.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Result};

use crate::bundled;
use dataflow_runtime::identity::StaticToken;
use dataflow_runtime::metrics::Metrics;
use dataflow_runtime::pipeline::{self, Delivery, PipelineOptions, PipelineReport, RetryPolicy};
use dataflow_runtime::plugin::{Limits, PluginRuntime};
use dataflow_runtime::progress::Progress;
use dataflow_runtime::sources::{self, jsonl, synthetic};
use dataflow_testkit::kusto_client::{KustoClient, ResultTable};
use kusto_model::percent_encode;
use local_adx::{Emulator, EmulatorOptions};

pub const DEMO_TABLE: &str = "thermostat";
/// What the page runs first: the temperature of each thermostat over the run, as a chart.
const PAGE_QUERY: &str = "thermostat | summarize avg(CurrentTemperature) by assetName, bin(Timestamp, 1s) | render timechart";

#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub messages: u64,
    /// JSON Lines to send instead of generated messages (`-` for standard input).
    pub input: Option<String>,
    pub database: String,
    pub format: String,
    pub max_messages: Option<u64>,
    pub latency_seconds: Option<u64>,
    pub rows_to_show: usize,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            messages: 100_000,
            input: None,
            database: "telemetry".into(),
            format: "multijson".into(),
            max_messages: None,
            latency_seconds: None,
            rows_to_show: 5,
        }
    }
}

pub struct DemoResult {
    pub report: PipelineReport,
    pub rows_in_table: u64,
    pub first_rows: ResultTable,
    pub compile_time: Duration,
    pub instantiate_time: Duration,
    /// The local endpoint the demo ran against, still up while this is held.
    pub emulator: Emulator,
    /// The endpoint's page, with its token and a first query in the address's fragment
    /// (which a browser does not send).
    pub page_url: String,
}

impl DemoResult {
    /// Every message ingested or rejected with a reason, and every ingested row in the table.
    pub fn succeeded(&self) -> bool {
        self.report.all_accounted_for() && self.rows_in_table == self.report.ingested
    }
}

pub async fn run(options: &DemoOptions) -> Result<DemoResult> {
    let token = format!("dev-{:x}", sources::now_nanos());
    let emulator = Emulator::start(EmulatorOptions::loopback(&token)).await?;
    let client = KustoClient::new(&emulator.url(), &token);
    let db = &options.database;
    client.management(db, synthetic::THERMOSTAT_TABLE).await?;
    client
        .management(
            db,
            &format!(".alter database ['{db}'] policy streamingingestion enable"),
        )
        .await?;

    let runtime = PluginRuntime::new(bundled::ADX_DESTINATION, Limits::default())?;
    let mut config = vec![
        ("host".to_string(), emulator.url()),
        ("database".to_string(), db.clone()),
        ("table".to_string(), DEMO_TABLE.to_string()),
        (
            "schema".to_string(),
            synthetic::THERMOSTAT_TABLE.to_string(),
        ),
        (
            "columns.MqttTopic".to_string(),
            "$metadata.topic".to_string(),
        ),
        ("format".to_string(), options.format.clone()),
    ];
    if let Some(n) = options.max_messages {
        config.push(("batching.maxMessages".into(), n.to_string()));
    }
    if let Some(s) = options.latency_seconds {
        config.push(("batching.latencySeconds".into(), s.to_string()));
    }
    let sink = runtime
        .open(
            "adx",
            &emulator.url(),
            Arc::new(StaticToken(token.clone())),
            config,
        )
        .await?;

    let (sender, receiver) = sources::channel();
    let producer = match options.input.clone() {
        Some(path) => {
            tokio::spawn(async move { jsonl::read_path(&path, "demo/input", sender).await })
        }
        None => {
            let count = options.messages;
            tokio::spawn(async move { Ok(synthetic::generate(count, sender).await) })
        }
    };
    let pipeline_options = PipelineOptions {
        retry: RetryPolicy {
            max_attempts: Some(5),
            ..RetryPolicy::default()
        },
        ..PipelineOptions::default()
    };
    let metrics = Metrics::new("local", DEMO_TABLE);
    let progress = Progress::start("demo", metrics.clone());
    let delivery = Delivery {
        metrics: Some(metrics),
        ..Delivery::default()
    };
    let instantiate_time = sink.instantiate_time();
    let report = pipeline::run_with(sink, receiver, delivery, &pipeline_options).await;
    progress.finish().await;
    let report = report?;
    producer.await??;

    let count = client.query(db, &format!("{DEMO_TABLE} | count")).await?;
    let rows_in_table = count
        .rows
        .first()
        .and_then(|r| r.first())
        .and_then(|v| v.as_u64())
        .unwrap_or(0);
    let first_rows = client
        .query(db, &format!("{DEMO_TABLE} | take {}", options.rows_to_show))
        .await?;
    let page_url = format!(
        "{}/#token={token}&db={}&query={}",
        emulator.url(),
        percent_encode(db),
        percent_encode(PAGE_QUERY)
    );
    Ok(DemoResult {
        report,
        rows_in_table,
        first_rows,
        compile_time: runtime.load_time,
        instantiate_time,
        emulator,
        page_url,
    })
}

/// Prints the summary; fails when a message is unaccounted for.
pub fn print_and_check(result: &DemoResult) -> Result<()> {
    let r = &result.report;
    for line in r.summary() {
        println!("{line}");
    }
    println!("table now holds    {} rows", result.rows_in_table);
    println!(
        "plugin             compiled in {:.3} s, instantiated in {} µs",
        result.compile_time.as_secs_f64(),
        result.instantiate_time.as_micros()
    );
    println!(
        "\nfirst rows of {DEMO_TABLE}:\n{}",
        result.first_rows.render()
    );
    println!("the table in a browser: {}", result.page_url);
    if let Some(failure) = &r.failure {
        bail!("the dataflow stopped: {failure}");
    }
    if !result.succeeded() {
        bail!(
            "{} messages in, {} ingested, {} rejected, {} in the table: some messages are unaccounted for",
            r.messages_in,
            r.ingested,
            r.rejected,
            result.rows_in_table
        );
    }
    Ok(())
}
