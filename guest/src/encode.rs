//! Writes typed rows in the stream format Kusto is told about: one JSON object per line
//! (valid as both `json` and `multijson`) or CSV in column order.

use crate::config::StreamFormat;
use crate::convert::Cell;
use crate::schema::Column;

pub struct RowEncoder {
    format: StreamFormat,
    /// `"name":` for each column, escaped once.
    json_keys: Vec<String>,
}

impl RowEncoder {
    pub fn new<'a>(format: StreamFormat, columns: impl Iterator<Item = &'a Column>) -> Self {
        let json_keys = columns
            .map(|c| {
                let mut key = String::new();
                write_json_string(&mut key, &c.name);
                key.push(':');
                key
            })
            .collect();
        Self { format, json_keys }
    }

    /// Appends one row, ending with a newline.
    pub fn encode(&self, cells: &[Cell], out: &mut Vec<u8>) {
        // Writing through a String keeps escaping simple; the bytes move once at the end.
        let mut row = String::with_capacity(64 * cells.len());
        match self.format {
            StreamFormat::MultiJson | StreamFormat::Json => {
                row.push('{');
                for (i, (key, cell)) in self.json_keys.iter().zip(cells).enumerate() {
                    if i > 0 {
                        row.push(',');
                    }
                    row.push_str(key);
                    write_json_cell(&mut row, cell);
                }
                row.push('}');
            }
            StreamFormat::Csv => {
                for (i, cell) in cells.iter().enumerate() {
                    if i > 0 {
                        row.push(',');
                    }
                    write_csv_cell(&mut row, cell);
                }
            }
        }
        row.push('\n');
        out.extend_from_slice(row.as_bytes());
    }
}

fn write_json_cell(out: &mut String, cell: &Cell) {
    match cell {
        Cell::Null => out.push_str("null"),
        Cell::JsonString(raw) => out.push_str(raw),
        Cell::Text(text) => write_json_string(out, text),
        Cell::Number(n) => out.push_str(n),
        Cell::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Cell::DateTime(dt) => {
            use std::fmt::Write;
            let _ = write!(out, "\"{dt}\"");
        }
        Cell::Json(raw) => out.push_str(&single_line_json(raw)),
    }
}

fn write_csv_cell(out: &mut String, cell: &Cell) {
    match cell {
        Cell::Null => {}
        Cell::JsonString(raw) => {
            let text: String = serde_json::from_str(raw).unwrap_or_default();
            write_csv_string(out, &text);
        }
        Cell::Text(text) => write_csv_string(out, text),
        Cell::Number(n) => out.push_str(n),
        Cell::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Cell::DateTime(dt) => {
            use std::fmt::Write;
            let _ = write!(out, "{dt}");
        }
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

pub fn write_json_string(out: &mut String, text: &str) {
    out.push('"');
    let mut start = 0;
    for (i, c) in text.char_indices() {
        let escape = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            c if (c as u32) < 0x20 => "",
            _ => continue,
        };
        out.push_str(&text[start..i]);
        if escape.is_empty() {
            use std::fmt::Write;
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push_str(escape);
        }
        start = i + c.len_utf8();
    }
    out.push_str(&text[start..]);
    out.push('"');
}

/// RFC 4180: always quoted, quotes doubled; newlines stay inside the quotes.
fn write_csv_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
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
    fn control_characters_are_escaped() {
        let mut out = String::new();
        write_json_string(&mut out, "a\u{1}b\tc");
        assert_eq!(out, r#""a\u0001b\tc""#);
    }
}
