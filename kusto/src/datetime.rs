//! Kusto `datetime` values: UTC instants with 100 ns ticks, from 0001-01-01 to 9999-12-31.
//! Parses ISO 8601 text (any offset, converted to UTC, fractions kept to the tick) and Unix
//! epoch numbers, and prints the canonical `yyyy-MM-ddTHH:mm:ss.fffffffZ` form.

use std::fmt;

const TICKS_PER_SECOND: i64 = 10_000_000;
const SECONDS_PER_DAY: i64 = 86_400;
/// Seconds from 0001-01-01 to 1970-01-01.
const MIN_UNIX_SECONDS: i64 = -62_135_596_800;
/// Seconds from 1970-01-01 to 10000-01-01.
const END_UNIX_SECONDS: i64 = 253_402_300_800;
const OUT_OF_RANGE: &str = "is outside the datetime range 0001-01-01..9999-12-31";

/// A UTC instant as whole seconds since the Unix epoch plus ticks (100 ns) within the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct DateTime {
    unix_seconds: i64,
    ticks: u32,
}

impl DateTime {
    fn new(unix_seconds: i64, ticks: u32) -> Result<Self, String> {
        if !(MIN_UNIX_SECONDS..END_UNIX_SECONDS).contains(&unix_seconds) {
            return Err(OUT_OF_RANGE.into());
        }
        Ok(Self {
            unix_seconds,
            ticks,
        })
    }

    #[inline]
    pub fn unix_seconds(self) -> i64 {
        self.unix_seconds
    }

    /// Ticks (100 ns) since the Unix epoch: the instant as one number, for arithmetic.
    #[inline]
    pub fn unix_ticks(self) -> i64 {
        self.unix_seconds * TICKS_PER_SECOND + self.ticks as i64
    }

    /// The instant `ticks` (100 ns) after the Unix epoch, if within Kusto's range.
    pub fn from_unix_ticks(ticks: i64) -> Result<Self, String> {
        Self::new(
            ticks.div_euclid(TICKS_PER_SECOND),
            ticks.rem_euclid(TICKS_PER_SECOND) as u32,
        )
    }

    #[inline]
    pub fn from_unix_nanos(nanos: u64) -> Self {
        Self {
            unix_seconds: (nanos / 1_000_000_000) as i64,
            ticks: ((nanos % 1_000_000_000) / 100) as u32,
        }
    }

    /// Unix time counted in units of which there are `per_second` in a second (1 for
    /// seconds, 1000 for milliseconds, …). Integers are converted exactly; fractions are kept
    /// to the tick.
    #[inline]
    pub fn from_unix_number(text: &str, per_second: i64) -> Result<Self, String> {
        if let Ok(whole) = text.parse::<i64>() {
            let seconds = whole.div_euclid(per_second);
            let rest = whole.rem_euclid(per_second) as i128;
            let ticks = rest * TICKS_PER_SECOND as i128 / per_second as i128;
            return Self::new(seconds, ticks as u32);
        }
        let value: f64 = text.parse().map_err(|_| "is not a number".to_string())?;
        let total_ticks = (value * (TICKS_PER_SECOND as f64 / per_second as f64)).round();
        if !total_ticks.is_finite() || total_ticks.abs() > 4e18 {
            return Err(OUT_OF_RANGE.into());
        }
        let total_ticks = total_ticks as i64;
        Self::new(
            total_ticks.div_euclid(TICKS_PER_SECOND),
            total_ticks.rem_euclid(TICKS_PER_SECOND) as u32,
        )
    }

    /// ISO 8601, or RFC 1123 / RFC 822 (`Sat, 28 Nov 2026 10:20:30 GMT`).
    #[inline]
    pub fn parse(text: &str) -> Result<Self, String> {
        match Self::parse_iso8601(text) {
            Ok(dt) => Ok(dt),
            Err(iso_error) => parse_rfc1123(text).ok_or(iso_error),
        }
    }

