//! Every message between the source and its settlement: in arrival order, so that sources
//! hear of settled messages in the order they delivered them (MQTT acknowledges in order).
//!
//! A message in flight is kept until it is settled (a rejected one goes to the dead-letter
//! sink whole, an unsettled one to a fresh plugin instance). The ledger keeps them compactly:
//! the messages admitted together share one arena of bytes (topics and content types once per
//! run of messages that share them, payloads and properties), with a small fixed-size entry
//! each, and an arena is freed as soon as all its messages are released. That is one
//! allocation per chunk instead of five or more per message, and no allocator overhead per
//! field.

use std::collections::VecDeque;

use crate::dead_letter::DeadLetter;
use crate::plugin::{Message, Outcome};
use crate::sources::Origin;

use super::PipelineReport;

/// Kept rejection details; beyond this only the count grows.
const MAX_KEPT_REJECTIONS: usize = 1000;

/// A field's bytes in its chunk's arena. Chunks stay under 4 GiB before their last
/// message's payload (`Chunk::fits`), so the fields written before it are addressable.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Span {
    start: u32,
    len: u32,
}

impl Span {
    /// No field (a message without a content type): no real span starts at `u32::MAX` with
    /// a length of `u32::MAX`.
    const NONE: Span = Span {
        start: u32::MAX,
        len: u32::MAX,
    };

    fn get(self) -> Option<Span> {
        (self != Self::NONE).then_some(self)
    }
}

/// One message's place in its chunk: a fixed-size entry of 56 bytes (100,000 messages in
/// flight cost 5.6 MB of entries besides their payloads). The topic and the content type
/// are written once for a run of messages that share them (a file's lines share both; a
/// broker's messages often repeat their topic).
struct Entry {
    topic: Span,
    /// `Span::NONE` without one.
    content_type: Span,
    /// Where the payload starts (`Chunk::fits` keeps it addressable); the properties
    /// follow it, each as two length-prefixed strings (`u32`, little endian).
    start: u32,
    /// The properties' bytes: under 4 GiB, as the properties of one message are (MQTT
    /// bounds a packet at 256 MiB; the other sources have none).
    properties: u32,
    payload: usize,
    timestamp_nanos: u64,
    /// The receipt, if `has_receipt`: 8 bytes less per entry than an `Option<u64>`.
    receipt: u64,
    /// With `origin_kind`: a line as its distance from the chunk's first line, or an index
    /// into the chunk's other origins.
    origin: u32,
    origin_kind: OriginKind,
    /// The plugin instance that holds it (`Lane`): only that one may answer for it, and a
    /// fresh instance that replaces it gets it again.
    lane: Lane,
    has_receipt: bool,
    settled: bool,
}

/// Which of a pipeline's plugin instances a message was handed to.
pub type Lane = u8;

/// How an entry's `origin` is read.
#[derive(Clone, Copy)]
enum OriginKind {
    /// Line `first_line + origin` of the chunk's source.
    Line,
    Mqtt,
    /// `other_origins[origin]` of the chunk.
    Other,
}

/// The messages of one `admit` (or of part of one, past 4 GiB), with consecutive sequence
/// numbers from `first_sequence`.
struct Chunk {
    first_sequence: u64,
    /// The source and the line of the first `Origin::Line`: the lines of the chunk's
    /// messages are counted from it.
    lines_of: Option<(std::sync::Arc<str>, u64)>,
    /// Origins that are not a line of `lines_of` within 4 billion lines of the first.
    other_origins: Vec<Origin>,
    arena: Vec<u8>,
    entries: Vec<Entry>,
    /// Entries at the front already released to the source.
    released: usize,
}

/// The bytes of `m` that are its own in an arena (the topic and the content type at most).
fn own_bytes(m: &Message) -> usize {
    m.topic.len()
        + m.payload.len()
        + m.content_type.as_ref().map_or(0, String::len)
        + properties_len(&m.user_properties)
}

impl Chunk {
    fn new(first_sequence: u64, bytes: usize, messages: usize) -> Self {
        Self {
            first_sequence,
            lines_of: None,
            other_origins: Vec::new(),
            arena: Vec::with_capacity(bytes),
            entries: Vec::with_capacity(messages),
            released: 0,
        }
    }

