//! Kusto string literals, shared by management commands and queries: `'…'` and `"…"` with
//! backslash escapes, `@'…'` and `@"…"` verbatim (a doubled quote is one quote), and
//! ```` ```…``` ```` multi-line text.

/// Reads the literal starting at `text[start..]`; returns its value and the byte offset
/// just past it, or `None` when no literal starts there, or a message when one is not closed.
pub fn read_string(text: &str, start: usize) -> Option<Result<(String, usize), String>> {
    let rest = &text[start..];
    if let Some(body) = rest.strip_prefix("```") {
        return Some(match body.find("```") {
            Some(end) => Ok((body[..end].to_string(), start + 3 + end + 3)),
            None => Err("a ``` string literal is not closed".into()),
        });
    }
    let (verbatim, quote_at) = match rest.as_bytes() {
        [b'@', b'\'' | b'"', ..] => (true, 1),
        [b'\'' | b'"', ..] => (false, 0),
        _ => return None,
    };
    let quote = rest.as_bytes()[quote_at] as char;
    let mut value = String::new();
    let mut chars = rest[quote_at + 1..].char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let end = start + quote_at + 1 + i + c.len_utf8();
        match c {
            c if c == quote && verbatim && chars.peek().map(|(_, n)| *n) == Some(quote) => {
                chars.next();
                value.push(quote);
            }
            c if c == quote => return Some(Ok((value, end))),
            '\\' if !verbatim => match chars.next() {
                Some((_, 'n')) => value.push('\n'),
                Some((_, 't')) => value.push('\t'),
                Some((_, 'r')) => value.push('\r'),
                Some((_, other)) => value.push(other),
                None => break,
            },
            c => value.push(c),
        }
    }
    Some(Err(format!(
        "a string literal starting with {quote} is not closed"
    )))
}

/// A management command's words: whitespace-separated, a string literal being one word.
#[derive(Debug, Clone, PartialEq)]
pub enum Word {
    Bare(String),
    Quoted(String),
}

impl Word {
    /// The word as a name: a bare word unquoted (`['T']`), or a literal's value.
    pub fn name(&self) -> String {
        match self {
            Word::Bare(w) => kusto_model::schema::unquote_name(w),
            Word::Quoted(s) => s.clone(),
        }
    }

    /// The bare word in lower case (keywords), or `None` for a literal.
    pub fn keyword(&self) -> Option<String> {
        match self {
            Word::Bare(w) => Some(w.to_ascii_lowercase()),
            Word::Quoted(_) => None,
        }
    }
}

pub fn command_words(command: &str) -> Result<Vec<Word>, String> {
    let mut words = Vec::new();
    let mut i = 0;
    let bytes = command.as_bytes();
    while i < bytes.len() {
        if bytes[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if let Some(literal) = read_string(command, i) {
            let (value, end) = literal?;
            words.push(Word::Quoted(value));
            i = end;
            continue;
        }
        let end = command[i..]
            .find(|c: char| c.is_ascii_whitespace())
            .map_or(command.len(), |e| i + e);
        words.push(Word::Bare(command[i..end].to_string()));
        i = end;
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_kind_of_literal() {
        assert_eq!(read_string(r#"'a\'b' x"#, 0), Some(Ok(("a'b".into(), 6))));
        assert_eq!(read_string(r#"@"a""b""#, 0), Some(Ok(("a\"b".into(), 7))));
        assert_eq!(read_string("```l1\nl2```", 0).unwrap().unwrap().0, "l1\nl2");
        assert!(read_string("'open", 0).unwrap().is_err());
        assert_eq!(read_string("x", 0), None);
    }

    #[test]
    fn command_words_keep_literals_whole() {
        let words =
            command_words(r#".create table T ingestion json mapping "m 1" '[{"a": 1}]'"#).unwrap();
        assert_eq!(words.len(), 8);
        assert_eq!(words[6], Word::Quoted("m 1".into()));
        assert_eq!(words[7], Word::Quoted(r#"[{"a": 1}]"#.into()));
    }
}
