//! Two dataflows in one host process, side by side: two endpoints, each running its own
//! version of the ADX plugin (a 1.0-contract build, handed lists of messages, and the
//! bundled 1.2, handed packed batches), into two tables, from one broker.

use std::time::{Duration, Instant};

use dataflow_testkit::publisher::{publish_all, Outgoing};
use end_to_end_tests::broker::Broker;
use end_to_end_tests::delivery::{numbered, shared_artifact_cache};
use end_to_end_tests::host_process::HostProcess;
use end_to_end_tests::{adx_destination_1_0_wasm, scrape_metrics, LocalAdx, DATABASE};

const SCHEMA: &str = "n: long, site: string, MqttTopic: string";

fn dataflow(name: &str, topics: &str, endpoint: &str, table: &str) -> String {
    format!(
        r#"apiVersion: connectivity.iotoperations.azure.com/v1
kind: Dataflow
metadata:
  name: {name}
spec:
  profileRef: default
  operations:
    - operationType: Source
      sourceSettings:
        endpointRef: plant-broker
        dataSources: ["{topics}"]
    - operationType: Destination
      destinationSettings:
        endpointRef: {endpoint}
        dataDestination: {table}
---
apiVersion: dataflow-host/v1
kind: KustoTable
metadata:
  name: {table}
spec:
  schema: ".create table {table} ({SCHEMA})"
  columns:
    - name: MqttTopic
      source: $metadata.topic
"#
    )
}