    /// Whether `m` can join this chunk with every span before its payload addressable.
    fn fits(&self, m: &Message) -> bool {
        let before_payload =
            self.arena.len() + m.topic.len() + m.content_type.as_ref().map_or(0, String::len);
        self.entries.is_empty() || before_payload <= u32::MAX as usize
    }

    /// The span of `text` in the arena: the one of `previous` if it holds the same bytes,
    /// else `text` appended.
    fn text(&mut self, previous: Option<Span>, text: &str) -> Span {
        if let Some(span) = previous.filter(|s| self.bytes(*s) == text.as_bytes()) {
            return span;
        }
        // `fits` keeps the start addressable; MQTT bounds topics and content types at 64 KiB.
        let span = Span {
            start: self.arena.len() as u32,
            len: u32::try_from(text.len()).expect("a topic or content type under 4 GiB"),
        };
        self.arena.extend_from_slice(text.as_bytes());
        span
    }

    fn bytes(&self, span: Span) -> &[u8] {
        &self.arena[span.start as usize..(span.start + span.len) as usize]
    }

    fn push(&mut self, m: &Message, origin: &Origin, receipt: Option<u64>, lane: Lane) {
        let previous = self.entries.last();
        let (topic, content_type) = (
            previous.map(|e| e.topic),
            previous.and_then(|e| e.content_type.get()),
        );
        let topic = self.text(topic, &m.topic);
        let content_type = m
            .content_type
            .as_deref()
            .map(|c| self.text(content_type, c));
        let start = self.arena.len() as u32;
        self.arena.extend_from_slice(&m.payload);
        for (name, value) in &m.user_properties {
            for text in [name, value] {
                self.arena
                    .extend_from_slice(&(text.len() as u32).to_le_bytes());
                self.arena.extend_from_slice(text.as_bytes());
            }
        }
        let properties = u32::try_from(properties_len(&m.user_properties))
            .expect("a message's properties under 4 GiB");
        let (origin_kind, origin) = self.keep(origin);
        self.entries.push(Entry {
            topic,
            content_type: content_type.unwrap_or(Span::NONE),
            start,
            properties,
            payload: m.payload.len(),
            timestamp_nanos: m.timestamp_nanos,
            receipt: receipt.unwrap_or_default(),
            origin,
            origin_kind,
            lane,
            has_receipt: receipt.is_some(),
            settled: false,
        });
    }

    fn keep(&mut self, origin: &Origin) -> (OriginKind, u32) {
        if let Origin::Line { source, line } = origin {
            let (lines_of, first) = self.lines_of.get_or_insert_with(|| (source.clone(), *line));
            let same = std::sync::Arc::ptr_eq(lines_of, source) || **lines_of == **source;
            let distance = line.checked_sub(*first).and_then(|d| u32::try_from(d).ok());
            if let (true, Some(distance)) = (same, distance) {
                return (OriginKind::Line, distance);
            }
        }
        if let Origin::Mqtt = origin {
            return (OriginKind::Mqtt, 0);
        }
        self.other_origins.push(origin.clone());
        let index = self.other_origins.len() - 1;
        (
            OriginKind::Other,
            u32::try_from(index).expect("fewer than 4 billion messages in a chunk"),
        )
    }

    fn origin(&self, entry: &Entry) -> Origin {
        match entry.origin_kind {
            OriginKind::Line => {
                let (source, first) = self.lines_of.as_ref().expect("set with the first line");
                Origin::Line {
                    source: source.clone(),
                    line: first + u64::from(entry.origin),
                }
            }
            OriginKind::Mqtt => Origin::Mqtt,
            OriginKind::Other => self.other_origins[entry.origin as usize].clone(),
        }
    }

    fn end_sequence(&self) -> u64 {
        self.first_sequence + self.entries.len() as u64
    }

