//! Messages through the real ADX plugin into the local endpoint.

use std::time::{Duration, Instant};

use dataflow_runtime::pipeline::{self, PipelineOptions};
use dataflow_runtime::plugin::{ErrorClass, Limits, PluginRuntime, RejectionKind};
use dataflow_runtime::sources::{self, SourceMessage};
use end_to_end_tests::{adx_runtime, message, LocalAdx};
use serde_json::{json, Value};

const ALL_TYPES: &str = ".create table readings (Device: string, Temperature: real, Count: int, Total: long, Ok: bool, At: datetime, Extra: dynamic, Id: guid, Took: timespan, Price: decimal, MqttTopic: string)";

fn reading(i: u64) -> String {
    json!({
        "Device": format!("dev-{i}"),
        "Temperature": 20.5 + i as f64,
        "Count": i,
        "Total": 9_007_199_254_740_993u64 + i, // beyond f64's exact integers
        "Ok": i.is_multiple_of(2),
        "At": format!("2026-11-28T10:00:{:02}.1234567+01:00", i % 60),
        "Extra": {"tags": ["a", i]},
        "Id": "0F8FAD5B-D9CB-469F-A165-70867728950E",
        "Took": "00:00:01.5",
        "Price": "12345678901234567890.12",
    })
    .to_string()
}

#[tokio::test]
async fn every_message_becomes_a_row_with_kusto_typed_values() {
    let adx = LocalAdx::start(ALL_TYPES, true).await;
    let runtime = adx_runtime();
    let config = adx.adx_config(
        "readings",
        ALL_TYPES,
        &[
            ("batching.maxMessages", "250"),
            ("columns.MqttTopic", "$metadata.topic"),
        ],
    );
    let mut sink = adx.open(&runtime, config).await;
    let messages: Vec<_> = (0..1000)
        .map(|i| message(i, &format!("site/{i}"), &reading(i)))
        .collect();
    let mut ingested = Vec::new();
    for chunk in messages.chunks(100) {
        let outcome = sink.accept(chunk).await.unwrap();
        assert!(
            outcome.failure.is_none() && outcome.rejected.is_empty(),
            "{outcome:?}"
        );
        ingested.extend(outcome.ingested);
    }
    assert_eq!(
        ingested,
        (0..1000).collect::<Vec<_>>(),
        "acknowledged as each batch of 250 was sent"
    );
    assert_eq!(adx.ingest_statuses(), vec![200; 4]);

    let rows = adx.emulator.rows(end_to_end_tests::DATABASE, "readings");
    assert_eq!(rows.len(), 1000);
    let row = &rows[7];
    assert_eq!(row[0], json!("dev-7"));
    assert_eq!(row[1], json!(27.5));
    assert_eq!(row[2], json!(7));
    assert_eq!(row[3], json!(9_007_199_254_741_000u64), "long kept exactly");
    assert_eq!(row[4], json!(false));
    assert_eq!(
        row[5],
        json!("2026-11-28T09:00:07.1234567Z"),
        "converted to UTC, 100 ns kept"
    );
    assert_eq!(row[6], json!({"tags": ["a", 7]}));
    assert_eq!(row[7], json!("0f8fad5b-d9cb-469f-a165-70867728950e"));
    assert_eq!(row[8], json!("00:00:01.5"));
    assert_eq!(
        row[9],
        json!("12345678901234567890.12"),
        "decimal digits all kept"
    );
    assert_eq!(row[10], json!("site/7"));

    let stats = sink.statistics().await.unwrap();
    assert_eq!((stats.messages_ingested, stats.requests), (1000, 4));
    assert!(
        stats.bytes_sent < stats.bytes_encoded / 3,
        "gzip: {stats:?}"
    );
}

