//! Faults the local endpoint injects into ingestion requests, so that outages can be
//! rehearsed: throttling with `Retry-After`, 5xx answers, slow answers and dropped
//! connections, each at a rate, always or within a time window.
//!
//! The command-line form is `KIND[:RATE][@START+LENGTH]`, for example `429:0.1` (a tenth of
//! requests throttled), `503@30s+30s` (down from 30 s after start, for 30 s), `slow=2s:0.05`,
//! `drop:0.02`, `429=5s` (throttled with `Retry-After: 5`).

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq)]
pub enum FaultKind {
    /// 429 with `Retry-After` in seconds.
    Throttle { retry_after_seconds: u64 },
    /// A 5xx answer with a transient Kusto error body.
    ServerError(u16),
    /// The answer comes after this delay.
    Slow(Duration),
    /// The connection is closed without an answer.
    DropConnection,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    pub kind: FaultKind,
    /// Share of requests hit, 0 to 1.
    pub rate: f64,
    /// Active only from `start` after the endpoint started, for `length`.
    pub window: Option<(Duration, Duration)>,
}

impl FromStr for Fault {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (rest, window) = match text.split_once('@') {
            Some((rest, window)) => {
                let (start, length) = window.split_once('+').ok_or_else(|| {
                    format!("`{text}`: a window is @START+LENGTH, for example @30s+30s")
                })?;
                (rest, Some((duration(start)?, duration(length)?)))
            }
            None => (text, None),
        };
        let (kind, rate) = match rest.split_once(':') {
            Some((kind, rate)) => {
                let rate: f64 = rate
                    .parse()
                    .ok()
                    .filter(|r| (0.0..=1.0).contains(r))
                    .ok_or_else(|| {
                        format!("`{text}`: the rate `{rate}` is not a number from 0 to 1")
                    })?;
                (kind, rate)
            }
            None => (rest, 1.0),
        };
        let (name, argument) = match kind.split_once('=') {
            Some((name, argument)) => (name, Some(argument)),
            None => (kind, None),
        };
        let kind = match (name, argument) {
            ("429", None) => FaultKind::Throttle {
                retry_after_seconds: 1,
            },
            ("429", Some(after)) => FaultKind::Throttle {
                retry_after_seconds: duration(after)?.as_secs(),
            },
            ("500" | "502" | "503" | "504", None) => {
                FaultKind::ServerError(name.parse().expect("a status"))
            }
            ("slow", Some(delay)) => FaultKind::Slow(duration(delay)?),
            ("drop", None) => FaultKind::DropConnection,
            _ => {
                return Err(format!(
                    "`{text}`: unknown fault (known: 429, 429=<retry-after>, 500, 502, 503, 504, slow=<delay>, drop)"
                ))
            }
        };
        Ok(Fault { kind, rate, window })
    }
}

/// `250ms`, `2s`, `1m`, or plain seconds.
fn duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (for example 500ms, 2s, 1m)"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("`{text}`: unknown unit `{unit}` (ms, s, m)")),
    };
    Ok(Duration::from_secs_f64(seconds))
}

/// The faults in force, and how many were injected.
pub struct Faults {
    rules: Mutex<Vec<Fault>>,
    started: Instant,
    random: AtomicU64,
    injected: AtomicU64,
}

impl Faults {
    pub fn new(rules: Vec<Fault>) -> Self {
        Self {
            rules: Mutex::new(rules),
            started: Instant::now(),
            random: AtomicU64::new(crate::now_nanos() | 1),
            injected: AtomicU64::new(0),
        }
    }

    pub fn replace(&self, rules: Vec<Fault>) {
        *self.rules.lock().unwrap() = rules;
    }

    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::Relaxed)
    }

    /// The fault for the next ingestion request, if one hits it: the first rule in force
    /// whose rate draws it.
    pub fn pick(&self) -> Option<FaultKind> {
        let elapsed = self.started.elapsed();
        let rules = self.rules.lock().unwrap();
        for rule in rules.iter() {
            let active = rule
                .window
                .is_none_or(|(start, length)| elapsed >= start && elapsed < start + length);
            if active && self.draw() < rule.rate {
                self.injected.fetch_add(1, Ordering::Relaxed);
                return Some(rule.kind.clone());
            }
        }
        None
    }

    /// A uniform number in [0, 1) (xorshift: cheap, and good enough to pick requests).
    fn draw(&self) -> f64 {
        let mut x = self.random.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.random.store(x, Ordering::Relaxed);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_command_line_form() {
        let f: Fault = "429:0.2".parse().unwrap();
        assert_eq!(
            (f.kind, f.rate, f.window),
            (
                FaultKind::Throttle {
                    retry_after_seconds: 1
                },
                0.2,
                None
            )
        );
        let f: Fault = "503@30s+1m".parse().unwrap();
        assert_eq!(f.kind, FaultKind::ServerError(503));
        assert_eq!(
            f.window,
            Some((Duration::from_secs(30), Duration::from_secs(60)))
        );
        assert_eq!(
            "slow=250ms:0.5".parse::<Fault>().unwrap().kind,
            FaultKind::Slow(Duration::from_millis(250))
        );
        assert_eq!(
            "429=5s".parse::<Fault>().unwrap().kind,
            FaultKind::Throttle {
                retry_after_seconds: 5
            }
        );
        assert_eq!(
            "drop".parse::<Fault>().unwrap().kind,
            FaultKind::DropConnection
        );
        assert!("418"
            .parse::<Fault>()
            .unwrap_err()
            .contains("unknown fault"));
        assert!("429:2"
            .parse::<Fault>()
            .unwrap_err()
            .contains("from 0 to 1"));
        assert!("503@30s"
            .parse::<Fault>()
            .unwrap_err()
            .contains("@START+LENGTH"));
        assert!("slow=2h"
            .parse::<Fault>()
            .unwrap_err()
            .contains("unknown unit"));
    }

    #[test]
    fn a_rate_hits_about_that_share_of_requests_and_windows_close() {
        let faults = Faults::new(vec!["503:0.2".parse().unwrap()]);
        let hits = (0..10_000).filter(|_| faults.pick().is_some()).count();
        assert!((1_700..2_300).contains(&hits), "{hits}");
        assert_eq!(faults.injected(), hits as u64);
        faults.replace(vec!["drop@0s+0s".parse().unwrap()]);
        assert_eq!(faults.pick(), None);
    }
}
