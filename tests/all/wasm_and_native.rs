//! The plugin component in wasmtime and its core compiled natively give the same bytes and
//! the same verdicts for the same messages. The core's own tests run natively; code that only
//! the wasm build compiles (`core::arch::wasm32`) is checked here, through the real component,
//! against the native core as the reference. The benchmark's wasm/native figures rely on
//! the two doing the same work.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use adx_destination::destination::{Destination, Platform, TransportError};
use adx_destination::kusto::{HttpRequest, HttpResponse};
use adx_destination::message::Message as CoreMessage;
use bytes::Bytes;
use dataflow_runtime::http_client::{AnswerFuture, HttpAnswer, Transport};
use dataflow_runtime::identity::StaticToken;
use dataflow_runtime::plugin::{Message, RejectionKind};
use end_to_end_tests::adx_runtime;

/// Keeps every request body it is sent and answers 200.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Vec<u8>>>>);

impl Transport for Recorder {
    fn exchange(&self, request: hyper::Request<Bytes>, _limit: Duration) -> AnswerFuture<'_> {
        self.0.lock().unwrap().push(request.into_body().to_vec());
        Box::pin(async {
            Ok(HttpAnswer {
                status: 200,
                headers: hyper::HeaderMap::new(),
                body: Bytes::new(),
            })
        })
    }
}

impl Platform for Recorder {
    fn send(&mut self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        self.0.lock().unwrap().push(request.body);
        Ok(HttpResponse {
            status: 200,
            ..Default::default()
        })
    }
    fn now_nanos(&self) -> u64 {
        0
    }
    fn request_id(&mut self) -> String {
        "r".into()
    }
}

struct Xorshift(u64);

impl Xorshift {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }

    fn pick<'a>(&mut self, choices: &[&'a str]) -> &'a str {
        choices[self.below(choices.len() as u64) as usize]
    }
}

/// A JSON string's content of any length: plain ASCII, escapes, multi-byte characters, and
/// now and then what JSON refuses in a string (a raw control character, an unknown escape).
fn string_content(random: &mut Xorshift) -> String {
    let len = random.below(40);
    (0..len)
        .map(|_| match random.below(30) {
            0 => random.pick(&["\\\"", "\\\\", "\\n", "\\/", "\\u00e9", "\\t"]),
            1 => random.pick(&["é", "温", "🌡"]),
            2 if random.below(8) == 0 => random.pick(&["\u{1}", "\n", "\u{1f}"]),
            // Escapes JSON does not have.
            3 if random.below(8) == 0 => random.pick(&["\\x", "\\'", "\\u12", "\\"]),
            _ => random.pick(&["a", "B", "7", " ", "-", ":", "~"]),
        })
        .collect()
}

fn payload(random: &mut Xorshift) -> Vec<u8> {
    let text = format!(
        r#"{{"s":"{}","pad":"{}","r":{}.{},"n":{},"d":"2026-12-03T10:20:{:02}.{}Z","j":{{"k":["{}",1]}},"b":{}}}"#,
        string_content(random),
        "x".repeat(random.below(20) as usize),
        random.below(1000),
        random.below(100),
        random.below(1 << 40),
        random.below(60),
        random.below(10_000_000),
        string_content(random),
        random.pick(&["true", "false"]),
    );
    let mut bytes = text.into_bytes();
    match random.below(25) {
        // Bytes that are not UTF-8, anywhere.
        0 => {
            let at = random.below(bytes.len() as u64) as usize;
            bytes[at] = random.pick(&["\u{80}", "\u{ff}"]).as_bytes()[1];
        }
        // A payload cut short: not JSON.
        1 => bytes.truncate(random.below(bytes.len() as u64) as usize),
        _ => {}
    }
    bytes
}

fn kind_name(kind: RejectionKind) -> &'static str {
    match kind {
        RejectionKind::Conversion => "Conversion",
        RejectionKind::Payload => "Payload",
        RejectionKind::Size => "Size",
        RejectionKind::RefusedByDestination => "RefusedByDestination",
        RejectionKind::Other => "Other",
    }
}

