//! When to try again: exponential backoff with jitter, and waits that a shutdown cuts short.

use std::time::{Duration, Instant};

use tokio::sync::watch;

/// Exponential backoff with jitter, as the Kusto SDKs do (about 1 s, doubling).
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub initial: Duration,
    pub max: Duration,
    /// Give up after this many consecutive failed attempts; `None` retries forever.
    pub max_attempts: Option<u32>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
            max_attempts: None,
        }
    }
}

impl RetryPolicy {
    /// How long a paused endpoint (a permanent error about the destination) waits between
    /// probes: someone has to fix the destination, so there is no hurry, and no giving up.
    pub fn pause() -> Self {
        Self {
            initial: Duration::from_secs(5),
            max: Duration::from_secs(60),
            max_attempts: None,
        }
    }

    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exponential = self
            .initial
            .saturating_mul(1 << attempt.min(16))
            .min(self.max);
        // Up to 25% jitter so that many hosts do not retry in lockstep.
        let jitter_range = exponential.as_millis() as u64 / 4;
        let jitter = if jitter_range == 0 {
            0
        } else {
            crate::sources::now_nanos() % jitter_range
        };
        (exponential + Duration::from_millis(jitter)).max(retry_after.unwrap_or_default())
    }
}

/// The pipeline's view of a shutdown: asked for by a signal, then bounded by a grace period.
pub struct Shutdown {
    requested: Option<watch::Receiver<bool>>,
    grace: Duration,
    deadline: Option<Instant>,
}

/// How a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waited {
    /// The full delay passed.
    Elapsed,
    /// A shutdown was asked for while waiting.
    ShutdownRequested,
    /// The shutdown's grace period is over: stop trying.
    OutOfTime,
}

impl Shutdown {
    pub fn new(requested: Option<watch::Receiver<bool>>, grace: Duration) -> Self {
        Self {
            requested,
            grace,
            deadline: None,
        }
    }

    pub fn is_requested(&self) -> bool {
        self.requested.as_ref().is_some_and(|r| *r.borrow())
    }

    /// Resolves when a shutdown is asked for (never, without a signal).
    pub async fn requested(&mut self) {
        match &mut self.requested {
            Some(receiver) => {
                if receiver.wait_for(|stop| *stop).await.is_err() {
                    std::future::pending::<()>().await
                }
            }
            None => std::future::pending().await,
        }
    }

    /// Starts the grace period: waits from now on end at its end.
    pub fn start_grace(&mut self) {
        if self.is_requested() {
            self.deadline.get_or_insert(Instant::now() + self.grace);
        }
    }

    pub async fn wait(&mut self, delay: Duration) -> Waited {
        if let Some(deadline) = self.deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if left < delay {
                tokio::time::sleep(left).await;
                return Waited::OutOfTime;
            }
            tokio::time::sleep(delay).await;
            return Waited::Elapsed;
        }
        if self.is_requested() {
            return Waited::ShutdownRequested;
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => Waited::Elapsed,
            _ = self.requested() => Waited::ShutdownRequested,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_honours_retry_after() {
        let policy = RetryPolicy {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(8),
            max_attempts: None,
        };
        let d0 = policy.delay(0, None);
        assert!(
            d0 >= Duration::from_secs(1) && d0 <= Duration::from_millis(1250),
            "{d0:?}"
        );
        let d2 = policy.delay(2, None);
        assert!(
            d2 >= Duration::from_secs(4) && d2 <= Duration::from_secs(5),
            "{d2:?}"
        );
        assert!(policy.delay(10, None) <= Duration::from_secs(10));
        assert!(policy.delay(0, Some(Duration::from_secs(30))) >= Duration::from_secs(30));
    }

    #[tokio::test]
    async fn a_shutdown_cuts_a_wait_short_and_the_grace_period_bounds_later_ones() {
        let (tx, rx) = watch::channel(false);
        let mut shutdown = Shutdown::new(Some(rx), Duration::from_millis(100));
        let started = Instant::now();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            tx.send(true).unwrap();
            std::future::pending::<()>().await
        });
        assert_eq!(
            shutdown.wait(Duration::from_secs(30)).await,
            Waited::ShutdownRequested
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        shutdown.start_grace();
        assert_eq!(
            shutdown.wait(Duration::from_millis(10)).await,
            Waited::Elapsed
        );
        assert_eq!(
            shutdown.wait(Duration::from_secs(30)).await,
            Waited::OutOfTime
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