    /// The message at `index`, copied out of the arena.
    fn message(&self, index: usize) -> Message {
        let e = &self.entries[index];
        // Every text field was a `String` when it was admitted.
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        let topic = text(self.bytes(e.topic));
        let start = e.start as usize;
        let payload = self.arena[start..start + e.payload].to_vec();
        let content_type = e.content_type.get().map(|span| text(self.bytes(span)));
        let from = start + e.payload;
        let mut properties = &self.arena[from..from + e.properties as usize];
        let mut user_properties = Vec::new();
        while !properties.is_empty() {
            let mut field = || {
                let len = u32::from_le_bytes(properties[..4].try_into().expect("4 bytes")) as usize;
                let value = text(&properties[4..4 + len]);
                properties = &properties[4 + len..];
                value
            };
            let name = field();
            user_properties.push((name, field()));
        }
        Message {
            sequence: self.first_sequence + index as u64,
            topic,
            payload,
            content_type,
            user_properties,
            timestamp_nanos: e.timestamp_nanos,
        }
    }
}

fn properties_len(properties: &[(String, String)]) -> usize {
    properties
        .iter()
        .map(|(name, value)| 8 + name.len() + value.len())
        .sum()
}

#[derive(Default)]
pub struct Ledger {
    /// Chunks in sequence order, each starting where the one before ends.
    chunks: VecDeque<Chunk>,
    next_sequence: u64,
    in_flight: usize,
    unsettled: usize,
    /// Unsettled messages by the lane that holds them.
    unsettled_in: Vec<usize>,
    pub report: PipelineReport,
}

impl Ledger {
    pub fn new() -> Self {
        Self {
            next_sequence: 1,
            ..Self::default()
        }
    }

    /// The sequence number the next admitted message gets.
    pub fn next_sequence(&self) -> u64 {
        self.next_sequence
    }

    /// Messages admitted and not yet released to the source (settled or not).
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    pub fn unsettled(&self) -> usize {
        self.unsettled
    }

    /// Unsettled messages that `lane` holds.
    pub fn unsettled_in(&self, lane: Lane) -> usize {
        self.unsettled_in
            .get(usize::from(lane))
            .copied()
            .unwrap_or(0)
    }

    /// Bytes the ledger holds for its messages: their arenas and entries.
    #[cfg(test)]
    pub fn held_bytes(&self) -> usize {
        self.chunks
            .iter()
            .map(|c| c.arena.capacity() + c.entries.capacity() * std::mem::size_of::<Entry>())
            .sum()
    }

    /// Copies of the messages `lane` holds and has not settled, in order: what a fresh plugin
    /// instance in its place gets.
    pub fn unsettled_messages(&self, lane: Lane) -> Vec<Message> {
        self.chunks
            .iter()
            .flat_map(|chunk| {
                (chunk.released..chunk.entries.len())
                    .filter(|&i| !chunk.entries[i].settled && chunk.entries[i].lane == lane)
                    .map(|i| chunk.message(i))
            })
            .collect()
    }

    /// Every unsettled message is held by `lane` from now on (the others are gone).
    pub fn move_unsettled_to(&mut self, lane: Lane) {
        for chunk in &mut self.chunks {
            let released = chunk.released;
            for entry in &mut chunk.entries[released..] {
                entry.lane = lane;
            }
        }
        self.unsettled_in.clear();
        let unsettled = self.unsettled;
        self.held_by(lane, |held| *held = unsettled);
    }

    fn held_by(&mut self, lane: Lane, change: impl FnOnce(&mut usize)) {
        let lane = usize::from(lane);
        if self.unsettled_in.len() <= lane {
            self.unsettled_in.resize(lane + 1, 0);
        }
        change(&mut self.unsettled_in[lane]);
    }

    /// Records messages handed to the plugin instance `lane`; they must carry the next
    /// sequence numbers. `sources` holds each message's origin and receipt.
    pub fn admit(&mut self, messages: &[Message], sources: &[(Origin, Option<u64>)], lane: Lane) {
        debug_assert_eq!(messages.len(), sources.len());
        debug_assert!(messages
            .iter()
            .zip(self.next_sequence..)
            .all(|(m, s)| m.sequence == s));
        if messages.is_empty() {
            return;
        }
        let bytes: usize = messages.iter().map(own_bytes).sum();
        let mut chunk = Chunk::new(self.next_sequence, bytes, messages.len());
        for (m, (origin, receipt)) in messages.iter().zip(sources) {
            if !chunk.fits(m) {
                let next = Chunk::new(chunk.end_sequence(), 0, 0);
                self.push_chunk(std::mem::replace(&mut chunk, next));
            }
            chunk.push(m, origin, *receipt, lane);
        }
        self.push_chunk(chunk);
        self.held_by(lane, |held| *held += messages.len());
        self.report.peak_in_flight = self.report.peak_in_flight.max(self.unsettled as u64);
    }

