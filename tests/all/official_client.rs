//! Microsoft's own Kusto client for Python (`azure-kusto-data`, from PyPI) reads what the
//! plugin ingested into the local endpoint: counts, rows, types, groups and the schema, over
//! `/v2/rest/query` and `/v1/rest/mgmt`.

use std::path::PathBuf;
use std::process::Command;

use dataflow_runtime::sources::synthetic;
use end_to_end_tests::{adx_runtime, python_with, LocalAdx, DATABASE};
use serde_json::Value;

const CLIENT: &str = "azure-kusto-data==6.0.4";

/// A virtual environment with the official client, made once under `target/`.
fn python_with_client() -> PathBuf {
    python_with("official-kusto-client", CLIENT)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_python_client_reads_what_the_plugin_ingested() {
    let python = tokio::task::spawn_blocking(python_with_client)
        .await
        .unwrap();
    let adx = LocalAdx::start(synthetic::THERMOSTAT_TABLE, true).await;
    let runtime = adx_runtime();
    let config = adx.adx_config(
        "thermostat",
        synthetic::THERMOSTAT_TABLE,
        &[
            ("columns.MqttTopic", "$metadata.topic"),
            ("batching.maxMessages", "500"),
        ],
    );
    let messages = 2000;
    adx.ingest_synthetic(&runtime, config, messages).await;

    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/read_with_official_client.py");
    let output = Command::new(python)
        .arg(script)
        .args([
            &adx.emulator.connection_string(DATABASE),
            DATABASE,
            "thermostat",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let read: Value = serde_json::from_slice(&output.stdout).unwrap();

    let rows = adx.emulator.rows(DATABASE, "thermostat");
    assert_eq!(read["count"], Value::from(messages));
    assert_eq!(read["tables"], serde_json::json!(["thermostat"]));
    assert_eq!(
        read["schema"],
        "externalAssetId:string,assetName:string,CurrentTemperature:real,Pressure:real,MqttTopic:string,Timestamp:datetime"
    );
    let columns: Vec<(String, String)> = serde_json::from_value(read["columns"].clone()).unwrap();
    assert_eq!(
        columns[5],
        ("Timestamp".to_string(), "datetime".to_string())
    );
    // The first row by time, as the client typed it: a real stays a real, the topic is the
    // MQTT topic, the timestamp a datetime with its sub-second digits.
    let first = &read["first"][0];
    let earliest = rows
        .iter()
        .min_by_key(|r| r[5].as_str().unwrap().to_string())
        .unwrap();
    assert_eq!(first[1], earliest[1]);
    assert_eq!(first[2].as_f64(), earliest[2].as_f64());
    assert_eq!(first[4], earliest[4]);
    assert!(first[5].as_str().unwrap().ends_with("+00:00"), "{first}");
    let by_asset: Vec<(String, u64)> = serde_json::from_value(read["by_asset"].clone()).unwrap();
    assert_eq!(by_asset.iter().map(|(_, n)| n).sum::<u64>(), messages);
    let expected_one = rows.iter().filter(|r| r[1] == "thermostat-01").count() as u64;
    assert!(expected_one > 0);
    assert_eq!(read["one_asset"], Value::from(expected_one));
}
