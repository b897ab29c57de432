//! The destination: converts messages into rows as they arrive, buffers them, and sends them
//! when the batch is full or old enough. Transport-agnostic: the WASI shell supplies a
//! `Platform` that speaks HTTP; tests and benchmarks supply their own.

use crate::batch::Batch;
use crate::config::DestinationConfig;
use crate::convert::RowConverter;
use crate::encode::RowEncoder;
use crate::kusto::{self, HttpRequest, HttpResponse, Refusal};
use dataflow_contract::packed::{self, MessageBatch};

use crate::message::{
    DestinationError, Message, MessageRef, Outcome, Properties, Rejection, RejectionKind,
    Statistics,
};

/// A failure below HTTP: no answer was received.
#[derive(Debug, Clone)]
pub struct TransportError {
    pub message: String,
    /// The host refused to send it (for example a host other than the endpoint's):
    /// retrying cannot help.
    pub denied: bool,
}

pub trait Platform {
    fn send(&mut self, request: HttpRequest) -> Result<HttpResponse, TransportError>;
    /// Monotonic clock, nanoseconds.
    fn now_nanos(&self) -> u64;
    /// A fresh unique id for each request attempt.
    fn request_id(&mut self) -> String;
}

pub struct Destination<P: Platform> {
    config: DestinationConfig,
    converter: RowConverter,
    encoder: RowEncoder,
    url: String,
    batch: Batch,
    platform: P,
    stats: Statistics,
    closed: bool,
}

impl<P: Platform> Destination<P> {
    pub fn open(pairs: &[(String, String)], platform: P) -> Result<Self, DestinationError> {
        let config = DestinationConfig::from_pairs(pairs)?;
        let converter = RowConverter::new(&config).map_err(DestinationError::configuration)?;
        let encoder = RowEncoder::new(config.format, converter.columns());
        Ok(Self {
            url: kusto::ingest_url(&config),
            config,
            converter,
            encoder,
            batch: Batch::default(),
            platform,
            stats: Statistics::default(),
            closed: false,
        })
    }

    pub fn config(&self) -> &DestinationConfig {
        &self.config
    }

    pub fn statistics(&self) -> Statistics {
        self.stats
    }

    pub fn buffered(&self) -> usize {
        self.batch.len()
    }

    pub fn accept(&mut self, messages: Vec<Message>) -> Outcome {
        let views: Vec<MessageRef<'_>> = messages.iter().map(Message::view).collect();
        self.accept_views(&views)
    }

    /// `accept` for a packed batch; a malformed entry rejects its own message.
    pub fn accept_packed(&mut self, batch: &MessageBatch) -> Outcome {
        batch.with_views(|views, malformed| {
            self.stats.messages_accepted += malformed.len() as u64;
            self.stats.messages_rejected += malformed.len() as u64;
            let views: Vec<MessageRef<'_>> = views
                .iter()
                .map(|v| MessageRef {
                    sequence: v.sequence,
                    topic: v.topic,
                    payload: v.payload,
                    content_type: v.content_type,
                    user_properties: Properties::Borrowed(v.user_properties),
                    timestamp_nanos: v.timestamp_nanos,
                })
                .collect();
            let mut outcome = self.accept_views(&views);
            outcome
                .rejected
                .extend(malformed.iter().map(|&sequence| Rejection {
                    sequence,
                    kind: RejectionKind::Other,
                    reason: packed::MALFORMED.into(),
                }));
            outcome
        })
    }