#[tokio::test]
async fn malformed_messages_are_rejected_with_reasons_and_the_rest_land() {
    let adx = LocalAdx::start(ALL_TYPES, true).await;
    let runtime = adx_runtime();
    let mut sink = adx
        .open(&runtime, adx.adx_config("readings", ALL_TYPES, &[]))
        .await;
    let mut messages: Vec<_> = (0..10).map(|i| message(i, "t", &reading(i))).collect();
    messages[3].payload = b"{\"Device\": \"dev-3\", ".to_vec();
    messages[5].payload = br#"{"Device": "dev-5", "Temperature": "hot"}"#.to_vec();
    messages[7].payload = br#"{"Device": "dev-7", "At": "yesterday"}"#.to_vec();
    messages[8].payload = br#"{"Device": "dev-8", "Count": 3000000000}"#.to_vec();

    let mut outcome = sink.accept(&messages).await.unwrap();
    let flushed = sink.flush().await.unwrap();
    outcome.ingested.extend(flushed.ingested);
    assert_eq!(outcome.ingested, vec![0, 1, 2, 4, 6, 9]);
    let reasons: Vec<(u64, &str)> = outcome
        .rejected
        .iter()
        .map(|r| (r.sequence, r.reason.as_str()))
        .collect();
    assert_eq!(reasons.len(), 4, "{reasons:?}");
    assert!(
        reasons[0].1.starts_with("payload is not JSON"),
        "{reasons:?}"
    );
    assert_eq!(
        reasons[1],
        (
            5,
            "column `Temperature` (real): string \"hot\" is not a number"
        )
    );
    assert_eq!(
        reasons[2],
        (
            7,
            "column `At` (datetime): string \"yesterday\" is not an ISO 8601 or RFC 1123 datetime"
        )
    );
    assert_eq!(
        reasons[3],
        (
            8,
            "column `Count` (int): number 3000000000 is outside the int range"
        )
    );
    // Contract 1.2: each rejection says its kind, so nobody has to read the wording.
    let kinds: Vec<RejectionKind> = outcome.rejected.iter().map(|r| r.kind).collect();
    assert_eq!(
        kinds,
        [
            RejectionKind::Payload,
            RejectionKind::Conversion,
            RejectionKind::Conversion,
            RejectionKind::Conversion
        ]
    );

    let devices: Vec<Value> = adx
        .emulator
        .rows(end_to_end_tests::DATABASE, "readings")
        .iter()
        .map(|r| r[0].clone())
        .collect();
    assert_eq!(
        devices,
        vec![
            json!("dev-0"),
            json!("dev-1"),
            json!("dev-2"),
            json!("dev-4"),
            json!("dev-6"),
            json!("dev-9")
        ]
    );
}

