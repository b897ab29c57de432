//! The cost of a transformation: the same messages, in the shape of howto-create-dataflow's
//! thermostat example, through the whole pipeline (source channel → transformation → the
//! plugin in wasmtime, its HTTP answered in-process) with the documented filter and map and
//! without a transformation, side by side in one run; and the transformation stage alone.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Result};

use dataflow_runtime::http_client::Discard;
use dataflow_runtime::identity::StaticToken;
use dataflow_runtime::pipeline::{self, Delivery, PipelineOptions, TransformStage};
use dataflow_runtime::plugin::{Limits, PluginRuntime};
use dataflow_runtime::sources::{self, SourceMessage};
use dataflow_transform::{documented, Transformation};

use crate::Spread;

const TABLE: &str = ".create table thermostat (assetName: string, TemperatureF: real, Humidity: real, MqttTopic: string)";

#[derive(Debug, Clone)]
pub struct TransformationCost {
    pub messages: usize,
    /// Pipeline msgs/s without a transformation, and with the documented one.
    pub without: Spread,
    pub with: Spread,
    /// The transformation stage alone: microseconds per message.
    pub stage_micros: f64,
}

impl TransformationCost {
    /// What the transformation adds per message, in microseconds (medians).
    pub fn added_micros(&self) -> f64 {
        (1.0 / self.with.median - 1.0 / self.without.median) * 1e6
    }
}

/// Warm readings: none is filtered out, so both cases send the same number of rows.
fn message(index: u64) -> SourceMessage {
    SourceMessage {
        topic: format!("factory/line{}/thermostat", index % 4),
        payload: documented::thermostat_payload(index),
        origin: format!("generator:{index}").into(),
        ..SourceMessage::default()
    }
}

pub async fn measure(plugin: &[u8], messages: usize, runs: usize) -> Result<TransformationCost> {
    let runtime = PluginRuntime::new(plugin, Limits::default())?.with_transport(Arc::new(Discard));
    let tokens = Arc::new(StaticToken("bench".into()));
    let settings: Vec<(String, String)> = [
        ("host", "https://bench.westeurope.kusto.windows.net"),
        ("database", "bench"),
        ("schema", TABLE),
        ("columns.MqttTopic", "$metadata.topic"),
        ("batching.maxMessages", "1000"),
        ("batching.latencySeconds", "60"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let spec = documented::thermostat();
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for _ in 0..runs.max(1) {
        for transformed in [false, true] {
            let sink = runtime
                .open(
                    "bench",
                    "https://bench.westeurope.kusto.windows.net",
                    tokens.clone(),
                    settings.clone(),
                )
                .await?;
            let (sender, receiver) = sources::channel();
            let producer = tokio::spawn(async move {
                for i in 0..messages as u64 {
                    if sender.send(message(i)).await.is_err() {
                        break;
                    }
                }
            });
            let delivery = Delivery {
                transform: transformed.then(|| {
                    TransformStage::new(
                        Transformation::compile(&spec).expect("the documented rules compile"),
                        "bench".into(),
                    )
                }),
                ..Delivery::default()
            };
            let started = Instant::now();
            let report =
                pipeline::run_with(sink, receiver, delivery, &PipelineOptions::default()).await?;
            let rate = messages as f64 / started.elapsed().as_secs_f64();
            producer.await?;
            if report.ingested != messages as u64 {
                bail!(
                    "{} of {messages} messages ingested (transformation: {transformed}): {:?}",
                    report.ingested,
                    report.rejections.first()
                );
            }
            match transformed {
                true => with.push(rate),
                false => without.push(rate),
            }
        }
    }

    // The stage alone, on plugin messages as the pipeline hands them over.
    let mut stage = TransformStage::new(
        Transformation::compile(&spec).expect("compiles"),
        "bench".into(),
    );
    let mut batch: Vec<_> = (0..messages as u64)
        .map(|i| message(i).into_plugin_message(i).0)
        .collect();
    let (mut screened, mut filtered) = (Vec::new(), Vec::new());
    let started = Instant::now();
    stage.apply(&mut batch, &mut screened, &mut filtered, usize::MAX);
    let stage_micros = started.elapsed().as_secs_f64() * 1e6 / messages as f64;
    if !screened.is_empty() || !filtered.is_empty() {
        bail!(
            "the stage alone rejected {} and filtered {}",
            screened.len(),
            filtered.len()
        );
    }
    Ok(TransformationCost {
        messages,
        without: Spread::of(without),
        with: Spread::of(with),
        stage_micros,
    })
}
