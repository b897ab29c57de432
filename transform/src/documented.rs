//! Rules as the Azure IoT Operations documentation writes them, for the benchmark, the fuzzer
//! and the examples (the conformance tests write theirs out, each beside its page).

use crate::{FilterSpec, MapSpec, TransformationSpec};

/// A map rule from its inputs, output and expression.
pub fn map_rule(inputs: &[&str], output: Option<&str>, expression: Option<&str>) -> MapSpec {
    MapSpec {
        inputs: inputs.iter().map(|s| s.to_string()).collect(),
        output: output.map(str::to_string),
        expression: expression.map(str::to_string),
        ..MapSpec::default()
    }
}

/// howto-create-dataflow, "Example": the thermostat filter (dropping readings where
/// temperature * "Tag 10" < 100000) and map (everything through, TemperatureF, Humidity).
pub fn thermostat() -> TransformationSpec {
    TransformationSpec {
        filter: vec![FilterSpec {
            inputs: vec!["temperature.Value".into(), "\"Tag 10\".Value".into()],
            expression: "$1 * $2 < 100000".into(),
            description: None,
        }],
        map: vec![
            map_rule(&["*"], Some("*"), None),
            map_rule(
                &["temperature.Value"],
                Some("TemperatureF"),
                Some("cToF($1)"),
            ),
            map_rule(&["\"Tag 10\".Value"], Some("Humidity"), None),
        ],
        ..TransformationSpec::default()
    }
}

/// The thermostat example's payload shape, message `index` of a fleet of 16, warm enough
/// that the filter keeps it.
pub fn thermostat_payload(index: u64) -> Vec<u8> {
    format!(
        r#"{{"assetName":"thermostat-{:02}","temperature":{{"Value":{},"SourceTimestamp":"2026-12-02T00:00:00.000Z"}},"Tag 10":{{"Value":{}}}}}"#,
        index % 16,
        2000 + index % 500,
        60 + index % 30
    )
    .into_bytes()
}
