//! The fast path for reading a payload: one pass over a JSON object that checks every byte of
//! it and keeps, for each top-level key the table reads, the text of its value. Nothing is
//! allocated and nothing is decoded.
//!
//! It gives up on what it does not handle itself (a payload that is not an object, escapes in
//! keys, `\u` escapes, deep nesting, anything invalid); the general reader in `payload` then
//! decides, with the same result and its precise error. So the scanner never accepts what the
//! general reader refuses: a property test in this module and the fuzzer check that.

/// Top-level keys with more wanted than this go through the general reader.
pub const MAX_KEYS: usize = 32;

/// Nesting deeper than this goes through the general reader (which has its own limit).
const MAX_DEPTH: usize = 64;

/// The top-level keys a table reads; a key's position is its slot.
#[derive(Debug, Clone, Default)]
pub struct WantedKeys(Vec<String>);

impl WantedKeys {
    /// The slot of `key`, adding it if it is new.
    pub fn slot_for(&mut self, key: &str) -> usize {
        match self.0.iter().position(|k| k == key) {
            Some(slot) => slot,
            None => {
                self.0.push(key.to_string());
                self.0.len() - 1
            }
        }
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Some` if the table reads `key`.
    pub fn contains(&self, key: &str) -> Option<()> {
        self.slot_of(key.as_bytes()).map(|_| ())
    }

    fn slot_of(&self, key: &[u8]) -> Option<usize> {
        self.0.iter().position(|k| is_key(k, key))
    }

    /// `slot_of`, trying `guess` first: payloads of one kind list their keys in one order,
    /// so the slot after the last one found is usually the next.
    fn slot_of_guessing(&self, key: &[u8], guess: usize) -> Option<usize> {
        match self.0.get(guess) {
            Some(k) if is_key(k, key) => Some(guess),
            _ => self.slot_of(key),
        }
    }
}

/// Length and last byte first, then eight bytes at a time: in wasm `==` on slices is a call to
/// a `memcmp` that compares one byte at a time.
fn is_key(wanted: &str, key: &[u8]) -> bool {
    let wanted = wanted.as_bytes();
    wanted.len() == key.len() && wanted.last() == key.last() && same_bytes(wanted, key)
}

/// Fills `values[slot]` with the raw JSON text of each wanted key's value, or `None` where the
/// key is absent. `values` holds one entry per wanted key.
/// Returns `None` when the general reader must decide.
pub fn scan_object<'a>(
    text: &'a str,
    wanted: &WantedKeys,
    values: &mut [Option<&'a str>],
) -> Option<()> {
    debug_assert_eq!(values.len(), wanted.len());
    values.fill(None);
    let mut s = Scanner {
        b: text.as_bytes(),
        pos: 0,
    };
    let mut next_slot = 0;
    s.whitespace();
    s.expect(b'{')?;
    s.whitespace();
    if s.peek()? == b'}' {
        s.pos += 1;
    } else {
        loop {
            s.expect(b'"')?;
            let key_start = s.pos;
            s.string_body(false)?;
            let key = &s.b[key_start..s.pos - 1];
            s.whitespace();
            s.expect(b':')?;
            s.whitespace();
            let start = s.pos;
            s.value(0)?;
            if let Some(slot) = wanted.slot_of_guessing(key, next_slot) {
                if values[slot].is_some() {
                    return None; // a duplicate: the general reader refuses it, with the key
                }
                values[slot] = Some(&text[start..s.pos]);
                next_slot = slot + 1;
            }
            s.whitespace();
            match s.next()? {
                b',' => s.whitespace(),
                b'}' => break,
                _ => return None,
            }
        }
    }
    s.whitespace();
    (s.pos == s.b.len()).then_some(())
}

struct Scanner<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    fn expect(&mut self, c: u8) -> Option<()> {
        (self.next()? == c).then_some(())
    }

    fn whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.pos += 1;
        }
    }

    /// Any JSON value.
    fn value(&mut self, depth: usize) -> Option<()> {
        match self.next()? {
            b'"' => self.string_body(true),
            b'{' => self.object(depth + 1),
            b'[' => self.array(depth + 1),
            b't' => self.literal(b"rue"),
            b'f' => self.literal(b"alse"),
            b'n' => self.literal(b"ull"),
            b'-' => {
                let first = self.next()?;
                self.number(first)
            }
            first @ b'0'..=b'9' => self.number(first),
            _ => None,
        }
    }

    /// After the opening quote: up to and including the closing one. Escapes other than
    /// `\u` are checked here; `\u` (and any escape where `escapes` is false) gives up.
    fn string_body(&mut self, escapes: bool) -> Option<()> {
        loop {
            // Most of a payload is string content.
            self.pos = plain_string_content(self.b, self.pos);
            match self.next()? {
                b'"' => return Some(()),
                b'\\' if escapes => match self.next()? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                    _ => return None,
                },
                0..=0x1f | b'\\' => return None,
                _ => {}
            }
        }
    }

    fn literal(&mut self, rest: &[u8]) -> Option<()> {
        let end = self.pos + rest.len();
        (self.b.get(self.pos..end)? == rest).then(|| self.pos = end)
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`, after its first digit (and
    /// sign). What follows a leading zero is checked by the caller, as a separator.
    fn number(&mut self, first: u8) -> Option<()> {
        match first {
            b'0' => {}
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            self.some_digits()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            self.some_digits()?;
        }
        Some(())
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
    }

    fn some_digits(&mut self) -> Option<()> {
        let start = self.pos;
        self.digits();
        (self.pos > start).then_some(())
    }

    /// After `{`.
    fn object(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.whitespace();
        if self.peek()? == b'}' {
            self.pos += 1;
            return Some(());
        }
        loop {
            self.expect(b'"')?;
            self.string_body(true)?;
            self.whitespace();
            self.expect(b':')?;
            self.whitespace();
            self.value(depth)?;
            self.whitespace();
            match self.next()? {
                b',' => self.whitespace(),
                b'}' => return Some(()),
                _ => return None,
            }
        }
    }

    /// After `[`.
    fn array(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.whitespace();
        if self.peek()? == b']' {
            self.pos += 1;
            return Some(());
        }
        loop {
            self.value(depth)?;
            self.whitespace();
            match self.next()? {
                b',' => self.whitespace(),
                b']' => return Some(()),
                _ => return None,
            }
        }
    }
}

// Eight bytes at a time, with the bit tricks of "Bit Twiddling Hacks": a byte is zero when
// subtracting one borrows into its high bit.
const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Non-zero where `word` has a zero byte.
fn zero_bytes(word: u64) -> u64 {
    word.wrapping_sub(ONES) & !word & HIGHS
}

/// Exactly eight bytes as one little-endian word: byte 0 is the lowest.
fn word_at(bytes: &[u8]) -> u64 {
    u64::from_le_bytes(bytes.try_into().expect("eight bytes"))
}

/// The high bit of each byte of `word` that is `"`, `\` or below 0x20 (what a JSON string
/// escapes). The lowest marked byte is always such a byte: a borrow that marks a byte falsely
/// comes only from a marked byte below it.
fn quote_backslash_or_control(word: u64) -> u64 {
    let below_0x20 = word.wrapping_sub(ONES * 0x20) & !word & HIGHS;
    zero_bytes(word ^ (ONES * b'"' as u64)) | zero_bytes(word ^ (ONES * b'\\' as u64)) | below_0x20
}

/// Skips string content that needs no escaping, eight bytes at a time from `from`: the index
/// of the first byte that is `"`, `\` or below 0x20, or, if there is none, of the last few
/// (fewer than eight) bytes, which the caller looks at one by one.
///
/// In wasm, 16 bytes at a time first, with 128-bit vectors (three compares and one
/// `i8x16.bitmask`). Only the wasm build compiles that part; `tests/all/wasm_and_native.rs`
/// checks it through the component against the native build.
pub fn plain_string_content(bytes: &[u8], from: usize) -> usize {
    let mut pos = from;
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        use core::arch::wasm32::*;
        while pos + 16 <= bytes.len() {
            // SAFETY: the 16 bytes from `pos` are in `bytes`; v128_load needs no alignment.
            let v = unsafe { v128_load(bytes.as_ptr().add(pos) as *const v128) };
            let quote_or_backslash = v128_or(
                i8x16_eq(v, u8x16_splat(b'"')),
                i8x16_eq(v, u8x16_splat(b'\\')),
            );
            let marked = v128_or(quote_or_backslash, u8x16_lt(v, u8x16_splat(0x20)));
            let mask = i8x16_bitmask(marked);
            if mask != 0 {
                return pos + mask.trailing_zeros() as usize;
            }
            pos += 16;
        }
    }
    while let Some(chunk) = bytes.get(pos..pos + 8) {
        let marked = quote_backslash_or_control(word_at(chunk));
        if marked != 0 {
            return pos + (marked.trailing_zeros() / 8) as usize;
        }
        pos += 8;
    }
    pos
}

/// `a == b`, eight bytes at a time.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (words_a, words_b) = (a.chunks_exact(8), b.chunks_exact(8));
    let (rest_a, rest_b) = (words_a.remainder(), words_b.remainder());
    words_a.zip(words_b).all(|(x, y)| word_at(x) == word_at(y))
        && rest_a.iter().zip(rest_b).all(|(x, y)| x == y)
}

