//! Dataflows with a BuiltInTransformation, a mode and a profile, run as Azure IoT Operations
//! runs them: the documented thermostat transformation through `run`, mosquitto and the
//! local endpoint, counted message by message; `mode: Disabled`; two hosts sharing one
//! dataflow of a profile with `instanceCount: 2`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use dataflow_testkit::publisher::{publish_all, Outgoing};
use end_to_end_tests::delivery::{numbered, Scenario, ScenarioOptions, TABLE};
use end_to_end_tests::DATABASE;
use serde_json::Value;

/// howto-create-dataflow, "Example", as the page writes it (the filter and the map).
const THERMOSTAT: &str = r#"filter:
  - inputs:
      - 'temperature.Value'
      - '"Tag 10".Value'
    expression: '$1 * $2 < 100000'
map:
  - inputs:
      - '*'
    output: '*'
  - inputs:
      - temperature.Value
    output: TemperatureF
    expression: cToF($1)
  - inputs:
      - '"Tag 10".Value'
    output: 'Humidity'"#;

/// Message `n`: every third is cold (temperature * humidity < 100000: the filter drops it),
/// every tenth of the others has a humidity that is not a number (the filter's expression
/// fails on it: dead-lettered), the rest are warm.
fn thermostat_message(n: u64) -> (Outgoing, Fate) {
    let (temperature, humidity, fate) = if n.is_multiple_of(3) {
        (Value::from(10), Value::from(50), Fate::Filtered)
    } else if n % 10 == 1 {
        (
            Value::from(3000 + n),
            Value::from("wet"),
            Fate::DeadLettered,
        )
    } else {
        (Value::from(3000 + n), Value::from(60), Fate::Ingested)
    };
    let payload = serde_json::json!({
        "n": n,
        "temperature": {"Value": temperature, "SourceTimestamp": "2026-12-02T00:00:00Z"},
        "Tag 10": {"Value": humidity}
    });
    let message = Outgoing {
        topic: format!("readings/thermostat{}", n % 4),
        payload: serde_json::to_vec(&payload).unwrap(),
    };
    (message, fate)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Ingested,
    Filtered,
    DeadLettered,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_thermostat_transformation_filters_converts_and_loses_nothing() {
    thermostat_through_run(false).await;
}

/// The same with the output schema from a schema registry directory (`schemaRef`,
/// concept-schema-registry's Delta format) beside the KustoTable, which it must match.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_thermostat_transformation_with_its_output_schema_from_the_registry() {
    thermostat_through_run(true).await;
}

const OUTPUT_SCHEMA: &str = r#"{"$schema": "Delta/1.0", "type": "object", "properties": {"type": "struct", "fields": [
    { "name": "n", "type": "long", "nullable": false, "metadata": {} },
    { "name": "TemperatureF", "type": "double", "nullable": true, "metadata": {} },
    { "name": "Humidity", "type": "double", "nullable": true, "metadata": {} },
    { "name": "MqttTopic", "type": "string", "nullable": true, "metadata": {} }]}}"#;