    fn push_chunk(&mut self, mut chunk: Chunk) {
        // Shared topics and content types leave part of the estimate unused.
        chunk.arena.shrink_to_fit();
        let count = chunk.entries.len();
        self.next_sequence = chunk.end_sequence();
        self.chunks.push_back(chunk);
        self.in_flight += count;
        self.unsettled += count;
        self.report.messages_in += count as u64;
    }

    /// Marks messages a filter rule dropped: settled, without a row or a dead letter.
    pub fn filter_out(&mut self, sequences: &[u64], lane: Lane) {
        for &sequence in sequences {
            if self.settle(sequence, lane).is_some() {
                self.report.filtered += 1;
            }
        }
    }

    /// Marks a message `lane` holds settled; its chunk and index, or `None` if it is unknown,
    /// was settled already or is another lane's.
    fn settle(&mut self, sequence: u64, lane: Lane) -> Option<(usize, usize)> {
        let chunk = self
            .chunks
            .partition_point(|c| c.end_sequence() <= sequence);
        let c = self.chunks.get_mut(chunk)?;
        let index = sequence.checked_sub(c.first_sequence)? as usize;
        let entry = c.entries.get_mut(index)?;
        if entry.settled || index < c.released || entry.lane != lane {
            return None;
        }
        entry.settled = true;
        self.unsettled -= 1;
        self.held_by(lane, |held| *held -= 1);
        Some((chunk, index))
    }