    /// ISO 8601: `yyyy-MM-dd`, optionally `T` or a space and `HH:mm[:ss[.f...]]`, optionally
    /// `Z` or an offset `±HH:mm` / `±HHmm`. Without an offset the time is taken as UTC, as
    /// Kusto does. Digits after the seventh fractional one are below Kusto's resolution and dropped.
    #[inline]
    pub fn parse_iso8601(text: &str) -> Result<Self, String> {
        let invalid = || "is not an ISO 8601 or RFC 1123 datetime".to_string();
        let b = text.as_bytes();
        let mut cursor = Cursor { b, pos: 0 };
        let year = cursor.digits(4).ok_or_else(invalid)?;
        cursor.expect(b'-').ok_or_else(invalid)?;
        let month = cursor.digits(2).ok_or_else(invalid)?;
        cursor.expect(b'-').ok_or_else(invalid)?;
        let day = cursor.digits(2).ok_or_else(invalid)?;
        if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
            return Err("is not a valid calendar date".into());
        }
        let (mut hour, mut minute, mut second, mut ticks) = (0, 0, 0, 0u32);
        let mut offset_seconds = 0i64;
        if cursor.pos < b.len() {
            if !matches!(b[cursor.pos], b'T' | b't' | b' ') {
                return Err(invalid());
            }
            cursor.pos += 1;
            hour = cursor.digits(2).ok_or_else(invalid)?;
            cursor.expect(b':').ok_or_else(invalid)?;
            minute = cursor.digits(2).ok_or_else(invalid)?;
            if cursor.peek() == Some(b':') {
                cursor.pos += 1;
                second = cursor.digits(2).ok_or_else(invalid)?;
                if matches!(cursor.peek(), Some(b'.') | Some(b',')) {
                    cursor.pos += 1;
                    let start = cursor.pos;
                    while cursor.peek().is_some_and(|c| c.is_ascii_digit()) {
                        let digit = (b[cursor.pos] - b'0') as u32;
                        let place = cursor.pos - start;
                        // Ticks of 100 ns: the first fractional digit is worth 10^6 of them.
                        const PLACE_VALUE: [u32; 7] =
                            [1_000_000, 100_000, 10_000, 1_000, 100, 10, 1];
                        if let Some(value) = PLACE_VALUE.get(place) {
                            ticks += digit * value;
                        }
                        cursor.pos += 1;
                    }
                    if cursor.pos == start {
                        return Err(invalid());
                    }
                }
            }
            if hour > 23 || minute > 59 || second > 59 {
                return Err("has an invalid time of day".into());
            }
            match cursor.peek() {
                None => {}
                Some(b'Z') | Some(b'z') => cursor.pos += 1,
                Some(sign @ (b'+' | b'-')) => {
                    cursor.pos += 1;
                    let oh = cursor.digits(2).ok_or_else(invalid)?;
                    if cursor.peek() == Some(b':') {
                        cursor.pos += 1;
                    }
                    let om = cursor.digits(2).ok_or_else(invalid)?;
                    if oh > 23 || om > 59 {
                        return Err("has an invalid UTC offset".into());
                    }
                    let offset = (oh * 3600 + om * 60) as i64;
                    offset_seconds = if sign == b'+' { offset } else { -offset };
                }
                Some(_) => return Err(invalid()),
            }
            if cursor.pos != b.len() {
                return Err(invalid());
            }
        }
        let days = days_from_civil(year as i64, month, day);
        let seconds =
            days * SECONDS_PER_DAY + (hour * 3600 + minute * 60 + second) as i64 - offset_seconds;
        Self::new(seconds, ticks)
    }
}

