//! The local endpoint's page in a real headless Chromium (Debian's `chromium`, driven over
//! the DevTools protocol by `tests/python/drive_page_in_chromium.py`): the page loads with
//! the token from its address, a query typed into the box and run draws its table and its
//! time chart, the schema and the last requests are shown, and nothing is fetched from
//! anywhere but the endpoint. The screenshot stays in the test's output directory.

use std::path::PathBuf;
use std::process::Command;

use dataflow_runtime::sources::synthetic;
use end_to_end_tests::{adx_runtime, python_with, LocalAdx, DATABASE};
use serde_json::Value;

const CHROMIUM: &str = "/usr/bin/chromium";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_runs_a_query_and_draws_its_table_and_time_chart_in_chromium() {
    assert!(
        std::path::Path::new(CHROMIUM).exists(),
        "Debian's chromium is needed (tests/run.sh installs it)"
    );
    let python =
        tokio::task::spawn_blocking(|| python_with("browser-driver", "websockets==15.0.1"))
            .await
            .unwrap();
    let adx = LocalAdx::start(synthetic::THERMOSTAT_TABLE, true).await;
    let runtime = adx_runtime();
    let messages = 2000;
    let config = adx.adx_config("thermostat", synthetic::THERMOSTAT_TABLE, &[]);
    adx.ingest_synthetic(&runtime, config, messages).await;

    let query = "thermostat | summarize avg(CurrentTemperature) by assetName, bin(Timestamp, 1s) | render timechart";
    let expected = adx.client.query(DATABASE, query).await.unwrap();
    let assets = adx
        .client
        .query(DATABASE, "thermostat | distinct assetName | count")
        .await
        .unwrap();

    let output_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("page");
    std::fs::create_dir_all(&output_dir).unwrap();
    let screenshot = output_dir.join("page.png");
    let profile = tempfile_dir(&output_dir);
    // The token travels in the address's fragment, which the browser never sends.
    let url = format!("{}/#token={}", adx.emulator.url(), adx.token);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/drive_page_in_chromium.py");
    let output = Command::new(python)
        .arg(script)
        .args([CHROMIUM, &url, DATABASE, query])
        .arg(&screenshot)
        .arg(&profile)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let shown: Value = serde_json::from_slice(&output.stdout).unwrap();
    println!("screenshot: {}", screenshot.display());

    assert_eq!(shown["error"], "", "{shown}");
    assert_eq!(
        shown["header"],
        serde_json::json!([
            "assetName (string)",
            "Timestamp (datetime)",
            "avg_CurrentTemperature (real)"
        ])
    );
    let rows = shown["rows"].as_array().unwrap();
    assert_eq!(rows.len(), expected.rows.len());
    assert_eq!(rows[0][0], expected.rows[0][0]);
    // One point per row with a value, one line per asset.
    let with_values = expected.rows.iter().filter(|r| !r[2].is_null()).count();
    assert!(with_values > 0);
    assert_eq!(shown["points"], Value::from(with_values));
    assert_eq!(
        shown["series"].as_array().unwrap().len() as u64,
        assets.rows[0][0].as_u64().unwrap()
    );
    let schema = shown["schema"].as_str().unwrap();
    assert!(schema.contains("thermostat 2000 rows"), "{schema}");
    assert!(schema.contains("CurrentTemperature: real"), "{schema}");
    let requests = shown["requests"].as_array().unwrap();
    assert!(
        requests
            .iter()
            .any(|r| r[2] == "/v2/rest/query" && r[3] == "200"),
        "{requests:?}"
    );
    assert_eq!(shown["external"], serde_json::json!([]));
    let png = std::fs::read(&screenshot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
}

/// A fresh browser profile directory per run.
fn tempfile_dir(parent: &std::path::Path) -> PathBuf {
    let dir = parent.join(format!("profile-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
