//! The broker as Azure IoT Operations runs it: TLS verified against the trust bundle named by
//! `trustedCaCertificateConfigMapRef`, client certificates (`X509Certificate`), and service
//! account tokens (`ServiceAccountToken`: MQTT 5 enhanced authentication `K8S-SAT`, renewed
//! by re-authentication). A real mosquitto with TLS listeners and a token-checking plugin;
//! the host as a process; every message numbered and counted, with the broker's own
//! PUBLISH/PUBACK counts.

use std::time::Duration;

use dataflow_testkit::publisher::publish_all;
use end_to_end_tests::broker_security::{Pki, Security, TRUST_BUNDLE};
use end_to_end_tests::delivery::{numbered, Scenario, ScenarioOptions, FIRST_TOKEN};
use end_to_end_tests::identity_services::IdentityService;
use end_to_end_tests::{http_get, scrape_metrics};

const SETTLE: Duration = Duration::from_secs(60);

fn options(security: Security) -> ScenarioOptions {
    ScenarioOptions {
        security,
        broker_logs_packets: true,
        ..ScenarioOptions::default()
    }
}

/// howto-configure-mqtt-endpoint, X.509 certificate: "the secret must have
/// `client_cert.pem` and `client_key.pem` as the key names".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_requires_client_certificates_gets_the_secrets_and_everything_arrives() {
    let scenario = Scenario::start("x509", options(Security::X509)).await;
    let host = scenario.start_host_ready("a", 1).await;
    let published = 2000;
    publish_all(scenario.broker.port, numbered(0..published, None), None).await;
    let tally = scenario.wait_for_all(published, SETTLE).await;
    host.terminate(Duration::from_secs(30)).await;
    scenario.assert_nothing_lost(&tally);
    assert_eq!(tally.duplicates, 0);
    let counts = scenario
        .broker
        .packet_counts(&Scenario::host_client_id("a"));
    assert_eq!(
        (counts.publish_sent, counts.puback_received),
        (published, published)
    );

    // Without the Secret where --secrets says, the host says which key of which Secret.
    let empty = scenario.dir.join("no-secrets");
    std::fs::create_dir_all(&empty).unwrap();
    let mut host = scenario.start_host_with(
        "b",
        &[
            "--dead-letter",
            "/dev/null",
            "--secrets",
            &empty.display().to_string(),
        ],
    );
    host.wait_for_log(
        "the Secret `broker-client` has no readable key `client_cert.pem`",
        1,
        SETTLE,
    )
    .await;
    assert!(!host.wait(Duration::from_secs(10)).await.success());
}

/// A broker whose certificate the trust bundle did not sign, or whose name is not the one
/// dialled, is never sent a message: the host says why, keeps trying, and acknowledges
/// nothing, so the broker keeps every message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_ca_or_server_name_is_refused_with_the_reason_and_nothing_is_taken() {
    let scenario = Scenario::start("wrong-ca", options(Security::Tls)).await;
    let secure = scenario.secure.as_ref().unwrap();
    let bundle = secure
        .mounts
        .join("config-maps")
        .join(TRUST_BUNDLE)
        .join("ca.crt");
    let right_ca = std::fs::read_to_string(&bundle).unwrap();
    std::fs::write(&bundle, Pki::generate().ca).unwrap();
    let mut host = scenario.start_host("a");
    host.wait_for_log("invalid peer certificate: UnknownIssuer", 2, SETTLE)
        .await;
    host.terminate(Duration::from_secs(30)).await;

    std::fs::write(&bundle, right_ca).unwrap();
    let config = scenario.dir.join("config/dataflow.yaml");
    let yaml = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        yaml.replace("host: localhost:", "host: 127.0.0.1:"),
    )
    .unwrap();
    let mut host = scenario.start_host("b");
    host.wait_for_log("certificate not valid for name", 2, SETTLE)
        .await;
    host.terminate(Duration::from_secs(30)).await;
    for instance in ["a", "b"] {
        let counts = scenario
            .broker
            .packet_counts(&Scenario::host_client_id(instance));
        assert_eq!(counts.puback_received, 0);
    }
    assert_eq!(scenario.tally(0).ingested, 0);
}

