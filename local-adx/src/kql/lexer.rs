//! KQL's tokens: names (`T`, `['my table']`), numbers, timespans (`5m`, `1.5h`, `100ms`),
//! string literals, and the operators of the subset.

use super::super::literal::read_string;

#[derive(Debug, Clone, PartialEq)]
pub enum Token {
    Name(String),
    /// A bracketed name (`['x y']`), never a keyword.
    QuotedName(String),
    Str(String),
    Long(i64),
    Real(f64),
    /// Ticks (100 ns).
    Timespan(i64),
    Symbol(&'static str),
    /// The text inside `datetime(…)`, `timespan(…)` and `time(…)`, which is not KQL.
    Raw(String),
}

const SYMBOLS: &[&str] = &[
    "==", "!=", "<>", "<=", ">=", "=~", "!~", "..", "|", "(", ")", ",", "<", ">", "=", "+", "-",
    "*", "/", "%", "[", "]", ".", ";",
];

/// Tokens with their byte offsets.
pub fn tokens(text: &str) -> Result<Vec<(Token, usize)>, String> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if text[i..].starts_with("//") {
            i = text[i..].find('\n').map_or(text.len(), |e| i + e);
            continue;
        }
        let start = i;
        if let Some(literal) = read_string(text, i) {
            let (value, end) = literal?;
            out.push((Token::Str(value), start));
            i = end;
            continue;
        }
        if text[i..].starts_with("['") || text[i..].starts_with("[\"") {
            let literal = read_string(text, i + 1).expect("a quote follows")?;
            let (name, end) = literal;
            if bytes.get(end) != Some(&b']') {
                return Err(format!("a bracketed name at {start} is not closed with ]"));
            }
            out.push((Token::QuotedName(name), start));
            i = end + 1;
            continue;
        }
        if c.is_ascii_digit() {
            let (token, end) = number(text, i)?;
            out.push((token, start));
            i = end;
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' || c == b'$' {
            let mut end = text[i..]
                .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
                .map_or(text.len(), |e| i + e);
            if text[i..end].eq_ignore_ascii_case("in") && bytes.get(end) == Some(&b'~') {
                end += 1;
            }
            let word = &text[i..end];
            if matches!(
                word.to_ascii_lowercase().as_str(),
                "datetime" | "timespan" | "time"
            ) {
                let open = text[end..]
                    .find(|c: char| !c.is_whitespace())
                    .map(|o| end + o);
                if let Some(open) = open.filter(|&o| bytes[o] == b'(') {
                    let close = text[open..]
                        .find(')')
                        .map(|c| open + c)
                        .ok_or_else(|| format!("{word}( at position {start} is not closed"))?;
                    out.push((Token::Name(word.to_string()), start));
                    out.push((Token::Symbol("("), open));
                    out.push((Token::Raw(text[open + 1..close].to_string()), open + 1));
                    out.push((Token::Symbol(")"), close));
                    i = close + 1;
                    continue;
                }
            }
            out.push((Token::Name(word.to_string()), start));
            i = end;
            continue;
        }
        // `!contains`, `!has`, `!in`, `!between` are one word with `!`; `in~` ends with `~`.
        if c == b'!' && text[i + 1..].starts_with(|ch: char| ch.is_ascii_alphabetic()) {
            let mut end = text[i + 1..]
                .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
                .map_or(text.len(), |e| i + 1 + e);
            if text[i..end].eq_ignore_ascii_case("!in") && bytes.get(end) == Some(&b'~') {
                end += 1;
            }
            out.push((Token::Name(text[i..end].to_string()), start));
            i = end;
            continue;
        }
        match SYMBOLS.iter().find(|s| text[i..].starts_with(**s)) {
            Some(symbol) => {
                out.push((Token::Symbol(symbol), start));
                i += symbol.len();
            }
            None => {
                let ch = text[i..].chars().next().unwrap_or('?');
                return Err(format!("unexpected character '{ch}' at position {start}"));
            }
        }
    }
    Ok(out)
}

