//! The outbound policy for a plugin's HTTP: only the endpoint's own host is reachable, the
//! plugin may not set `authorization`, and the host adds the endpoint's bearer token.

use std::sync::Arc;

use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::uri::{Authority, Scheme};
use http::HeaderValue;
use http_body_util::{BodyExt, Full};
use wasmtime_wasi_http::{
    Error, ForbiddenHeaderFilter, RequestOptions, WasiBody, WasiHttpHooks,
    DEFAULT_FORBIDDEN_HEADERS,
};

use crate::config::is_loopback;
use crate::http_client::Transport;
use crate::identity::{fingerprint, TokenProvider};

/// Told of every answered request of a plugin; metrics implement it, so the policy does not
/// depend on them.
pub trait RequestObserver: Send + Sync {
    fn observe_request(&self, status: u16, elapsed: std::time::Duration, body_bytes: usize);
}

const DEFAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// The largest request body a plugin may send. Kusto takes at most 4 MB of data per streaming
/// ingestion request; twice that leaves room for any encoding a plugin uses, and keeps a
/// plugin from making the host buffer more than its own memory cap would allow it.
pub const MAX_REQUEST_BODY_BYTES: usize = 8 * 1024 * 1024;

#[derive(Clone)]
pub struct OutboundPolicy {
    scheme: Scheme,
    authority: Authority,
    tokens: Arc<dyn TokenProvider>,
    transport: Arc<dyn Transport>,
    observer: Option<Arc<dyn RequestObserver>>,
}

impl OutboundPolicy {
    /// `endpoint` is the endpoint's base URL (`https://cluster.region.kusto.windows.net` or
    /// `http://127.0.0.1:port`); a bare host name means https.
    pub fn new(
        endpoint: &str,
        tokens: Arc<dyn TokenProvider>,
        transport: Arc<dyn Transport>,
    ) -> anyhow::Result<Self> {
        let url = if endpoint.contains("://") {
            endpoint.to_string()
        } else {
            format!("https://{endpoint}")
        };
        let uri: http::Uri = url.trim_end_matches('/').parse()?;
        let scheme = uri.scheme().cloned().unwrap_or(Scheme::HTTPS);
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("endpoint `{endpoint}` has no host"))?;
        // A token never crosses a network in clear text.
        if scheme == Scheme::HTTP && !is_loopback(&url) {
            anyhow::bail!(
                "endpoint `{endpoint}`: plain http is allowed only to a loopback address"
            );
        }
        Ok(Self {
            scheme,
            authority,
            tokens,
            transport,
            observer: None,
        })
    }

    /// Tells `observer` of every answered request (status, latency, body size).
    pub fn observed_by(mut self, observer: Option<Arc<dyn RequestObserver>>) -> Self {
        self.observer = observer;
        self
    }

    fn allows(&self, uri: &http::Uri) -> bool {
        uri.scheme() == Some(&self.scheme)
            && uri.authority().is_some_and(|a| {
                a.host().eq_ignore_ascii_case(self.authority.host())
                    && effective_port(a, &self.scheme)
                        == effective_port(&self.authority, &self.scheme)
            })
    }
}

fn effective_port(authority: &Authority, scheme: &Scheme) -> u16 {
    authority
        .port_u16()
        .unwrap_or(if *scheme == Scheme::HTTP { 80 } else { 443 })
}

fn is_forbidden(name: &http::HeaderName) -> bool {
    *name == AUTHORIZATION || DEFAULT_FORBIDDEN_HEADERS.contains(name)
}

type SendFuture = Box<
    dyn std::future::Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn std::future::Future<Output = Result<(), Error>> + Send>,
                ),
                Error,
            >,
        > + Send,
>;

impl WasiHttpHooks for OutboundPolicy {
    fn is_forbidden_header(&mut self, name: &http::HeaderName) -> bool {
        is_forbidden(name)
    }

