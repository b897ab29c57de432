//! A live account of a long run: in a terminal, one line rewritten every second; otherwise a
//! plain line every few seconds (logs and CI output stay readable).

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::metrics::Metrics;

const TERMINAL_INTERVAL: Duration = Duration::from_secs(1);
const LOG_INTERVAL: Duration = Duration::from_secs(5);

pub struct Progress {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Progress {
    /// Reports `metrics` on standard error until `finish`.
    pub fn start(label: &str, metrics: Arc<Metrics>) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let (stop, mut stopped) = watch::channel(false);
        let label = label.to_string();
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let interval = if terminal {
                TERMINAL_INTERVAL
            } else {
                LOG_INTERVAL
            };
            let mut ticker = tokio::time::interval(interval);
            ticker.tick().await;
            loop {
                tokio::select! {
                    _ = ticker.tick() => {}
                    _ = stopped.changed() => break,
                }
                let line = line(&label, &metrics, started.elapsed());
                let mut err = std::io::stderr().lock();
                let _ = if terminal {
                    write!(err, "\r\x1b[2K{line}")
                } else {
                    writeln!(err, "{line}")
                };
                let _ = err.flush();
            }
            if terminal {
                let _ = write!(std::io::stderr(), "\r\x1b[2K");
            }
        });
        Self { stop, task }
    }

    pub async fn finish(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// `progress: 52000 in, 51000 ingested, 12 dead-lettered, 3 retries, 48123 msgs/s`
pub fn line(label: &str, metrics: &Metrics, elapsed: Duration) -> String {
    let received = metrics.received.get();
    format!(
        "{label}: {received} in, {} ingested, {} dead-lettered, {} retries, {} in flight, {:.0} msgs/s",
        metrics.ingested.get(),
        metrics.dead_lettered.get(),
        metrics.retries.get(),
        metrics.in_flight.get(),
        received as f64 / elapsed.as_secs_f64().max(1e-9)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_gives_counts_and_the_rate() {
        let metrics = Metrics::new("adx", "t");
        metrics.received.set(1000);
        metrics.ingested.set(990);
        metrics.dead_lettered.set(10);
        assert_eq!(
            line("progress", &metrics, Duration::from_secs(2)),
            "progress: 1000 in, 990 ingested, 10 dead-lettered, 0 retries, 0 in flight, 500 msgs/s"
        );
    }
}