async fn thermostat_through_run(with_schema: bool) {
    let transformation = match with_schema {
        true => format!("schemaRef: aio-sr://plant/thermostat:1\n{THERMOSTAT}"),
        false => THERMOSTAT.to_string(),
    };
    let scenario = Scenario::start(
        if with_schema { "thermostat-schema" } else { "thermostat-transformation" },
        ScenarioOptions {
            create_table: ".create table readings (n: long, TemperatureF: real, Humidity: real, MqttTopic: string)".into(),
            transformation: Some(transformation),
            broker_logs_packets: true,
            ..ScenarioOptions::default()
        },
    )
    .await;
    let registry = scenario.dir.join("registry");
    std::fs::create_dir_all(registry.join("plant/thermostat")).unwrap();
    std::fs::write(registry.join("plant/thermostat/1.json"), OUTPUT_SCHEMA).unwrap();
    let metrics_addr = format!("127.0.0.1:{}", end_to_end_tests::broker::free_port());
    let dead_letters = scenario.dir.join("dead-letter-0.jsonl");
    let mut host = scenario.start_host_with(
        "0",
        &[
            "--dead-letter",
            &dead_letters.display().to_string(),
            "--metrics-addr",
            &metrics_addr,
            "--schema-registry",
            &registry.display().to_string(),
        ],
    );
    host.wait_for_log("subscribed to", 1, Duration::from_secs(60))
        .await;

    const COUNT: u64 = 3000;
    let (messages, fates): (Vec<Outgoing>, Vec<Fate>) = (0..COUNT).map(thermostat_message).unzip();
    let expected = |fate: Fate| fates.iter().filter(|f| **f == fate).count();
    publish_all(scenario.broker.port, messages, None).await;

    let client = Scenario::host_client_id("0");
    let deadline = Instant::now() + Duration::from_secs(60);
    while scenario.broker.packet_counts(&client).puback_received < COUNT
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let metrics = end_to_end_tests::scrape_metrics(&metrics_addr);
    let status = host.terminate(Duration::from_secs(30)).await;
    let logs = scenario.host_logs();
    assert!(status.success(), "{status}\n{logs}");

    // The broker's own count: every message published to the host was acknowledged by it.
    let packets = scenario.broker.packet_counts(&client);
    assert_eq!(
        (packets.publish_sent, packets.puback_received),
        (COUNT, COUNT),
        "{logs}"
    );

    // The table: the warm messages, once each, with TemperatureF in Fahrenheit and Humidity set.
    let mut rows: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
    for row in scenario.adx.emulator.rows(DATABASE, TABLE) {
        let n = row[0].as_u64().expect("n");
        assert!(
            rows.insert(
                n,
                (
                    row[1].as_f64().expect("TemperatureF"),
                    row[2].as_f64().expect("Humidity")
                )
            )
            .is_none(),
            "{n} twice"
        );
    }
    assert_eq!(rows.len(), expected(Fate::Ingested), "{logs}");
    for (n, (fahrenheit, humidity)) in &rows {
        assert_eq!(
            fates[*n as usize],
            Fate::Ingested,
            "{n} should not be in the table"
        );
        let celsius = (3000 + n) as f64;
        assert!(
            (fahrenheit - (celsius * 9.0 / 5.0 + 32.0)).abs() < 1e-9,
            "{n}: {fahrenheit}"
        );
        assert_eq!(*humidity, 60.0);
    }

    // The dead letters: the messages the filter's expression failed on, whole, with the rule.
    let text = std::fs::read_to_string(&dead_letters).unwrap_or_default();
    let letters: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(letters.len(), expected(Fate::DeadLettered), "{text}");
    for letter in &letters {
        let payload: Value = serde_json::from_str(letter["payload"].as_str().unwrap()).unwrap();
        assert_eq!(
            fates[payload["n"].as_u64().unwrap() as usize],
            Fate::DeadLettered
        );
        assert_eq!(
            payload["Tag 10"]["Value"], "wet",
            "the original payload is kept"
        );
        let reason = letter["reason"].as_str().unwrap();
        assert!(
            reason.contains("builtInTransformationSettings.filter[0] failed")
                && reason.contains("\"wet\""),
            "{reason}"
        );
    }

    // The filtered ones are counted as filtered, and nothing is unaccounted for.
    let filtered = expected(Fate::Filtered);
    assert!(
        logs.contains(&format!("filtered           {filtered}")),
        "{logs}"
    );
    assert!(logs.contains("unacknowledged     0"), "{logs}");
    assert!(
        metrics.contains(&format!(
            "dataflow_messages_filtered_total{{endpoint=\"adx\",table=\"readings\"}} {filtered}"
        )),
        "{metrics}"
    );
    assert_eq!(rows.len() + letters.len() + filtered, COUNT as usize);
}

