//! Workload identity (Kubernetes, Arc): the federated token in `AZURE_FEDERATED_TOKEN_FILE`,
//! re-read at every exchange because it rotates, exchanged at
//! `POST {authority}/{tenant}/oauth2/v2.0/token` for an access token.

use bytes::Bytes;

use super::answer::request_token;
use super::cache::{SourceFuture, TokenSource};
use crate::http_client::form;

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

pub struct WorkloadIdentitySource {
    url: String,
    client_id: String,
    scope: String,
    token_file: String,
}

impl WorkloadIdentitySource {
    pub fn new(
        authority_host: &str,
        tenant_id: &str,
        client_id: &str,
        scope: &str,
        token_file: &str,
    ) -> Self {
        Self {
            url: format!(
                "{}/{tenant_id}/oauth2/v2.0/token",
                authority_host.trim_end_matches('/')
            ),
            client_id: client_id.to_string(),
            scope: scope.to_string(),
            token_file: token_file.to_string(),
        }
    }
}

impl TokenSource for WorkloadIdentitySource {
    fn fetch(&self) -> SourceFuture<'_> {
        Box::pin(async move {
            let assertion = tokio::fs::read_to_string(&self.token_file)
                .await
                .map_err(|e| {
                    format!(
                        "cannot read the federated token file {}: {e}",
                        self.token_file
                    )
                })?;
            let body = form(&[
                ("grant_type", "client_credentials"),
                ("client_id", &self.client_id),
                ("scope", &self.scope),
                ("client_assertion_type", ASSERTION_TYPE),
                ("client_assertion", assertion.trim()),
            ]);
            let request = http::Request::post(&self.url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Bytes::from(body))
                .map_err(|e| e.to_string())?;
            request_token(request).await
        })
    }

    fn describe(&self) -> String {
        format!(
            "workload identity {} (token endpoint {}, scope {})",
            self.client_id, self.url, self.scope
        )
    }
}
