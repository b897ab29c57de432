//! Writes typed rows in the stream format Kusto is told about: one JSON object per line
//! (valid as both `json` and `multijson`) or CSV in column order.

use crate::config::StreamFormat;
use crate::convert::Cell;
use crate::payload::decode_string;
use crate::scan::plain_string_content;
use crate::schema::Column;

pub struct RowEncoder {
    format: StreamFormat,
    /// `"name":` for each column, escaped once.
    json_keys: Vec<Vec<u8>>,
}

impl RowEncoder {
    pub fn new<'a>(format: StreamFormat, columns: impl Iterator<Item = &'a Column>) -> Self {
        let json_keys = columns
            .map(|c| {
                let mut key = Vec::new();
                write_json_string(&mut key, &c.name);
                key.push(b':');
                key
            })
            .collect();
        Self { format, json_keys }
    }

    /// Appends one row, ending with a newline, straight into `out`.
    pub fn encode(&self, cells: &[Cell], out: &mut Vec<u8>) {
        match self.format {
            StreamFormat::MultiJson | StreamFormat::Json => {
                out.push(b'{');
                for (i, (key, cell)) in self.json_keys.iter().zip(cells).enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(key);
                    write_json_cell(out, cell);
                }
                out.push(b'}');
            }
            StreamFormat::Csv => {
                for (i, cell) in cells.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write_csv_cell(out, cell);
                }
            }
        }
        out.push(b'\n');
    }
}

fn write_json_cell(out: &mut Vec<u8>, cell: &Cell) {
    match cell {
        Cell::Null => out.extend_from_slice(b"null"),
        Cell::JsonString(raw) => out.extend_from_slice(raw.as_bytes()),
        Cell::Text(text) => write_json_string(out, text),
        Cell::Number(n) => out.extend_from_slice(n.as_bytes()),
        Cell::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Cell::DateTime(dt) => {
            out.push(b'"');
            dt.write_iso8601(out);
            out.push(b'"');
        }
        Cell::Json(raw) => out.extend_from_slice(single_line_json(raw).as_bytes()),
    }
}

fn write_csv_cell(out: &mut Vec<u8>, cell: &Cell) {
    match cell {
        Cell::Null => {}
        Cell::JsonString(raw) => write_csv_string(out, &decode_string(raw)),
        Cell::Text(text) => write_csv_string(out, text),
        Cell::Number(n) => out.extend_from_slice(n.as_bytes()),
        Cell::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Cell::DateTime(dt) => dt.write_iso8601(out),
        Cell::Json(raw) => write_csv_string(out, &single_line_json(raw)),
    }
}

/// Payload JSON may span lines; a row must not.
fn single_line_json(raw: &str) -> std::borrow::Cow<'_, str> {
    if raw.contains(['\n', '\r']) {
        match serde_json::from_str::<serde_json::Value>(raw) {
            Ok(value) => value.to_string().into(),
            Err(_) => raw.replace(['\n', '\r'], " ").into(),
        }
    } else {
        raw.into()
    }
}

/// A JSON string literal. Bytes are scanned, not characters: no byte of a multi-byte UTF-8
/// character is below 0x80, so only ASCII ever needs escaping.
pub fn write_json_string(out: &mut Vec<u8>, text: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = text.as_bytes();
    // Straight to the first byte that may need escaping: usually near the end.
    let clean = plain_string_content(bytes, 0);
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate().skip(clean) {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if escape.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(b >> 4) as usize]);
            out.push(HEX[(b & 0xf) as usize]);
        } else {
            out.extend_from_slice(escape);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// RFC 4180: always quoted, quotes doubled; newlines stay inside the quotes.
fn write_csv_string(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    let bytes = text.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'"' {
            out.extend_from_slice(&bytes[start..=i]);
            start = i;
        }
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datetime::DateTime;
    use crate::schema::{KustoType, TableSchema};
    use std::borrow::Cow;

    fn cells() -> Vec<Cell<'static>> {
        vec![
            Cell::JsonString(r#""a \"q\"""#),
            Cell::Text(Cow::Borrowed("line1\nline2")),
            Cell::Number(Cow::Borrowed("21.5")),
            Cell::Bool(true),
            Cell::DateTime(DateTime::parse_iso8601("2026-11-28T10:20:30.5Z").unwrap()),
            Cell::Json("{\"a\":\n [1, 2]}"),
            Cell::Null,
        ]
    }

    fn encoder(format: StreamFormat) -> RowEncoder {
        let schema = TableSchema::parse(
            "s: string, t: string, r: real, b: bool, d: datetime, j: dynamic, n: long",
        )
        .unwrap();
        assert_eq!(schema.columns[5].kusto_type, KustoType::Dynamic);
        RowEncoder::new(format, schema.columns.iter())
    }

    #[test]
    fn json_rows_are_one_line_each_and_valid_json() {
        let mut out = Vec::new();
        encoder(StreamFormat::MultiJson).encode(&cells(), &mut out);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.matches('\n').count(), 1);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["s"], "a \"q\"");
        assert_eq!(value["t"], "line1\nline2");
        assert_eq!(value["r"], 21.5);
        assert_eq!(value["b"], true);
        assert_eq!(value["d"], "2026-11-28T10:20:30.5Z");
        assert_eq!(value["j"]["a"][1], 2);
        assert!(value["n"].is_null());
    }

    #[test]
    fn csv_rows_quote_text_and_leave_nulls_empty() {
        let mut out = Vec::new();
        encoder(StreamFormat::Csv).encode(&cells(), &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"a \"\"q\"\"\",\"line1\nline2\",21.5,true,2026-11-28T10:20:30.5Z,\"{\"\"a\"\":[1,2]}\",\n"
        );
    }

    #[test]
    fn escapes_anywhere_around_the_eight_byte_steps_read_back_the_same() {
        for len in 0..20 {
            for at in 0..=len {
                for special in ["\"", "\\", "\n", "\u{1}", "é"] {
                    let text = format!("{}{special}{}", "a".repeat(at), "b".repeat(len - at));
                    let mut out = Vec::new();
                    write_json_string(&mut out, &text);
                    let back: String = serde_json::from_slice(&out).unwrap();
                    assert_eq!(back, text);
                }
            }
        }
    }

    #[test]
    fn control_characters_are_escaped() {
        let mut out = Vec::new();
        write_json_string(&mut out, "a\u{1}b\tc\u{1f}é\"\\");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#""a\u0001b\tc\u001fé\"\\""#
        );
    }
}