    fn forbidden_header_filter(&mut self) -> ForbiddenHeaderFilter {
        Arc::new(is_forbidden)
    }

    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _io: Box<dyn std::future::Future<Output = Result<(), Error>> + Send>,
    ) -> SendFuture {
        let policy = self.clone();
        Box::new(async move {
            if !policy.allows(request.uri()) {
                return Err(Error::HttpRequestDenied);
            }
            let timeout = options
                .and_then(|o| o.first_byte_timeout)
                .unwrap_or(DEFAULT_TIMEOUT);
            // Buffered (a streaming request is at most 4 MB) so that it can be sent again
            // with a fresh token if the endpoint refuses the first one.
            let (parts, body) = request.into_parts();
            let body = collect_bounded(body, MAX_REQUEST_BODY_BYTES).await?;
            let mut refused_once = false;
            loop {
                let token = policy.tokens.token().await.map_err(|e| {
                    Error::InternalError(Some(format!("no token for {}: {e}", policy.authority)))
                })?;
                let request = with_token(&parts, body.clone(), &token)?;
                let started = std::time::Instant::now();
                let answer = policy.transport.exchange(request, timeout).await?;
                if let Some(observer) = &policy.observer {
                    observer.observe_request(answer.status, started.elapsed(), body.len());
                }
                if answer.status == 401 && !refused_once {
                    tracing::warn!(
                        "{} refused {}; fetching a new token",
                        policy.authority,
                        fingerprint(&token)
                    );
                    policy.tokens.invalidate(&token);
                    refused_once = true;
                    continue;
                }
                let mut response = http::Response::new(
                    Full::new(answer.body)
                        .map_err(|never| match never {})
                        .boxed_unsync(),
                );
                *response.status_mut() = http::StatusCode::from_u16(answer.status)
                    .map_err(|_| Error::HttpProtocolError)?;
                *response.headers_mut() = answer.headers;
                return Ok((
                    response,
                    Box::new(async { Ok(()) }) as Box<dyn std::future::Future<Output = _> + Send>,
                ));
            }
        })
    }
}

/// The whole body, or `HTTP-request-body-size` for the plugin as soon as it passes `limit`.
async fn collect_bounded(body: WasiBody, limit: usize) -> Result<Bytes, Error> {
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) => match error.downcast::<Error>() {
            Ok(error) => Err(*error),
            Err(_) => {
                tracing::warn!(
                    "a plugin's request body passed {limit} bytes; refused before sending"
                );
                Err(Error::HttpRequestBodySize(Some(limit as u64)))
            }
        },
    }
}

/// The plugin's request with the host's bearer token; an `authorization` that got past the
/// forbidden-header filter is replaced.
fn with_token(
    parts: &http::request::Parts,
    body: Bytes,
    token: &str,
) -> Result<http::Request<Bytes>, Error> {
    let mut request = http::Request::new(body);
    *request.method_mut() = parts.method.clone();
    *request.uri_mut() = parts.uri.clone();
    *request.version_mut() = parts.version;
    *request.headers_mut() = parts.headers.clone();
    let value = HeaderValue::try_from(format!("Bearer {token}"))
        .map_err(|_| Error::InternalError(Some("the token is not a valid header value".into())))?;
    request.headers_mut().insert(AUTHORIZATION, value);
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::StaticToken;

    #[test]
    fn allows_only_the_endpoint_host_and_scheme() {
        let policy = OutboundPolicy::new(
            "https://c.westeurope.kusto.windows.net",
            Arc::new(StaticToken("t".into())),
            Arc::new(crate::http_client::HttpClient::system()),
        )
        .unwrap();
        let allowed = |u: &str| policy.allows(&u.parse().unwrap());
        assert!(allowed(
            "https://c.westeurope.kusto.windows.net/v1/rest/ingest/db/t"
        ));
        assert!(allowed("https://C.WESTEUROPE.kusto.windows.net/x"));
        assert!(allowed("https://c.westeurope.kusto.windows.net:443/x"));
        assert!(!allowed("http://c.westeurope.kusto.windows.net/x"));
        assert!(!allowed("https://evil.example.com/x"));
        assert!(!allowed("https://c.westeurope.kusto.windows.net:8443/x"));
        let local = OutboundPolicy::new(
            "http://127.0.0.1:8080",
            Arc::new(StaticToken("t".into())),
            Arc::new(crate::http_client::HttpClient::system()),
        )
        .unwrap();
        assert!(local.allows(&"http://127.0.0.1:8080/v1".parse().unwrap()));
        assert!(!local.allows(&"http://127.0.0.1:8081/v1".parse().unwrap()));
    }

    #[test]
    fn authorization_is_forbidden_to_plugins() {
        assert!(is_forbidden(&AUTHORIZATION));
        assert!(is_forbidden(&http::header::HOST));
        assert!(!is_forbidden(&http::header::CONTENT_ENCODING));
    }
}
