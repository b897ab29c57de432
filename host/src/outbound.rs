//! The outbound policy for a plugin's HTTP: only the endpoint's own host is reachable, the
//! plugin may not set `authorization`, and the host adds the endpoint's bearer token.

use std::sync::Arc;

use http::header::AUTHORIZATION;
use http::uri::{Authority, Scheme};
use http::HeaderValue;
use http_body_util::BodyExt;
use wasmtime_wasi_http::{
    default_send_request, Error, ForbiddenHeaderFilter, RequestOptions, WasiBody, WasiHttpHooks,
    DEFAULT_FORBIDDEN_HEADERS,
};

use crate::identity::TokenProvider;

#[derive(Clone)]
pub struct OutboundPolicy {
    scheme: Scheme,
    authority: Authority,
    tokens: Arc<dyn TokenProvider>,
}

impl OutboundPolicy {
    /// `endpoint` is the endpoint's base URL (`https://cluster.region.kusto.windows.net` or
    /// `http://127.0.0.1:port`); a bare host name means https.
    pub fn new(endpoint: &str, tokens: Arc<dyn TokenProvider>) -> anyhow::Result<Self> {
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
        Ok(Self {
            scheme,
            authority,
            tokens,
        })
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
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _io: Box<dyn std::future::Future<Output = Result<(), Error>> + Send>,
    ) -> SendFuture {
        let policy = self.clone();
        Box::new(async move {
            if !policy.allows(request.uri()) {
                return Err(Error::HttpRequestDenied);
            }
            let token = policy.tokens.token().await.map_err(|e| {
                Error::InternalError(Some(format!("no token for the endpoint: {e}")))
            })?;
            let value = HeaderValue::try_from(format!("Bearer {token}")).map_err(|_| {
                Error::InternalError(Some("the token is not a valid header value".into()))
            })?;
            // Replaces anything that got past the forbidden-header filter.
            request.headers_mut().insert(AUTHORIZATION, value);
            let (response, io) = default_send_request(request, options).await?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn std::future::Future<Output = _> + Send>,
            ))
        })
    }
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
        let local = OutboundPolicy::new("http://127.0.0.1:8080", Arc::new(StaticToken("t".into())))
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