async fn wait_for_rows(adx: &LocalAdx, table: &str, count: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let rows = adx.emulator.rows(DATABASE, table).len();
        if rows >= count || Instant::now() > deadline {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_dataflows_run_two_plugin_versions_side_by_side_into_two_tables() {
    let dir = std::env::temp_dir().join(format!("two-dataflows-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("config")).unwrap();
    std::fs::create_dir_all(dir.join("plugins/adx-destination")).unwrap();
    std::fs::write(
        dir.join("plugins/adx-destination/1.0.0.wasm"),
        adx_destination_1_0_wasm(),
    )
    .unwrap();
    std::fs::write(
        dir.join("plugins/adx-destination/1.2.0.wasm"),
        dataflow_host::bundled::ADX_DESTINATION,
    )
    .unwrap();
    let broker = Broker::start(&dir).unwrap();
    let adx = LocalAdx::start(&format!(".create table readings ({SCHEMA})"), true).await;
    adx.client
        .management(DATABASE, &format!(".create table alerts ({SCHEMA})"))
        .await
        .unwrap();
    let config = [
        adx.endpoint_yaml("adx-a", Some("adx-destination@1.0.0"), 1, 500),
        adx.endpoint_yaml("adx-b", Some("adx-destination@1.2.0"), 1, 500),
        format!(
            r#"apiVersion: connectivity.iotoperations.azure.com/v1
kind: DataflowEndpoint
metadata:
  name: plant-broker
spec:
  endpointType: Mqtt
  mqttSettings:
    host: {}
    tls:
      mode: Disabled
    authentication:
      method: Anonymous
      anonymousSettings: {{}}
"#,
            broker.address()
        ),
        dataflow("readings", "readings/#", "adx-a", "readings"),
        dataflow("alerts", "alerts/#", "adx-b", "alerts"),
    ]
    .join("---\n");
    std::fs::write(dir.join("config/dataflows.yaml"), config).unwrap();

    let log = dir.join("host.log");
    let metrics_addr = format!("127.0.0.1:{}", end_to_end_tests::broker::free_port());
    let args: Vec<String> = [
        "run",
        "--config",
        &dir.join("config").display().to_string(),
        "--plugin-dir",
        &dir.join("plugins").display().to_string(),
        "--cache-dir",
        &shared_artifact_cache().display().to_string(),
        "--metrics-addr",
        &metrics_addr,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut host = HostProcess::start(&args, &log);
    host.wait_for_log("subscribed to", 2, Duration::from_secs(60))
        .await;

    let readings = numbered(0..2000, None);
    let alerts: Vec<Outgoing> = numbered(0..1000, None)
        .into_iter()
        .map(|m| Outgoing {
            topic: m.topic.replace("readings", "alerts"),
            payload: m.payload,
        })
        .collect();
    publish_all(broker.port, readings, None).await;
    publish_all(broker.port, alerts, None).await;
    let (in_readings, in_alerts) = (
        wait_for_rows(&adx, "readings", 2000).await,
        wait_for_rows(&adx, "alerts", 1000).await,
    );
    // One address serves both dataflows' metrics, each family described once. A row is in
    // the table a moment before the host has recorded the answer that carried it: the
    // counters are read once they have caught up (or after 10 s, and then checked).
    let samples: Vec<String> = [("adx-a", "readings", 2000), ("adx-b", "alerts", 1000)]
        .iter()
        .map(|(endpoint, table, count)| {
            format!(
                "dataflow_messages_ingested_total{{endpoint=\"{endpoint}\",table=\"{table}\"}} {count}"
            )
        })
        .collect();
    let caught_up = Instant::now() + Duration::from_secs(10);
    let metrics = loop {
        let metrics = scrape_metrics(&metrics_addr);
        if samples.iter().all(|s| metrics.contains(s)) || Instant::now() > caught_up {
            break metrics;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let status = host.terminate(Duration::from_secs(30)).await;
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        metrics
            .matches("# TYPE dataflow_messages_ingested_total")
            .count(),
        1,
        "{metrics}"
    );
    for sample in &samples {
        assert!(metrics.contains(sample), "no `{sample}` in\n{metrics}");
    }
    assert_eq!((in_readings, in_alerts), (2000, 1000), "{text}");
    assert!(status.success(), "{status}\n{text}");
    for expected in [
        "running 2 dataflows: readings, alerts",
        "plugin adx-destination@1.0.0: ",
        "plugin adx-destination@1.2.0: ",
        "(contract 1.0.0)",
        "(contract 1.2.0)",
        "dataflow readings:\n  messages in        2000",
        "dataflow alerts:\n  messages in        1000",
    ] {
        assert!(text.contains(expected), "no `{expected}` in\n{text}");
    }
    let topics: Vec<String> = adx
        .emulator
        .rows(DATABASE, "alerts")
        .iter()
        .map(|row| row[2].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        topics.iter().all(|t| t.starts_with("alerts/")),
        "{topics:?}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// The dataflows of a run are supervised as a set: when one fails (here its plugin version
/// is not in the plugin directory), the failure is reported at once, naming it, and the
/// others are stopped, instead of the run waiting on a dataflow that would read forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dataflow_that_fails_stops_the_set_and_is_named() {
    use dataflow_runtime::run::{self, RunArgs, RunContext};
    let dir = std::env::temp_dir().join(format!("failing-dataflow-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("config")).unwrap();
    std::fs::create_dir_all(dir.join("plugins/adx-destination")).unwrap();
    let broker = Broker::start(&dir).unwrap();
    let adx = LocalAdx::start(&format!(".create table readings ({SCHEMA})"), true).await;
    let config = [
        adx.endpoint_yaml("adx-a", None, 1, 100),
        adx.endpoint_yaml("adx-b", Some("adx-destination@9.9.9"), 1, 100),
        format!(
            "apiVersion: connectivity.iotoperations.azure.com/v1\nkind: DataflowEndpoint\nmetadata:\n  name: plant-broker\nspec:\n  endpointType: Mqtt\n  mqttSettings:\n    host: {}\n    tls:\n      mode: Disabled\n    authentication:\n      method: Anonymous\n",
            broker.address()
        ),
        dataflow("readings", "readings/#", "adx-a", "readings"),
        dataflow("alerts", "alerts/#", "adx-b", "alerts"),
    ]
    .join("---\n");
    std::fs::write(dir.join("config/dataflows.yaml"), config).unwrap();
    let args = RunArgs {
        config: vec![dir.join("config")],
        plugin_dir: Some(dir.join("plugins")),
        cache_dir: Some(shared_artifact_cache()),
        ..RunArgs::default()
    };
    let context = RunContext {
        default_plugin: Some(dataflow_host::bundled::ADX_DESTINATION),
        ..RunContext::default()
    };
    let started = Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(60), run::run_all(&args, context))
        .await
        .expect("the set stops when one of its dataflows fails");
    let error = format!("{:#}", result.unwrap_err());
    assert!(
        error.starts_with("dataflow alerts: ")
            && error.contains("plugin adx-destination@9.9.9 is not in"),
        "{error}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    std::fs::remove_dir_all(&dir).ok();
}
