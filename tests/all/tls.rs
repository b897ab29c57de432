//! The whole path over TLS: the local endpoint serves HTTPS with a certificate from a CA made
//! for the test, and the host trusts that CA (and only then).

use std::sync::Arc;

use dataflow_runtime::http_client::HttpClient;
use dataflow_runtime::identity::StaticToken;
use dataflow_runtime::plugin::ErrorClass;
use end_to_end_tests::{adx_runtime, message, LocalAdx};
use local_adx::tls::LoopbackCertificate;
use local_adx::EmulatorOptions;

const TABLE: &str = ".create table t (n: long)";

async fn tls_endpoint() -> (LocalAdx, HttpClient) {
    let certificate = LoopbackCertificate::generate().unwrap();
    let trusting = HttpClient::trusting(certificate.ca_pem.as_bytes()).unwrap();
    let mut options = EmulatorOptions::loopback("tls-token");
    options.tls = Some(certificate.server_config().unwrap());
    (
        LocalAdx::start_with(TABLE, true, options, trusting.clone()).await,
        trusting,
    )
}

#[tokio::test]
async fn messages_reach_an_https_endpoint_whose_ca_the_host_trusts() {
    let (adx, trusting) = tls_endpoint().await;
    assert!(adx.emulator.url().starts_with("https://127.0.0.1:"));
    let runtime = adx_runtime().with_transport(Arc::new(trusting));
    let config = adx.adx_config("t", TABLE, &[("batching.latencySeconds", "0")]);
    let mut sink = runtime
        .open(
            "adx",
            &adx.emulator.url(),
            Arc::new(StaticToken(adx.token.clone())),
            config,
        )
        .await
        .unwrap();
    let messages: Vec<_> = (0..100)
        .map(|n| message(n, "t", &format!("{{\"n\": {n}}}")))
        .collect();
    let outcome = sink.accept(&messages).await.unwrap();
    assert!(outcome.failure.is_none(), "{:?}", outcome.failure);
    assert_eq!(outcome.ingested.len(), 100);
    assert_eq!(adx.emulator.rows("telemetry", "t").len(), 100);
}

#[tokio::test]
async fn an_endpoint_with_an_untrusted_certificate_gets_nothing() {
    let (adx, _) = tls_endpoint().await;
    let runtime = adx_runtime(); // the system's roots only
    let config = adx.adx_config("t", TABLE, &[("batching.latencySeconds", "0")]);
    let mut sink = runtime
        .open(
            "adx",
            &adx.emulator.url(),
            Arc::new(StaticToken(adx.token.clone())),
            config,
        )
        .await
        .unwrap();
    let outcome = sink
        .accept(&[message(1, "t", r#"{"n": 1}"#)])
        .await
        .unwrap();
    let failure = outcome.failure.expect("the handshake fails");
    assert_eq!(
        failure.class,
        ErrorClass::Transient,
        "kept for a retry: {}",
        failure.message
    );
    assert!(outcome.ingested.is_empty());
    assert_eq!(adx.emulator.rows("telemetry", "t").len(), 0);
    let ingests = adx
        .emulator
        .requests()
        .iter()
        .filter(|r| r.path_and_query.starts_with("/v1/rest/ingest"))
        .count();
    assert_eq!(
        ingests, 0,
        "no request (and so no token) went over the untrusted connection"
    );
}

/// The plugin's requests share one kept-alive TLS connection, HTTP/2 as the endpoint offers it:
/// its 20 batches reuse the one the set-up opened, counted by the client and by the endpoint;
/// a client without keep-alive (as the host was before it pooled) pays one handshake per
/// request.
#[tokio::test]
async fn batches_share_one_tls_connection() {
    let (adx, trusting) = tls_endpoint().await;
    for (client, per_request) in [
        (trusting.clone(), false),
        (trusting.without_keep_alive(), true),
    ] {
        let (before, sent_before) = (adx.emulator.connections_accepted(), client.counts());
        let runtime = adx_runtime().with_transport(Arc::new(client.clone()));
        let config = adx.adx_config(
            "t",
            TABLE,
            &[
                ("batching.latencySeconds", "0"),
                ("batching.maxMessages", "10"),
            ],
        );
        let mut sink = runtime
            .open(
                "adx",
                &adx.emulator.url(),
                Arc::new(StaticToken(adx.token.clone())),
                config,
            )
            .await
            .unwrap();
        let messages: Vec<_> = (0..200)
            .map(|n| message(n, "t", &format!("{{\"n\": {n}}}")))
            .collect();
        let outcome = sink.accept(&messages).await.unwrap();
        assert_eq!(outcome.ingested.len(), 200, "{:?}", outcome.failure);
        let counts = client.counts();
        let accepted = adx.emulator.connections_accepted() - before;
        assert_eq!(counts.requests - sent_before.requests, 20, "{counts:?}");
        assert_eq!(
            counts.connections - sent_before.connections,
            accepted,
            "the endpoint's own count"
        );
        match per_request {
            // The connection the set-up commands opened is the one the batches reuse.
            false => assert_eq!(accepted, 0, "{counts:?}"),
            true => assert_eq!(accepted, 20, "{counts:?}"),
        }
        // The endpoint offers HTTP/2 in its TLS handshake, and every connection took it.
        assert_eq!(counts.http2_connections, counts.connections, "{counts:?}");
        assert!(counts.connections >= 1, "{counts:?}");
    }
}
