//! Where bearer tokens come from. Plugins never see them: the outbound policy asks the
//! endpoint's provider for each request. Providers by authentication method: the Azure
//! Instance Metadata Service (system- and user-assigned managed identity), workload identity
//! (a federated token exchanged at the tenant's token endpoint), and a fixed development token.

mod answer;
mod cache;
mod imds;
mod workload;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use anyhow::{bail, Context, Result};

pub use cache::{AccessToken, CachedToken, TokenSource};
pub use imds::ImdsSource;
pub use workload::WorkloadIdentitySource;

use crate::config::Authentication;

pub type TokenFuture<'a> = Pin<Box<dyn Future<Output = Result<String, String>> + Send + 'a>>;

pub trait TokenProvider: Send + Sync {
    /// A currently valid access token.
    fn token(&self) -> TokenFuture<'_>;
    /// The endpoint refused `token` (401): do not hand it out again.
    fn invalidate(&self, _token: &str) {}
    /// Tokens fetched from the identity service so far (none for a fixed token).
    fn refreshes(&self) -> u64 {
        0
    }
}

/// A fixed token: for the local endpoint, which accepts the token it was started with.
pub struct StaticToken(pub String);

impl TokenProvider for StaticToken {
    fn token(&self) -> TokenFuture<'_> {
        let token = self.0.clone();
        Box::pin(async move { Ok(token) })
    }
}

/// Where the identity services are. Defaults are Azure's; the environment variables the Azure
/// SDKs read override them, so tests and air-gapped sites can point elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityEndpoints {
    /// `AZURE_POD_IDENTITY_AUTHORITY_HOST`, else `http://169.254.169.254`.
    pub imds: String,
    /// `AZURE_AUTHORITY_HOST`, else `https://login.microsoftonline.com`.
    pub authority_host: String,
    /// `AZURE_FEDERATED_TOKEN_FILE`: present where workload identity is set up.
    pub federated_token_file: Option<String>,
}

impl IdentityEndpoints {
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        Self {
            imds: var("AZURE_POD_IDENTITY_AUTHORITY_HOST")
                .unwrap_or_else(|| "http://169.254.169.254".into()),
            authority_host: var("AZURE_AUTHORITY_HOST")
                .unwrap_or_else(|| "https://login.microsoftonline.com".into()),
            federated_token_file: var("AZURE_FEDERATED_TOKEN_FILE"),
        }
    }
}

/// The provider for an endpoint's authentication method.
pub fn provider_for(
    authentication: &Authentication,
    endpoints: &IdentityEndpoints,
) -> Result<Arc<dyn TokenProvider>> {
    Ok(match authentication {
        Authentication::SystemAssignedManagedIdentity { audience } => Arc::new(CachedToken::new(
            ImdsSource::new(&endpoints.imds, audience, None),
        )),
        Authentication::UserAssignedManagedIdentity {
            client_id,
            tenant_id,
            scope,
        } => match &endpoints.federated_token_file {
            Some(file) => Arc::new(CachedToken::new(WorkloadIdentitySource::new(
                &endpoints.authority_host,
                tenant_id,
                client_id,
                scope,
                file,
            ))),
            None => {
                let resource = scope.strip_suffix("/.default").unwrap_or(scope);
                Arc::new(CachedToken::new(ImdsSource::new(
                    &endpoints.imds,
                    resource,
                    Some(client_id),
                )))
            }
        },
        Authentication::DevelopmentToken {
            token: Some(token), ..
        } => Arc::new(StaticToken(token.clone())),
        Authentication::DevelopmentToken {
            token_file: Some(file),
            ..
        } => {
            let token = std::fs::read_to_string(file)
                .with_context(|| format!("reading the token file {file}"))?;
            Arc::new(StaticToken(token.trim().to_string()))
        }
        Authentication::DevelopmentToken { .. } => {
            bail!("DevelopmentToken needs token or tokenFile")
        }
    })
}

/// A short, stable fingerprint for logs and errors: never the token itself.
pub fn fingerprint(token: &str) -> String {
    // FNV-1a: not a secret hash, just enough to tell tokens apart.
    let hash = token.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    });
    format!("token#{:08x}", hash >> 32)
}
