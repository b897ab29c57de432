//! Tokens from (loopback doubles of) the Azure identity services, injected by the host.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use dataflow_runtime::config::Authentication;
use dataflow_runtime::identity::{self, IdentityEndpoints};
use dataflow_runtime::pipeline::{self, PipelineOptions, RetryPolicy};
use dataflow_runtime::plugin::{Limits, PluginRuntime, PluginSink};
use dataflow_runtime::sources::{self, SourceMessage};
use end_to_end_tests::identity_services::IdentityService;
use end_to_end_tests::{adx_runtime, http_probe_wasm, message, LocalAdx};
use local_adx::EmulatorOptions;

const TABLE: &str = ".create table t (n: long)";
const ADMIN: &str = "admin-token";

/// A local endpoint that accepts the identity service's valid tokens (and the admin token
/// the set-up commands use).
async fn endpoint_trusting(service: &IdentityService) -> LocalAdx {
    let issued = service.token_check();
    let mut options = EmulatorOptions::loopback(ADMIN);
    options.token_check = Some(Arc::new(move |token: &str| token == ADMIN || issued(token)));
    LocalAdx::start_with(
        TABLE,
        true,
        options,
        dataflow_runtime::http_client::HttpClient::system(),
    )
    .await
}

fn endpoints(service: &IdentityService, federated_token_file: Option<String>) -> IdentityEndpoints {
    IdentityEndpoints {
        imds: service.url.clone(),
        authority_host: service.url.clone(),
        federated_token_file,
    }
}

/// The ADX plugin against `adx`, authenticated by a system-assigned identity from `service`,
/// sending at the end of every call.
async fn open_with_imds(
    runtime: &PluginRuntime,
    service: &IdentityService,
    adx: &LocalAdx,
) -> PluginSink {
    let auth = Authentication::SystemAssignedManagedIdentity {
        audience: "https://api.kusto.windows.net".into(),
    };
    let tokens = identity::provider_for(&auth, &endpoints(service, None)).unwrap();
    let config = adx.adx_config("t", TABLE, &[("batching.latencySeconds", "0")]);
    runtime
        .open("adx", &adx.emulator.url(), tokens, config)
        .await
        .unwrap()
}

/// Sends `count` messages at about `per_second`, then closes the source.
fn paced_source(count: u64, per_second: u64) -> sources::SourceReceiver {
    let (sender, receiver) = sources::channel();
    tokio::spawn(async move {
        let pause = Duration::from_micros(1_000_000 * 50 / per_second);
        for n in 0..count {
            let payload = format!("{{\"n\": {n}}}").into_bytes();
            if sender
                .send(SourceMessage {
                    payload,
                    origin: format!("m{n}").into(),
                    ..Default::default()
                })
                .await
                .is_err()
            {
                return;
            }
            if n % 50 == 49 {
                tokio::time::sleep(pause).await;
            }
        }
    });
    receiver
}

