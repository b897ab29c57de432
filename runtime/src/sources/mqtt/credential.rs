//! What the host authenticates to a broker with, in MQTT 5 enhanced authentication: a
//! method and its data, read fresh at every connection and watched for a newer one, which the
//! link presents by re-authentication before the old one expires.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::files;
use crate::identity::TokenProvider;

/// The method Azure IoT Operations' broker reads a Kubernetes service account token with.
pub const SERVICE_ACCOUNT_TOKEN_METHOD: &str = "K8S-SAT";
/// The method Azure Event Grid's MQTT broker reads an Entra ID access token with.
pub const ENTRA_TOKEN_METHOD: &str = "OAUTH2-JWT";

/// A projected service account token is a few kilobytes; nothing sensible is larger.
const MAX_TOKEN_BYTES: u64 = 64 * 1024;

pub struct Credential {
    method: &'static str,
    source: Source,
    /// What the broker last accepted (or was last given in a CONNECT).
    presented: Mutex<Option<Vec<u8>>>,
}

enum Source {
    /// A token file that Kubernetes (the kubelet) rewrites before the token expires.
    File(PathBuf),
    /// An identity provider that hands out a fresh token before the cached one expires.
    Provider(Arc<dyn TokenProvider>),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token itself.
        let source = match &self.source {
            Source::File(path) => path.display().to_string(),
            Source::Provider(_) => "an identity provider".to_string(),
        };
        write!(f, "Credential({} from {source})", self.method)
    }
}

impl Credential {
    /// `K8S-SAT` with the token in `file`.
    pub fn service_account_token(file: PathBuf) -> Arc<Self> {
        Arc::new(Self {
            method: SERVICE_ACCOUNT_TOKEN_METHOD,
            source: Source::File(file),
            presented: Mutex::new(None),
        })
    }

    /// `OAUTH2-JWT` with tokens from `provider`.
    pub fn entra_token(provider: Arc<dyn TokenProvider>) -> Arc<Self> {
        Arc::new(Self {
            method: ENTRA_TOKEN_METHOD,
            source: Source::Provider(provider),
            presented: Mutex::new(None),
        })
    }

    pub fn method(&self) -> &'static str {
        self.method
    }

    /// The token to present now.
    pub async fn current(&self) -> Result<Vec<u8>, String> {
        match &self.source {
            Source::File(path) => {
                let bytes = files::read_regular(path, MAX_TOKEN_BYTES)
                    .map_err(|e| format!("the service account token {}: {e}", path.display()))?;
                let token = bytes.trim_ascii();
                if token.is_empty() {
                    return Err(format!(
                        "the service account token {} is empty",
                        path.display()
                    ));
                }
                Ok(token.to_vec())
            }
            Source::Provider(provider) => provider
                .token()
                .await
                .map(String::into_bytes)
                .map_err(|e| format!("no token for the broker: {e}")),
        }
    }

    /// A token newer than the one presented, if there is one.
    pub async fn renewed(&self) -> Result<Option<Vec<u8>>, String> {
        let token = self.current().await?;
        let presented = self.presented.lock().expect("credential lock");
        Ok((presented.as_deref() != Some(token.as_slice())).then_some(token))
    }

    /// Whether a token was ever given to the broker.
    pub fn was_presented(&self) -> bool {
        self.presented.lock().expect("credential lock").is_some()
    }

    /// Records what the broker was given (in a CONNECT) or accepted (in re-authentication).
    pub fn presented(&self, token: Vec<u8>) {
        *self.presented.lock().expect("credential lock") = Some(token);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_rewritten_token_file_is_a_renewal_and_the_same_one_is_not() {
        let dir = std::env::temp_dir().join(format!("credential-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("aio-internal");
        std::fs::write(&file, "first\n").unwrap();
        let credential = Credential::service_account_token(file.clone());
        let first = credential.current().await.unwrap();
        assert_eq!(first, b"first");
        credential.presented(first);
        assert_eq!(credential.renewed().await.unwrap(), None);
        std::fs::write(&file, "second").unwrap();
        assert_eq!(
            credential.renewed().await.unwrap(),
            Some(b"second".to_vec())
        );
        std::fs::write(&file, "  \n").unwrap();
        assert!(credential.current().await.unwrap_err().contains("is empty"));
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(format!("{credential:?}").contains("K8S-SAT"));
    }
}