/// `mode: Disabled` (howto-create-dataflow, "Enable or disable a dataflow"): the dataflow is
/// checked, `validate` says it does not run, and `run` runs nothing and says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_dataflow_does_not_run() {
    let scenario = Scenario::start("disabled-dataflow", ScenarioOptions::default()).await;
    let file = scenario.dir.join("config/dataflow.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        text.replacen(
            "profileRef: default",
            "profileRef: default\n  mode: Disabled",
            1,
        ),
    )
    .unwrap();
    let host = end_to_end_tests::host_process::host_binary();
    let validate = std::process::Command::new(&host)
        .args(["validate"])
        .arg(scenario.dir.join("config"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&validate.stdout);
    assert!(
        validate.status.success() && said.contains("dataflow readings (Disabled: checked, not run"),
        "{said}"
    );

    let log = scenario.dir.join("host-0.log");
    let run = scenario.start_host("0");
    let status = run.wait(Duration::from_secs(30)).await;
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!status.success(), "{text}");
    assert!(text.contains("every dataflow that writes to Azure Data Explorer has `mode: Disabled` (readings): nothing to run"), "{text}");
    assert!(!text.contains("subscribed to"), "{text}");
}

/// howto-configure-dataflow-profile: a profile with `instanceCount: 2` runs each dataflow
/// twice, sharing one subscription (howto-configure-dataflow-source: "shared subscription is
/// automatically enabled"). Two hosts, `--instance 0` and `--instance 1`: every message lands
/// once, and both take part.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_of_a_profile_share_the_stream() {
    let scenario = Scenario::start(
        "instance-count",
        ScenarioOptions {
            instance_count: Some(2),
            ..ScenarioOptions::default()
        },
    )
    .await;
    let mut first = scenario.start_host("0");
    let mut second = scenario.start_host("1");
    first
        .wait_for_log("subscribed to", 1, Duration::from_secs(60))
        .await;
    second
        .wait_for_log("subscribed to", 1, Duration::from_secs(60))
        .await;
    const COUNT: u64 = 2000;
    publish_all(scenario.broker.port, numbered(0..COUNT, None), None).await;
    let tally = scenario.wait_for_all(COUNT, Duration::from_secs(60)).await;
    let (a, b) = (
        first.terminate(Duration::from_secs(30)).await,
        second.terminate(Duration::from_secs(30)).await,
    );
    let logs = scenario.host_logs();
    assert!(a.success() && b.success(), "{logs}");
    scenario.assert_nothing_lost(&tally);
    assert_eq!((tally.ingested, tally.duplicates), (COUNT, 0), "{logs}");
    let taken: Vec<u64> = ["0", "1"]
        .iter()
        .map(|i| {
            let log = std::fs::read_to_string(scenario.dir.join(format!("host-{i}.log"))).unwrap();
            let line = log
                .lines()
                .find(|l| l.starts_with("messages in"))
                .expect("a summary");
            line.split_whitespace().last().unwrap().parse().unwrap()
        })
        .collect();
    assert_eq!(taken.iter().sum::<u64>(), COUNT, "{logs}");
    assert!(
        taken.iter().all(|t| *t > 0),
        "both instances take part: {taken:?}"
    );
    assert!(
        logs.contains("$share/readings/readings/#") || logs.contains("$shared/readings/readings/#"),
        "{logs}"
    );

    // Without --instance, a host of a shared profile refuses to start (the client id).
    let config = scenario.dir.join("config").display().to_string();
    let output = std::process::Command::new(end_to_end_tests::host_process::host_binary())
        .args(["run", "--config", &config])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success()
            && said.contains("instanceCount 2: start each of the 2 hosts with its own --instance"),
        "{said}"
    );
}

/// `validate` on examples/transformation says what runs: the source, each rule as it will
/// be applied (a filter *drops* when true), the destination's columns.
#[test]
fn validate_prints_what_the_example_transformation_does() {
    let examples =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/transformation");
    let output = std::process::Command::new(end_to_end_tests::host_process::host_binary())
        .arg("validate")
        .arg(&examples)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{said}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for line in [
        "dataflow my-dataflow (Enabled, profile default: 1 instance(s))",
        "  source       default: azure-iot-operations/data/thermostat",
        "  filter[0]    drops the message when $1 * $2 < 100000 (inputs temperature.Value, \"Tag 10\".Value)",
        "  map[0]       * -> *",
        "  map[1]       cToF($1) -> TemperatureF (inputs temperature.Value)",
        "  map[2]       \"Tag 10\".Value -> Humidity",
        "  destination  adx: table thermostat (TemperatureF: real, Humidity: real, MqttTopic: string)",
    ] {
        assert!(said.lines().any(|l| l == line), "no line {line:?} in\n{said}");
    }
}

