//! Against a distant endpoint: every answer of the local endpoint comes 20 ms late (as from a
//! cluster in another region), and the whole pipeline sends it the thermostat messages in
//! batches of 1000 as soon as they are full (`latencySeconds: 0`): one request at a time
//! against several in flight, side by side in one run.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use dataflow_runtime::pipeline::{self, PipelineOptions};
use dataflow_runtime::plugin::PluginRuntime;
use dataflow_runtime::sources::{self, synthetic};
use local_adx::faults::{Fault, FaultKind};

use crate::loopback::LoopbackEndpoint;

/// How late every answer comes.
pub const DELAY: Duration = Duration::from_millis(20);
/// The cases: requests in flight.
pub const IN_FLIGHT: [usize; 3] = [1, 2, 4];

#[derive(Debug, Clone)]
pub struct Distant {
    pub messages: usize,
    /// msgs/s with each of `IN_FLIGHT` requests in flight.
    pub rates: Vec<(usize, f64)>,
}

pub async fn measure(runtime: &PluginRuntime, messages: usize) -> Result<Distant> {
    let endpoint = LoopbackEndpoint::start("bench").await?;
    endpoint.emulator.set_faults(vec![Fault {
        kind: FaultKind::Slow(DELAY),
        rate: 1.0,
        window: None,
    }]);
    let mut rates = Vec::new();
    for (index, requests_in_flight) in IN_FLIGHT.into_iter().enumerate() {
        let table = format!("thermostat{index}");
        let schema =
            synthetic::THERMOSTAT_TABLE.replacen("table thermostat", &format!("table {table}"), 1);
        endpoint.client.management("bench", &schema).await?;
        let sink = endpoint
            .open(
                runtime,
                "distant",
                &table,
                &schema,
                &[
                    ("batching.maxMessages", "1000"),
                    ("batching.latencySeconds", "0"),
                ],
            )
            .await?;
        let (sender, receiver) = sources::channel();
        let count = messages as u64;
        let producer = tokio::spawn(synthetic::generate(count, sender));
        let options = PipelineOptions {
            requests_in_flight,
            ..PipelineOptions::default()
        };
        let started = Instant::now();
        let report = pipeline::run(sink, receiver, &options).await?;
        let rate = messages as f64 / started.elapsed().as_secs_f64();
        producer.await?;
        let rows = endpoint.emulator.row_count("bench", &table);
        if report.ingested != count || rows != messages {
            bail!(
                "{rows} rows stored and {} ingested of {messages} ({requests_in_flight} in flight)",
                report.ingested
            );
        }
        rates.push((requests_in_flight, rate));
    }
    Ok(Distant { messages, rates })
}
