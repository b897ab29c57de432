//! Ingestion mappings and the KQL subset of the local endpoint, as users reach them: a
//! mapping made with Kusto's commands and applied to the plugin's ingestion (`mappingName`)
//! in the real host pipeline; the same mapping made and used by Microsoft's own clients
//! (`azure-kusto-data`, `azure-kusto-ingest` streaming), and one table of queries answered
//! alike through the REST API and through the official client.
//! Mapping forms: learn.microsoft.com/kusto/management/json-mapping and
//! create-ingestion-mapping-command; null semantics: kusto/query/scalar-data-types/null-values.

use std::path::PathBuf;
use std::process::Command;

use dataflow_runtime::sources::synthetic;
use end_to_end_tests::{adx_runtime, python_with, LocalAdx, DATABASE};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mapping_made_with_commands_is_applied_to_what_the_plugin_ingests() {
    let adx = LocalAdx::start(synthetic::THERMOSTAT_TABLE, true).await;
    adx.client
        .management(DATABASE, ".create-merge table thermostat (Site: string)")
        .await
        .unwrap();
    let mapping = r#"[{"Column":"assetName","Properties":{"Path":"$.assetName"}},
        {"Column":"CurrentTemperature","Properties":{"Path":"$.CurrentTemperature"}},
        {"Column":"Timestamp","Properties":{"Path":"$.Timestamp"}},
        {"Column":"Site","Properties":{"ConstValue":"plant-7"}}]"#;
    adx.client
        .management(
            DATABASE,
            &format!(".create table thermostat ingestion json mapping \"by-name\" '{mapping}'"),
        )
        .await
        .unwrap();
    let shown = adx
        .client
        .management(DATABASE, ".show table thermostat ingestion json mappings")
        .await
        .unwrap();
    assert_eq!(shown.rows.len(), 1);
    assert_eq!(shown.rows[0][0], "by-name");

    let runtime = adx_runtime();
    let config = adx.adx_config(
        "thermostat",
        synthetic::THERMOSTAT_TABLE,
        &[("mappingName", "by-name"), ("batching.maxMessages", "250")],
    );
    let messages = 2000;
    adx.ingest_synthetic(&runtime, config, messages).await;

    let requests = adx.emulator.requests();
    let ingests: Vec<_> = requests
        .iter()
        .filter(|r| r.path_and_query.starts_with("/v1/rest/ingest/"))
        .collect();
    assert!(ingests
        .iter()
        .all(|r| r.path_and_query.contains("mappingName=by-name") && r.status == 200));
    // The mapping decided every row: the constant is there, unmapped columns are empty.
    let rows = adx.emulator.rows(DATABASE, "thermostat");
    assert_eq!(rows.len() as u64, messages);
    let site = 6;
    assert!(rows.iter().all(|r| r[site] == "plant-7"), "{:?}", rows[0]);
    assert!(
        rows.iter().all(|r| r[3].is_null() && r[0] == ""),
        "{:?}",
        rows[0]
    );
    assert!(rows
        .iter()
        .all(|r| r[1].as_str().unwrap().starts_with("thermostat-")));
    let hot = adx
        .client
        .query(
            DATABASE,
            "thermostat | where Site == 'plant-7' and isnotnull(CurrentTemperature) | count",
        )
        .await
        .unwrap();
    assert_eq!(hot.rows[0][0], Value::from(messages));
}

/// The queries and what Kusto answers over the five records the official client ingests.
fn query_table() -> Vec<(&'static str, Value)> {
    vec![
        ("Ovens | count", json!([[5]])),
        (
            "Ovens | where Pressure > 100 and assetName == 'oven-1' | project Pressure",
            json!([[110], [120]]),
        ),
        (
            "Ovens | where Pressure != 100 | project Pressure",
            json!([[110], [null], [120], [90]]),
        ),
        (
            "Ovens | where Status has 'operator' or CurrentTemperature between (21.0 .. 21.9) | project assetName",
            json!([["oven-1"], ["oven-2"]]),
        ),
        ("Ovens | where Status contains 'RUN' | count", json!([[3]])),
        (
            "Ovens | where isempty(Status) | project Pressure, isnull(CurrentTemperature)",
            json!([[120, true]]),
        ),
        (
            "Ovens | where Timestamp > ago(3650d) and Timestamp < now() + 3650d | count",
            json!([[5]]),
        ),
        (
            "Ovens | summarize Readings = count(), Hot = countif(CurrentTemperature > 25), Top = max(Pressure) by bin(Timestamp, 1m) | order by Timestamp asc",
            json!([
                ["2026-12-01T10:00:00Z", 2, 0, 110],
                ["2026-12-01T10:01:00Z", 1, 1, null],
                ["2026-12-01T10:02:00Z", 2, 1, 120]
            ]),
        ),
        (
            "Ovens | summarize avg(CurrentTemperature) by assetName | order by assetName asc",
            json!([["oven-1", 21.0], ["oven-2", 31.0]]),
        ),
        (
            "Ovens | extend Kelvin = CurrentTemperature + 273.15 | top 1 by Kelvin | project assetName, Kelvin, Site",
            json!([["oven-2", 305.15, "plant-7"]]),
        ),
        (
            "Ovens | distinct assetName | order by assetName asc",
            json!([["oven-1"], ["oven-2"]]),
        ),
    ]
}

/// The official client's datetimes (`2026-12-01 10:00:00+00:00`) as the REST API prints them.
fn normalized(answer: &Value) -> Value {
    match answer {
        Value::Array(items) => Value::Array(items.iter().map(normalized).collect()),
        Value::String(s) if s.ends_with("+00:00") => {
            Value::String(s.replace(' ', "T").replace("+00:00", "Z"))
        }
        other => other.clone(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_clients_make_and_use_a_mapping_and_get_kustos_answers() {
    let python = tokio::task::spawn_blocking(|| {
        python_with("official-kusto-ingest", "azure-kusto-ingest==6.0.4")
    })
    .await
    .unwrap();
    // An empty database to start from: the client creates its own table.
    let adx = LocalAdx::start(".create table Unused (x: long)", true).await;
    let table = query_table();
    let queries: Vec<&str> = table.iter().map(|(q, _)| *q).collect();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("python/mappings_and_kql_with_official_client.py");
    let output = Command::new(python)
        .arg(script)
        .args([
            &adx.emulator.connection_string(DATABASE),
            DATABASE,
            &serde_json::to_string(&queries).unwrap(),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let read: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(read["mappings"], json!([["ovens", "Json"]]));
    let missing = read["missing_mapping"].as_str().unwrap_or_default();
    assert!(
        missing.contains("BadRequest_MappingReferenceWasNotFound"),
        "{missing}"
    );
    assert_eq!(adx.emulator.rows(DATABASE, "Ovens").len(), 5);

    for (query, expected) in &table {
        let official = normalized(&read["answers"][query]);
        assert_eq!(&official, expected, "official client: {query}");
        let rest = adx.client.query(DATABASE, query).await.unwrap();
        assert_eq!(&Value::from(rest.rows), expected, "REST API: {query}");
    }
    let error = adx
        .client
        .query(DATABASE, "Ovens | join (Ovens) on assetName")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("Unsupported query operator: join (supported: where, project"),
        "{error}"
    );
}