#[tokio::test]
async fn the_component_and_the_native_core_write_the_same_rows_and_reject_the_same_messages() {
    let mut random = Xorshift(0x2545_f491_4f6c_dd1d);
    let messages: Vec<Message> = (1..=3000)
        .map(|sequence| Message {
            sequence,
            // Topics are written as JSON strings by the plugin: some need escaping.
            topic: format!(
                "factory/line{}/é-{sequence}{}",
                sequence % 3,
                ["", "\\", "\"", "\\n"][sequence as usize % 4]
            ),
            payload: payload(&mut random),
            content_type: Some("application/json".into()),
            user_properties: vec![],
            timestamp_nanos: sequence * 1000,
        })
        .collect();
    for format in ["multijson", "csv"] {
        let config: Vec<(String, String)> = [
            ("host", "http://127.0.0.1:9"),
            ("database", "db"),
            ("schema", ".create table t (s: string, r: real, n: long, d: datetime, j: dynamic, b: bool, topic: string)"),
            ("columns.topic", "$metadata.topic"),
            ("format", format),
            ("compressionLevel", "0"),
            ("batching.maxMessages", "250"),
            ("batching.latencySeconds", "60"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();

        let wasm_bodies = Recorder::default();
        let runtime = adx_runtime().with_transport(Arc::new(wasm_bodies.clone()));
        let mut sink = runtime
            .open(
                "adx",
                "http://127.0.0.1:9",
                Arc::new(StaticToken("t".into())),
                config.clone(),
            )
            .await
            .unwrap();
        let native_bodies = Recorder::default();
        let mut native = Destination::open(&config, native_bodies.clone()).unwrap();

        let (mut wasm_ingested, mut native_ingested) = (Vec::new(), Vec::new());
        let (mut wasm_rejected, mut native_rejected) = (Vec::new(), Vec::new());
        for chunk in messages.chunks(300) {
            let outcome = sink.accept(chunk).await.unwrap();
            assert!(outcome.failure.is_none(), "{:?}", outcome.failure);
            wasm_ingested.extend(outcome.ingested);
            wasm_rejected.extend(
                outcome
                    .rejected
                    .into_iter()
                    .map(|r| (r.sequence, kind_name(r.kind), r.reason)),
            );
            let core: Vec<CoreMessage> = chunk
                .iter()
                .map(|m| CoreMessage {
                    sequence: m.sequence,
                    topic: m.topic.clone(),
                    payload: m.payload.clone(),
                    content_type: m.content_type.clone(),
                    user_properties: m.user_properties.clone(),
                    timestamp_nanos: m.timestamp_nanos,
                })
                .collect();
            let outcome = native.accept(core);
            native_ingested.extend(outcome.ingested);
            native_rejected.extend(
                outcome
                    .rejected
                    .into_iter()
                    .map(|r| (r.sequence, format!("{:?}", r.kind), r.reason)),
            );
        }
        let outcome = sink.flush().await.unwrap();
        wasm_ingested.extend(outcome.ingested);
        native_ingested.extend(native.flush().ingested);

        let native_rejected: Vec<(u64, &str, String)> = native_rejected
            .iter()
            .map(|(s, k, r)| (*s, k.as_str(), r.clone()))
            .collect();
        let differ = |what: &str, wasm: String, native: String| {
            panic!("{format}: {what} differ, first in wasm: {wasm}, natively: {native}")
        };
        if let Some((w, n)) = wasm_ingested
            .iter()
            .zip(&native_ingested)
            .find(|(w, n)| w != n)
        {
            differ("the rows ingested", w.to_string(), n.to_string());
        }
        if let Some((w, n)) = wasm_rejected
            .iter()
            .zip(&native_rejected)
            .find(|(w, n)| w != n)
        {
            differ("the rejections", format!("{w:?}"), format!("{n:?}"));
        }
        assert_eq!(wasm_ingested.len(), native_ingested.len(), "{format}");
        assert_eq!(wasm_rejected.len(), native_rejected.len(), "{format}");
        // Both kinds of message are in the mix, and most are rows.
        assert!(wasm_rejected.len() > 100, "{}", wasm_rejected.len());
        assert!(wasm_ingested.len() > 1500, "{}", wasm_ingested.len());
        assert_eq!(wasm_ingested.len() + wasm_rejected.len(), messages.len());
        let (wasm_bodies, native_bodies) = (
            wasm_bodies.0.lock().unwrap(),
            native_bodies.0.lock().unwrap(),
        );
        assert!(wasm_bodies.len() >= 5, "{} requests", wasm_bodies.len());
        assert!(
            *wasm_bodies == *native_bodies,
            "{format}: the request bodies differ"
        );
    }
}
