//! JSON Lines from a file or standard input: one message per non-empty line.

use std::sync::Arc;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, BufReader};

use super::{now_nanos, Origin, SourceMessage, SourceSender};

const READ_BUFFER: usize = 256 * 1024;

/// Reads `path` (`-` for standard input) and sends each non-empty line as a message on `topic`.
pub async fn read_path(path: &str, topic: &str, sender: SourceSender) -> anyhow::Result<u64> {
    if path == "-" {
        read_lines(BufReader::new(tokio::io::stdin()), "stdin", topic, sender).await
    } else {
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|e| anyhow::anyhow!("cannot open {path}: {e}"))?;
        // tokio reads a file on its blocking pool, a thread hand-over per read: large reads
        // make those rare (8 KiB, the default, is one per 40 or so lines of 200 bytes).
        read_lines(
            BufReader::with_capacity(READ_BUFFER, file),
            path,
            topic,
            sender,
        )
        .await
    }
}

pub async fn read_lines(
    reader: impl AsyncBufRead + Unpin,
    name: &str,
    topic: &str,
    sender: SourceSender,
) -> anyhow::Result<u64> {
    let mut lines = reader.lines();
    let source: Arc<str> = Arc::from(name);
    let (mut line_number, mut sent) = (0u64, 0u64);
    while let Some(line) = lines.next_line().await? {
        line_number += 1;
        if line.trim().is_empty() {
            continue;
        }
        let message = SourceMessage {
            topic: topic.to_string(),
            payload: line.into_bytes(),
            content_type: Some("application/json".into()),
            user_properties: Vec::new(),
            timestamp_nanos: now_nanos(),
            origin: Origin::Line {
                source: source.clone(),
                line: line_number,
            },
            receipt: None,
        };
        if sender.send(message).await.is_err() {
            break;
        }
        sent += 1;
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sends_one_message_per_non_empty_line_with_its_line_number() {
        let (tx, mut rx) = super::super::channel();
        let input = b"{\"a\":1}\n\n{\"a\":2}\n" as &[u8];
        let sent = read_lines(input, "in.jsonl", "t/1", tx).await.unwrap();
        assert_eq!(sent, 2);
        let first = rx.recv().await.unwrap();
        assert_eq!(
            (
                first.origin.describe(&first.topic),
                first.payload.as_slice()
            ),
            ("in.jsonl:1".to_string(), &b"{\"a\":1}"[..])
        );
        let second = rx.recv().await.unwrap();
        assert_eq!(second.origin.describe(&second.topic), "in.jsonl:3");
    }
}
