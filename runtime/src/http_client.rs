//! The host's HTTP client: its own requests (identity services, Kusto management) and the
//! plugins' requests once the outbound policy has let them through. Plain HTTP, or HTTPS that
//! trusts the webpki root certificates plus any CA the host was told to trust (the local
//! endpoint's, for example). Connections are kept alive and reused per origin, so a dataflow
//! pays one TLS handshake, not one per batch.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::uri::Scheme;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
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

/// Idle keep-alive connections kept per origin: a dataflow's plugin sends one request at a
/// time, so a few cover several dataflows sharing one endpoint.
const MAX_IDLE_PER_ORIGIN: usize = 8;

/// A client with a pool of keep-alive connections (cheap to clone; clones share the pool).
#[derive(Clone)]
pub struct HttpClient {
    tls: Arc<rustls::ClientConfig>,
    pool: Arc<Pool>,
}

trait Connection: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Connection for T {}

/// Scheme, host and port: requests to one origin may share a connection.
type Origin = (bool, String, u16);

#[derive(Default)]
struct Pool {
    idle: Mutex<HashMap<Origin, Vec<SendRequest<Full<Bytes>>>>>,
    /// False for a client that opens a connection per request (for comparison).
    keep_alive: bool,
    connections: AtomicU64,
    requests: AtomicU64,
}

/// What a client has done: requests sent, and connections (TCP, and TLS for https) opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientCounts {
    pub requests: u64,
    pub connections: u64,
}

impl HttpClient {
    fn with_tls(tls: Arc<rustls::ClientConfig>, keep_alive: bool) -> Self {
        Self {
            tls,
            pool: Arc::new(Pool {
                keep_alive,
                ..Pool::default()
            }),
        }
    }

    /// Trusts the webpki root certificates.
    pub fn system() -> Self {
        Self::with_tls(
            tls::client_config(&[]).expect("the built-in roots are valid"),
            true,
        )
    }

    /// Trusts the webpki roots and the CA certificates in `ca_pem`.
    pub fn trusting(ca_pem: &[u8]) -> anyhow::Result<Self> {
        Ok(Self::with_tls(tls::client_config(ca_pem)?, true))
    }

    /// The same trust, but a new connection (and TLS handshake) for every request, as this
    /// client did before it pooled: for measuring what keep-alive saves.
    pub fn without_keep_alive(&self) -> Self {
        Self::with_tls(self.tls.clone(), false)
    }

    pub fn counts(&self) -> ClientCounts {
        ClientCounts {
            requests: self.pool.requests.load(Ordering::Relaxed),
            connections: self.pool.connections.load(Ordering::Relaxed),
        }
    }

    /// Sends `request` (its URI absolute) and reads the whole answer; `limit` bounds
    /// connecting, the first byte and the body each. An idle connection to the same origin
    /// is reused when there is one.
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
        self.pool.requests.fetch_add(1, Ordering::Relaxed);
        let origin: Origin = (https, host, port);
        let mut sender = match self.idle(&origin).await {
            Some(sender) => sender,
            None => self.connect(&origin, limit).await?,
        };
        let request = http::Request::from_parts(parts, Full::new(body));
        let response = match timeout(limit, sender.try_send_request(request)).await {
            Ok(Ok(response)) => response,
            Ok(Err(mut e)) => match e.take_message() {
                // The connection closed before the request was written to it (a server
                // ending an idle keep-alive): it never reached the server, so it goes again,
                // once, on a new connection.
                Some(unsent) => {
                    sender = self.connect(&origin, limit).await?;
                    timeout(limit, sender.send_request(unsent))
                        .await
                        .map_err(|_| Error::ConnectionReadTimeout)??
                }
                None => return Err(e.into_error().into()),
            },
            Err(_) => return Err(Error::ConnectionReadTimeout),
        };
        let (parts, body) = response.into_parts();
        let body = timeout(limit, body.collect())
            .await
            .map_err(|_| Error::ConnectionReadTimeout)??
            .to_bytes();
        self.release(origin, sender);
        Ok(HttpAnswer {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        })
    }

    /// An idle connection to `origin` that is still open, if any.
    async fn idle(&self, origin: &Origin) -> Option<SendRequest<Full<Bytes>>> {
        loop {
            let mut sender = self.pool.idle.lock().unwrap().get_mut(origin)?.pop()?;
            // Ready once the connection has finished with the previous answer; an error
            // means the server closed it meanwhile.
            if !sender.is_closed() && sender.ready().await.is_ok() {
                return Some(sender);
            }
        }
    }

    /// Keeps a connection whose answer was read whole, for the next request.
    fn release(&self, origin: Origin, sender: SendRequest<Full<Bytes>>) {
        if !self.pool.keep_alive || sender.is_closed() {
            return;
        }
        let mut idle = self.pool.idle.lock().unwrap();
        let senders = idle.entry(origin).or_default();
        if senders.len() < MAX_IDLE_PER_ORIGIN {
            senders.push(sender);
        }
    }

    async fn connect(
        &self,
        (https, host, port): &Origin,
        limit: Duration,
    ) -> Result<SendRequest<Full<Bytes>>, Error> {
        let tcp = timeout(limit, TcpStream::connect((host.as_str(), *port)))
            .await
            .map_err(|_| Error::ConnectionTimeout)?
            .map_err(Error::Connect)?;
        // Requests are small and answers awaited one at a time: Nagle would only delay them.
        tcp.set_nodelay(true).map_err(Error::Connect)?;
        let stream: Box<dyn Connection> = if *https {
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
        self.pool.connections.fetch_add(1, Ordering::Relaxed);
        let (sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        Ok(sender)
    }
}

pub use kusto_model::percent_encode;

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