impl DateTime {
    /// Appends `yyyy-MM-ddTHH:mm:ss[.fffffff]Z`, the fraction trimmed of trailing zeros.
    /// Digits are written by hand: this runs once per datetime cell, and `fmt` costs more
    /// than the rest of the row.
    #[inline]
    pub fn write_iso8601(self, out: &mut Vec<u8>) {
        let days = self.unix_seconds.div_euclid(SECONDS_PER_DAY);
        let secs = self.unix_seconds.rem_euclid(SECONDS_PER_DAY) as u32;
        let (year, month, day) = civil_from_days(days);
        let mut text = *b"0000-00-00T00:00:00.0000000";
        put_digits(&mut text[0..4], year as u32);
        put_digits(&mut text[5..7], month);
        put_digits(&mut text[8..10], day);
        put_digits(&mut text[11..13], secs / 3600);
        put_digits(&mut text[14..16], secs / 60 % 60);
        put_digits(&mut text[17..19], secs % 60);
        let end = if self.ticks == 0 {
            19
        } else {
            put_digits(&mut text[20..27], self.ticks);
            27 - text[20..27]
                .iter()
                .rev()
                .take_while(|&&d| d == b'0')
                .count()
        };
        // The whole array, then cut: a copy of a fixed length is inline in wasm, where one
        // of a variable length is a call into the host (`memory.copy`).
        out.extend_from_slice(&text);
        out.truncate(out.len() - (text.len() - end));
        out.push(b'Z');
    }
}

/// Writes `value` in decimal into all of `digits`, zero-padded on the left.
fn put_digits(digits: &mut [u8], mut value: u32) {
    for digit in digits.iter_mut().rev() {
        *digit = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = Vec::with_capacity(28);
        self.write_iso8601(&mut text);
        f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
    }
}

struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }
    fn expect(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.pos += 1)
    }
    fn digits(&mut self, count: usize) -> Option<u32> {
        let slice = self.b.get(self.pos..self.pos + count)?;
        let mut value = 0;
        for &c in slice {
            if !c.is_ascii_digit() {
                return None;
            }
            value = value * 10 + (c - b'0') as u32;
        }
        self.pos += count;
        Some(value)
    }
}

fn is_leap(year: u32) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = month as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

/// `[Www, ]dd Mon yyyy HH:mm[:ss] (GMT|UTC|Z|±hhmm)`
fn parse_rfc1123(text: &str) -> Option<DateTime> {
    let text = match text.split_once(',') {
        Some((weekday, rest))
            if weekday.len() == 3 && weekday.chars().all(|c| c.is_ascii_alphabetic()) =>
        {
            rest
        }
        _ => text,
    };
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [day, month, year, time, zone] = parts.as_slice() else {
        return None;
    };
    let day: u32 = day.parse().ok()?;
    let month = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(month))? as u32 + 1;
    let year: u32 = year.parse().ok().filter(|_| year.len() == 4)?;
    let offset = match zone.to_ascii_uppercase().as_str() {
        "GMT" | "UTC" | "UT" | "Z" => "Z".to_string(),
        z if z.len() == 5 && (z.starts_with('+') || z.starts_with('-')) => z.to_string(),
        _ => return None,
    };
    let time = if time.len() == 5 {
        format!("{time}:00")
    } else {
        time.to_string()
    };
    let iso = format!("{year:04}-{month:02}-{day:02}T{time}{offset}");
    DateTime::parse_iso8601(&iso).ok()
}

/// Kusto `timespan` text, normalized to `[-][d.]hh:mm:ss[.fffffff]`. Accepts that form
/// (minutes and seconds optional as Kusto allows: `hh:mm`) and ISO 8601 durations
/// (`PT1H30M`, `P2DT3H`, `PT0.5S`, `P1W`).
pub fn parse_timespan(text: &str) -> Result<String, String> {
    timespan_ticks(text).map(format_timespan)
}

/// A timespan's ticks (100 ns), from the same forms `parse_timespan` reads.
pub fn timespan_ticks(text: &str) -> Result<i128, String> {
    let ticks = if text.trim_start_matches('-').starts_with(['P', 'p']) {
        iso_duration_ticks(text)
    } else {
        clock_ticks(text)
    }
    .ok_or_else(|| {
        "is not a timespan ([-][d.]hh:mm[:ss[.fffffff]] or an ISO 8601 duration such as PT1H30M)"
            .to_string()
    })?;
    Ok(ticks)
}