/// howto-configure-authentication: "MQTT v5 clients authenticated with SATs … can
/// reauthenticate with a new credential before their initial credential expires … by
/// sending an MQTT v5 AUTH packet", and "Other authentication failures cause the broker to
/// send a DISCONNECT packet and close the client's network connection."
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_account_tokens_are_renewed_on_the_same_connection_and_a_refused_one_is_said() {
    let scenario = Scenario::start("sat", options(Security::ServiceAccountToken)).await;
    let secure = scenario.secure.as_ref().unwrap();
    let (mut host, metrics) = scenario.start_host_ready_with_metrics("a").await;
    assert_eq!(http_get(&metrics, "/readyz").0, 200);
    let client = Scenario::host_client_id("a");
    let port = scenario.broker.port;
    let publisher = tokio::spawn(publish_all(port, numbered(0..3000, None), Some(1000)));

    // Kubernetes rotates the token; the broker knows both until the old one expires.
    tokio::time::sleep(Duration::from_millis(800)).await;
    secure.accept_tokens(&[FIRST_TOKEN, "token-2"]);
    secure.project_token("token-2");
    host.wait_for_log(
        "re-authenticated to the broker with a renewed token (K8S-SAT)",
        1,
        SETTLE,
    )
    .await;
    secure.accept_tokens(&["token-2"]);
    publisher.await.unwrap();
    let tally = scenario.wait_for_all(3000, SETTLE).await;
    scenario.assert_nothing_lost(&tally);
    assert_eq!(tally.duplicates, 0, "a reconnect would have redelivered");
    let log = std::fs::read_to_string(scenario.dir.join("host-a.log")).unwrap();
    assert_eq!(
        log.matches("connected to the MQTT broker").count(),
        1,
        "{log}"
    );
    let decisions: Vec<(bool, String)> = secure
        .auth_decisions()
        .into_iter()
        .filter(|(_, id, _)| *id == client)
        .map(|(accepted, _, token)| (accepted, token))
        .collect();
    assert_eq!(
        decisions,
        vec![
            (true, FIRST_TOKEN.to_string()),
            (true, "token-2".to_string())
        ]
    );
    // The last PUBACKs follow the last rows; the broker's log says when they arrived.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut counts = scenario.broker.packet_counts(&client);
    while counts.puback_received < 3000 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        counts = scenario.broker.packet_counts(&client);
    }
    assert_eq!((counts.publish_sent, counts.puback_received), (3000, 3000));

    // A token the broker does not accept: refused at re-authentication, then at CONNECT, and
    // said each time; once it is valid, the host connects and goes on.
    secure.project_token("token-3");
    host.wait_for_log("the broker refused re-authentication", 1, SETTLE)
        .await;
    host.wait_for_log("return code: `NotAuthorized`", 2, SETTLE)
        .await;
    let (status, body) = http_get(&metrics, "/readyz");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("not connected to its MQTT broker"), "{body}");
    assert_eq!(http_get(&metrics, "/healthz").0, 200);
    let reauthentications = scrape_metrics(&metrics)
        .lines()
        .find(|l| l.starts_with("dataflow_mqtt_reauthentications_total{"))
        .map(|l| l.rsplit(' ').next().unwrap().to_string());
    assert_eq!(reauthentications.as_deref(), Some("1"));
    secure.accept_tokens(&["token-3"]);
    host.wait_for_log("connected to the MQTT broker", 2, SETTLE)
        .await;
    publish_all(port, numbered(3000..4000, None), None).await;
    let tally = scenario.wait_for_all(4000, SETTLE).await;
    host.terminate(Duration::from_secs(30)).await;
    scenario.assert_nothing_lost(&tally);
    assert!(secure
        .auth_decisions()
        .iter()
        .any(|(accepted, id, token)| !accepted && *id == client && token == "token-3"));
}

/// Event Grid's MQTT broker (mqtt-client-microsoft-entra-token-and-rbac): "Authentication
/// Method | OAUTH2-JWT", the Entra ID token as the data, and "the MQTT v5 AUTH packet to
/// refresh the token". The managed identity's tokens come from the IMDS double, for Event
/// Grid's audience; a refreshed one is presented on the same connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_managed_identity_token_for_event_grid_is_presented_and_renewed_on_the_connection() {
    // Short-lived tokens are refreshed at half their lifetime: here every 10 s.
    let identity = IdentityService::start(Duration::from_secs(20)).await;
    let options = ScenarioOptions {
        host_env: vec![("AZURE_POD_IDENTITY_AUTHORITY_HOST", identity.url.clone())],
        ..options(Security::EntraToken)
    };
    let scenario = Scenario::start("entra", options).await;
    let secure = scenario.secure.as_ref().unwrap();
    // What the double will issue, in order (`issued-<n>-<pid>`).
    let issued: Vec<String> = (1..=6)
        .map(|n| format!("issued-{n}-{}", std::process::id()))
        .collect();
    secure.accept_tokens(&issued.iter().map(String::as_str).collect::<Vec<_>>());
    let mut host = scenario.start_host_ready("a", 1).await;
    publish_all(scenario.broker.port, numbered(0..1000, None), None).await;
    host.wait_for_log(
        "re-authenticated to the broker with a renewed token (OAUTH2-JWT)",
        1,
        SETTLE,
    )
    .await;
    publish_all(scenario.broker.port, numbered(1000..2000, None), None).await;
    let tally = scenario.wait_for_all(2000, SETTLE).await;
    host.terminate(Duration::from_secs(30)).await;
    scenario.assert_nothing_lost(&tally);
    assert_eq!(tally.duplicates, 0);
    let client = Scenario::host_client_id("a");
    let accepted: Vec<String> = secure
        .auth_decisions()
        .into_iter()
        .filter(|(accepted, id, _)| *accepted && *id == client)
        .map(|(_, _, token)| token)
        .collect();
    assert!(accepted.len() >= 2, "{accepted:?}");
    assert_eq!(accepted[0], issued[0]);
    // The ADX endpoint's token is a development token: every IMDS request was for Event Grid.
    let requests = identity.requests();
    assert!(!requests.is_empty());
    assert!(
        requests.iter().all(|r| r
            .path_and_query
            .contains("resource=https%3A%2F%2Feventgrid.azure.net")
            || r.path_and_query
                .contains("resource=https://eventgrid.azure.net")),
        "{requests:?}"
    );
}
