//! `cargo run --release -p dataflow-transform --example thermostat [messages]`: the cost of
//! howto-create-dataflow's thermostat filter and map per message, parsing and writing the JSON
//! included, without the rest of the pipeline.

use std::time::Instant;

use dataflow_transform::{
    FilterSpec, MapSpec, Record, Transformation, TransformationSpec, Verdict,
};

fn main() {
    let messages: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    let map = |inputs: &[&str], output: &str, expression: Option<&str>| MapSpec {
        inputs: inputs.iter().map(|s| s.to_string()).collect(),
        output: Some(output.into()),
        expression: expression.map(str::to_string),
        ..MapSpec::default()
    };
    let spec = TransformationSpec {
        filter: vec![FilterSpec {
            inputs: vec!["temperature.Value".into(), "\"Tag 10\".Value".into()],
            expression: "$1 * $2 < 100000".into(),
            description: None,
        }],
        map: vec![
            map(&["*"], "*", None),
            map(&["temperature.Value"], "TemperatureF", Some("cToF($1)")),
            map(&["\"Tag 10\".Value"], "Humidity", None),
        ],
        ..TransformationSpec::default()
    };
    let mut plan = Transformation::compile(&spec).expect("the documented rules compile");
    let payloads: Vec<Vec<u8>> = (0..1000)
        .map(|i| format!(r#"{{"assetName":"thermostat-{:02}","temperature":{{"Value":{},"SourceTimestamp":"2026-12-02T00:00:00.000Z"}},"Tag 10":{{"Value":{}}}}}"#, i % 16, 2000 + i % 500, 60 + i % 30).into_bytes())
        .collect();
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