fn clock_ticks(text: &str) -> Option<i128> {
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (days, clock) = match body.split_once('.') {
        Some((d, rest)) if rest.contains(':') && !d.contains(':') => (Some(d), rest),
        _ => (None, body),
    };
    let days: i128 = match days {
        Some(d) if !d.is_empty() && d.bytes().all(|c| c.is_ascii_digit()) && d.len() <= 8 => {
            d.parse().ok()?
        }
        Some(_) => return None,
        None => 0,
    };
    let (clock, fraction) = match clock.split_once('.') {
        Some((c, f)) => (c, Some(f)),
        None => (clock, None),
    };
    let fraction_ticks = match fraction {
        Some(f) if !f.is_empty() && f.len() <= 7 && f.bytes().all(|c| c.is_ascii_digit()) => {
            format!("{f:0<7}").parse::<i128>().ok()?
        }
        Some(_) => return None,
        None => 0,
    };
    let parts: Vec<&str> = clock.split(':').collect();
    if !(2..=3).contains(&parts.len()) || (fraction.is_some() && parts.len() != 3) {
        return None;
    }
    let mut seconds = 0i128;
    for (part, (max, scale)) in parts.iter().zip([(23, 3600), (59, 60), (59, 1)]) {
        let value: i128 = part.parse().ok().filter(|v| *v <= max && part.len() == 2)?;
        seconds += value * scale;
    }
    let ticks = (days * 86_400 + seconds) * TICKS_PER_SECOND as i128 + fraction_ticks;
    Some(if negative { -ticks } else { ticks })
}

fn iso_duration_ticks(text: &str) -> Option<i128> {
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let body = body.strip_prefix(['P', 'p'])?;
    let (date, time) = match body.split_once(['T', 't']) {
        Some((d, t)) if !t.is_empty() => (d, Some(t)),
        Some(_) => return None,
        None => (body, None),
    };
    let mut ticks = 0i128;
    let mut any = false;
    let mut add = |part: &str, units: &[(char, i128)]| -> Option<()> {
        let mut number = String::new();
        let mut next_unit = 0;
        for c in part.chars() {
            if c.is_ascii_digit() || c == '.' {
                number.push(c);
                continue;
            }
            let position = units[next_unit..]
                .iter()
                .position(|(u, _)| u.eq_ignore_ascii_case(&c))?;
            let (_, scale) = units[next_unit + position];
            next_unit += position + 1;
            let value: f64 = number.parse().ok()?;
            ticks += (value * scale as f64).round() as i128;
            number.clear();
            any = true;
        }
        number.is_empty().then_some(())
    };
    let t = TICKS_PER_SECOND as i128;
    add(date, &[('W', 7 * 86_400 * t), ('D', 86_400 * t)])?;
    if let Some(time) = time {
        add(time, &[('H', 3600 * t), ('M', 60 * t), ('S', t)])?;
    }
    any.then_some(if negative { -ticks } else { ticks })
}