/// concept-dataflow-enrich: a dataset from the state store, here the directory given with
/// `--state-store` (the records of key `devices` in devices.jsonl). Messages of a known
/// device get its location; for the others no record matches and the rule that reads the
/// dataset is skipped (howto-dataflow-graphs-enrich), so their location is empty. A change to
/// the records reaches the messages after it, as the state store's notifications do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dataset_from_the_state_store_enriches_messages() {
    const ENRICH: &str = r#"datasets:
  - key: devices
    inputs:
      - $source.deviceId
      - $context.deviceId
    expression: $1 == $2
map:
  - inputs:
      - '*'
    output: '*'
  - inputs:
      - $context(devices).location
    output: location"#;
    let scenario = Scenario::start(
        "dataset",
        ScenarioOptions {
            create_table: ".create table readings (n: long, location: string, MqttTopic: string)"
                .into(),
            transformation: Some(ENRICH.into()),
            ..ScenarioOptions::default()
        },
    )
    .await;
    // Without the state store the host says which dataset needs it, before it connects.
    let refused = scenario
        .start_host("refused")
        .wait(Duration::from_secs(30))
        .await;
    let log = std::fs::read_to_string(scenario.dir.join("host-refused.log")).unwrap();
    assert!(!refused.success() && log.contains("datasets reads state store key `devices`: give the directory that holds its records with --state-store"), "{log}");

    let store = scenario.dir.join("state-store");
    std::fs::create_dir_all(&store).unwrap();
    std::fs::write(
        store.join("devices.jsonl"),
        "{\"deviceId\": \"d0\", \"location\": \"hall\"}\n{\"deviceId\": \"d1\", \"location\": \"roof\"}\n",
    )
    .unwrap();
    let dead_letters = scenario.dir.join("dead-letter-0.jsonl");
    let mut host = scenario.start_host_with(
        "0",
        &[
            "--dead-letter",
            &dead_letters.display().to_string(),
            "--state-store",
            &store.display().to_string(),
        ],
    );
    host.wait_for_log("subscribed to", 1, Duration::from_secs(60))
        .await;
    let messages = |range: std::ops::Range<u64>| -> Vec<Outgoing> {
        range
            .map(|n| Outgoing {
                topic: format!("readings/d{}", n % 3),
                payload: format!(r#"{{"n": {n}, "deviceId": "d{}"}}"#, n % 3).into_bytes(),
            })
            .collect()
    };
    publish_all(scenario.broker.port, messages(0..300), None).await;
    let tally = scenario.wait_for_all(300, Duration::from_secs(60)).await;
    assert_eq!(tally.ingested, 300, "{}", scenario.host_logs());
    // The state store changes while the host runs: d2 gets a location, and the messages
    // after the change see it (the host looks at the file once a second).
    std::fs::write(
        store.join("devices.jsonl"),
        "{\"deviceId\": \"d0\", \"location\": \"hall\"}\n{\"deviceId\": \"d1\", \"location\": \"roof\"}\n{\"deviceId\": \"d2\", \"location\": \"cellar\"}\n",
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    const COUNT: u64 = 600;
    publish_all(scenario.broker.port, messages(300..COUNT), None).await;
    let tally = scenario.wait_for_all(COUNT, Duration::from_secs(60)).await;
    let status = host.terminate(Duration::from_secs(30)).await;
    let logs = scenario.host_logs();
    assert!(status.success(), "{logs}");
    scenario.assert_nothing_lost(&tally);
    assert_eq!((tally.ingested, tally.duplicates), (COUNT, 0));
    assert!(
        logs.contains("the state store changed; its records were read again"),
        "{logs}"
    );
    for row in scenario.adx.emulator.rows(DATABASE, TABLE) {
        let n = row[0].as_u64().unwrap();
        let expected = match (n % 3, n < 300) {
            (0, _) => Value::from("hall"),
            (1, _) => Value::from("roof"),
            (_, true) => Value::Null,
            (_, false) => Value::from("cellar"),
        };
        let location = if row[1] == "" {
            Value::Null
        } else {
            row[1].clone()
        };
        assert_eq!(location, expected, "row {n}: {row:?}");
    }
}
