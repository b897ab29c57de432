//! `cargo run --release -p dataflow-transform --example thermostat [messages]`: the cost of
//! howto-create-dataflow's thermostat filter and map per message, parsing and writing the JSON
//! included, without the rest of the pipeline.

use std::time::Instant;

use dataflow_transform::{documented, Record, Transformation, Verdict};

fn main() {
    let messages: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    let spec = documented::thermostat();
    let mut plan = Transformation::compile(&spec).expect("the documented rules compile");
    let payloads: Vec<Vec<u8>> = (0..1000).map(documented::thermostat_payload).collect();
    let started = Instant::now();
    let mut bytes = 0;
    for i in 0..messages {
        let record = Record {
            payload: serde_json::from_slice(&payloads[i % payloads.len()]).unwrap(),
            topic: "factory/line1/thermostat".into(),
            content_type: None,
            user_properties: Vec::new(),
        };
        if let Ok(Verdict::Pass(out)) = plan.apply(record) {
            bytes += serde_json::to_vec(&out.payload).unwrap().len();
        }
    }
    let elapsed = started.elapsed();
    // The same payloads only read into JSON values and written back: the floor under any
    // transformation of JSON.
    let started = Instant::now();
    let mut floor_bytes = 0;
    for i in 0..messages {
        let value: serde_json::Value =
            serde_json::from_slice(&payloads[i % payloads.len()]).unwrap();
        floor_bytes += serde_json::to_vec(&value).unwrap().len();
    }
    let floor = started.elapsed();
    let per = |d: std::time::Duration| d.as_secs_f64() * 1e6 / messages as f64;
    println!(
        "{messages} messages: {:.2} µs per message through the filter and map ({bytes} bytes out); {:.2} µs only reading and writing the JSON ({floor_bytes} bytes)",
        per(elapsed),
        per(floor)
    );
}
