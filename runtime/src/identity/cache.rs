//! Caches a token per provider and refreshes it ahead of expiry: 5 minutes before, or at half
//! the lifetime for short-lived tokens. One refresh at a time, however many requests wait.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use super::{fingerprint, TokenFuture, TokenProvider};

#[derive(Debug, Clone)]
pub struct AccessToken {
    pub value: String,
    /// How long the token is valid from when it was received.
    pub lifetime: Duration,
}

pub type SourceFuture<'a> = Pin<Box<dyn Future<Output = Result<AccessToken, String>> + Send + 'a>>;

/// Fetches a fresh token from an identity service.
pub trait TokenSource: Send + Sync {
    fn fetch(&self) -> SourceFuture<'_>;
    /// Names the identity and the service, for error messages.
    fn describe(&self) -> String;
}

const REFRESH_AHEAD: Duration = Duration::from_secs(300);

struct Cached {
    value: String,
    refresh_at: Instant,
    expires_at: Instant,
}

pub struct CachedToken<S: TokenSource> {
    source: S,
    current: Mutex<Option<Cached>>,
    refreshes: std::sync::atomic::AtomicU64,
}

impl<S: TokenSource> CachedToken<S> {
    pub fn new(source: S) -> Self {
        Self {
            source,
            current: Mutex::new(None),
            refreshes: std::sync::atomic::AtomicU64::new(0),
        }
    }
}

impl<S: TokenSource> TokenProvider for CachedToken<S> {
    fn token(&self) -> TokenFuture<'_> {
        Box::pin(async move {
            // Holding the lock while fetching makes concurrent callers wait for one refresh.
            let mut current = self.current.lock().await;
            let now = Instant::now();
            if let Some(cached) = current.as_ref().filter(|c| now < c.refresh_at) {
                return Ok(cached.value.clone());
            }
            match self.source.fetch().await {
                Ok(token) => {
                    self.refreshes
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let ahead = REFRESH_AHEAD.min(token.lifetime / 2);
                    let fresh = Cached {
                        refresh_at: now + token.lifetime - ahead,
                        expires_at: now + token.lifetime,
                        value: token.value,
                    };
                    let value = fresh.value.clone();
                    *current = Some(fresh);
                    Ok(value)
                }
                // A refresh that fails while the old token is still valid is not an outage yet.
                Err(e) => match current.as_ref().filter(|c| now < c.expires_at) {
                    Some(cached) => Ok(cached.value.clone()),
                    None => Err(format!("{}: {e}", self.source.describe())),
                },
            }
        })
    }

    fn refreshes(&self) -> u64 {
        self.refreshes.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn invalidate(&self, token: &str) {
        if let Ok(mut current) = self.current.try_lock() {
            if current.as_ref().is_some_and(|c| c.value == token) {
                *current = None;
            }
        } else {
            tracing::warn!(
                "could not invalidate {} (a refresh is under way)",
                fingerprint(token)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    struct Counting {
        calls: Arc<AtomicU32>,
        lifetime: Duration,
        fail: bool,
    }

    impl TokenSource for Counting {
        fn fetch(&self) -> SourceFuture<'_> {
            Box::pin(async move {
                let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
                if self.fail {
                    return Err("identity service down".into());
                }
                Ok(AccessToken {
                    value: format!("token-{n}"),
                    lifetime: self.lifetime,
                })
            })
        }
        fn describe(&self) -> String {
            "test identity".into()
        }
    }

    #[tokio::test]
    async fn many_waiters_share_one_refresh_and_the_token_is_reused() {
        let calls = Arc::new(AtomicU32::new(0));
        let cache = Arc::new(CachedToken::new(Counting {
            calls: calls.clone(),
            lifetime: Duration::from_secs(3600),
            fail: false,
        }));
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let c = cache.clone();
                tokio::spawn(async move { c.token().await })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap().unwrap(), "token-1");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        cache.invalidate("token-1");
        assert_eq!(cache.token().await.unwrap(), "token-2");
    }

    #[tokio::test]
    async fn short_lived_tokens_are_refreshed_at_half_their_lifetime() {
        let calls = Arc::new(AtomicU32::new(0));
        let cache = CachedToken::new(Counting {
            calls: calls.clone(),
            lifetime: Duration::from_millis(400),
            fail: false,
        });
        assert_eq!(cache.token().await.unwrap(), "token-1");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(cache.token().await.unwrap(), "token-1");
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(cache.token().await.unwrap(), "token-2");
    }

    #[tokio::test]
    async fn a_failing_service_is_named_in_the_error() {
        let cache = CachedToken::new(Counting {
            calls: Arc::default(),
            lifetime: Duration::from_secs(1),
            fail: true,
        });
        assert_eq!(
            cache.token().await.unwrap_err(),
            "test identity: identity service down"
        );
    }
}
