//! At-least-once delivery from a real MQTT broker (mosquitto) through the host, run as a
//! process, into the local endpoint: every published number ends in the table or in the
//! dead-letter file, whatever fails on the way.

use std::time::Duration;

use end_to_end_tests::delivery::{numbered, Scenario, ScenarioOptions};
use end_to_end_tests::publisher::publish_all;

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
    assert!(tally.lost.is_empty(), "lost {:?}\n{}", tally.lost, scenario.host_logs());
    assert_eq!((tally.ingested, tally.dead_lettered, tally.duplicates), (2700, 300, 0));
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