/// Whether `bytes` holds a backslash, eight bytes at a time (in wasm `memchr` steps through
/// 32-bit words).
// The last seven bytes at most are looked at one by one: `contains` would call `memchr`.
#[allow(clippy::manual_contains)]
pub fn contains_backslash(bytes: &[u8]) -> bool {
    let words = bytes.chunks_exact(8);
    let rest = words.remainder();
    words
        .into_iter()
        .any(|w| zero_bytes(word_at(w) ^ (ONES * b'\\' as u64)) != 0)
        || rest.iter().any(|&b| b == b'\\')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::parse_object;

    #[test]
    fn the_lowest_marked_byte_is_the_first_that_needs_escaping() {
        let specials = [b'"', b'\\', 0, 0x1f, b'\n'];
        let others = [b'a', b' ', 0x20, 0x21, 0x7f, 0x80, 0xff, b'#', b']'];
        for at in 0..8 {
            for &special in &specials {
                for &other in &others {
                    for &above in specials.iter().chain(&others) {
                        let mut bytes = [other; 8];
                        bytes[at] = special;
                        bytes[at + 1..].fill(above);
                        let marked = quote_backslash_or_control(word_at(&bytes));
                        assert_eq!(marked.trailing_zeros() / 8, at as u32, "{bytes:?}");
                    }
                }
            }
            let plain = [b'a'; 8];
            assert_eq!(quote_backslash_or_control(word_at(&plain)), 0);
        }
    }

    #[test]
    fn word_at_a_time_helpers_agree_with_the_plain_comparisons() {
        let texts = [
            "",
            "a",
            "abcdefg",
            "abcdefgh",
            "abcdefghi",
            "CurrentTemperature",
            "Current\\",
            "\\",
            "abcdefgh\\",
            "abcdefghabcdefgh",
            "abcdefghabcdefgX",
            "Xbcdefghabcdefgh",
        ];
        for a in texts {
            assert_eq!(contains_backslash(a.as_bytes()), a.contains('\\'), "{a:?}");
            for b in texts {
                assert_eq!(
                    same_bytes(a.as_bytes(), b.as_bytes()),
                    a == b,
                    "{a:?} {b:?}"
                );
            }
        }
    }

    fn wanted(keys: &[&str]) -> WantedKeys {
        let mut wanted = WantedKeys::default();
        for key in keys {
            wanted.slot_for(key);
        }
        wanted
    }

    fn scan<'a>(text: &'a str, keys: &[&str]) -> Option<Vec<Option<&'a str>>> {
        let mut values = vec![None; keys.len()];
        scan_object(text, &wanted(keys), &mut values)?;
        Some(values)
    }

    #[test]
    fn keys_in_any_order_find_their_slots_and_a_duplicate_still_gives_up() {
        let keys = ["a", "b", "c"];
        let expected = Some(vec![Some("1"), Some("2"), Some("3")]);
        for text in [
            r#"{"a":1,"b":2,"c":3}"#,
            r#"{"c":3,"b":2,"a":1}"#,
            r#"{"b":2,"x":0,"a":1,"c":3}"#,
            r#"{"a":1,"c":3,"b":2}"#,
        ] {
            assert_eq!(scan(text, &keys), expected, "{text}");
        }
        assert_eq!(scan(r#"{"a":1,"b":2,"a":1}"#, &keys), None);
        assert_eq!(scan(r#"{"a":1,"a":1}"#, &keys), None);
    }

    #[test]
    fn keeps_the_raw_text_of_wanted_keys_only() {
        let text =
            r#" { "a" : 1.5e3 , "skip": {"x": [true, false, null, "s\"\n"]}, "b":"t", "c": -0 } "#;
        assert_eq!(
            scan(text, &["c", "a", "b", "missing"]),
            Some(vec![Some("-0"), Some("1.5e3"), Some("\"t\""), None])
        );
    }

    #[test]
    fn finds_every_special_byte_in_a_word() {
        for at in 0..8 {
            for special in [b'"', b'\\', 0x00, 0x1f, b'\n'] {
                let mut bytes = *b"abcdefgh";
                bytes[at] = special;
                assert_ne!(quote_backslash_or_control(u64::from_le_bytes(bytes)), 0);
            }
        }
        for ordinary in [
            *b"abcdefgh",
            *b" !#[]~\x7f ",
            [0x20, 0x21, 0x5b, 0x5d, 0x7f, 0x80, 0xc3, 0xff],
        ] {
            assert_eq!(quote_backslash_or_control(u64::from_le_bytes(ordinary)), 0);
        }
    }

    #[test]
    fn a_duplicate_of_a_wanted_key_is_left_to_the_general_reader() {
        assert_eq!(scan(r#"{"a":1,"a":2}"#, &["a"]), None);
        // Duplicates the table does not read are no one's concern.
        assert_eq!(
            scan(r#"{"b":1,"a":3,"b":2}"#, &["a"]),
            Some(vec![Some("3")])
        );
    }

    #[test]
    fn gives_up_on_what_it_does_not_handle() {
        for text in [
            r#"{"a\u0041":1}"#,
            r#"{"a":"\u00e9"}"#,
            r#"{"k\"ey":1}"#,
            "[1]",
            "",
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":1,}"#,
            r#"{"a":tru}"#,
            "{\"a\":\"\t\"}",
            r#"{"a":1} x"#,
            r#"{"a":[1,]}"#,
        ] {
            assert_eq!(scan(text, &["a"]), None, "{text}");
        }
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(70), "]".repeat(70));
        assert_eq!(scan(&deep, &["a"]), None);
    }

    /// Whatever the scanner accepts, the general reader accepts with the same values.
    #[test]
    fn agrees_with_the_general_reader_on_mutated_payloads() {
        let seeds = [
            r#"{"externalAssetId":"a5c9","assetName":"thermostat-01","CurrentTemperature":21.53,"Pressure":1001.2,"Timestamp":"2026-11-28T10:20:30Z"}"#,
            r#"{"a": [1, {"b": null}], "c": "x\\y", "d": -1.5E-3, "e": {}, "f": []}"#,
        ];
        let keys = [
            "externalAssetId",
            "assetName",
            "CurrentTemperature",
            "Timestamp",
            "a",
            "c",
            "d",
            "e",
        ];
        let alphabet = b"{}[]:,\"\\ -+.eE019tfnul\x01aAx";
        let mut state = 0x1234_5678_9abc_def0u64;
        let mut random = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let mut scanned = 0;
        for i in 0..20_000 {
            let mut bytes = seeds[i % seeds.len()].as_bytes().to_vec();
            for _ in 0..1 + random(3) {
                let at = random(bytes.len() + 1);
                let c = alphabet[random(alphabet.len())];
                match random(3) {
                    0 if at < bytes.len() => bytes[at] = c,
                    1 if at < bytes.len() => {
                        bytes.remove(at);
                    }
                    _ => bytes.insert(at, c),
                }
            }
            let Ok(text) = std::str::from_utf8(&bytes) else {
                continue;
            };
            let Some(values) = scan(text, &keys) else {
                continue;
            };
            scanned += 1;
            let fields = parse_object(text.as_bytes())
                .unwrap_or_else(|e| panic!("scanned, but the general reader says {e}: {text}"));
            for (key, value) in keys.iter().zip(values) {
                assert_eq!(fields.get(key), value, "{key} in {text}");
            }
        }
        assert!(
            scanned > 1000,
            "only {scanned} mutated payloads were scanned"
        );
    }
}
