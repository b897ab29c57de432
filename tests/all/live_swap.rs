//! A live swap under load: the endpoint's plugin moves to another version on SIGHUP while
//! thousands of messages are in flight; every message is ingested exactly once. A reload
//! that fails changes nothing.

use std::time::Duration;

use dataflow_testkit::publisher::publish_all;
use end_to_end_tests::adx_destination_1_0_wasm;
use end_to_end_tests::delivery::{numbered, Scenario, ScenarioOptions};

/// The endpoint's configuration, naming a plugin version from the plugin directory.
fn name_plugin(scenario: &Scenario, version: &str) {
    let path = scenario.dir.join("config/dataflow.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let start = text.find("metadata:\n  name: adx\n").unwrap();
    let end = text[start..].find("spec:").unwrap() + start;
    let text = format!(
        "{}metadata:\n  name: adx\n  annotations:\n    dataflow-host/plugin: adx-destination@{version}\n{}",
        &text[..start],
        &text[end..]
    );
    std::fs::write(&path, text).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swap_on_sighup_under_load_ingests_every_message_exactly_once() {
    // Up to 20,000 unacknowledged messages from the broker, batches held up to 10 s: at 5000
    // messages a second, thousands are in flight when the swap comes, 2 s in.
    let options = ScenarioOptions {
        max_inflight_messages: 20_000,
        max_messages: 20_000,
        latency_seconds: 10,
        ..ScenarioOptions::default()
    };
    let scenario = Scenario::start("swap", options).await;
    // Two versions in the plugin directory: the ADX plugin built for contract 1.0 (handed
    // lists of messages) and the bundled one, 1.2 (handed packed batches).
    let dir = scenario.dir.join("plugins/adx-destination");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("1.0.0.wasm"), adx_destination_1_0_wasm()).unwrap();
    std::fs::write(
        dir.join("1.2.0.wasm"),
        dataflow_host::bundled::ADX_DESTINATION,
    )
    .unwrap();
    name_plugin(&scenario, "1.0.0");

    let plugins = scenario.dir.join("plugins").display().to_string();
    let dead_letters = scenario
        .dir
        .join("dead-letter-a.jsonl")
        .display()
        .to_string();
    let mut host = scenario.start_host_with(
        "a",
        &["--plugin-dir", &plugins, "--dead-letter", &dead_letters],
    );
    host.wait_for_log("subscribed to", 1, Duration::from_secs(60))
        .await;

    let published = 20_000;
    let port = scenario.broker.port;
    let publisher =
        tokio::spawn(
            async move { publish_all(port, numbered(0..published, None), Some(5000)).await },
        );
    tokio::time::sleep(Duration::from_secs(1)).await;
    // A reload that fails (a version that is not there) leaves the running plugin alone.
    name_plugin(&scenario, "9.9.9");
    host.signal("HUP");
    host.wait_for_log(
        "the reload failed, the running plugin stays",
        1,
        Duration::from_secs(30),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    name_plugin(&scenario, "1.2.0");
    host.signal("HUP");
    host.wait_for_log(
        "live swap: the new plugin instance took over",
        1,
        Duration::from_secs(30),
    )
    .await;
    publisher.await.unwrap();

    let tally = scenario
        .wait_for_all(published, Duration::from_secs(90))
        .await;
    let status = host.terminate(Duration::from_secs(30)).await;
    let logs = scenario.host_logs();
    scenario.assert_nothing_lost(&tally);
    assert_eq!((tally.ingested, tally.duplicates), (published, 0), "{logs}");
    assert!(status.success(), "{status}\n{logs}");
    assert!(logs.contains("plugin adx-destination@1.2.0:"), "{logs}");
    assert!(
        logs.contains("(contract 1.0.0)") && logs.contains("(contract 1.2.0)"),
        "{logs}"
    );
    assert!(logs.contains("plugin swaps       1"), "{logs}");
    let peak: u64 = logs
        .lines()
        .find_map(|l| l.strip_prefix("peak in flight"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    assert!(peak >= 2000, "at most {peak} in flight\n{logs}");
    let swap = logs.lines().find(|l| l.contains("live swap:")).unwrap();
    println!("{swap}");
    let held: u64 = swap
        .split(" of the ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(held >= 1000, "only {held} in flight at the swap: {swap}");
}
