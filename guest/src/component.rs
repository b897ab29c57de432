//! The WASI shell: exports the `destination` interface of the contract and gives the core
//! its platform (HTTP through `wasi:http/outgoing-handler`, clocks, randomness).

use std::cell::RefCell;

use crate::destination::{Destination, Platform, TransportError};
use crate::kusto::{HttpRequest, HttpResponse};
use crate::message;

// The newest contract, 1.2; with the `contract-1-1` or `contract-1-0` feature, an older one,
// as a plugin built before 1.2 or 1.1 would be: hosts are tested against all three. The
// packed batch is the contract crate's own type: the generated code reads it field by field,
// so it would not compile if the two differed.
#[cfg(not(any(feature = "contract-1-0", feature = "contract-1-1")))]
wit_bindgen::generate!({
    path: "../contract/wit/1.2.0",
    world: "dataflow:destination/destination-plugin",
    with: {
        "dataflow:destination/types@1.2.0/span": dataflow_contract::packed::Span,
        "dataflow:destination/types@1.2.0/packed-message": dataflow_contract::packed::PackedMessage,
        "dataflow:destination/types@1.2.0/packed-property": dataflow_contract::packed::PackedProperty,
        "dataflow:destination/types@1.2.0/message-batch": dataflow_contract::packed::MessageBatch,
    },
    generate_all,
});
#[cfg(feature = "contract-1-1")]
wit_bindgen::generate!({
    path: "../contract/wit/1.1.0",
    world: "dataflow:destination/destination-plugin",
    with: {
        "dataflow:destination/types@1.1.0/span": dataflow_contract::packed::Span,
        "dataflow:destination/types@1.1.0/packed-message": dataflow_contract::packed::PackedMessage,
        "dataflow:destination/types@1.1.0/packed-property": dataflow_contract::packed::PackedProperty,
        "dataflow:destination/types@1.1.0/message-batch": dataflow_contract::packed::MessageBatch,
    },
    generate_all,
});
#[cfg(feature = "contract-1-0")]
wit_bindgen::generate!({
    path: "../contract/wit/1.0.0",
    world: "dataflow:destination/destination-plugin",
    generate_all,
});

use dataflow::destination::log::{log, Level};
use dataflow::destination::types as wit;
use exports::dataflow::destination::destination::{Guest, GuestSink, Sink};

struct Component;

impl Guest for Component {
    type Sink = AdxSink;
}

struct AdxSink(RefCell<Destination<Wasi>>);

impl GuestSink for AdxSink {
    fn open(config: wit::Config) -> Result<Sink, wit::DestinationError> {
        let destination = Destination::open(&config, Wasi).map_err(to_wit_error)?;
        let c = destination.config();
        log(
            Level::Info,
            &format!(
                "ADX destination open: {}/{} table {} ({} columns), maxMessages {}, latencySeconds {}",
                c.base_url, c.database, c.table, c.schema.columns.len(), c.max_messages, c.latency_seconds
            ),
        );
        Ok(Sink::new(AdxSink(RefCell::new(destination))))
    }

    fn accept(&self, messages: Vec<wit::Message>) -> wit::Outcome {
        let messages = messages.into_iter().map(from_wit_message).collect();
        to_wit_outcome(self.0.borrow_mut().accept(messages))
    }

    #[cfg(not(feature = "contract-1-0"))]
    fn accept_batch(&self, batch: dataflow_contract::packed::MessageBatch) -> wit::Outcome {
        to_wit_outcome(self.0.borrow_mut().accept_packed(&batch))
    }

    #[cfg(not(any(feature = "contract-1-0", feature = "contract-1-1")))]
    fn accept_batch_classified(
        &self,
        batch: dataflow_contract::packed::MessageBatch,
    ) -> wit::ClassifiedOutcome {
        to_wit_classified(self.0.borrow_mut().accept_packed(&batch))
    }

    #[cfg(not(any(feature = "contract-1-0", feature = "contract-1-1")))]
    fn flush_classified(&self) -> wit::ClassifiedOutcome {
        to_wit_classified(self.0.borrow_mut().flush())
    }

