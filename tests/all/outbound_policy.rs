//! The host's outbound policy as a plugin experiences it.

use std::sync::Arc;

use dataflow_runtime::identity::StaticToken;
use dataflow_runtime::plugin::{ErrorClass, Limits, PluginRuntime};
use end_to_end_tests::{adx_runtime, http_probe_wasm, message, LocalAdx};

#[tokio::test]
async fn a_request_to_another_host_is_denied_and_never_sent() {
    let table = ".create table t (n: long)";
    let adx = LocalAdx::start(table, true).await;
    let runtime = adx_runtime();
    // The plugin is configured for this endpoint, but the host's endpoint is elsewhere.
    let other = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let allowed = format!("http://{}", other.local_addr().unwrap());
    let mut sink = runtime
        .open(
            "adx",
            &allowed,
            Arc::new(StaticToken(adx.token.clone())),
            adx.adx_config("t", table, &[]),
        )
        .await
        .unwrap();
    sink.accept(&[message(1, "t", r#"{"n": 1}"#)])
        .await
        .unwrap();
    let outcome = sink.flush().await.unwrap();
    let failure = outcome.failure.expect("denied");
    assert_eq!(failure.class, ErrorClass::Permanent);
    assert!(
        failure.message.contains("the host denied the request"),
        "{}",
        failure.message
    );
    assert!(
        adx.emulator.requests().len() == 2,
        "only the two set-up commands reached the endpoint"
    );
}

#[tokio::test]
async fn a_plugin_cannot_set_authorization_and_the_host_token_is_injected() {
    let adx = LocalAdx::start(".create table t (n: long)", true).await;
    let runtime = PluginRuntime::new(&http_probe_wasm(), Limits::default()).unwrap();
    let url = format!("{}/v1/rest/query", adx.emulator.url());
    let mut sink = runtime
        .open(
            "probe",
            &adx.emulator.url(),
            Arc::new(StaticToken(adx.token.clone())),
            vec![("url".into(), url)],
        )
        .await
        .unwrap();
    let mut attempt = message(1, "t", r#"{"db": "telemetry", "csl": "t | count"}"#);
    attempt.user_properties = vec![("authorization".into(), "Bearer stolen-or-forged".into())];
    let outcome = sink.accept(&[attempt]).await.unwrap();
    assert!(outcome.failure.is_none(), "{:?}", outcome.failure);
    assert_eq!(outcome.ingested, vec![1]);

    let seen = adx.emulator.requests();
    let probe_request = seen.last().unwrap();
    assert_eq!(probe_request.path_and_query, "/v1/rest/query");
    assert_eq!(
        probe_request.authorization.as_deref(),
        Some("Bearer test-token-123")
    );
    assert!(seen
        .iter()
        .all(|r| r.authorization.as_deref() != Some("Bearer stolen-or-forged")));
    let logs = sink.logs();
    assert!(
        logs.iter()
            .any(|l| l.message.starts_with("response header")),
        "{logs:?}"
    );
    assert!(
        logs.iter().all(|l| !l.message.contains(&adx.token)),
        "the plugin saw the host's token: {logs:?}"
    );
    assert!(
        logs.iter().any(|l| l
            .message
            .contains("header refused by the host: authorization")),
        "{logs:?}"
    );
}

#[tokio::test]
async fn the_probe_is_denied_other_hosts_too() {
    let adx = LocalAdx::start(".create table t (n: long)", true).await;
    let runtime = PluginRuntime::new(&http_probe_wasm(), Limits::default()).unwrap();
    let elsewhere = "http://127.0.0.2:9/anything".to_string();
    let mut sink = runtime
        .open(
            "probe",
            &adx.emulator.url(),
            Arc::new(StaticToken(adx.token.clone())),
            vec![("url".into(), elsewhere)],
        )
        .await
        .unwrap();
    let outcome = sink.accept(&[message(1, "t", "{}")]).await.unwrap();
    let failure = outcome.failure.expect("denied");
    assert!(
        failure.message.contains("HttpRequestDenied"),
        "{}",
        failure.message
    );
}

#[tokio::test]
async fn a_request_body_past_the_hosts_bound_is_refused_and_never_sent() {
    let adx = LocalAdx::start(".create table t (n: long)", true).await;
    let runtime = PluginRuntime::new(&http_probe_wasm(), Limits::default()).unwrap();
    let url = format!("{}/v1/rest/query", adx.emulator.url());
    let mut sink = runtime
        .open(
            "probe",
            &adx.emulator.url(),
            Arc::new(StaticToken(adx.token.clone())),
            vec![("url".into(), url)],
        )
        .await
        .unwrap();
    let before = adx.emulator.requests().len();
    let limit = dataflow_runtime::outbound::MAX_REQUEST_BODY_BYTES;
    let mut oversize = message(1, "t", "");
    oversize.payload = vec![b' '; limit + 1];
    let outcome = sink.accept(&[oversize]).await.unwrap();
    let failure = outcome.failure.expect("refused");
    assert!(
        failure
            .message
            .contains(&format!("HttpRequestBodySize(Some({limit}))")),
        "{}",
        failure.message
    );
    assert_eq!(adx.emulator.requests().len(), before, "nothing was sent");
    // A body at the bound goes through.
    let mut at_limit = message(2, "t", "");
    at_limit.payload = vec![b' '; limit];
    let outcome = sink.accept(&[at_limit]).await.unwrap();
    assert_eq!(adx.emulator.requests().len(), before + 1);
    assert!(
        outcome
            .failure
            .is_none_or(|f| !f.message.contains("BodySize")),
        "the bound is inclusive"
    );
}
