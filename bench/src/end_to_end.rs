//! End to end on loopback: an MQTT publish becomes a row in the local endpoint. A real
//! mosquitto, the host's MQTT source and pipeline, the plugin with `latencySeconds: 0`, HTTP
//! over loopback, and the endpoint that parses and stores every row, all on this machine.
//! The latency of a message runs from the publish call to the moment the endpoint stored its
//! row (its `ingestion_time()`), both read from the one system clock of this process.

use std::time::{Duration, Instant};

use crate::loopback::LoopbackEndpoint;
use anyhow::{bail, Context, Result};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, MqttOptions};
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
const TOPIC: &str = "bench/e2e";
/// Published before the measurement until one arrives: the subscription is in place.
const WARM_UP: i64 = -1;

#[derive(Debug, Clone)]
pub struct EndToEnd {
    pub messages: usize,
    /// The publishing rate asked for, and the one reached, in msgs/s.
    pub offered_rate: u32,
    pub achieved_rate: f64,
    /// Publish → row stored, in seconds.
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

/// Publishes `rate` messages per second for `duration` and measures each one's latency.
pub async fn measure(runtime: &PluginRuntime, rate: u32, duration: Duration) -> Result<EndToEnd> {
    let dir = std::env::temp_dir().join(format!("bench-e2e-{}", std::process::id()));
    let broker = LocalBroker::start(&dir)?;
    let endpoint = LoopbackEndpoint::start(DATABASE).await?;
    endpoint.client.management(DATABASE, SCHEMA).await?;
    let emulator = &endpoint.emulator;
    let mut sink = endpoint
        .open(
            runtime,
            "e2e",
            TABLE,
            SCHEMA,
            &[("batching.latencySeconds", "0")],
        )
        .await?;
    let source = MqttSourceOptions {
        endpoint: MqttEndpoint::at(&broker.address()).map_err(anyhow::Error::msg)?,
        client_id: format!("bench-e2e-{}", std::process::id()),
        filters: vec![format!("{TOPIC}/#")],
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
        run::from_mqtt(&mut sink, &source, delivery, PipelineOptions::default()).await
    });

    let publisher = Publisher::connect(broker.port);
    let rows = || emulator.rows_with_ingestion_times(DATABASE, TABLE);
    let warm_up_until = Instant::now() + Duration::from_secs(10);
    while rows().is_empty() {
        if Instant::now() > warm_up_until {
            bail!("no message came through the broker and the host within 10 s");
        }
        publisher.publish(WARM_UP).await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let messages = (rate as f64 * duration.as_secs_f64()) as usize;
    let started = Instant::now();
    for n in 0..messages {
        let due = started + Duration::from_secs_f64(n as f64 / rate as f64);
        tokio::time::sleep_until(due.into()).await;
        publisher.publish(n as i64).await?;
    }
    let achieved_rate = messages as f64 / started.elapsed().as_secs_f64();

    let deadline = Instant::now() + Duration::from_secs(30);
    while measured(&rows()).count() < messages {
        if Instant::now() > deadline {
            bail!(
                "{} of {messages} rows arrived within 30 s",
                measured(&rows()).count()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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
        messages,
        offered_rate: rate,
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

/// QoS 1 publishes of `{"n": …, "sentNanos": …}`, stamped when handed to the client.
struct Publisher {
    client: AsyncClient,
    _events: tokio::task::JoinHandle<()>,
}

impl Publisher {
    fn connect(port: u16) -> Self {
        let options = MqttOptions::new(
            format!("bench-publisher-{}", std::process::id()),
            "127.0.0.1",
            port,
        );
        let (client, mut eventloop) = AsyncClient::new(options, 1000);
        let events = tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
        Self {
            client,
            _events: events,
        }
    }

    async fn publish(&self, n: i64) -> Result<()> {
        let payload = format!(r#"{{"n":{n},"sentNanos":{}}}"#, now_nanos());
        self.client
            .publish(
                format!("{TOPIC}/{}", n.rem_euclid(4)),
                QoS::AtLeastOnce,
                false,
                payload,
            )
            .await
            .context("publishing to the local broker")
    }
}
