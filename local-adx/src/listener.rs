//! Accepting connections as a server that people leave running must: a bounded number at
//! once (the rest wait in the kernel's backlog), a pause instead of a spin when the process
//! runs out of file descriptors, and a deadline for a request's head, which also closes
//! connections left idle.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Defaults for a local endpoint: far more connections than a host keeps (one pool per
/// origin), and a minute for a client to start its next request.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The longest pause between two accepts when they keep failing.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Connections served at once.
    pub max_connections: usize,
    /// How long a connection may take to send a whole request head, counted from when the
    /// server starts waiting for it: so also how long a kept-alive connection may stay idle.
    /// The TLS handshake has the same deadline.
    pub idle_timeout: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
        }
    }
}

/// Accepts connections within `limits`; each comes with the permit it holds while served.
pub struct Acceptor {
    listener: TcpListener,
    permits: Arc<Semaphore>,
    backoff: Duration,
}

impl Acceptor {
    pub fn new(listener: TcpListener, limits: ServerLimits) -> Self {
        Self {
            listener,
            permits: Arc::new(Semaphore::new(limits.max_connections.max(1))),
            backoff: Duration::ZERO,
        }
    }

    /// The next connection, once one is free to be served. A failing accept (EMFILE when the
    /// descriptors run out, ENFILE, ENOBUFS) leaves the connection in the backlog: waited out,
    /// doubling from 10 ms to a second, and said once per streak.
    pub async fn next(&mut self) -> (TcpStream, OwnedSemaphorePermit) {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        loop {
            match self.listener.accept().await {
                Ok((stream, _)) => {
                    self.backoff = Duration::ZERO;
                    return (stream, permit);
                }
                Err(e) => {
                    if self.backoff.is_zero() {
                        tracing::warn!("accepting a connection failed: {e}; waiting before the next (out of file descriptors? see `ulimit -n`)");
                    }
                    self.backoff = (self.backoff * 2).clamp(Duration::from_millis(10), MAX_BACKOFF);
                    tokio::time::sleep(self.backoff).await;
                }
            }
        }
    }
}
