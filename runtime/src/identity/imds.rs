//! Managed identity tokens from the Azure Instance Metadata Service:
//! `GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=…[&client_id=…]`
//! with `Metadata: true`.

use bytes::Bytes;

use super::answer::request_token;
use super::cache::{SourceFuture, TokenSource};
use crate::http_client::percent_encode;

pub struct ImdsSource {
    url: String,
    client_id: Option<String>,
    resource: String,
}

impl ImdsSource {
    pub fn new(imds: &str, resource: &str, client_id: Option<&str>) -> Self {
        let mut url = format!(
            "{}/metadata/identity/oauth2/token?api-version=2018-02-01&resource={}",
            imds.trim_end_matches('/'),
            percent_encode(resource)
        );
        if let Some(id) = client_id {
            url.push_str(&format!("&client_id={}", percent_encode(id)));
        }
        Self {
            url,
            client_id: client_id.map(str::to_string),
            resource: resource.to_string(),
        }
    }
}

impl TokenSource for ImdsSource {
    fn fetch(&self) -> SourceFuture<'_> {
        Box::pin(async move {
            let request = http::Request::get(&self.url)
                .header("metadata", "true")
                .body(Bytes::new())
                .map_err(|e| e.to_string())?;
            request_token(request).await
        })
    }

    fn describe(&self) -> String {
        match &self.client_id {
            Some(id) => format!("managed identity {id} (IMDS, resource {})", self.resource),
            None => format!(
                "system-assigned managed identity (IMDS, resource {})",
                self.resource
            ),
        }
    }
}
