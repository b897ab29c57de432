//! Kusto's rules as plain Rust, shared by the ADX plugin (which compiles them to wasm), the
//! local ADX-compatible endpoint and the runtime's configuration checks, so all three read a
//! table, a datetime and a name alike. The functions a conversion calls per message are
//! `#[inline]`: natively, without LTO, a call into another crate is otherwise never inlined.

pub mod datetime;
pub mod schema;

/// Percent-encodes a path or query component (database and table names may hold spaces).
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