    #[cfg(not(any(feature = "contract-1-0", feature = "contract-1-1")))]
    fn close_classified(&self) -> wit::ClassifiedOutcome {
        to_wit_classified(self.0.borrow_mut().close())
    }

    fn next_flush_due_ms(&self) -> Option<u64> {
        self.0.borrow().next_flush_due_ms()
    }

    fn flush(&self) -> wit::Outcome {
        to_wit_outcome(self.0.borrow_mut().flush())
    }

    fn close(&self) -> wit::Outcome {
        to_wit_outcome(self.0.borrow_mut().close())
    }

    fn statistics(&self) -> wit::Statistics {
        let s = self.0.borrow().statistics();
        wit::Statistics {
            messages_accepted: s.messages_accepted,
            messages_ingested: s.messages_ingested,
            messages_rejected: s.messages_rejected,
            requests: s.requests,
            failed_requests: s.failed_requests,
            bytes_encoded: s.bytes_encoded,
            bytes_sent: s.bytes_sent,
        }
    }
}

fn from_wit_message(m: wit::Message) -> message::Message {
    message::Message {
        sequence: m.sequence,
        topic: m.topic,
        payload: m.payload,
        content_type: m.content_type,
        user_properties: m.user_properties,
        timestamp_nanos: m.timestamp_nanos,
    }
}

fn to_wit_error(e: message::DestinationError) -> wit::DestinationError {
    wit::DestinationError {
        class: match e.class {
            message::ErrorClass::Configuration => wit::ErrorClass::Configuration,
            message::ErrorClass::Transient => wit::ErrorClass::Transient,
            message::ErrorClass::Permanent => wit::ErrorClass::Permanent,
        },
        message: e.message,
        retry_after_ms: e.retry_after_ms,
    }
}

fn to_wit_outcome(o: message::Outcome) -> wit::Outcome {
    log_failure(&o);
    wit::Outcome {
        ingested: o.ingested,
        rejected: o
            .rejected
            .into_iter()
            .map(|r| wit::Rejection {
                sequence: r.sequence,
                reason: r.reason,
            })
            .collect(),
        failure: o.failure.map(to_wit_error),
    }
}

fn log_failure(o: &message::Outcome) {
    if let Some(failure) = &o.failure {
        log(Level::Warn, &failure.to_string());
    }
}

#[cfg(not(any(feature = "contract-1-0", feature = "contract-1-1")))]
fn to_wit_classified(o: message::Outcome) -> wit::ClassifiedOutcome {
    log_failure(&o);
    wit::ClassifiedOutcome {
        ingested: o.ingested,
        rejected: o
            .rejected
            .into_iter()
            .map(|r| wit::ClassifiedRejection {
                sequence: r.sequence,
                kind: match r.kind {
                    message::RejectionKind::Conversion => wit::RejectionKind::Conversion,
                    message::RejectionKind::Payload => wit::RejectionKind::Payload,
                    message::RejectionKind::Size => wit::RejectionKind::Size,
                    message::RejectionKind::RefusedByDestination => {
                        wit::RejectionKind::RefusedByDestination
                    }
                    message::RejectionKind::Other => wit::RejectionKind::Other,
                },
                reason: r.reason,
            })
            .collect(),
        failure: o.failure.map(to_wit_error),
    }
}

/// The platform inside a WASI 0.2 host.
struct Wasi;

impl Platform for Wasi {
    fn send(&mut self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        match wasi_outbound::post(&request.url, &request.headers, &request.body) {
            Ok((response, _)) => Ok(HttpResponse {
                status: response.status,
                headers: response.headers,
                body: response.body,
            }),
            Err(e) => Err(TransportError {
                message: e.message,
                denied: e.denied,
            }),
        }
    }

    fn now_nanos(&self) -> u64 {
        wasi::clocks::monotonic_clock::now()
    }

    fn request_id(&mut self) -> String {
        let (a, b) = (
            wasi::random::random::get_random_u64(),
            wasi::random::random::get_random_u64(),
        );
        // A version 4 UUID from 122 random bits.
        let a = (a & 0xffff_ffff_ffff_0fff) | 0x4000;
        let b = (b & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xffff,
            b >> 48,
            b & 0xffff_ffff_ffff
        )
    }
}

export!(Component);