/// `12`, `1.5`, `1e3`, and timespans: a number followed by `d`, `h`, `m`, `s`, `ms`,
/// `microsecond(s)`, `tick(s)` (and the long names `day(s)`, `hour(s)`, `minute(s)`, `second(s)`).
fn number(text: &str, start: usize) -> Result<(Token, usize), String> {
    let bytes = text.as_bytes();
    let mut end = start;
    while end < bytes.len() && bytes[end].is_ascii_digit() {
        end += 1;
    }
    let mut real = false;
    if end + 1 < bytes.len() && bytes[end] == b'.' && bytes[end + 1].is_ascii_digit() {
        real = true;
        end += 1;
        while end < bytes.len() && bytes[end].is_ascii_digit() {
            end += 1;
        }
    }
    if end < bytes.len() && (bytes[end] == b'e' || bytes[end] == b'E') {
        let mut exp = end + 1;
        if exp < bytes.len() && (bytes[exp] == b'+' || bytes[exp] == b'-') {
            exp += 1;
        }
        if exp < bytes.len() && bytes[exp].is_ascii_digit() {
            real = true;
            end = exp;
            while end < bytes.len() && bytes[end].is_ascii_digit() {
                end += 1;
            }
        }
    }
    let digits = &text[start..end];
    let unit_end = text[end..]
        .find(|c: char| !c.is_ascii_alphabetic())
        .map_or(text.len(), |e| end + e);
    let unit = &text[end..unit_end];
    if !unit.is_empty() {
        let per_unit: f64 = match unit {
            "d" | "day" | "days" => 864_000_000_000.0,
            "h" | "hr" | "hrs" | "hour" | "hours" => 36_000_000_000.0,
            "m" | "min" | "minute" | "minutes" => 600_000_000.0,
            "s" | "sec" | "second" | "seconds" => 10_000_000.0,
            "ms" | "milli" | "millis" | "millisecond" | "milliseconds" => 10_000.0,
            "microsecond" | "microseconds" => 10.0,
            "tick" | "ticks" => 1.0,
            other => return Err(format!("`{digits}{other}`: `{other}` is not a timespan unit (d, h, m, s, ms, microsecond, tick)")),
        };
        let value: f64 = digits
            .parse()
            .map_err(|_| format!("`{digits}` is not a number"))?;
        return Ok((Token::Timespan((value * per_unit).round() as i64), unit_end));
    }
    let token = if real {
        Token::Real(
            digits
                .parse()
                .map_err(|_| format!("`{digits}` is not a number"))?,
        )
    } else {
        match digits.parse::<i64>() {
            Ok(v) => Token::Long(v),
            Err(_) => Token::Real(
                digits
                    .parse()
                    .map_err(|_| format!("`{digits}` is not a number"))?,
            ),
        }
    };
    Ok((token, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<Token> {
        tokens(text).unwrap().into_iter().map(|(t, _)| t).collect()
    }

    #[test]
    fn reads_names_numbers_timespans_and_operators() {
        assert_eq!(
            kinds("['my t'] | where a >= 1.5 and b !has 'x' | where t > ago(5m)"),
            vec![
                Token::QuotedName("my t".into()),
                Token::Symbol("|"),
                Token::Name("where".into()),
                Token::Name("a".into()),
                Token::Symbol(">="),
                Token::Real(1.5),
                Token::Name("and".into()),
                Token::Name("b".into()),
                Token::Name("!has".into()),
                Token::Str("x".into()),
                Token::Symbol("|"),
                Token::Name("where".into()),
                Token::Name("t".into()),
                Token::Symbol(">"),
                Token::Name("ago".into()),
                Token::Symbol("("),
                Token::Timespan(3_000_000_000),
                Token::Symbol(")"),
            ]
        );
        assert_eq!(kinds("1h 100ms 2d")[1], Token::Timespan(1_000_000));
        assert!(tokens("5parsecs")
            .unwrap_err()
            .contains("not a timespan unit"));
        assert!(tokens("a # b").unwrap_err().contains("'#'"));
    }
}