#[tokio::test]
async fn system_assigned_identity_asks_imds_as_documented_and_the_endpoint_gets_its_token() {
    let service = IdentityService::start(Duration::from_secs(3600)).await;
    let adx = endpoint_trusting(&service).await;
    let auth = Authentication::SystemAssignedManagedIdentity {
        audience: "https://api.kusto.windows.net".into(),
    };
    let tokens = identity::provider_for(&auth, &endpoints(&service, None)).unwrap();
    let runtime = adx_runtime();
    let mut sink = runtime
        .open(
            "adx",
            &adx.emulator.url(),
            tokens,
            adx.adx_config("t", TABLE, &[]),
        )
        .await
        .unwrap();
    sink.accept(&[message(1, "t", r#"{"n": 1}"#)])
        .await
        .unwrap();
    assert_eq!(sink.flush().await.unwrap().ingested, vec![1]);

    let seen = service.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "GET");
    assert_eq!(
        seen[0].path_and_query,
        "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fapi.kusto.windows.net"
    );
    assert_eq!(seen[0].metadata_header.as_deref(), Some("true"));
    let ingest = adx
        .emulator
        .requests()
        .into_iter()
        .find(|r| r.path_and_query.starts_with("/v1/rest/ingest"))
        .unwrap();
    assert_eq!(
        ingest.authorization.as_deref(),
        Some(format!("Bearer issued-1-{}", std::process::id()).as_str())
    );
}

#[tokio::test]
async fn a_refused_token_is_replaced_and_the_request_sent_again_once() {
    let service = IdentityService::start(Duration::from_secs(3600)).await;
    let adx = endpoint_trusting(&service).await;
    let runtime = adx_runtime();
    let mut sink = open_with_imds(&runtime, &service, &adx).await;
    assert_eq!(
        sink.accept(&[message(1, "t", r#"{"n": 1}"#)])
            .await
            .unwrap()
            .ingested,
        vec![1]
    );
    service.revoke_all();
    let outcome = sink
        .accept(&[message(2, "t", r#"{"n": 2}"#)])
        .await
        .unwrap();
    assert_eq!(outcome.ingested, vec![2], "{:?}", outcome.failure);
    let statuses: Vec<u16> = adx.ingest_statuses();
    assert_eq!(statuses, vec![200, 401, 200]);
    assert_eq!(service.requests().len(), 2);
}

#[tokio::test]
async fn user_assigned_identity_without_workload_identity_names_its_client_id_to_imds() {
    let service = IdentityService::start(Duration::from_secs(3600)).await;
    let auth = Authentication::UserAssignedManagedIdentity {
        client_id: "11111111-2222-3333-4444-555555555555".into(),
        tenant_id: "tenant-1".into(),
        scope: "https://api.kusto.windows.net/.default".into(),
    };
    let tokens = identity::provider_for(&auth, &endpoints(&service, None)).unwrap();
    tokens.token().await.unwrap();
    assert_eq!(
        service.requests()[0].path_and_query,
        "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fapi.kusto.windows.net&client_id=11111111-2222-3333-4444-555555555555"
    );
}

#[tokio::test]
async fn workload_identity_exchanges_the_current_federated_token_each_time() {
    let service = IdentityService::start(Duration::from_secs(2)).await;
    let dir = std::env::temp_dir().join(format!("workload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("token");
    std::fs::write(&file, "federated-jwt-1\n").unwrap();
    let auth = Authentication::UserAssignedManagedIdentity {
        client_id: "client-9".into(),
        tenant_id: "tenant-1".into(),
        scope: "https://api.kusto.windows.net/.default".into(),
    };
    let tokens = identity::provider_for(
        &auth,
        &endpoints(&service, Some(file.display().to_string())),
    )
    .unwrap();
    let first = tokens.token().await.unwrap();
    std::fs::write(&file, "federated-jwt-2\n").unwrap(); // rotated by the cluster
    tokio::time::sleep(Duration::from_millis(1100)).await; // past half the lifetime
    let second = tokens.token().await.unwrap();
    assert_ne!(first, second);

    let seen = service.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path_and_query.as_str()),
        ("POST", "/tenant-1/oauth2/v2.0/token")
    );
    assert_eq!(
        seen[0].content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        seen[0].body,
        "grant_type=client_credentials&client_id=client-9&scope=https%3A%2F%2Fapi.kusto.windows.net%2F.default&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=federated-jwt-1"
    );
    assert!(
        seen[1].body.ends_with("client_assertion=federated-jwt-2"),
        "{}",
        seen[1].body
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn short_lived_tokens_rotate_without_a_single_refused_request() {
    let service = IdentityService::start(Duration::from_secs(2)).await;
    let adx = endpoint_trusting(&service).await;
    let runtime = adx_runtime();
    let sink = open_with_imds(&runtime, &service, &adx).await;
    let options = PipelineOptions {
        feed_chunk: 50,
        ..PipelineOptions::default()
    };
    // 3000 messages over about 5 s: two and a half token lifetimes.
    let report = pipeline::run(sink, paced_source(3000, 600), &options)
        .await
        .unwrap();
    assert!(report.all_accounted_for(), "{report:?}");
    assert_eq!(adx.emulator.rows("telemetry", "t").len(), 3000);

    let ingests: Vec<_> = adx
        .emulator
        .requests()
        .into_iter()
        .filter(|r| r.path_and_query.starts_with("/v1/rest/ingest"))
        .collect();
    assert!(
        ingests.iter().all(|r| r.status == 200),
        "an ingest request was refused"
    );
    let distinct: BTreeSet<_> = ingests
        .iter()
        .filter_map(|r| r.authorization.clone())
        .collect();
    let calls = service.requests().len();
    assert!(distinct.len() >= 3, "tokens seen: {distinct:?}");
    assert!(
        calls <= 8 && calls * 10 < ingests.len(),
        "{calls} identity calls for {} requests",
        ingests.len()
    );
}

#[tokio::test]
async fn an_identity_outage_loses_nothing() {
    let service = Arc::new(IdentityService::start(Duration::from_secs(3600)).await);
    let adx = endpoint_trusting(&service).await;
    service.set_down(true);
    let runtime = adx_runtime();
    let sink = open_with_imds(&runtime, &service, &adx).await;
    let options = PipelineOptions {
        retry: RetryPolicy {
            initial: Duration::from_millis(200),
            max: Duration::from_millis(400),
            max_attempts: None,
        },
        ..PipelineOptions::default()
    };
    let recovering = service.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        recovering.set_down(false);
    });
    let report = pipeline::run(sink, paced_source(500, 1000), &options)
        .await
        .unwrap();
    assert!(report.all_accounted_for(), "{report:?}");
    assert_eq!(adx.emulator.rows("telemetry", "t").len(), 500);
    assert!(
        service.requests().len() >= 3,
        "the identity service was asked {} times",
        service.requests().len()
    );
    assert!(report.statistics.unwrap().failed_requests >= 1);
}

#[tokio::test]
async fn a_plugin_cannot_reach_the_identity_service() {
    let service = IdentityService::start(Duration::from_secs(3600)).await;
    let adx = LocalAdx::start(TABLE, true).await;
    let runtime = PluginRuntime::new(&http_probe_wasm(), Limits::default()).unwrap();
    let imds = format!(
        "{}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=x",
        service.url
    );
    let tokens = Arc::new(dataflow_runtime::identity::StaticToken(adx.token.clone()));
    let mut sink = runtime
        .open(
            "probe",
            &adx.emulator.url(),
            tokens,
            vec![("url".into(), imds)],
        )
        .await
        .unwrap();
    let mut attempt = message(1, "t", "");
    attempt.user_properties = vec![("metadata".into(), "true".into())];
    let outcome = sink.accept(&[attempt]).await.unwrap();
    assert!(outcome
        .failure
        .expect("denied")
        .message
        .contains("HttpRequestDenied"));
    assert!(
        service.requests().is_empty(),
        "the identity service was reached"
    );
}
