//! Messages packed into three flat lists (the contract's `message-batch`, since 1.1): one
//! byte buffer, one list of messages whose text and bytes are spans of it, one list of user
//! properties. The host packs; a guest reads views that borrow from the batch, and allocates
//! only the list of views and of property pairs, whatever the number of messages.
//!
//! The field names and order are the WIT's: guests map the WIT records onto these types, and
//! the generated code would not compile if they differed.

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Span {
    pub start: u32,
    pub len: u32,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PackedMessage {
    pub sequence: u64,
    pub timestamp_nanos: u64,
    pub topic: Span,
    pub payload: Span,
    pub content_type: Option<Span>,
    /// Entries of the batch's `properties`.
    pub user_properties: Span,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PackedProperty {
    pub name: Span,
    pub value: Span,
}

/// The contract's `message-batch`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageBatch {
    pub data: Vec<u8>,
    pub messages: Vec<PackedMessage>,
    pub properties: Vec<PackedProperty>,
}

/// What `MessageBatch::pack` reads from a message, whatever type the caller keeps it in.
pub struct Unpacked<'a, P> {
    pub sequence: u64,
    pub timestamp_nanos: u64,
    pub topic: &'a str,
    pub payload: &'a [u8],
    pub content_type: Option<&'a str>,
    pub user_properties: P,
}

/// One message of a batch, borrowed from it.
#[derive(Debug, Clone, Copy)]
pub struct MessageView<'a> {
    pub sequence: u64,
    pub timestamp_nanos: u64,
    pub topic: &'a str,
    pub payload: &'a [u8],
    pub content_type: Option<&'a str>,
    pub user_properties: &'a [(&'a str, &'a str)],
}

/// Why a message of a batch could not be read (a guest rejects it with this reason).
pub const MALFORMED: &str = "the batch entry of this message is malformed (a span outside the batch, or text that is not UTF-8)";

impl MessageBatch {
    /// Packs messages; the host does this before a call. A batch over 4 GiB cannot be
    /// addressed by its spans: callers send batches far smaller.
    pub fn pack<'a, P>(messages: impl IntoIterator<Item = Unpacked<'a, P>>) -> Self
    where
        P: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let mut batch = Self::default();
        for m in messages {
            let topic = batch.push(m.topic.as_bytes());
            let payload = batch.push(m.payload);
            let content_type = m.content_type.map(|c| batch.push(c.as_bytes()));
            let first = batch.properties.len();
            for (name, value) in m.user_properties {
                let property = PackedProperty {
                    name: batch.push(name.as_bytes()),
                    value: batch.push(value.as_bytes()),
                };
                batch.properties.push(property);
            }
            batch.messages.push(PackedMessage {
                sequence: m.sequence,
                timestamp_nanos: m.timestamp_nanos,
                topic,
                payload,
                content_type,
                user_properties: Span {
                    start: first as u32,
                    len: (batch.properties.len() - first) as u32,
                },
            });
        }
        batch
    }

    fn push(&mut self, bytes: &[u8]) -> Span {
        let start = self.data.len() as u32;
        self.data.extend_from_slice(bytes);
        Span {
            start,
            len: bytes.len() as u32,
        }
    }

    /// Calls `f` with a view of each well-formed message, in order, and the sequence numbers
    /// of the messages whose spans fall outside the batch or whose text is not UTF-8.
    pub fn with_views<R>(&self, f: impl FnOnce(&[MessageView<'_>], &[u64]) -> R) -> R {
        let properties: Vec<Option<(&str, &str)>> = self
            .properties
            .iter()
            .map(|p| Some((self.text(p.name)?, self.text(p.value)?)))
            .collect();
        let mut pairs = Vec::with_capacity(properties.len());
        // First pass: which messages are well formed, and their properties, in order (the
        // views borrow `pairs`, so it is complete before the first view is made).
        let mut ranges = Vec::with_capacity(self.messages.len());
        for m in &self.messages {
            match self.properties_of(m, &properties) {
                Some(own) => {
                    let start = pairs.len();
                    pairs.extend(own);
                    ranges.push(Some(start..pairs.len()));
                }
                None => ranges.push(None),
            }
        }
        let mut views = Vec::with_capacity(self.messages.len());
        let mut malformed = Vec::new();
        for (m, range) in self.messages.iter().zip(ranges) {
            let view = range.and_then(|range| {
                Some(MessageView {
                    sequence: m.sequence,
                    timestamp_nanos: m.timestamp_nanos,
                    topic: self.text(m.topic)?,
                    payload: self.bytes(m.payload)?,
                    content_type: match m.content_type {
                        Some(span) => Some(self.text(span)?),
                        None => None,
                    },
                    user_properties: &pairs[range],
                })
            });
            match view {
                Some(view) => views.push(view),
                None => malformed.push(m.sequence),
            }
        }
        f(&views, &malformed)
    }

    fn properties_of<'p, 'a>(
        &self,
        m: &PackedMessage,
        properties: &'p [Option<(&'a str, &'a str)>],
    ) -> Option<impl Iterator<Item = (&'a str, &'a str)> + 'p> {
        let start = m.user_properties.start as usize;
        let own = properties.get(start..start.checked_add(m.user_properties.len as usize)?)?;
        own.iter()
            .all(Option::is_some)
            .then(|| own.iter().flatten().copied())
    }

    fn bytes(&self, span: Span) -> Option<&[u8]> {
        let start = span.start as usize;
        self.data.get(start..start.checked_add(span.len as usize)?)
    }

    fn text(&self, span: Span) -> Option<&str> {
        utf8(self.bytes(span)?)
    }
}