/// `[-][d.]hh:mm:ss[.fffffff]`, as Kusto prints a timespan.
pub fn format_timespan(ticks: i128) -> String {
    let sign = if ticks < 0 { "-" } else { "" };
    let ticks = ticks.abs();
    let t = TICKS_PER_SECOND as i128;
    let (days, rest) = (ticks / (86_400 * t), ticks % (86_400 * t));
    let (hours, rest) = (rest / (3600 * t), rest % (3600 * t));
    let (minutes, rest) = (rest / (60 * t), rest % (60 * t));
    let (seconds, fraction) = (rest / t, rest % t);
    let mut out = String::from(sign);
    if days > 0 {
        out.push_str(&format!("{days}."));
    }
    out.push_str(&format!("{hours:02}:{minutes:02}:{seconds:02}"));
    if fraction > 0 {
        let digits = format!("{fraction:07}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iso(text: &str) -> String {
        DateTime::parse_iso8601(text).unwrap().to_string()
    }

    #[test]
    fn keeps_sub_second_precision_to_the_tick() {
        assert_eq!(
            iso("2026-11-28T10:20:30.1234567Z"),
            "2026-11-28T10:20:30.1234567Z"
        );
        assert_eq!(iso("2026-11-28T10:20:30.123Z"), "2026-11-28T10:20:30.123Z");
        assert_eq!(
            iso("2026-11-28T10:20:30.123456789Z"),
            "2026-11-28T10:20:30.1234567Z"
        );
        assert_eq!(iso("2026-11-28T10:20:30Z"), "2026-11-28T10:20:30Z");
    }

    #[test]
    fn converts_offsets_to_utc_and_accepts_date_only() {
        assert_eq!(iso("2026-01-01T01:30:00+02:00"), "2025-12-31T23:30:00Z");
        assert_eq!(iso("2026-01-01T01:30:00-0130"), "2026-01-01T03:00:00Z");
        assert_eq!(iso("2024-02-29"), "2024-02-29T00:00:00Z");
        assert_eq!(iso("2024-02-29 12:00"), "2024-02-29T12:00:00Z");
        assert_eq!(iso("0001-01-01T00:00:00Z"), "0001-01-01T00:00:00Z");
    }

    #[test]
    fn rejects_what_is_not_a_datetime() {
        for bad in [
            "2023-02-29",
            "2026-13-01",
            "2026-11-28T24:00:00Z",
            "yesterday",
            "2026-11-28T10:20:30.Z",
            "2026-11-28T10:20:30Zjunk",
            "1700000000",
        ] {
            assert!(DateTime::parse_iso8601(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn converts_unix_numbers_exactly() {
        let s = DateTime::from_unix_number("1764325230", 1).unwrap();
        let us = DateTime::from_unix_number("1764325230123456", 1_000_000).unwrap();
        assert_eq!(us.to_string(), "2025-11-28T10:20:30.123456Z");
        let ns = DateTime::from_unix_number("1764325230123456789", 1_000_000_000).unwrap();
        assert_eq!(ns.to_string(), "2025-11-28T10:20:30.1234567Z");
        let before_1970 = DateTime::from_unix_number("-1500", 1000).unwrap();
        assert_eq!(before_1970.to_string(), "1969-12-31T23:59:58.5Z");
        assert_eq!(s.to_string(), "2025-11-28T10:20:30Z");
        let ms = DateTime::from_unix_number("1764325230123", 1000).unwrap();
        assert_eq!(ms.to_string(), "2025-11-28T10:20:30.123Z");
        let frac = DateTime::from_unix_number("1764325230.5", 1).unwrap();
        assert_eq!(frac.to_string(), "2025-11-28T10:20:30.5Z");
        assert!(DateTime::from_unix_number("1e300", 1).is_err());
        let nanos = DateTime::from_unix_nanos(1_764_325_230_123_456_789);
        assert_eq!(nanos.to_string(), "2025-11-28T10:20:30.1234567Z");
    }

    #[test]
    fn reads_rfc1123_dates() {
        let dt = DateTime::parse("Sat, 28 Nov 2026 10:20:30 GMT").unwrap();
        assert_eq!(dt.to_string(), "2026-11-28T10:20:30Z");
        let dt = DateTime::parse("28 Nov 2026 10:20 +0100").unwrap();
        assert_eq!(dt.to_string(), "2026-11-28T09:20:00Z");
        assert!(DateTime::parse("Sat, 31 Nov 2026 10:20:30 GMT").is_err());
        assert!(DateTime::parse("28 Foo 2026 10:20:30 GMT").is_err());
    }

    #[test]
    fn normalizes_timespans() {
        let cases = [
            ("00:01:00", "00:01:00"),
            ("1.02:03:04", "1.02:03:04"),
            ("-00:00:01.5", "-00:00:01.5"),
            ("10:30", "10:30:00"),
            ("00:00:00.1234567", "00:00:00.1234567"),
            ("PT1H30M", "01:30:00"),
            ("P2DT3H", "2.03:00:00"),
            ("PT0.5S", "00:00:00.5"),
            ("P1W", "7.00:00:00"),
            ("-PT90M", "-01:30:00"),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_timespan(input).as_deref(), Ok(expected), "{input}");
        }
        for bad in [
            "1h",
            "25:00:00",
            "00:60:00",
            "1.2",
            "00:00:00.12345678",
            "",
            "P",
            "PT",
            "P1H",
            "PT1M1H",
        ] {
            assert!(parse_timespan(bad).is_err(), "{bad}");
        }
    }
}
