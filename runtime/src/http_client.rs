//! The host's HTTP client: its own requests (identity services, Kusto management) and the
//! plugins' requests once the outbound policy has let them through. Plain HTTP, or HTTPS that
//! trusts the webpki root certificates plus any CA the host was told to trust (the local
//! endpoint's, for example).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::uri::Scheme;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::timeout;
use wasmtime_wasi_http::Error;

use crate::tls;

/// A complete answer.
#[derive(Debug, Clone)]
pub struct HttpAnswer {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

#[derive(Clone)]
pub struct HttpClient {
    tls: Arc<rustls::ClientConfig>,
}

trait Connection: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Connection for T {}

impl HttpClient {
    /// Trusts the webpki root certificates.
    pub fn system() -> Self {
        Self {
            tls: tls::client_config(&[]).expect("the built-in roots are valid"),
        }
    }

    /// Trusts the webpki roots and the CA certificates in `ca_pem`.
    pub fn trusting(ca_pem: &[u8]) -> anyhow::Result<Self> {
        Ok(Self {
            tls: tls::client_config(ca_pem)?,
        })
    }

    /// Sends `request` (its URI absolute) and reads the whole answer; `limit` bounds
    /// connecting, the first byte and the body each.
    pub async fn send(
        &self,
        request: http::Request<Bytes>,
        limit: Duration,
    ) -> Result<HttpAnswer, Error> {
        let (mut parts, body) = request.into_parts();
        let authority = parts
            .uri
            .authority()
            .ok_or(Error::HttpRequestUriInvalid)?
            .clone();
        let https = parts.uri.scheme() == Some(&Scheme::HTTPS);
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();

        let tcp = timeout(limit, TcpStream::connect((host.as_str(), port)))
            .await
            .map_err(|_| Error::ConnectionTimeout)?
            .map_err(Error::Connect)?;
        let stream: Box<dyn Connection> = if https {
            let name =
                ServerName::try_from(host.clone()).map_err(|_| Error::HttpRequestUriInvalid)?;
            let connector = tokio_rustls::TlsConnector::from(self.tls.clone());
            let tls = timeout(limit, connector.connect(name, tcp))
                .await
                .map_err(|_| Error::ConnectionTimeout)?
                .map_err(Error::Tls)?;
            Box::new(tls)
        } else {
            Box::new(tcp)
        };
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);

        if !parts.headers.contains_key(http::header::HOST) {
            let value = http::HeaderValue::from_str(authority.as_str())
                .map_err(|_| Error::HttpRequestUriInvalid)?;
            parts.headers.insert(http::header::HOST, value);
        }
        // On the wire the request line carries the path only.
        parts.uri = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .parse()
            .map_err(|_| Error::HttpRequestUriInvalid)?;
        let request = http::Request::from_parts(parts, Full::new(body));
        let response = timeout(limit, sender.send_request(request))
            .await
            .map_err(|_| Error::ConnectionReadTimeout)??;
        let (parts, body) = response.into_parts();
        let body = timeout(limit, body.collect())
            .await
            .map_err(|_| Error::ConnectionReadTimeout)??
            .to_bytes();
        Ok(HttpAnswer {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        })
    }
}

pub use adx_destination::kusto::percent_encode;

pub type AnswerFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<HttpAnswer, Error>> + Send + 'a>>;

/// Where requests that passed the outbound policy go.
pub trait Transport: Send + Sync {
    fn exchange(&self, request: http::Request<Bytes>, limit: Duration) -> AnswerFuture<'_>;
}

impl Transport for HttpClient {
    fn exchange(&self, request: http::Request<Bytes>, limit: Duration) -> AnswerFuture<'_> {
        Box::pin(self.send(request, limit))
    }
}

/// Answers every request at once with 200 and an empty result, without a network: for
/// measuring a plugin alone.
pub struct Discard;

impl Transport for Discard {
    fn exchange(&self, _request: http::Request<Bytes>, _limit: Duration) -> AnswerFuture<'_> {
        Box::pin(async {
            Ok(HttpAnswer {
                status: 200,
                headers: http::HeaderMap::new(),
                body: Bytes::from_static(b"{\"Tables\":[]}"),
            })
        })
    }
}

/// `a=1&b=2`, each value percent-encoded.
pub fn form(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{k}={}", percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}