/// `std::str::from_utf8(bytes).ok()`, faster on the mostly ASCII text of messages in wasm:
/// runs of ASCII are checked 16 bytes at a time, where the standard library steps through
/// 32-bit words (wasm's `usize`) and only once they are aligned. From the first 16 bytes that
/// are not all ASCII on, the standard library checks the rest, where it is not ASCII either.
pub fn utf8(bytes: &[u8]) -> Option<&str> {
    let (ascii, rest_is_ascii) = ascii_run(bytes);
    if !rest_is_ascii {
        std::str::from_utf8(&bytes[ascii..]).ok()?;
    }
    // SAFETY: `bytes[..ascii]` is ASCII and `bytes[ascii..]` is ASCII or was just checked; a
    // split right after an ASCII byte is a character boundary, so the whole is UTF-8.
    Some(unsafe { std::str::from_utf8_unchecked(bytes) })
}

const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

fn word(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("eight bytes"))
}

/// The length of the ASCII run `bytes` starts with, in steps of 16, and whether the rest is
/// ASCII as well. Two words of eight bytes at a time.
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
fn ascii_run(bytes: &[u8]) -> (usize, bool) {
    let mut ascii = 0;
    while ascii + 16 <= bytes.len()
        && (word(bytes, ascii) | word(bytes, ascii + 8)) & HIGH_BITS == 0
    {
        ascii += 16;
    }
    (ascii, short_rest_is_ascii(bytes, ascii))
}

/// `ascii_run` with wasm's 128-bit vectors: one load and one `i8x16.bitmask` per 16 bytes,
/// and the last bytes as the 16 that end `bytes`, overlapping those checked already. Only the
/// wasm build compiles this; `tests/all/wasm_and_native.rs` checks it through the component
/// against the native build.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
fn ascii_run(bytes: &[u8]) -> (usize, bool) {
    use core::arch::wasm32::{i8x16_bitmask, v128_load};
    // SAFETY: called with `at + 16 <= bytes.len()` only, so the 16 bytes read are in `bytes`;
    // `v128_load` needs no alignment.
    let high_bits = |at: usize| i8x16_bitmask(unsafe { v128_load(bytes.as_ptr().add(at).cast()) });
    let mut ascii = 0;
    while ascii + 16 <= bytes.len() && high_bits(ascii) == 0 {
        ascii += 16;
    }
    let rest_is_ascii = match bytes.len() - ascii {
        0 => true,
        1..16 if bytes.len() >= 16 => high_bits(bytes.len() - 16) == 0,
        _ => short_rest_is_ascii(bytes, ascii),
    };
    (ascii, rest_is_ascii)
}

