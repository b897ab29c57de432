//! Where bearer tokens come from. Plugins never see them: the outbound policy asks a provider
//! for each request.

use std::future::Future;
use std::pin::Pin;

pub type TokenFuture<'a> = Pin<Box<dyn Future<Output = Result<String, String>> + Send + 'a>>;

pub trait TokenProvider: Send + Sync {
    /// A currently valid access token.
    fn token(&self) -> TokenFuture<'_>;
}

/// A fixed token: for the local endpoint, which accepts the token it was started with.
pub struct StaticToken(pub String);

impl TokenProvider for StaticToken {
    fn token(&self) -> TokenFuture<'_> {
        let token = self.0.clone();
        Box::pin(async move { Ok(token) })
    }
}
