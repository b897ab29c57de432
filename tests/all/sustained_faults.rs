//! Delivery under sustained faults, counted message by message and against the broker's own
//! log (`log_type all`): throttling, 503s and slow answers at 3,000 messages a second, host
//! kills and a broker restart; QoS 0 beside QoS 1; a message larger than any row. The long
//! version is `cargo run --release -p end-to-end-tests --bin delivery-campaign -- --soak`.

use std::time::Duration;

use dataflow_testkit::publisher::{publish_all, Outgoing};
use end_to_end_tests::campaign::{self, rehearsal_faults, Campaign};
use end_to_end_tests::delivery::{numbered, Scenario, ScenarioOptions};

async fn assert_campaign_holds(campaign: &Campaign) -> String {
    let (outcome, scenario) = campaign::run(campaign).await;
    println!("{}\n{}", campaign::Outcome::HEADER, outcome.row());
    assert!(
        outcome.violations().is_empty(),
        "{}",
        campaign::describe_failure(&outcome, &scenario)
    );
    scenario.host_logs()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_at_3000_a_second_through_the_default_window_lose_and_duplicate_nothing() {
    // The default window (maxInflightMessages 100) with a sixth of requests throttled: the
    // host drains far slower than the publisher sends, the broker queues the rest, and every
    // PUBACK the host writes must reach the broker (it compares both logs).
    let campaign = Campaign {
        name: "faults only, window 100".into(),
        messages: 6000,
        per_second: 3000,
        window: 100,
        faults: rehearsal_faults(),
        kills: 0,
        broker_restarts: 0,
        drain_timeout: Duration::from_secs(180),
    };
    let logs = assert_campaign_holds(&campaign).await;
    // The host says that the window, not the destination, limits it, and what to change.
    assert!(
        logs.contains("the in-flight window is full (100 message(s), maxInflightMessages)")
            && logs.contains("raise maxInflightMessages"),
        "{logs}"
    );
    assert!(!logs.contains("MQTT connection to"), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_kills_and_a_broker_restart_lose_nothing_and_duplicate_only_what_the_broker_sends_again(
) {
    let campaign = Campaign {
        name: "faults, 3 host kills, a broker restart".into(),
        messages: 15_000,
        per_second: 3000,
        window: 1000,
        faults: rehearsal_faults(),
        kills: 3,
        broker_restarts: 1,
        drain_timeout: Duration::from_secs(180),
    };
    assert_campaign_holds(&campaign).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos_0_deliveries_are_ingested_without_an_acknowledgement_beside_qos_1_ones() {
    let options = ScenarioOptions {
        broker_logs_packets: true,
        ..ScenarioOptions::default()
    };
    let scenario = Scenario::start("qos0", options).await;
    let host = scenario.start_host_ready("a", 1).await;
    let port = scenario.broker.port;
    // 0..1000 at QoS 1, 1000..1500 at QoS 0 (which MQTT acknowledges never).
    publish_all(port, numbered(0..1000, None), None).await;
    publish_at_most_once(port, numbered(1000..1500, None)).await;
    publish_all(port, numbered(1500..2000, None), None).await;
    let tally = scenario.wait_for_all(2000, Duration::from_secs(60)).await;
    host.terminate(Duration::from_secs(30)).await;
    scenario.assert_nothing_lost(&tally);
    assert_eq!(tally.duplicates, 0);
    let counts = scenario
        .broker
        .packet_counts(&Scenario::host_client_id("a"));
    assert_eq!(
        (counts.publish_sent, counts.puback_received),
        (2000, 1500),
        "{}",
        scenario.host_logs()
    );
    // A PUBACK for a QoS 0 delivery (packet id 0) is a protocol error the broker disconnects
    // for.
    let logs = scenario.host_logs();
    assert!(!logs.contains("MQTT connection to"), "{logs}");
    assert!(!scenario.broker.log().contains("protocol error"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_17_mib_message_is_dead_lettered_whole_and_the_stream_goes_on() {
    let scenario = Scenario::start("oversize", ScenarioOptions::default()).await;
    let host = scenario.start_host_ready("a", 1).await;
    let port = scenario.broker.port;
    let filler = "x".repeat(17 * 1024 * 1024);
    let mut messages = numbered(0..100, None);
    messages.push(Outgoing {
        topic: "readings/site0".into(),
        payload: format!(r#"{{"n": "bad-100", "site": "s0", "blob": "{filler}"}}"#).into_bytes(),
    });
    messages.extend(numbered(101..200, None));
    publish_all(port, messages, None).await;
    let tally = scenario.wait_for_all(200, Duration::from_secs(60)).await;
    host.terminate(Duration::from_secs(30)).await;
    scenario.assert_nothing_lost(&tally);
    assert_eq!((tally.ingested, tally.dead_lettered), (199, 1));
    assert!(
        tally.reasons[0].starts_with("the message is 17825")
            && tally.reasons[0].contains("more than the 16777216 this host hands to a plugin"),
        "{:?}",
        tally.reasons
    );
    // The dead letter holds the whole payload, so it can be sent again once fixed.
    let letters = std::fs::read_to_string(scenario.dir.join("dead-letter-a.jsonl")).unwrap();
    assert!(letters.len() > 17 * 1024 * 1024, "{}", letters.len());
}

/// Publishes each message with QoS 0 (no acknowledgement), then waits for the broker to have
/// taken them (a PINGRESP after the last one).
async fn publish_at_most_once(port: u16, messages: Vec<Outgoing>) {
    use rumqttc::v5::mqttbytes::v5::Packet;
    use rumqttc::v5::mqttbytes::QoS;
    use rumqttc::v5::{AsyncClient, Event, MqttOptions};
    let id = format!("test-qos0-{}-{port}", std::process::id());
    let (client, mut eventloop) = AsyncClient::new(MqttOptions::new(id, "127.0.0.1", port), 16);
    let sender = tokio::spawn(async move {
        for message in messages {
            client
                .publish(message.topic, QoS::AtMostOnce, false, message.payload)
                .await
                .unwrap();
        }
        client.disconnect().await.unwrap();
    });
    loop {
        match eventloop.poll().await {
            Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) | Err(_) => break,
            Ok(Event::Incoming(Packet::Disconnect(_))) => break,
            Ok(_) => {}
        }
    }
    sender.await.unwrap();
}
