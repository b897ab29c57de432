//! The dead-letter sink: where a message goes when the destination will never take it, with
//! the reason, so that nothing a source delivered disappears. Entries are written (and
//! synced, or confirmed by the broker) before the source hears that the message is settled.

mod mqtt;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::{json, Map, Value};
use tokio::io::AsyncWriteExt;

use kusto_model::datetime::DateTime;

pub use mqtt::MqttDeadLetters;

use crate::plugin::{Message, RejectionKind};
use crate::sources::now_nanos;

/// A message the destination rejected, and why.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub message: Message,
    pub origin: String,
    pub kind: RejectionKind,
    pub reason: String,
}

impl DeadLetter {
    /// One JSON object: the original message (payload as text when it is UTF-8, base64
    /// otherwise), its topic and properties, where it came from, the kind of rejection (as the
    /// contract spells it), the reason and the time.
    pub fn to_json(&self, now_nanos: u64) -> Value {
        let m = &self.message;
        let mut entry = Map::new();
        entry.insert(
            "time".into(),
            json!(DateTime::from_unix_nanos(now_nanos).to_string()),
        );
        entry.insert("kind".into(), json!(self.kind.as_str()));
        entry.insert("reason".into(), json!(self.reason));
        entry.insert("origin".into(), json!(self.origin));
        entry.insert("topic".into(), json!(m.topic));
        match std::str::from_utf8(&m.payload) {
            Ok(text) => entry.insert("payload".into(), json!(text)),
            Err(_) => entry.insert("payloadBase64".into(), json!(base64(&m.payload))),
        };
        if let Some(content_type) = &m.content_type {
            entry.insert("contentType".into(), json!(content_type));
        }
        if !m.user_properties.is_empty() {
            let properties: Vec<Value> = m
                .user_properties
                .iter()
                .map(|(k, v)| json!([k, v]))
                .collect();
            entry.insert("userProperties".into(), Value::Array(properties));
        }
        entry.insert(
            "receivedAt".into(),
            json!(DateTime::from_unix_nanos(m.timestamp_nanos).to_string()),
        );
        Value::Object(entry)
    }
}

/// Where rejected messages go.
pub enum DeadLetterSink {
    /// Only into the run's report (the demo and the benchmark, where a person reads it).
    ReportOnly,
    /// Appended to a JSON Lines file, one entry per line.
    JsonLines {
        path: PathBuf,
        file: tokio::fs::File,
    },
    /// Published to an MQTT topic, one entry per message.
    Mqtt(MqttDeadLetters),
}

impl DeadLetterSink {
    /// Opens (or creates) a JSON Lines file for appending.
    pub async fn json_lines(path: &Path) -> Result<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(parent)
                .await
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .await
            .with_context(|| format!("opening the dead-letter file {}", path.display()))?;
        Ok(Self::JsonLines {
            path: path.to_path_buf(),
            file,
        })
    }

    pub fn describe(&self) -> String {
        match self {
            Self::ReportOnly => "the run's report".into(),
            Self::JsonLines { path, .. } => path.display().to_string(),
            Self::Mqtt(publisher) => format!("MQTT topic `{}`", publisher.topic),
        }
    }

    /// Writes the entries durably; only then may the messages be acknowledged.
    pub async fn write(&mut self, letters: &[DeadLetter]) -> Result<()> {
        if letters.is_empty() {
            return Ok(());
        }
        match self {
            Self::ReportOnly => Ok(()),
            Self::Mqtt(publisher) => {
                let now = now_nanos();
                let entries = letters
                    .iter()
                    .map(|letter| letter.to_json(now).to_string().into_bytes())
                    .collect();
                publisher.publish(entries).await
            }
            Self::JsonLines { path, file } => {
                let now = now_nanos();
                let mut text = String::new();
                for letter in letters {
                    text.push_str(&letter.to_json(now).to_string());
                    text.push('\n');
                }
                file.write_all(text.as_bytes())
                    .await
                    .with_context(|| format!("writing to {}", path.display()))?;
                file.sync_data()
                    .await
                    .with_context(|| format!("syncing {}", path.display()))
            }
        }
    }
}

/// Standard base64 with padding, for payloads that are not text.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard_alphabet_and_padding() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(&[0xff, 0xfe, 0x00, 0x80]), "//4AgA==");
    }

    #[test]
    fn an_entry_holds_the_message_its_properties_and_the_reason() {
        let letter = DeadLetter {
            message: Message {
                sequence: 7,
                topic: "factory/1".into(),
                payload: b"{\"t\": \"hot\"}".to_vec(),
                content_type: Some("application/json".into()),
                user_properties: vec![("site".into(), "north".into())],
                timestamp_nanos: 1_764_325_230_000_000_000,
            },
            origin: "mqtt:factory/1".into(),
            kind: RejectionKind::Conversion,
            reason: "column `t` (real): string \"hot\" is not a number".into(),
        };
        let entry = letter.to_json(1_764_325_231_500_000_000);
        assert_eq!(entry["payload"], "{\"t\": \"hot\"}");
        assert_eq!(entry["topic"], "factory/1");
        assert_eq!(entry["userProperties"][0][1], "north");
        assert_eq!(entry["contentType"], "application/json");
        assert_eq!(entry["time"], "2025-11-28T10:20:31.5Z");
        assert!(entry["reason"].as_str().unwrap().contains("column `t`"));
        assert_eq!(entry["kind"], "conversion");
        let binary = DeadLetter {
            message: Message {
                payload: vec![0xff, 0x00],
                ..letter.message.clone()
            },
            ..letter
        };
        assert_eq!(binary.to_json(0)["payloadBase64"], "/wA=");
    }
}
