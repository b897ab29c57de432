//! `dataflow-host run` on the examples' resources, against the local endpoint.

use dataflow_runtime::run::{self, RunArgs, RunContext};

/// What `dataflow-host run` gives a run: the bundled plugin for endpoints that name none.
fn bundled() -> RunContext {
    RunContext {
        default_plugin: Some(dataflow_host::bundled::ADX_DESTINATION),
        ..RunContext::default()
    }
}
use dataflow_runtime::sources::synthetic::THERMOSTAT_TABLE;
use end_to_end_tests::LocalAdx;
use serde_json::json;

#[tokio::test]
async fn the_local_example_runs_a_file_into_the_table() {
    let adx = LocalAdx::start(THERMOSTAT_TABLE, true).await;
    let dir = std::env::temp_dir().join(format!("run-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/local");
    for file in ["endpoint.yaml", "dataflow.yaml", "table.yaml"] {
        let text = std::fs::read_to_string(examples.join(file)).unwrap();
        let text = text
            .replace("http://127.0.0.1:8080", &adx.emulator.url())
            .replace("local-dev-token", &adx.token);
        std::fs::write(dir.join(file), text).unwrap();
    }
    let input = dir.join("input.jsonl");
    std::fs::write(
        &input,
        [
            r#"{"externalAssetId": "a1", "assetName": "t1", "CurrentTemperature": 21.5, "Pressure": 1000, "Timestamp": "2026-11-28T10:00:00.5Z"}"#,
            r#"{"externalAssetId": "a2", "assetName": "t2", "CurrentTemperature": "n/a", "Timestamp": "2026-11-28T10:00:01Z"}"#,
            r#"{"externalAssetId": "a3", "assetName": "t3"}"#,
        ]
        .join("\n"),
    )
    .unwrap();

    let report = run::run(
        &RunArgs {
            config: vec![dir.clone()],
            input: Some(input.display().to_string()),
            dead_letter: Some(dir.join("dead-letter.jsonl")),
            ..RunArgs::default()
        },
        bundled(),
    )
    .await
    .unwrap();
    assert!(report.all_accounted_for(), "{report:?}");
    assert_eq!((report.ingested, report.rejected), (1, 2));
    assert!(report.rejections[0]
        .1
        .contains("column `CurrentTemperature` (real): string \"n/a\" is not a number"));
    assert!(
        report.rejections[1]
            .1
            .contains("column `Timestamp` (datetime): is required"),
        "{:?}",
        report.rejections
    );
    let dead_letters: Vec<serde_json::Value> =
        std::fs::read_to_string(dir.join("dead-letter.jsonl"))
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
    assert_eq!(dead_letters.len(), 2, "{dead_letters:?}");
    assert!(dead_letters[0]["payload"]
        .as_str()
        .unwrap()
        .contains("\"n/a\""));
    assert!(dead_letters[0]["origin"]
        .as_str()
        .unwrap()
        .ends_with("input.jsonl:2"));
    assert_eq!(dead_letters[1]["reason"], json!(report.rejections[1].1));
    let rows = adx.emulator.rows("telemetry", "thermostat");
    assert_eq!(
        rows,
        vec![vec![
            json!("a1"),
            json!("t1"),
            json!(21.5),
            json!(1000.0),
            json!(input.display().to_string()),
            json!("2026-11-28T10:00:00.5Z")
        ]]
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn run_refuses_a_configuration_with_problems_and_lists_them() {
    let dir = std::env::temp_dir().join(format!("run-bad-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/thermostat");
    let endpoint = std::fs::read_to_string(examples.join("endpoint.yaml")).unwrap();
    std::fs::write(
        dir.join("endpoint.yaml"),
        endpoint.replace("database: telemetry", "database: <your database>"),
    )
    .unwrap();
    let error = run::run(
        &RunArgs {
            config: vec![dir.clone()],
            input: Some("-".into()),
            ..RunArgs::default()
        },
        bundled(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        error.contains(
            "spec.dataExplorerSettings.database: the placeholder `<your database>` was left in"
        ),
        "{error}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn an_endpoint_names_its_plugin_version_from_the_plugin_directory() {
    let adx = LocalAdx::start(THERMOSTAT_TABLE, true).await;
    let dir = std::env::temp_dir().join(format!("run-plugin-dir-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("plugins/adx-destination")).unwrap();
    std::fs::write(
        dir.join("plugins/adx-destination/1.1.0.wasm"),
        dataflow_host::bundled::ADX_DESTINATION,
    )
    .unwrap();
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/local");
    let write_config = |version: &str| {
        std::fs::create_dir_all(dir.join("config")).unwrap();
        for file in ["endpoint.yaml", "dataflow.yaml", "table.yaml"] {
            let text = std::fs::read_to_string(examples.join(file))
                .unwrap()
                .replace("http://127.0.0.1:8080", &adx.emulator.url())
                .replace("local-dev-token", &adx.token)
                .replace(
                    "metadata:\n  name: adx\n",
                    &format!("metadata:\n  name: adx\n  annotations:\n    dataflow-host/plugin: adx-destination@{version}\n"),
                );
            std::fs::write(dir.join("config").join(file), text).unwrap();
        }
    };
    let input = dir.join("input.jsonl");
    std::fs::write(
        &input,
        r#"{"assetName": "t1", "CurrentTemperature": 21.5, "Timestamp": "2026-11-28T10:00:00Z"}"#,
    )
    .unwrap();
    let options = RunArgs {
        config: vec![dir.join("config")],
        input: Some(input.display().to_string()),
        dead_letter: Some(dir.join("dead-letter.jsonl")),
        plugin_dir: Some(dir.join("plugins")),
        cache_dir: Some(dir.join("cache")),
        ..RunArgs::default()
    };

    write_config("1.1.0");
    let report = run::run(&options, bundled()).await.unwrap();
    assert_eq!(report.ingested, 1, "{report:?}");

    write_config("1.2.0");
    let error = run::run(&options, bundled()).await.unwrap_err().to_string();
    assert!(
        error.contains("plugin adx-destination@1.2.0 is not in")
            && error.ends_with("(available: adx-destination@1.1.0)"),
        "{error}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
