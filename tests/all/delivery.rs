//! At-least-once delivery from a real MQTT broker (mosquitto) through the host, run as a
//! process, into the local endpoint: every published number ends in the table or in the
//! dead-letter file, whatever fails on the way.

use std::time::Duration;

use dataflow_testkit::publisher::{publish_all, Collector};
use end_to_end_tests::broker_security::Security;
use end_to_end_tests::delivery::{numbered, Scenario, ScenarioOptions};
use end_to_end_tests::{http_get, scrape_metrics};

const SETTLE: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn good_payloads_are_ingested_and_bad_ones_dead_lettered_with_reasons() {
    let scenario = Scenario::start("mixed", ScenarioOptions::default()).await;
    let host = scenario.start_host_ready("a", 1).await;
    let published = 3000;
    publish_all(scenario.broker.port, numbered(0..published, Some(10)), None).await;
    let tally = scenario.wait_for_all(published, SETTLE).await;
    let rss = host.peak_rss_bytes();
    let status = host.terminate(Duration::from_secs(30)).await;
    println!("{}", tally.row("mixed good and bad payloads", rss));
    scenario.assert_nothing_lost(&tally);
    assert_eq!(
        (tally.ingested, tally.dead_lettered, tally.duplicates),
        (2700, 300, 0)
    );
    assert!(
        tally
            .reasons
            .iter()
            .all(|r| r.contains("column `n` (long): string \"bad-")),
        "{:?}",
        &tally.reasons[..3]
    );
    assert!(status.success(), "{status}\n{}", scenario.host_logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifth_of_requests_throttled_or_unavailable_loses_nothing() {
    // Requests of 100 rows: 50 or more of them, so that a fifth failing is all but certain
    // to fail some (with 10, none failed one run in ten).
    let options = ScenarioOptions {
        max_messages: 100,
        ..ScenarioOptions::default()
    };
    let scenario = Scenario::start("throttled", options).await;
    scenario
        .adx
        .emulator
        .set_faults(vec![fault("429:0.1"), fault("503:0.11")]);
    let host = scenario.start_host_ready("a", 1).await;
    let published = 5000;
    publish_all(
        scenario.broker.port,
        numbered(0..published, None),
        Some(2500),
    )
    .await;
    let tally = scenario.wait_for_all(published, SETTLE).await;
    let rss = host.peak_rss_bytes();
    let status = host.terminate(Duration::from_secs(30)).await;
    println!("{}", tally.row("20% of requests 429 or 503", rss));
    scenario.assert_nothing_lost(&tally);
    assert_eq!(tally.ingested, published);
    let statuses = scenario.adx.ingest_statuses();
    let failed = statuses.iter().filter(|s| **s == 429 || **s == 503).count();
    assert!(failed > 0, "no fault was injected: {statuses:?}");
    // The plugin's own log lines (it warns of each failed request) arrive through the
    // contract's log interface, tagged with the dataflow and the plugin's contract version.
    let logs = scenario.host_logs();
    assert!(
        logs.lines().any(|l| l.contains(" plugin: ")
            && l.contains("endpoint=\"readings\"")
            && l.contains("plugin=\"dataflow:destination/destination@1.2.0\"")),
        "{logs}"
    );
    assert!(status.success(), "{status}\n{}", scenario.host_logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_killed_three_times_mid_stream_loses_nothing() {
    killed_three_times("killed", Security::Plain).await;
}

/// The same over TLS to a broker that checks service account tokens, as on a cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_killed_three_times_over_tls_with_a_token_loses_nothing() {
    killed_three_times("killed-tls", Security::ServiceAccountToken).await;
}

async fn killed_three_times(name: &str, security: Security) {
    let options = ScenarioOptions {
        security,
        ..ScenarioOptions::default()
    };
    let window = u64::from(options.max_inflight_messages);
    let scenario = Scenario::start(name, options).await;
    let mut host = scenario.start_host_ready("a", 1).await;
    let published = 12_000;
    let port = scenario.broker.port;
    let publisher = tokio::spawn(publish_all(port, numbered(0..published, None), Some(3000)));
    let mut peak = 0;
    for restart in 2..=4 {
        tokio::time::sleep(Duration::from_millis(900)).await;
        peak = peak.max(host.peak_rss_bytes());
        host.kill();
        host = scenario.start_host_ready("a", restart).await;
    }
    publisher.await.unwrap();
    let tally = scenario.wait_for_all(published, SETTLE).await;
    peak = peak.max(host.peak_rss_bytes());
    host.terminate(Duration::from_secs(30)).await;
    println!(
        "{}",
        tally.row(&format!("host SIGKILLed 3 times ({security:?})"), peak)
    );
    scenario.assert_nothing_lost(&tally);
    assert!(
        tally.duplicates <= 3 * window,
        "{} duplicates, more than 3 in-flight windows",
        tally.duplicates
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_seconds_without_the_endpoint_keep_memory_flat_and_lose_nothing() {
    let scenario = Scenario::start("outage", ScenarioOptions::default()).await;
    let host = scenario.start_host_ready("a", 1).await;
    let port = scenario.broker.port;
    // Warm up: the baseline memory with data flowing.
    publish_all(port, numbered(0..2000, None), None).await;
    scenario.wait_for_all(2000, SETTLE).await;
    let baseline = host.peak_rss_bytes();

    scenario.adx.emulator.set_faults(vec![fault("drop")]);
    let published = 40_000;
    publish_all(port, numbered(2000..published, None), Some(2000)).await;
    tokio::time::sleep(Duration::from_secs(12)).await; // 30 s in all since the outage began
    let during = host.peak_rss_bytes();
    scenario.adx.emulator.set_faults(vec![]);

    let tally = scenario.wait_for_all(published, SETTLE).await;
    let rss = host.peak_rss_bytes();
    host.terminate(Duration::from_secs(30)).await;
    println!("{}", tally.row("endpoint down for 30 s", rss));
    scenario.assert_nothing_lost(&tally);
    // Not a terminal: plain progress lines, every few seconds, with the counts.
    let logs = scenario.host_logs();
    assert!(
        logs.lines()
            .any(|l| l.starts_with("progress: ") && l.contains(" retries, ")),
        "{logs}"
    );
    // 38,000 messages arrived during the outage; at most a window of them is in the host.
    assert!(
        during < baseline + 32 * 1024 * 1024 && during < 160 * 1024 * 1024,
        "peak RSS grew from {baseline} to {during} bytes during the outage"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_mid_stream_loses_nothing() {
    broker_restart("broker-restart", Security::Plain).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_over_tls_loses_nothing() {
    broker_restart("broker-restart-tls", Security::Tls).await;
}

async fn broker_restart(name: &str, security: Security) {
    let options = ScenarioOptions {
        security,
        ..ScenarioOptions::default()
    };
    let mut scenario = Scenario::start(name, options).await;
    let host = scenario.start_host_ready("a", 1).await;
    let published = 10_000;
    let port = scenario.broker.port;
    let publisher = tokio::spawn(publish_all(port, numbered(0..published, None), Some(2500)));
    tokio::time::sleep(Duration::from_secs(2)).await;
    scenario.broker.restart(Duration::from_secs(1)).unwrap();
    let repeated = publisher.await.unwrap();
    let tally = scenario.wait_for_all(published, SETTLE).await;
    let rss = host.peak_rss_bytes();
    host.terminate(Duration::from_secs(30)).await;
    println!(
        "{}",
        tally.row(&format!("broker restarted mid-stream ({security:?})"), rss)
    );
    scenario.assert_nothing_lost(&tally);
    assert!(
        scenario
            .host_logs()
            .contains("connected to the MQTT broker"),
        "{}",
        scenario.host_logs()
    );
    println!("publisher repeated {repeated} message(s) across the restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_on_one_shared_subscription_split_the_stream() {
    let options = ScenarioOptions {
        filter: "$shared/hosts/readings/#".into(),
        ..ScenarioOptions::default()
    };
    let scenario = Scenario::start("shared", options).await;
    let first = scenario.start_host_ready("a", 1).await;
    let second = scenario.start_host_ready("b", 1).await;
    let published = 6000;
    publish_all(scenario.broker.port, numbered(0..published, None), None).await;
    let tally = scenario.wait_for_all(published, SETTLE).await;
    let rss = first.peak_rss_bytes().max(second.peak_rss_bytes());
    let (log_a, log_b) = (first.log.clone(), second.log.clone());
    assert!(first.terminate(Duration::from_secs(30)).await.success());
    assert!(second.terminate(Duration::from_secs(30)).await.success());
    println!("{}", tally.row("two hosts, one shared subscription", rss));
    scenario.assert_nothing_lost(&tally);
    assert_eq!(tally.duplicates, 0);
    let ingested_by = |log: &std::path::Path| -> u64 {
        let text = std::fs::read_to_string(log).unwrap();
        let line = text
            .lines()
            .find(|l| l.starts_with("rows ingested"))
            .unwrap_or_else(|| panic!("no summary in {text}"));
        line.split_whitespace().last().unwrap().parse().unwrap()
    };
    let (a, b) = (ingested_by(&log_a), ingested_by(&log_b));
    assert_eq!(a + b, published);
    assert!(
        a > published / 5 && b > published / 5,
        "the load was not split: {a} and {b}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_policy_off_pauses_without_acknowledging_until_it_is_enabled() {
    let options = ScenarioOptions {
        streaming: false,
        ..ScenarioOptions::default()
    };
    let scenario = Scenario::start("policy-off", options).await;
    let (mut host, metrics) = scenario.start_host_ready_with_metrics("a").await;
    assert_eq!(http_get(&metrics, "/readyz").0, 200);
    let published = 2000;
    publish_all(scenario.broker.port, numbered(0..published, None), None).await;
    host.wait_for_log(
        "policy streamingingestion enable`",
        1,
        Duration::from_secs(30),
    )
    .await;
    host.wait_for_log("endpoint paused", 1, Duration::from_secs(30))
        .await;
    let paused = scenario.tally(published);
    assert_eq!((paused.ingested, paused.dead_lettered), (0, 0));
    // Paused, the host is alive but not ready: Kubernetes sends it no traffic to take.
    let (status, body) = http_get(&metrics, "/readyz");
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("the destination is paused by a permanent error"),
        "{body}"
    );
    assert_eq!(http_get(&metrics, "/healthz").0, 200);

    // Killed while paused: had anything been acknowledged, the broker would not deliver it
    // to the next instance.
    host.kill();
    scenario
        .adx
        .client
        .management(
            end_to_end_tests::DATABASE,
            ".alter database ['telemetry'] policy streamingingestion enable",
        )
        .await
        .unwrap();
    let host = scenario.start_host_ready("a", 2).await;
    let tally = scenario.wait_for_all(published, SETTLE).await;
    let rss = host.peak_rss_bytes();
    host.terminate(Duration::from_secs(30)).await;
    println!("{}", tally.row("streaming policy off, then on", rss));
    scenario.assert_nothing_lost(&tally);
    assert_eq!(tally.ingested, published);
}

fn fault(text: &str) -> local_adx::faults::Fault {
    text.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_exits_at_once_and_acknowledges_nothing_unsent() {
    let scenario = Scenario::start("second-signal", ScenarioOptions::default()).await;
    scenario.adx.emulator.set_faults(vec![fault("drop")]);
    let mut host = scenario.start_host_ready("a", 1).await;
    let published = 500;
    publish_all(scenario.broker.port, numbered(0..published, None), None).await;
    host.wait_for_log("retrying in", 1, Duration::from_secs(30))
        .await;
    host.signal("TERM");
    host.wait_for_log("stopping:", 1, Duration::from_secs(10))
        .await;
    host.signal("TERM");
    let status = host.wait(Duration::from_secs(3)).await;
    assert_eq!(status.code(), Some(130), "{}", scenario.host_logs());
    assert_eq!(scenario.tally(published).ingested, 0);

    scenario.adx.emulator.set_faults(vec![]);
    let host = scenario.start_host_ready("a", 2).await;
    let tally = scenario.wait_for_all(published, SETTLE).await;
    host.terminate(Duration::from_secs(30)).await;
    scenario.assert_nothing_lost(&tally);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_on_a_topic_wait_for_a_subscriber_and_then_all_arrive() {
    let scenario = Scenario::start("dead-letter-topic", ScenarioOptions::default()).await;
    let mut host = scenario.start_host_with(
        "a",
        &[
            "--dead-letter-topic",
            "dead/readings",
            "--log-format",
            "json",
        ],
    );
    host.wait_for_log("subscribed to", 1, Duration::from_secs(60))
        .await;
    let published = 200;
    publish_all(scenario.broker.port, numbered(0..published, Some(10)), None).await;
    // Nobody listens on the dead-letter topic: the broker would drop the entries, so the host
    // keeps them (and their messages unacknowledged) and says why.
    host.wait_for_log("has no subscriber", 1, Duration::from_secs(30))
        .await;
    let collector = Collector::start(scenario.broker.port, "dead/#").await;
    let deadline = std::time::Instant::now() + SETTLE;
    let letters = loop {
        let letters: Vec<serde_json::Value> = collector
            .received
            .lock()
            .unwrap()
            .iter()
            .map(|p| serde_json::from_slice(p).unwrap())
            .collect();
        let ingested = scenario.tally(published).ingested;
        if (letters.len() >= 20 && ingested == 180) || std::time::Instant::now() > deadline {
            break letters;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let log = host.log.clone();
    host.terminate(Duration::from_secs(30)).await;
    // --log-format json: every log line is a JSON object with its level and message.
    let log = std::fs::read_to_string(log).unwrap();
    let entries: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(
        entries.iter().any(|e| e["level"] == "WARN"
            && e["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("has no subscriber"))),
        "{log}"
    );
    assert!(entries.iter().any(|e| e["level"] == "INFO"
        && e["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("subscribed to"))));
    assert_eq!(
        scenario.tally(published).ingested,
        180,
        "{}",
        scenario.host_logs()
    );
    let mut numbers: Vec<String> = letters
        .iter()
        .map(|l| l["payload"].as_str().unwrap().to_string())
        .filter(|p| p.contains("bad-"))
        .collect();
    numbers.sort();
    numbers.dedup();
    assert_eq!(numbers.len(), 20, "{letters:?}");
    assert!(letters[0]["reason"]
        .as_str()
        .unwrap()
        .contains("column `n` (long)"));
    assert!(letters[0]["topic"]
        .as_str()
        .unwrap()
        .starts_with("readings/"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_3_1_1_delivers_everything_across_a_kill_despite_the_brokers_small_window() {
    // mosquitto sends an MQTT 3.1.1 client at most 20 unacknowledged messages: the host
    // flushes when the broker goes quiet instead of waiting for the latency bound.
    let scenario = Scenario::start("mqtt311", ScenarioOptions::default()).await;
    let dead_letters = scenario.dir.join("dead-letter-a.jsonl");
    let args = [
        "--dead-letter",
        &dead_letters.display().to_string(),
        "--mqtt-version",
        "3.1.1",
    ];
    let mut host = scenario.start_host_with("a", &args);
    host.wait_for_log("subscribed to", 1, Duration::from_secs(60))
        .await;
    let published = 3000;
    let port = scenario.broker.port;
    let publisher = tokio::spawn(publish_all(
        port,
        numbered(0..published, Some(50)),
        Some(2000),
    ));
    tokio::time::sleep(Duration::from_millis(700)).await;
    host.kill();
    let mut host = scenario.start_host_with("a", &args);
    host.wait_for_log("connected to the MQTT broker", 2, Duration::from_secs(60))
        .await;
    publisher.await.unwrap();
    let tally = scenario
        .wait_for_all(published, Duration::from_secs(60))
        .await;
    let rss = host.peak_rss_bytes();
    host.terminate(Duration::from_secs(30)).await;
    println!("{}", tally.row("MQTT 3.1.1, host SIGKILLed once", rss));
    scenario.assert_nothing_lost(&tally);
    assert_eq!((tally.ingested, tally.dead_lettered), (2940, 60));
    assert!(
        scenario.host_logs().contains("session resumed"),
        "{}",
        scenario.host_logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_scraped_during_a_run_match_its_own_counts() {
    let scenario = Scenario::start("metrics", ScenarioOptions::default()).await;
    let port = end_to_end_tests::broker::free_port();
    let dead_letters = scenario
        .dir
        .join("dead-letter-a.jsonl")
        .display()
        .to_string();
    let addr = format!("127.0.0.1:{port}");
    let mut host = scenario.start_host_with(
        "a",
        &["--dead-letter", &dead_letters, "--metrics-addr", &addr],
    );
    host.wait_for_log("subscribed to", 1, Duration::from_secs(60))
        .await;
    let published = 1000;
    publish_all(scenario.broker.port, numbered(0..published, Some(10)), None).await;
    let tally = scenario.wait_for_all(published, SETTLE).await;
    scenario.assert_nothing_lost(&tally);
    // The counters follow the pipeline; give the last settle a moment to land.
    let mut metrics = scrape_metrics(&addr);
    for _ in 0..50 {
        if value(&metrics, "dataflow_messages_ingested_total") == 900.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        metrics = scrape_metrics(&addr);
    }
    assert_eq!(
        value(&metrics, "dataflow_messages_received_total"),
        1000.0,
        "{metrics}"
    );
    assert_eq!(
        value(&metrics, "dataflow_messages_ingested_total"),
        900.0,
        "{metrics}"
    );
    assert_eq!(
        value(&metrics, "dataflow_messages_dead_lettered_total"),
        100.0,
        "{metrics}"
    );
    assert_eq!(
        value(&metrics, "dataflow_in_flight_messages"),
        0.0,
        "{metrics}"
    );
    let answered = scenario
        .adx
        .ingest_statuses()
        .iter()
        .filter(|s| **s == 200)
        .count();
    assert_eq!(
        value(&metrics, "dataflow_request_duration_seconds_count{endpoint=\"adx\",table=\"readings\",status=\"200\"}"),
        answered as f64,
        "{metrics}"
    );
    assert_eq!(
        value(&metrics, "dataflow_rows_sent_total"),
        900.0,
        "{metrics}"
    );
    let rejected = "dataflow_messages_rejected_total{endpoint=\"adx\",table=\"readings\",reason=\"conversion\"}";
    assert_eq!(value(&metrics, rejected), 100.0, "{metrics}");
    let log = host.log.clone();
    assert!(host.terminate(Duration::from_secs(30)).await.success());
    let summary = std::fs::read_to_string(log).unwrap();
    assert!(summary.contains("rows ingested      900"), "{summary}");
}

/// `GET /metrics` over a plain socket.
/// The value of the first sample whose name (and labels, if given) starts the line.
fn value(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find(|line| !line.starts_with('#') && line.starts_with(series))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{metrics}"))
}