    pub fn accept_views(&mut self, messages: &[MessageRef<'_>]) -> Outcome {
        let mut outcome = Outcome::default();
        if self.closed {
            outcome.rejected = messages
                .iter()
                .map(|m| Rejection {
                    sequence: m.sequence,
                    kind: RejectionKind::Other,
                    reason: "the destination is closed".into(),
                })
                .collect();
            return outcome;
        }
        let mut cells = Vec::new();
        // Messages of one call arrive together: one clock reading (a host call in wasm) for all.
        let now = self.platform.now_nanos();
        for message in messages {
            self.stats.messages_accepted += 1;
            match self.converter.convert(message, &mut cells) {
                Ok(()) => {
                    self.encoder.encode(&cells, self.batch.buffer());
                    let size = self.batch.pending_len();
                    if size > self.config.max_request_bytes {
                        self.batch.discard();
                        self.stats.messages_rejected += 1;
                        outcome.rejected.push(Rejection {
                            sequence: message.sequence,
                            kind: RejectionKind::Size,
                            reason: format!(
                                "the row is {size} bytes, more than the {} bytes one streaming ingestion request may carry",
                                self.config.max_request_bytes
                            ),
                        });
                    } else {
                        self.batch.commit(message.sequence, now);
                    }
                }
                Err(e) => {
                    self.stats.messages_rejected += 1;
                    outcome.rejected.push(Rejection {
                        sequence: message.sequence,
                        kind: e.kind,
                        reason: e.reason,
                    })
                }
            }
            // After a failure, keep converting without sending: accepted messages stay
            // buffered, not lost, and the next flush sends them; sending again now would
            // only fail again.
            if outcome.failure.is_none() {
                if self.batch.len() as u64 >= self.config.max_messages.max(1) {
                    outcome.absorb(self.send_buffered(false));
                } else if self.batch.data_len() >= self.config.max_request_bytes {
                    // A whole request's worth waits: send it now rather than hold more rows
                    // than one request may carry (memory, and latency for nothing).
                    outcome.absorb(self.send_buffered(true));
                }
            }
        }
        if outcome.failure.is_none() && self.next_flush_due_ms() == Some(0) {
            outcome.absorb(self.send_buffered(false));
        }
        outcome
    }

    /// Milliseconds until the latency bound of the oldest buffered row; none if nothing waits.
    pub fn next_flush_due_ms(&self) -> Option<u64> {
        let oldest = self.batch.oldest_at()?;
        let due = oldest + self.config.latency_seconds * 1_000_000_000;
        let now = self.platform.now_nanos();
        Some(due.saturating_sub(now).div_ceil(1_000_000))
    }

    pub fn flush(&mut self) -> Outcome {
        self.send_buffered(false)
    }

    pub fn close(&mut self) -> Outcome {
        self.closed = true;
        self.send_buffered(false)
    }

    /// Sends every buffered row, at most `max_request_bytes` of data per request (but the
    /// last, partial request when `only_full_requests`). Stops at the first failure; rows
    /// already sent are acknowledged, the rest stay buffered.
    fn send_buffered(&mut self, only_full_requests: bool) -> Outcome {
        let mut outcome = Outcome::default();
        let mut requests = self.batch.requests(self.config.max_request_bytes);
        if only_full_requests && requests.len() > 1 {
            requests.pop();
        }
        let mut sent_rows = 0;
        for rows in requests {
            let data = self.batch.data_of(rows.clone());
            let request = kusto::ingest_request(
                &self.url,
                &data,
                self.config.compression_level,
                &self.platform.request_id(),
            );
            let encoded: usize = data.iter().map(|piece| piece.len()).sum();
            let (encoded, compressed) = (encoded as u64, request.body.len() as u64);
            self.stats.requests += 1;
            let result = match self.platform.send(request) {
                Ok(response) => kusto::classify(&self.config, &response),
                Err(e) if e.denied => {
                    Err(Refusal::Destination(DestinationError::permanent(format!(
                        "the host denied the request to {}: {}",
                        self.config.base_url, e.message
                    ))))
                }
                Err(e) => Err(Refusal::Destination(DestinationError::transient(
                    format!("sending to {} failed: {}", self.config.base_url, e.message),
                    None,
                ))),
            };
            match result {
                Ok(()) => {
                    self.stats.bytes_encoded += encoded;
                    self.stats.bytes_sent += compressed;
                    outcome
                        .ingested
                        .extend(self.batch.sequences_of(rows.clone()));
                    sent_rows = rows.end;
                }
                Err(Refusal::Rows(reason)) => {
                    self.stats.failed_requests += 1;
                    outcome
                        .rejected
                        .extend(
                            self.batch
                                .sequences_of(rows.clone())
                                .map(|sequence| Rejection {
                                    sequence,
                                    kind: RejectionKind::RefusedByDestination,
                                    reason: reason.clone(),
                                }),
                        );
                    sent_rows = rows.end;
                }
                Err(Refusal::Destination(error)) => {
                    self.stats.failed_requests += 1;
                    outcome.failure = Some(error);
                    break;
                }
            }
        }
        self.batch.remove_first(sent_rows);
        self.stats.messages_ingested += outcome.ingested.len() as u64;
        self.stats.messages_rejected += outcome.rejected.len() as u64;
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::ErrorClass;
    use std::cell::Cell as StdCell;
    use std::io::Read;
    use std::rc::Rc;

    /// Records requests and answers each with the next scripted status (200 when the script is out).
    #[derive(Clone, Default)]
    struct Recorder {
        requests: Rc<std::cell::RefCell<Vec<HttpRequest>>>,
        statuses: Rc<std::cell::RefCell<Vec<u16>>>,
        now: Rc<StdCell<u64>>,
        ids: u64,
    }

    impl Recorder {
        fn bodies(&self) -> Vec<String> {
            self.requests
                .borrow()
                .iter()
                .map(|r| {
                    let mut s = String::new();
                    flate2::read::GzDecoder::new(&r.body[..])
                        .read_to_string(&mut s)
                        .unwrap();
                    s
                })
                .collect()
        }
        fn advance_seconds(&self, s: u64) {
            self.now.set(self.now.get() + s * 1_000_000_000);
        }
    }

    impl Platform for Recorder {
        fn send(&mut self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
            self.requests.borrow_mut().push(request);
            let status = if self.statuses.borrow().is_empty() {
                200
            } else {
                self.statuses.borrow_mut().remove(0)
            };
            Ok(HttpResponse {
                status,
                ..Default::default()
            })
        }
        fn now_nanos(&self) -> u64 {
            self.now.get()
        }
        fn request_id(&mut self) -> String {
            self.ids += 1;
            format!("id-{}", self.ids)
        }
    }

    fn open(extra: &[(&str, &str)]) -> (Destination<Recorder>, Recorder) {
        let recorder = Recorder::default();
        let pairs: Vec<(String, String)> = [
            ("host", "c.kusto.windows.net"),
            ("database", "db"),
            ("schema", ".create table t (id: long, name: string)"),
        ]
        .iter()
        .chain(extra)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        (
            Destination::open(&pairs, recorder.clone()).unwrap(),
            recorder,
        )
    }

    fn messages(range: std::ops::Range<u64>) -> Vec<Message> {
        range
            .map(|i| Message {
                sequence: i,
                payload: format!(r#"{{"id": {i}, "name": "n{i}"}}"#).into_bytes(),
                ..Default::default()
            })
            .collect()
    }

    #[test]
    fn a_whole_request_of_rows_is_sent_without_waiting_for_the_batch() {
        // 21-byte rows, 100-byte requests: four rows fill one; the batch would wait for 1000.
        let (mut d, rec) = open(&[("maxRequestBytes", "100"), ("batching.maxMessages", "1000")]);
        let out = d.accept(messages(0..10));
        assert_eq!(out.ingested, vec![0, 1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(rec.bodies().len(), 2);
        assert!(rec.bodies().iter().all(|b| b.lines().count() == 4));
        assert_eq!(d.buffered(), 2);
    }

    #[test]
    fn a_packed_batch_sends_the_same_rows_as_a_list_of_messages() {
        let extra = [
            ("batching.maxMessages", "4"),
            ("schema", ".create table t (id: long, name: string, topic: string, device: string, kind: string)"),
            ("columns.topic", "$metadata.topic"),
            ("columns.device", "$metadata.user_property.device"),
            ("columns.kind", "$metadata.system_property.content_type"),
        ];
        let mut batch = messages(0..6);
        for m in &mut batch {
            m.topic = format!("site/{}", m.sequence);
            m.user_properties = vec![("device".into(), format!("d{}", m.sequence))];
            m.content_type = m
                .sequence
                .is_multiple_of(2)
                .then(|| "application/json".into());
        }
        batch[3].payload = b"not json".to_vec();
        let (mut listed, listed_requests) = open(&extra);
        let (mut packed, packed_requests) = open(&extra);
        let from_list = listed.accept(batch.clone());
        let from_batch = packed.accept_packed(&Message::pack(&batch));
        assert_eq!(from_list, from_batch);
        assert_eq!(from_batch.ingested, [0, 1, 2, 4]);
        assert_eq!(listed_requests.bodies(), packed_requests.bodies());
        assert!(
            packed_requests.bodies()[0].contains(r#""topic":"site/1","device":"d1","kind":null"#)
        );
        assert_eq!(listed.statistics(), packed.statistics());
    }

    #[test]
    fn sends_when_the_batch_reaches_max_messages() {
        let (mut d, rec) = open(&[("batching.maxMessages", "3")]);
        let out = d.accept(messages(0..2));
        assert!(out.ingested.is_empty() && rec.requests.borrow().is_empty());
        let out = d.accept(messages(2..7));
        assert_eq!(out.ingested, vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(rec.requests.borrow().len(), 2);
        assert_eq!(d.buffered(), 1);
        assert_eq!(
            rec.bodies()[0],
            "{\"id\":0,\"name\":\"n0\"}\n{\"id\":1,\"name\":\"n1\"}\n{\"id\":2,\"name\":\"n2\"}\n"
        );
        let out = d.close();
        assert_eq!(out.ingested, vec![6]);
        let ids: Vec<String> = rec
            .requests
            .borrow()
            .iter()
            .map(|r| r.headers[2].1.clone())
            .collect();
        assert_eq!(ids.len(), 3);
        assert!(
            ids[0] != ids[1] && ids[1] != ids[2],
            "request ids repeat: {ids:?}"
        );
    }

    #[test]
    fn sends_when_the_oldest_message_reaches_the_latency() {
        let (mut d, rec) = open(&[("batching.latencySeconds", "5")]);
        assert_eq!(d.next_flush_due_ms(), None);
        d.accept(messages(0..2));
        assert_eq!(d.next_flush_due_ms(), Some(5000));
        rec.advance_seconds(3);
        assert!(d.accept(messages(2..3)).ingested.is_empty());
        assert_eq!(
            d.next_flush_due_ms(),
            Some(2000),
            "the oldest message sets the deadline"
        );
        rec.advance_seconds(2);
        assert_eq!(d.next_flush_due_ms(), Some(0));
        assert_eq!(d.flush().ingested, vec![0, 1, 2]);
        assert_eq!(d.next_flush_due_ms(), None);
    }

    #[test]
    fn latency_zero_sends_at_the_end_of_every_accept() {
        let (mut d, rec) = open(&[("batching.latencySeconds", "0")]);
        assert_eq!(d.accept(messages(0..4)).ingested, vec![0, 1, 2, 3]);
        assert_eq!(rec.requests.borrow().len(), 1);
    }

    #[test]
    fn rejects_bad_messages_and_sends_the_rest() {
        let (mut d, rec) = open(&[]);
        let mut batch = messages(0..3);
        batch[1].payload = br#"{"id": "seven", "name": "x"}"#.to_vec();
        let out = d.accept(batch);
        assert_eq!(
            out.rejected,
            vec![Rejection {
                sequence: 1,
                kind: RejectionKind::Conversion,
                reason: "column `id` (long): string \"seven\" is not an integer".into()
            }]
        );
        assert_eq!(d.flush().ingested, vec![0, 2]);
        assert_eq!(rec.bodies()[0].lines().count(), 2);
        assert_eq!(d.statistics().messages_rejected, 1);
    }

    #[test]
    fn splits_requests_at_the_size_limit_and_rejects_oversized_rows() {
        let (mut d, rec) = open(&[("maxRequestBytes", "42")]);
        let mut batch = messages(0..6);
        batch[5].payload = format!(r#"{{"id": 5, "name": "{}"}}"#, "x".repeat(100)).into_bytes();
        let mut out = d.accept(batch);
        out.absorb(d.flush());
        assert_eq!(out.rejected.len(), 1);
        assert!(
            out.rejected[0].reason.contains("more than the 42 bytes"),
            "{:?}",
            out.rejected
        );
        assert_eq!(out.ingested, vec![0, 1, 2, 3, 4]);
        let bodies = rec.bodies();
        assert_eq!(bodies.len(), 3);
        assert!(bodies.iter().all(|b| b.len() <= 42));
    }

    #[test]
    fn rows_kusto_refuses_as_malformed_are_rejected_and_the_next_request_goes_on() {
        let (mut d, rec) = open(&[("maxRequestBytes", "42")]);
        rec.statuses.borrow_mut().extend([200, 400, 200]);
        let mut out = d.accept(messages(0..6));
        out.absorb(d.flush());
        assert_eq!(out.ingested, vec![0, 1, 4, 5]);
        let rejected: Vec<u64> = out.rejected.iter().map(|r| r.sequence).collect();
        assert_eq!(rejected, vec![2, 3]);
        assert!(
            out.rejected[0].reason.contains("HTTP 400"),
            "{:?}",
            out.rejected
        );
        assert!(out.failure.is_none());
        assert_eq!(d.buffered(), 0);
        let s = d.statistics();
        assert_eq!(
            (s.messages_ingested, s.messages_rejected, s.failed_requests),
            (4, 2, 1)
        );
    }

    #[test]
    fn a_failed_request_keeps_its_rows_for_the_next_flush() {
        let (mut d, rec) = open(&[("maxRequestBytes", "42")]);
        rec.statuses.borrow_mut().extend([200, 503]);
        // Each two rows fill a request, sent at once; after the failure, no more requests.
        let out = d.accept(messages(0..6));
        assert_eq!(out.ingested, vec![0, 1]);
        assert_eq!(out.failure.as_ref().unwrap().class, ErrorClass::Transient);
        assert_eq!(rec.requests.borrow().len(), 2);
        assert_eq!(d.buffered(), 4);
        let out = d.flush();
        assert_eq!(out.ingested, vec![2, 3, 4, 5]);
        assert!(out.failure.is_none());
        let s = d.statistics();
        assert_eq!(
            (s.requests, s.failed_requests, s.messages_ingested),
            (4, 1, 6)
        );
    }

    #[test]
    fn csv_format_sends_columns_in_order() {
        let (mut d, rec) = open(&[("format", "csv")]);
        d.accept(messages(0..2));
        d.flush();
        assert_eq!(rec.bodies()[0], "0,\"n0\"\n1,\"n1\"\n");
        assert!(rec.requests.borrow()[0].url.ends_with("streamFormat=csv"));
    }
}
