//! The host's HTTP client: its own requests (identity services, Kusto management) and the
//! plugins' requests once the outbound policy has let them through. Plain HTTP, or HTTPS that
//! trusts the webpki root certificates plus any CA the host was told to trust (the local
//! endpoint's, for example). Connections are kept alive and reused per origin, so a dataflow
//! pays one TLS handshake, not one per batch; over TLS the client offers HTTP/2 and, where the
//! server takes it, sends every request to that origin on one multiplexed connection.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::uri::Scheme;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2, TrySendError};
use hyper_util::rt::{TokioExecutor, TokioIo};
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

type Body = Full<Bytes>;
type Answer = Result<http::Response<Incoming>, TrySendError<http::Request<Body>>>;

/// One connection: HTTP/1.1 carries one request at a time; HTTP/2 (when the server offers it
/// in the TLS handshake) carries them all, side by side.
enum Sender {
    Http1(http1::SendRequest<Body>),
    Http2(http2::SendRequest<Body>),
}

impl Sender {
    fn is_closed(&self) -> bool {
        match self {
            Self::Http1(s) => s.is_closed(),
            Self::Http2(s) => s.is_closed(),
        }
    }

    async fn ready(&mut self) -> hyper::Result<()> {
        match self {
            Self::Http1(s) => s.ready().await,
            Self::Http2(s) => s.ready().await,
        }
    }

    /// Sends `request` (its URI absolute): HTTP/1.1 puts the path on the request line and
    /// the authority in `host`; HTTP/2 takes both from the URI.
    fn send(&mut self, mut request: http::Request<Body>) -> BoxFuture<Answer> {
        match self {
            Self::Http1(s) => {
                let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
                if let Ok(path) = path.parse() {
                    *request.uri_mut() = path;
                }
                Box::pin(s.try_send_request(request))
            }
            Self::Http2(s) => {
                request.headers_mut().remove(http::header::HOST);
                Box::pin(s.try_send_request(request))
            }
        }
    }
}

type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

#[derive(Default)]
struct Pool {
    /// HTTP/1.1 connections waiting for a request; an HTTP/2 connection stays here while in
    /// use, since it takes many requests at once.
    idle: Mutex<HashMap<Origin, Vec<Sender>>>,
    /// False for a client that opens a connection per request (for comparison).
    keep_alive: bool,
    connections: AtomicU64,
    http2_connections: AtomicU64,
    requests: AtomicU64,
}

/// What a client has done: requests sent, and connections (TCP, and TLS for https) opened,
/// of which how many speak HTTP/2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientCounts {
    pub requests: u64,
    pub connections: u64,
    pub http2_connections: u64,
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
            http2_connections: self.pool.http2_connections.load(Ordering::Relaxed),
        }
    }

    /// Sends `request` (its URI absolute) and reads the whole answer; `limit` bounds
    /// connecting, the first byte and the body each. An open connection to the same origin
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
        self.pool.requests.fetch_add(1, Ordering::Relaxed);
        let origin: Origin = (https, host, port);
        let mut sender = match self.open(&origin).await {
            Some(sender) => sender,
            None => self.connect(&origin, limit).await?,
        };
        let request = http::Request::from_parts(parts, Full::new(body));
        let response = match timeout(limit, sender.send(request)).await {
            Ok(Ok(response)) => response,
            Ok(Err(mut e)) => match e.take_message() {
                // The connection closed before the request was written to it (a server
                // ending an idle keep-alive): it never reached the server, so it goes again,
                // once, on a new connection.
                Some(unsent) => {
                    sender = self.connect(&origin, limit).await?;
                    match timeout(limit, sender.send(unsent)).await {
                        Ok(Ok(response)) => response,
                        Ok(Err(e)) => return Err(e.into_error().into()),
                        Err(_) => return Err(Error::ConnectionReadTimeout),
                    }
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

    /// An open connection to `origin` that can take a request now, if any.
    async fn open(&self, origin: &Origin) -> Option<Sender> {
        loop {
            let mut sender = {
                let mut idle = self.pool.idle.lock().unwrap();
                let senders = idle.get_mut(origin)?;
                senders.retain(|s| !s.is_closed());
                match senders.last()? {
                    // Shared: it stays in the pool.
                    Sender::Http2(shared) => Sender::Http2(shared.clone()),
                    Sender::Http1(_) => senders.pop()?,
                }
            };
            // Ready once the connection can take another request; an error means the
            // server closed it meanwhile.
            if sender.ready().await.is_ok() {
                return Some(sender);
            }
        }
    }

    /// Keeps an HTTP/1.1 connection whose answer was read whole, for the next request.
    fn release(&self, origin: Origin, sender: Sender) {
        if !self.pool.keep_alive || sender.is_closed() || matches!(sender, Sender::Http2(_)) {
            return;
        }
        let mut idle = self.pool.idle.lock().unwrap();
        let senders = idle.entry(origin).or_default();
        if senders.len() < MAX_IDLE_PER_ORIGIN {
            senders.push(sender);
        }
    }

    async fn connect(&self, origin: &Origin, limit: Duration) -> Result<Sender, Error> {
        let (https, host, port) = origin;
        let tcp = timeout(limit, TcpStream::connect((host.as_str(), *port)))
            .await
            .map_err(|_| Error::ConnectionTimeout)?
            .map_err(Error::Connect)?;
        // Requests are small and answers awaited one at a time: Nagle would only delay them.
        tcp.set_nodelay(true).map_err(Error::Connect)?;
        let (stream, http2): (Box<dyn Connection>, bool) = if *https {
            let name =
                ServerName::try_from(host.clone()).map_err(|_| Error::HttpRequestUriInvalid)?;
            let connector = tokio_rustls::TlsConnector::from(self.tls.clone());
            let tls = timeout(limit, connector.connect(name, tcp))
                .await
                .map_err(|_| Error::ConnectionTimeout)?
                .map_err(Error::Tls)?;
            let http2 = tls.get_ref().1.alpn_protocol() == Some(&b"h2"[..]);
            (Box::new(tls), http2)
        } else {
            (Box::new(tcp), false)
        };
        self.pool.connections.fetch_add(1, Ordering::Relaxed);
        if !http2 {
            let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(connection);
            return Ok(Sender::Http1(sender));
        }
        self.pool.http2_connections.fetch_add(1, Ordering::Relaxed);
        let (sender, connection) =
            http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        if self.pool.keep_alive {
            let mut idle = self.pool.idle.lock().unwrap();
            idle.entry(origin.clone())
                .or_default()
                .push(Sender::Http2(sender.clone()));
        }
        Ok(Sender::Http2(sender))
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