/// Whether `bytes[ascii..]` is ASCII; short rests without a loop over their bytes.
fn short_rest_is_ascii(bytes: &[u8], ascii: usize) -> bool {
    let rest = &bytes[ascii..];
    match rest.len() {
        // The last eight bytes as one word (overlapping the first eight): no byte loop.
        8..16 => (word(bytes, ascii) | word(bytes, bytes.len() - 8)) & HIGH_BITS == 0,
        _ => rest.iter().all(u8::is_ascii),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_agrees_with_the_standard_library() {
        // Every split of ASCII runs and multi-byte characters around the 16-byte steps, valid
        // and broken (a lone continuation byte, a truncated character, an overlong form).
        let pieces: [&[u8]; 7] = [
            b"a",
            b"0123456789abcdef",
            "é".as_bytes(),
            "€".as_bytes(),
            b"\x80",
            b"\xe2\x82",
            b"\xc0\xaf",
        ];
        let mut checked = 0;
        for a in 0..pieces.len() {
            for b in 0..pieces.len() {
                for c in 0..pieces.len() {
                    for repeat in [1, 3, 17] {
                        let mut bytes = pieces[a].repeat(repeat);
                        bytes.extend_from_slice(pieces[b]);
                        bytes.extend(pieces[c].repeat(repeat));
                        assert_eq!(utf8(&bytes), std::str::from_utf8(&bytes).ok(), "{bytes:?}");
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, 7 * 7 * 7 * 3);
        assert_eq!(utf8(b""), Some(""));
    }

    struct Owned {
        sequence: u64,
        topic: String,
        payload: Vec<u8>,
        content_type: Option<String>,
        properties: Vec<(String, String)>,
    }

    fn message(sequence: u64, properties: &[(&str, &str)]) -> Owned {
        Owned {
            sequence,
            topic: format!("t/{sequence}"),
            payload: format!("{{\"n\":{sequence}}}").into_bytes(),
            content_type: sequence
                .is_multiple_of(2)
                .then(|| "application/json".to_string()),
            properties: properties
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn pack(messages: &[Owned]) -> MessageBatch {
        MessageBatch::pack(messages.iter().map(|m| Unpacked {
            sequence: m.sequence,
            timestamp_nanos: m.sequence * 10,
            topic: &m.topic,
            payload: &m.payload,
            content_type: m.content_type.as_deref(),
            user_properties: m.properties.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        }))
    }

    #[test]
    fn unpacking_gives_back_what_was_packed() {
        let messages = vec![
            message(1, &[("a", "1"), ("b", "2")]),
            message(2, &[]),
            message(3, &[("c", "é")]),
        ];
        let batch = pack(&messages);
        assert_eq!(batch.properties.len(), 3);
        batch.with_views(|views, malformed| {
            assert!(malformed.is_empty());
            assert_eq!(views.len(), messages.len());
            for (got, want) in views.iter().zip(&messages) {
                assert_eq!(
                    (got.sequence, got.topic, got.payload, got.content_type),
                    (
                        want.sequence,
                        want.topic.as_str(),
                        want.payload.as_slice(),
                        want.content_type.as_deref()
                    )
                );
                assert_eq!(got.timestamp_nanos, want.sequence * 10);
                let properties: Vec<(&str, &str)> = want
                    .properties
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                assert_eq!(got.user_properties, properties.as_slice());
            }
        });
    }

    #[test]
    fn a_malformed_entry_rejects_its_message_only() {
        let mut batch = pack(&[
            message(1, &[("a", "1")]),
            message(2, &[]),
            message(3, &[]),
            message(4, &[("b", "2")]),
        ]);
        batch.messages[0].payload.len = u32::MAX;
        batch.messages[2].user_properties = Span { start: 7, len: 1 };
        let end = batch.data.len() as u32;
        batch.data.push(0xff);
        batch.messages[3].topic = Span { start: end, len: 1 };
        batch.with_views(|views, malformed| {
            assert_eq!(views.iter().map(|v| v.sequence).collect::<Vec<_>>(), [2]);
            assert_eq!(malformed, [1, 3, 4]);
        });
    }
}