#[tokio::test]
async fn a_batch_waiting_for_its_latency_is_sent_without_more_messages() {
    let table = ".create table t (n: long)";
    let adx = LocalAdx::start(table, true).await;
    let runtime = adx_runtime();
    let config = adx.adx_config(
        "t",
        table,
        &[
            ("batching.latencySeconds", "1"),
            ("batching.maxMessages", "1000"),
        ],
    );
    let sink = adx.open(&runtime, config).await;

    let (sender, receiver) = sources::channel();
    for n in 0..3 {
        let payload = format!("{{\"n\": {n}}}").into_bytes();
        sender
            .send(SourceMessage {
                payload,
                origin: format!("m{n}").into(),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    let started = Instant::now();
    let pipeline = tokio::spawn(async move {
        pipeline::run(sink, receiver, &PipelineOptions::default())
            .await
            .unwrap()
    });
    // The source stays open: only the latency bound can send these three.
    while adx.emulator.rows(end_to_end_tests::DATABASE, "t").len() < 3 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the latency flush never came"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "sent after {waited:?}, before the latency bound"
    );
    assert_eq!(adx.ingest_statuses(), vec![200]);
    drop(sender);
    let report = pipeline.await.unwrap();
    assert!(report.all_accounted_for(), "{report:?}");
    assert_eq!(report.ingested, 3);
}

#[tokio::test]
async fn a_batch_larger_than_four_megabytes_is_split_into_requests_within_the_limit() {
    let table = ".create table t (n: long, text: string)";
    let adx = LocalAdx::start(table, true).await;
    let runtime = adx_runtime();
    let mut sink = adx.open(&runtime, adx.adx_config("t", table, &[])).await;
    let filler = "x".repeat(1000);
    let messages: Vec<_> = (0..10_000)
        .map(|n| message(n, "t", &format!(r#"{{"n": {n}, "text": "{filler}"}}"#)))
        .collect();
    // Each whole request's worth (4 MB) is sent as soon as it waits; the rest at the flush.
    let accepted = sink.accept(&messages).await.unwrap();
    let sent_early = accepted.ingested.len();
    assert!(
        (8000..10_000).contains(&sent_early),
        "{sent_early} sent early; {:?}",
        accepted.failure
    );
    assert_eq!(adx.ingest_statuses(), vec![200, 200]);
    let outcome = sink.flush().await.unwrap();
    assert!(outcome.failure.is_none(), "{:?}", outcome.failure);
    assert_eq!(sent_early + outcome.ingested.len(), 10_000);
    // The endpoint refuses (413) any request whose data exceeds 4 MB; ~10 MB took three.
    assert_eq!(adx.ingest_statuses(), vec![200, 200, 200]);
    assert_eq!(
        adx.emulator.rows(end_to_end_tests::DATABASE, "t").len(),
        10_000
    );
}

#[tokio::test]
async fn streaming_policy_off_is_a_permanent_error_that_names_the_fix_and_keeps_the_messages() {
    let table = ".create table t (n: long)";
    let adx = LocalAdx::start(table, false).await;
    let runtime = adx_runtime();
    let mut sink = adx.open(&runtime, adx.adx_config("t", table, &[])).await;
    let messages: Vec<_> = (0..5)
        .map(|n| message(n, "t", &format!("{{\"n\": {n}}}")))
        .collect();
    sink.accept(&messages).await.unwrap();
    let outcome = sink.flush().await.unwrap();
    assert!(outcome.ingested.is_empty() && outcome.rejected.is_empty());
    let failure = outcome.failure.expect("a failure");
    assert_eq!(failure.class, ErrorClass::Permanent);
    assert!(
        failure
            .message
            .contains("BadRequest_StreamingIngestionPolicyNotEnabled"),
        "{}",
        failure.message
    );
    assert!(
        failure
            .message
            .contains(".alter database ['telemetry'] policy streamingingestion enable"),
        "{}",
        failure.message
    );

    // Nothing was dropped: once the policy is on, the same messages go through.
    adx.client
        .management(
            "telemetry",
            ".alter database ['telemetry'] policy streamingingestion enable",
        )
        .await
        .unwrap();
    let retried = sink.flush().await.unwrap();
    assert_eq!(retried.ingested, vec![0, 1, 2, 3, 4]);
    assert_eq!(adx.emulator.rows("telemetry", "t").len(), 5);
}

#[tokio::test]
async fn configuration_errors_name_the_field() {
    let table = ".create table t (n: long)";
    let adx = LocalAdx::start(table, true).await;
    let runtime = adx_runtime();
    let config = adx.adx_config("t", table, &[("batching.latencySeconds", "70000")]);
    let error = runtime
        .open(
            "adx",
            &adx.emulator.url(),
            std::sync::Arc::new(dataflow_runtime::identity::StaticToken("t".into())),
            config,
        )
        .await
        .err()
        .expect("open fails");
    let text = error.to_string();
    assert!(
        text.contains("configuration error: batching.latencySeconds: 70000 is outside 0..65535"),
        "{text}"
    );
}

/// The same rejections from the ADX plugin built for each contract version: the host calls
/// each through the bindings of its version, and the same messages land; only 1.2 says the
/// kind, older plugins' rejections are of kind `other`.
#[tokio::test]
async fn every_contract_version_rejects_the_same_messages_and_only_1_2_says_why() {
    let bundled = dataflow_host::bundled::ADX_DESTINATION.to_vec();
    let versions = [
        (
            "1.2",
            bundled,
            [RejectionKind::Payload, RejectionKind::Conversion],
        ),
        (
            "1.1",
            end_to_end_tests::adx_destination_1_1_wasm(),
            [RejectionKind::Other; 2],
        ),
        (
            "1.0",
            end_to_end_tests::adx_destination_1_0_wasm(),
            [RejectionKind::Other; 2],
        ),
    ];
    for (version, wasm, kinds) in versions {
        let adx = LocalAdx::start(ALL_TYPES, true).await;
        let runtime = PluginRuntime::new(&wasm, Limits::default()).unwrap();
        assert_eq!(runtime.bindings().to_string(), format!("{version}.0"));
        let mut sink = adx
            .open(&runtime, adx.adx_config("readings", ALL_TYPES, &[]))
            .await;
        let mut messages: Vec<_> = (0..4).map(|i| message(i, "t", &reading(i))).collect();
        messages[1].payload = b"{\"Device\": ".to_vec();
        messages[2].payload = br#"{"Device": "dev-2", "Temperature": "hot"}"#.to_vec();
        let mut outcome = sink.accept(&messages).await.unwrap();
        outcome
            .ingested
            .extend(sink.flush().await.unwrap().ingested);
        assert_eq!(outcome.ingested, vec![0, 3], "{version}");
        let rejected: Vec<(u64, RejectionKind)> = outcome
            .rejected
            .iter()
            .map(|r| (r.sequence, r.kind))
            .collect();
        assert_eq!(rejected, [(1, kinds[0]), (2, kinds[1])], "{version}");
        assert_eq!(
            adx.emulator
                .rows(end_to_end_tests::DATABASE, "readings")
                .len(),
            2,
            "{version}"
        );
    }
}
