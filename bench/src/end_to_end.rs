//! End to end on loopback: an MQTT publish becomes a row in the local endpoint. A real
//! mosquitto, the host's MQTT source and pipeline, the plugin with `latencySeconds: 0`, HTTP
//! over loopback, and the endpoint that parses and stores every row, all on this machine.
//! The publisher is `mosquitto_pub`, a process of its own, so that it does not take the
//! host's threads. The latency of a message runs from the moment its line is handed to the
//! publisher (before it is even published: the figure errs high, never low) to the moment the
//! endpoint stored its row (its `ingestion_time()`), both read from the system clock.

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use crate::loopback::LoopbackEndpoint;
use anyhow::{bail, Context, Result};
use serde_json::Value;
use tokio::sync::watch;

use dataflow_runtime::config::MqttEndpoint;
use dataflow_runtime::pipeline::{Delivery, PipelineOptions};
use dataflow_runtime::plugin::PluginRuntime;
use dataflow_runtime::run;
use dataflow_runtime::sources::mqtt::{MqttSourceOptions, ProtocolVersion};
use dataflow_runtime::sources::now_nanos;
use dataflow_testkit::broker::LocalBroker;

const DATABASE: &str = "bench";
const TABLE: &str = "latency";
const SCHEMA: &str = ".create table latency (n: long, sentNanos: long, MqttTopic: string)";
const TOPIC: &str = "bench/e2e/0";
/// Published before the measurement until one arrives: the subscription is in place.
const WARM_UP: i64 = -1;

/// One rate offered for a while, through a source with a given window.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    /// Messages per second offered.
    pub rate: u32,
    pub duration: Duration,
    /// The source's maxInflightMessages (its MQTT receive maximum).
    pub max_inflight: u16,
}

impl Case {
    /// 10,000 and 50,000 msgs/s with Azure IoT Operations' default window of 100, and
    /// 50,000 with a window of 1000: whether the window or the host sets the limit.
    pub fn standard(duration: Duration) -> Vec<Case> {
        let case = |rate, max_inflight| Case {
            rate,
            duration,
            max_inflight,
        };
        vec![case(10_000, 100), case(50_000, 100), case(50_000, 1000)]
    }
}

