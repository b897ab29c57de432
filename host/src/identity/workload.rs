//! Workload identity (Kubernetes, Arc): the federated token in `AZURE_FEDERATED_TOKEN_FILE`,
//! re-read at every exchange because it rotates, exchanged at
//! `POST {authority}/{tenant}/oauth2/v2.0/token` for an access token.

use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;

use super::cache::{SourceFuture, TokenSource};
use super::imds::{describe_error, parse_token};
use crate::http_client::{form, HttpClient};

const TIMEOUT: Duration = Duration::from_secs(10);
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
            let answer = HttpClient::system()
                .send(request, TIMEOUT)
                .await
                .map_err(|e| format!("no answer: {e}"))?;
            let body: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
            if answer.status != 200 {
                return Err(format!("HTTP {}: {}", answer.status, describe_error(&body)));
            }
            parse_token(&body)
        })
    }

    fn describe(&self) -> String {
        format!(
            "workload identity {} (token endpoint {}, scope {})",
            self.client_id, self.url, self.scope
        )
    }
}
