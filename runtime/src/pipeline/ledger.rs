//! Every message between the source and its settlement: in arrival order, so that sources
//! hear of settled messages in the order they delivered them (MQTT acknowledges in order).

use std::collections::VecDeque;

use crate::dead_letter::DeadLetter;
use crate::plugin::{Message, Outcome};

use super::PipelineReport;

/// Kept rejection details; beyond this only the count grows.
const MAX_KEPT_REJECTIONS: usize = 1000;

struct Entry {
    /// Kept until settled: a rejected message goes to the dead-letter sink whole.
    message: Option<Message>,
    origin: String,
    receipt: Option<u64>,
}

#[derive(Default)]
pub struct Ledger {
    /// Entries by sequence number, starting at `first_sequence`.
    entries: VecDeque<Entry>,
    first_sequence: u64,
    unsettled: usize,
    pub report: PipelineReport,
}

impl Ledger {
    pub fn new() -> Self {
        Self {
            first_sequence: 1,
            ..Self::default()
        }
    }

    /// The sequence number the next admitted message gets.
    pub fn next_sequence(&self) -> u64 {
        self.first_sequence + self.entries.len() as u64
    }

    /// Messages admitted and not yet released to the source (settled or not).
    pub fn in_flight(&self) -> usize {
        self.entries.len()
    }

    pub fn unsettled(&self) -> usize {
        self.unsettled
    }

    /// Copies of the messages not yet settled, in order: what a fresh plugin instance gets.
    pub fn unsettled_messages(&self) -> Vec<Message> {
        self.entries
            .iter()
            .filter_map(|e| e.message.clone())
            .collect()
    }

    /// Records messages handed to the plugin; they must carry the next sequence numbers.
    /// `sources` holds each message's origin and receipt.
    pub fn admit(&mut self, messages: Vec<Message>, sources: Vec<(String, Option<u64>)>) {
        for (message, (origin, receipt)) in messages.into_iter().zip(sources) {
            debug_assert_eq!(message.sequence, self.next_sequence());
            self.entries.push_back(Entry {
                message: Some(message),
                origin,
                receipt,
            });
            self.unsettled += 1;
            self.report.messages_in += 1;
        }
        self.report.peak_in_flight = self.report.peak_in_flight.max(self.unsettled as u64);
    }

    /// Marks messages a filter rule dropped: settled, without a row or a dead letter.
    pub fn filter_out(&mut self, sequences: &[u64]) {
        for &sequence in sequences {
            if self.settle(sequence).is_some() {
                self.report.filtered += 1;
            }
        }
    }

    fn settle(&mut self, sequence: u64) -> Option<(Message, String)> {
        let index = sequence.checked_sub(self.first_sequence)? as usize;
        let entry = self.entries.get_mut(index)?;
        let message = entry.message.take()?;
        self.unsettled -= 1;
        Some((message, entry.origin.clone()))
    }

    /// Marks the outcome's messages settled; returns the rejected ones for the dead-letter
    /// sink. Acknowledgements for unknown or already settled messages are ignored.
    pub fn record(&mut self, outcome: &Outcome) -> Vec<DeadLetter> {
        for &sequence in &outcome.ingested {
            if self.settle(sequence).is_some() {
                self.report.ingested += 1;
            }
        }
        let mut letters = Vec::new();
        for rejection in &outcome.rejected {
            if let Some((message, origin)) = self.settle(rejection.sequence) {
                self.report.rejected += 1;
                if self.report.rejections.len() < MAX_KEPT_REJECTIONS {
                    self.report
                        .rejections
                        .push((origin.clone(), rejection.reason.clone()));
                }
                letters.push(DeadLetter {
                    message,
                    origin,
                    kind: rejection.kind,
                    reason: rejection.reason.clone(),
                });
            }
        }
        letters
    }

    /// Removes the settled messages at the front and returns their receipts, in order.
    pub fn release(&mut self) -> Vec<u64> {
        let mut receipts = Vec::new();
        while self.entries.front().is_some_and(|e| e.message.is_none()) {
            let entry = self.entries.pop_front().expect("front exists");
            self.first_sequence += 1;
            receipts.extend(entry.receipt);
        }
        receipts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::Rejection;

    fn admit(ledger: &mut Ledger, count: u64) {
        let (messages, sources) = (0..count)
            .map(|i| {
                let sequence = ledger.next_sequence() + i;
                let message = Message {
                    sequence,
                    topic: "t".into(),
                    payload: vec![],
                    content_type: None,
                    user_properties: vec![],
                    timestamp_nanos: 0,
                };
                (message, (format!("m{sequence}"), Some(100 + sequence)))
            })
            .unzip();
        ledger.admit(messages, sources);
    }

    #[test]
    fn receipts_are_released_in_arrival_order_once_everything_before_is_settled() {
        let mut ledger = Ledger::new();
        admit(&mut ledger, 4);
        let letters = ledger.record(&Outcome {
            ingested: vec![2, 4],
            rejected: vec![Rejection {
                sequence: 3,
                kind: crate::plugin::RejectionKind::Payload,
                reason: "bad".into(),
            }],
            failure: None,
        });
        assert_eq!(letters.len(), 1);
        assert_eq!(
            (letters[0].origin.as_str(), letters[0].reason.as_str()),
            ("m3", "bad")
        );
        assert_eq!(ledger.release(), Vec::<u64>::new(), "1 is not settled yet");
        assert_eq!((ledger.in_flight(), ledger.unsettled()), (4, 1));
        ledger.record(&Outcome {
            ingested: vec![1, 1, 99],
            rejected: vec![],
            failure: None,
        });
        assert_eq!(ledger.release(), vec![101, 102, 103, 104]);
        assert_eq!((ledger.in_flight(), ledger.next_sequence()), (0, 5));
        let r = &ledger.report;
        assert_eq!((r.messages_in, r.ingested, r.rejected), (4, 3, 1));
    }
}