#[derive(Debug, Clone)]
pub struct EndToEnd {
    pub case: Case,
    pub messages: usize,
    /// The publishing rate reached, in msgs/s.
    pub achieved_rate: f64,
    /// Publish → row stored, in seconds.
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

/// Publishes `case.rate` messages per second for `case.duration` and measures each one's
/// latency.
pub async fn measure(runtime: &PluginRuntime, case: &Case) -> Result<EndToEnd> {
    let dir = std::env::temp_dir().join(format!("bench-e2e-{}", std::process::id()));
    let broker = LocalBroker::start(&dir)?;
    let endpoint = LoopbackEndpoint::start(DATABASE).await?;
    endpoint.client.management(DATABASE, SCHEMA).await?;
    let emulator = &endpoint.emulator;
    let sink = endpoint
        .open(
            runtime,
            "e2e",
            TABLE,
            SCHEMA,
            &[("batching.latencySeconds", "0")],
        )
        .await?;
    let mut broker_endpoint = MqttEndpoint::at(&broker.address()).map_err(anyhow::Error::msg)?;
    broker_endpoint.max_inflight_messages = case.max_inflight;
    let source = MqttSourceOptions {
        endpoint: broker_endpoint,
        client_id: format!("bench-e2e-{}", std::process::id()),
        filters: vec![TOPIC.into()],
        version: ProtocolVersion::V5,
        tls: None,
        credential: None,
    };
    let (stop, stopped) = watch::channel(false);
    let delivery = Delivery {
        shutdown: Some(stopped),
        ..Delivery::default()
    };
    let pipeline = tokio::spawn(async move {
        run::from_mqtt(sink, &source, delivery, PipelineOptions::default()).await
    });

    let mut publisher = Publisher::start(broker.port)?;
    let rows = || emulator.rows_with_ingestion_times(DATABASE, TABLE);
    // Waits count the rows, never copy them: a copy of every row each few milliseconds
    // would take the CPU the host is measured with.
    let stored = || emulator.row_count(DATABASE, TABLE);
    let warm_up_until = Instant::now() + Duration::from_secs(10);
    let mut warm_ups = 0;
    while stored() == 0 {
        if Instant::now() > warm_up_until {
            bail!("no message came through the broker and the host within 10 s");
        }
        publisher.send(WARM_UP..WARM_UP + 1)?;
        warm_ups += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let messages = (case.rate as f64 * case.duration.as_secs_f64()) as usize;
    let rate = case.rate;
    let (publisher, achieved_rate) =
        tokio::task::spawn_blocking(move || publisher.paced(messages, rate))
            .await
            .context("the publishing thread")??;

    let deadline = Instant::now() + Duration::from_secs(30);
    while stored() < messages + warm_ups {
        if Instant::now() > deadline {
            bail!(
                "{} of {messages} rows arrived within 30 s",
                measured(&rows()).count()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    publisher.finish()?;
    stop.send(true).ok();
    pipeline.await.context("the pipeline task")??;
    drop(broker);
    std::fs::remove_dir_all(&dir).ok();

    let mut latencies: Vec<f64> = measured(&rows())
        .filter_map(|(row, ingested)| {
            let sent = row[1].as_u64()?;
            Some(ingested.saturating_sub(sent) as f64 / 1e9)
        })
        .collect();
    if latencies.len() != messages {
        bail!(
            "{} rows for {messages} messages: some were duplicated",
            latencies.len()
        );
    }
    latencies.sort_by(f64::total_cmp);
    let percentile = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    Ok(EndToEnd {
        case: *case,
        messages,
        achieved_rate,
        p50: percentile(0.50),
        p99: percentile(0.99),
        max: latencies[latencies.len() - 1],
    })
}

/// The rows of measured messages (not the warm-up), with their ingestion times.
fn measured(rows: &[(Vec<Value>, u64)]) -> impl Iterator<Item = &(Vec<Value>, u64)> {
    rows.iter()
        .filter(|(row, _)| row[0].as_i64().is_some_and(|n| n != WARM_UP))
}

/// `mosquitto_pub -l`: each line it reads from its standard input becomes a QoS 1 publish of
/// `{"n": …, "sentNanos": …}`, stamped as the line is written to it.
struct Publisher {
    process: Child,
    lines: ChildStdin,
}

impl Publisher {
    fn start(port: u16) -> Result<Self> {
        let mut process = Command::new("mosquitto_pub")
            .args(["-V", "mqttv5", "-h", "127.0.0.1", "-q", "1", "-t", TOPIC])
            .args(["-p", &port.to_string(), "-l", "--nodelay"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .context("starting mosquitto_pub (`apt-get install mosquitto-clients`)")?;
        let lines = process
            .stdin
            .take()
            .context("mosquitto_pub's standard input")?;
        Ok(Self { process, lines })
    }

    /// Messages numbered `numbers`, in one write.
    fn send(&mut self, numbers: std::ops::Range<i64>) -> Result<()> {
        let sent = now_nanos();
        let mut text = String::with_capacity(48 * numbers.clone().count());
        for n in numbers {
            writeln!(text, "{{\"n\":{n},\"sentNanos\":{sent}}}").expect("writing to a String");
        }
        self.lines
            .write_all(text.as_bytes())
            .context("writing to mosquitto_pub")
    }

    /// `messages` at `rate` per second, each written when it is due (the ones that fell due
    /// since the last write together, about every 100 µs); returns the rate reached.
    fn paced(mut self, messages: usize, rate: u32) -> Result<(Self, f64)> {
        let started = Instant::now();
        let mut sent = 0;
        while sent < messages {
            let due = ((started.elapsed().as_secs_f64() * rate as f64) as usize).min(messages);
            if due > sent {
                self.send(sent as i64..due as i64)?;
                sent = due;
            } else {
                std::thread::sleep(Duration::from_micros(100));
            }
        }
        let achieved = messages as f64 / started.elapsed().as_secs_f64();
        Ok((self, achieved))
    }

    /// Ends the input and waits until `mosquitto_pub` has published everything.
    fn finish(mut self) -> Result<()> {
        drop(self.lines);
        let status = self.process.wait().context("waiting for mosquitto_pub")?;
        if !status.success() {
            bail!("mosquitto_pub failed ({status})");
        }
        Ok(())
    }
}