    /// Marks the outcome's messages settled; returns the rejected ones for the dead-letter
    /// sink. Answers from `lane` for messages it does not hold (unknown, already settled or
    /// another instance's) are ignored.
    pub fn record(&mut self, outcome: &Outcome, lane: Lane) -> Vec<DeadLetter> {
        for &sequence in &outcome.ingested {
            if self.settle(sequence, lane).is_some() {
                self.report.ingested += 1;
            }
        }
        let mut letters = Vec::new();
        for rejection in &outcome.rejected {
            if let Some((chunk, index)) = self.settle(rejection.sequence, lane) {
                let chunk = &self.chunks[chunk];
                let message = chunk.message(index);
                let origin = chunk.origin(&chunk.entries[index]).describe(&message.topic);
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

    /// Removes the settled messages at the front and returns their receipts, in order. A
    /// chunk's arena is freed once all its messages are released.
    pub fn release(&mut self) -> Vec<u64> {
        let mut receipts = Vec::new();
        while let Some(chunk) = self.chunks.front_mut() {
            while let Some(entry) = chunk.entries.get(chunk.released).filter(|e| e.settled) {
                if entry.has_receipt {
                    receipts.push(entry.receipt);
                }
                chunk.released += 1;
                self.in_flight -= 1;
            }
            if chunk.released < chunk.entries.len() {
                break;
            }
            self.chunks.pop_front();
        }
        receipts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::{Rejection, RejectionKind};

    fn message(sequence: u64) -> Message {
        Message {
            sequence,
            topic: "t".into(),
            payload: vec![],
            content_type: None,
            user_properties: vec![],
            timestamp_nanos: 0,
        }
    }

    fn admit(ledger: &mut Ledger, count: u64) {
        admit_to(ledger, count, 0);
    }

    fn admit_to(ledger: &mut Ledger, count: u64, lane: Lane) {
        let first = ledger.next_sequence();
        let messages: Vec<Message> = (first..first + count).map(message).collect();
        let sources: Vec<(Origin, Option<u64>)> = (first..first + count)
            .map(|sequence| (Origin::Text(format!("m{sequence}")), Some(100 + sequence)))
            .collect();
        ledger.admit(&messages, &sources, lane);
    }

    fn ingested(sequences: Vec<u64>) -> Outcome {
        Outcome {
            ingested: sequences,
            rejected: vec![],
            failure: None,
        }
    }

    #[test]
    fn receipts_are_released_in_arrival_order_once_everything_before_is_settled() {
        let mut ledger = Ledger::new();
        admit(&mut ledger, 4);
        let letters = ledger.record(
            &Outcome {
                ingested: vec![2, 4],
                rejected: vec![Rejection {
                    sequence: 3,
                    kind: RejectionKind::Payload,
                    reason: "bad".into(),
                }],
                failure: None,
            },
            0,
        );
        assert_eq!(letters.len(), 1);
        assert_eq!(
            (letters[0].origin.as_str(), letters[0].reason.as_str()),
            ("m3", "bad")
        );
        assert_eq!(ledger.release(), Vec::<u64>::new(), "1 is not settled yet");
        assert_eq!((ledger.in_flight(), ledger.unsettled()), (4, 1));
        ledger.record(&ingested(vec![1, 1, 99]), 0);
        assert_eq!(ledger.release(), vec![101, 102, 103, 104]);
        assert_eq!((ledger.in_flight(), ledger.next_sequence()), (0, 5));
        let r = &ledger.report;
        assert_eq!((r.messages_in, r.ingested, r.rejected), (4, 3, 1));
    }

    #[test]
    fn a_kept_message_comes_back_exactly_as_it_was_admitted() {
        let mut ledger = Ledger::new();
        let messages = vec![
            Message {
                sequence: 1,
                topic: "factory/line1/thermostat-01".into(),
                payload: vec![0xff, 0, b'{', 0xc3],
                content_type: Some(String::new()),
                user_properties: vec![
                    ("device".into(), "ü-1".into()),
                    (String::new(), String::new()),
                ],
                timestamp_nanos: 1_764_325_230_000_000_007,
            },
            Message {
                sequence: 2,
                topic: String::new(),
                payload: b"{\"n\":2}".to_vec(),
                content_type: None,
                user_properties: vec![("a".into(), "b".repeat(300))],
                timestamp_nanos: 2,
            },
            Message {
                sequence: 3,
                content_type: Some("application/json".into()),
                ..message(3)
            },
            message(4),
            message(5),
            message(6),
            message(7),
        ];
        let line = |source: &str, line: u64| {
            (
                Origin::Line {
                    source: source.into(),
                    line,
                },
                None,
            )
        };
        let sources = vec![
            (
                Origin::Line {
                    source: "input.jsonl".into(),
                    line: 1,
                },
                Some(7),
            ),
            (Origin::Text(String::new()), None),
            (Origin::Mqtt, Some(9)),
            // Lines are kept as their distance from the chunk's first line where they can be.
            line("input.jsonl", 4),
            line("input.jsonl", 0),
            line("input.jsonl", 1 << 40),
            line("other.jsonl", 4),
        ];
        let origins = [
            "input.jsonl:1",
            "",
            "mqtt t",
            "input.jsonl:4",
            "input.jsonl:0",
            "input.jsonl:1099511627776",
            "other.jsonl:4",
        ];
        ledger.admit(&messages, &sources, 0);
        let replayed = ledger.unsettled_messages(0);
        assert_eq!(format!("{replayed:?}"), format!("{messages:?}"));
        let letters = ledger.record(
            &Outcome {
                ingested: vec![],
                rejected: [2, 1, 3, 7, 6, 5, 4]
                    .map(|sequence| Rejection {
                        sequence,
                        kind: RejectionKind::Payload,
                        reason: format!("r{sequence}"),
                    })
                    .to_vec(),
                failure: None,
            },
            0,
        );
        let by_sequence = |s: u64| letters.iter().find(|l| l.message.sequence == s).unwrap();
        for (m, origin) in messages.iter().zip(origins) {
            let letter = by_sequence(m.sequence);
            assert_eq!(format!("{:?}", letter.message), format!("{m:?}"));
            assert_eq!(letter.origin, origin);
        }
        assert_eq!(ledger.release(), vec![7, 9]);
    }

    #[test]
    fn a_chunk_is_freed_once_all_its_messages_are_released_and_not_before() {
        let mut ledger = Ledger::new();
        admit(&mut ledger, 1000);
        admit(&mut ledger, 1000);
        let both = ledger.held_bytes();
        // Everything of the second chunk settles first, and all but one of the first.
        ledger.record(&ingested((2..=2000).collect()), 0);
        assert!(ledger.release().is_empty());
        assert_eq!((ledger.held_bytes(), ledger.in_flight()), (both, 2000));
        ledger.record(&ingested(vec![1]), 0);
        assert_eq!(ledger.release(), (101..2101).collect::<Vec<u64>>());
        assert_eq!((ledger.held_bytes(), ledger.in_flight()), (0, 0));

        // Released part way: the chunk stays until its last message goes.
        admit(&mut ledger, 1000);
        let one = ledger.held_bytes();
        ledger.record(&ingested((2001..2500).collect()), 0);
        assert_eq!(ledger.release().len(), 499);
        assert_eq!((ledger.held_bytes(), ledger.in_flight()), (one, 501));
        assert_eq!(ledger.unsettled_messages(0).len(), 501);
        // A message released already is not settled again.
        ledger.record(&ingested(vec![2001]), 0);
        assert_eq!(ledger.report.ingested, 2499);
    }

    #[test]
    fn a_message_in_flight_costs_its_payload_and_a_small_entry() {
        let mut ledger = Ledger::new();
        let messages: Vec<Message> = (1..=1000)
            .map(|sequence| Message {
                payload: vec![b'x'; 190],
                topic: format!("readings/site{}", sequence / 400),
                content_type: Some("application/json".into()),
                user_properties: vec![("k".into(), "v".into())],
                ..message(sequence)
            })
            .collect();
        let source: std::sync::Arc<str> = "input.jsonl".into();
        let sources: Vec<(Origin, Option<u64>)> = (1..=1000)
            .map(|line| {
                (
                    Origin::Line {
                        source: source.clone(),
                        line,
                    },
                    None,
                )
            })
            .collect();
        ledger.admit(&messages, &sources, 0);
        // Three runs of one topic: each topic kept once per run, the content type once.
        let shared = 3 * "readings/site0".len() + "application/json".len();
        let fields = 1000 * (190 + 10);
        let entries = 1000 * std::mem::size_of::<Entry>();
        assert_eq!(ledger.held_bytes(), shared + fields + entries);
        assert!(
            std::mem::size_of::<Entry>() <= 56,
            "{}",
            std::mem::size_of::<Entry>()
        );
        let replayed = ledger.unsettled_messages(0);
        assert_eq!(format!("{replayed:?}"), format!("{messages:?}"));
    }

    #[test]
    fn each_lane_answers_for_its_own_messages_and_receipts_stay_in_arrival_order() {
        let mut ledger = Ledger::new();
        admit_to(&mut ledger, 3, 0); // 1..=3
        admit_to(&mut ledger, 2, 1); // 4..=5
        admit_to(&mut ledger, 2, 0); // 6..=7
        assert_eq!((ledger.unsettled_in(0), ledger.unsettled_in(1)), (5, 2));
        assert_eq!(ledger.unsettled_in(2), 0);
        // Lane 1 cannot settle what lane 0 holds, even by naming it.
        ledger.record(&ingested(vec![1, 4, 5, 6]), 1);
        assert_eq!((ledger.unsettled_in(0), ledger.unsettled_in(1)), (5, 0));
        assert_eq!(ledger.release(), Vec::<u64>::new(), "1 is not settled yet");
        let of_lane_0: Vec<u64> = ledger
            .unsettled_messages(0)
            .iter()
            .map(|m| m.sequence)
            .collect();
        assert_eq!(of_lane_0, vec![1, 2, 3, 6, 7]);
        assert!(ledger.unsettled_messages(1).is_empty());
        ledger.record(&ingested(vec![1, 2, 3]), 0);
        assert_eq!(ledger.release(), vec![101, 102, 103, 104, 105]);
        // Another instance takes over everything left.
        ledger.move_unsettled_to(1);
        assert_eq!((ledger.unsettled_in(0), ledger.unsettled_in(1)), (0, 2));
        ledger.record(&ingested(vec![6, 7]), 0);
        assert_eq!(ledger.unsettled(), 2, "lane 0 no longer holds them");
        ledger.record(&ingested(vec![7, 6]), 1);
        assert_eq!(ledger.release(), vec![106, 107]);
        assert_eq!((ledger.in_flight(), ledger.unsettled()), (0, 0));
    }
}
