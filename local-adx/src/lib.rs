//! A local ADX-compatible endpoint on loopback: the REST surface the plugin and users touch
//! (`/v1/rest/mgmt`, `/v1/rest/query`, `/v2/rest/query`, `/v1/rest/ingest/{db}/{table}`), with bearer-token
//! checks, gzip, the 4 MB streaming limit, Kusto's parsing rules, status codes and error
//! bodies. Used embedded by the demo and the tests, or standalone (`dataflow-host emulator`,
//! or this crate's own `local-adx` binary).

mod cluster;
pub mod faults;
pub mod formats;
mod kql;
pub mod listener;
mod literal;
mod mapping;
mod responses;
pub mod serve;
pub mod tls;

use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use serde_json::{json, Value};
use tokio::net::TcpListener;

pub use cluster::Cluster;
use cluster::IngestRequest;
use faults::{Fault, FaultKind, Faults};
use formats::Format;
use kusto_model::schema::Column;
pub use responses::KustoFailure;

/// Kusto's documented limit on the data of one streaming ingestion request.
pub const STREAMING_LIMIT_BYTES: usize = 4 * 1024 * 1024;
/// Bodies larger than this are not even read.
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;
/// Request bodies held in memory at once, across all connections, in MiB: a request whose
/// body does not fit waits for room (whole, so that none holds part and waits for the rest).
const BODY_BUDGET_MIB: usize = 128;
const MIB: usize = 1024 * 1024;
const MAX_RECORDED_REQUESTS: usize = 10_000;

/// Decides whether a bearer token is valid, for endpoints that accept tokens issued by an
/// identity service (a test's) rather than one fixed token.
pub type TokenCheck = Arc<dyn Fn(&str) -> bool + Send + Sync>;

#[derive(Clone)]
pub struct EmulatorOptions {
    pub bind: SocketAddr,
    /// The bearer token accepted, unless `token_check` decides.
    pub token: String,
    pub token_check: Option<TokenCheck>,
    pub streaming_limit_bytes: usize,
    /// Serve HTTPS with this configuration instead of HTTP.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Faults injected into ingestion requests.
    pub faults: Vec<Fault>,
    /// Connections at once, and the deadline of a request head (and of idleness).
    pub limits: listener::ServerLimits,
}

impl EmulatorOptions {
    pub fn loopback(token: &str) -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            token: token.to_string(),
            token_check: None,
            streaming_limit_bytes: STREAMING_LIMIT_BYTES,
            tls: None,
            faults: Vec::new(),
            limits: listener::ServerLimits::default(),
        }
    }
}

/// What the endpoint saw of one request, for inspection by tests and users.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    pub path_and_query: String,
    pub authorization: Option<String>,
    pub client_request_id: Option<String>,
    pub content_encoding: Option<String>,
    pub body_bytes: usize,
    pub status: u16,
    /// When it arrived, in Unix milliseconds.
    pub at_unix_ms: u64,
}

struct Shared {
    cluster: Mutex<Cluster>,
    faults: Faults,
    options: EmulatorOptions,
    requests: Mutex<Vec<RecordedRequest>>,
    /// Connections accepted (and, with TLS, handshakes completed).
    connections: std::sync::atomic::AtomicU64,
    /// Room for request bodies, in MiB (`BODY_BUDGET_MIB`).
    body_budget: Arc<tokio::sync::Semaphore>,
}

pub struct Emulator {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Emulator {
    pub async fn start(options: EmulatorOptions) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(options.bind).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            cluster: Mutex::new(Cluster::default()),
            faults: Faults::new(options.faults.clone()),
            options,
            requests: Mutex::new(Vec::new()),
            connections: Default::default(),
            body_budget: Arc::new(tokio::sync::Semaphore::new(BODY_BUDGET_MIB)),
        });
        let server_state = shared.clone();
        let acceptor = shared
            .options
            .tls
            .clone()
            .map(tokio_rustls::TlsAcceptor::from);
        let limits = shared.options.limits;
        let mut connections = listener::Acceptor::new(listener, limits);
        let server = tokio::spawn(async move {
            loop {
                let (stream, permit) = connections.next().await;
                // Answers are written in one go and awaited by the client: no Nagle delay.
                let _ = stream.set_nodelay(true);
                let state = server_state.clone();
                let acceptor = acceptor.clone();
                let counted = server_state.clone();
                tokio::spawn(async move {
                    // Held while the connection is served.
                    let _permit = permit;
                    let count = || {
                        counted
                            .connections
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                    };
                    let service = service_fn(move |request| {
                        let state = state.clone();
                        async move { handle(&state, request).await }
                    });
                    let mut http = hyper::server::conn::http1::Builder::new();
                    http.timer(TokioTimer::new())
                        .header_read_timeout(limits.idle_timeout);
                    let _ = match acceptor {
                        Some(acceptor) => {
                            match tokio::time::timeout(limits.idle_timeout, acceptor.accept(stream))
                                .await
                            {
                                Ok(Ok(tls))
                                    if tls.get_ref().1.alpn_protocol() == Some(&b"h2"[..]) =>
                                {
                                    count();
                                    hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                                        .serve_connection(TokioIo::new(tls), service)
                                        .await
                                }
                                Ok(Ok(tls)) => {
                                    count();
                                    http.serve_connection(TokioIo::new(tls), service).await
                                }
                                Ok(Err(_)) | Err(_) => return,
                            }
                        }
                        None => {
                            count();
                            http.serve_connection(TokioIo::new(stream), service).await
                        }
                    };
                });
            }
        });
        Ok(Self {
            addr,
            shared,
            server,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections accepted so far: with TLS, each one a completed handshake.
    pub fn connections_accepted(&self) -> u64 {
        self.shared
            .connections
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// `http://127.0.0.1:<port>` (or `https://`): the endpoint's host as a plugin is
    /// configured with it.
    pub fn url(&self) -> String {
        let scheme = if self.shared.options.tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// What a Kusto client (the official SDKs, Kusto.Explorer) needs to connect, with the
    /// endpoint's token as an application token.
    pub fn connection_string(&self, database: &str) -> String {
        format!(
            "Data Source={};Initial Catalog={database};AAD Federated Security=True;Application Token={}",
            self.url(),
            self.shared.options.token
        )
    }

    /// Rows ingested into a table, in column order.
    pub fn rows(&self, database: &str, table: &str) -> Vec<Vec<Value>> {
        let cluster = self.shared.cluster.lock().unwrap();
        cluster
            .table(database, table)
            .map(|t| t.rows.clone())
            .unwrap_or_default()
    }

    /// How many rows a table holds, without copying them (for waiting on a count).
    pub fn row_count(&self, database: &str, table: &str) -> usize {
        let cluster = self.shared.cluster.lock().unwrap();
        cluster.table(database, table).map_or(0, |t| t.rows.len())
    }

    /// Rows with the time each was ingested (Unix nanoseconds), as `ingestion_time()` would
    /// give it.
    pub fn rows_with_ingestion_times(&self, database: &str, table: &str) -> Vec<(Vec<Value>, u64)> {
        let cluster = self.shared.cluster.lock().unwrap();
        cluster
            .table(database, table)
            .map(|t| {
                t.rows
                    .iter()
                    .cloned()
                    .zip(t.ingested_at.iter().copied())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn columns(&self, database: &str, table: &str) -> Vec<Column> {
        let cluster = self.shared.cluster.lock().unwrap();
        cluster
            .table(database, table)
            .map(|t| t.columns.clone())
            .unwrap_or_default()
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// Replaces the faults in force (an empty list ends them).
    pub fn set_faults(&self, faults: Vec<Fault>) {
        self.shared.faults.replace(faults);
    }
}

/// Returned by the service to close a connection without answering (an injected fault).
#[derive(Debug)]
struct DroppedConnection;

impl std::fmt::Display for DroppedConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by an injected fault")
    }
}

impl std::error::Error for DroppedConnection {}

/// The injected fault's answer, if it answers instead of the endpoint.
async fn inject(fault: FaultKind) -> Result<Option<Response<Full<Bytes>>>, DroppedConnection> {
    let failure = |status: u16, code: &'static str| KustoFailure {
        status,
        code,
        message: "injected by the local endpoint's fault plan".into(),
        permanent: false,
    };
    let (failure, retry_after) = match fault {
        FaultKind::Slow(delay) => {
            tokio::time::sleep(delay).await;
            return Ok(None);
        }
        FaultKind::DropConnection => return Err(DroppedConnection),
        FaultKind::Throttle {
            retry_after_seconds,
        } => (failure(429, "TooManyRequests"), Some(retry_after_seconds)),
        FaultKind::ServerError(status) => (failure(status, "ServiceUnavailable"), None),
    };
    let mut response = json_response(failure.status, &failure.body());
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert("retry-after", http::HeaderValue::from(seconds));
    }
    Ok(Some(response))
}

/// The page at the endpoint's root: one file, its script and style inline, nothing fetched
/// from elsewhere (the policy says so to the browser too).
fn page() -> Response<Full<Bytes>> {
    Response::builder()
        .header("content-type", "text/html; charset=utf-8")
        .header(
            "content-security-policy",
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self'",
        )
        .header("x-content-type-options", "nosniff")
        .body(Full::new(Bytes::from_static(include_bytes!("page.html"))))
        .expect("a valid response")
}

/// What the page shows besides query results: databases, tables with their schemas, row
/// counts and mappings, the ingestion rate, and the last requests.
fn overview(state: &Shared) -> Value {
    const LAST_REQUESTS: usize = 20;
    let now = now_nanos();
    let recent_from = now.saturating_sub(10_000_000_000);
    let cluster = state.cluster.lock().unwrap();
    let mut total_rows = 0;
    let mut recent_rows = 0;
    let databases: Vec<Value> = cluster
        .databases
        .iter()
        .map(|(name, db)| {
            let tables: Vec<Value> = db
                .tables
                .iter()
                .map(|(table_name, table)| {
                    total_rows += table.rows.len();
                    recent_rows += table
                        .ingested_at
                        .iter()
                        .rev()
                        .take_while(|&&t| t >= recent_from)
                        .count();
                    json!({
                        "name": table_name,
                        "rows": table.rows.len(),
                        "columns": table.columns.iter()
                            .map(|c| json!({ "name": c.name, "type": c.kusto_type.name() }))
                            .collect::<Vec<_>>(),
                        "mappings": table.mappings.keys()
                            .map(|(kind, name)| format!("{name} ({})", kind.name()))
                            .collect::<Vec<_>>(),
                    })
                })
                .collect();
            json!({ "name": name, "tables": tables })
        })
        .collect();
    drop(cluster);
    let requests: Vec<Value> = state
        .requests
        .lock()
        .unwrap()
        .iter()
        .rev()
        .filter(|r| r.path_and_query != "/local/overview")
        .take(LAST_REQUESTS)
        .map(|r| {
            json!({ "method": r.method, "path": r.path_and_query, "status": r.status,
                    "body_bytes": r.body_bytes, "at_unix_ms": r.at_unix_ms })
        })
        .collect();
    json!({
        "databases": databases,
        "ingestion": { "rows": total_rows, "rows_per_second_last_10s": recent_rows as f64 / 10.0 },
        "requests": requests,
        "connections": state.connections.load(std::sync::atomic::Ordering::Relaxed),
    })
}

fn json_response(status: u16, body: &Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", "application/json; charset=utf-8")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("a valid response")
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn handle(
    state: &Shared,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, DroppedConnection> {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let mut record = RecordedRequest {
        method: request.method().to_string(),
        path_and_query: request
            .uri()
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        authorization: header("authorization"),
        client_request_id: header("x-ms-client-request-id"),
        content_encoding: header("content-encoding"),
        body_bytes: 0,
        status: 0,
        at_unix_ms: now_nanos() / 1_000_000,
    };
    if request.method() == Method::GET && record.path_and_query == "/" {
        record.status = 200;
        state.record(record);
        return Ok(page());
    }
    if record.path_and_query.starts_with("/v1/rest/ingest/") {
        if let Some(fault) = state.faults.pick() {
            match inject(fault).await {
                Ok(None) => {}
                Ok(Some(response)) => {
                    record.status = response.status().as_u16();
                    state.record(record);
                    return Ok(response);
                }
                Err(dropped) => {
                    state.record(record);
                    return Err(dropped);
                }
            }
        }
    }
    let result = route(state, request, &mut record).await;
    let (status, body) = match result {
        Ok(value) => (200, value),
        Err(failure) => (failure.status, failure.body()),
    };
    record.status = status;
    state.record(record);
    Ok(json_response(status, &body))
}

impl Shared {
    fn record(&self, record: RecordedRequest) {
        let mut requests = self.requests.lock().unwrap();
        if requests.len() == MAX_RECORDED_REQUESTS {
            requests.remove(0);
        }
        requests.push(record);
    }
}

async fn route(
    state: &Shared,
    request: Request<Incoming>,
    record: &mut RecordedRequest,
) -> Result<Value, KustoFailure> {
    let path = request.uri().path().to_string();
    let query = request.uri().query().unwrap_or_default().to_string();
    if request.method() == Method::GET && path == "/local/overview" {
        check_token(state, record.authorization.as_deref())?;
        return Ok(overview(state));
    }
    if request.method() != Method::POST {
        return Err(KustoFailure::not_found(format!(
            "{} {path} is not supported",
            request.method()
        )));
    }
    check_token(state, record.authorization.as_deref())?;
    let (body, _room) = read_body(state, request).await?;
    record.body_bytes = body.len();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        ["v1", "rest", "mgmt"] => {
            let (db, csl) = command_body(&body)?;
            state.cluster.lock().unwrap().execute(&db, &csl)
        }
        ["v1", "rest", "query"] => {
            let (db, csl) = command_body(&body)?;
            let result = state.cluster.lock().unwrap().query(&db, &csl)?;
            Ok(responses::result_table(&result.columns, result.rows))
        }
        ["v2", "rest", "query"] => {
            let (db, csl) = command_body(&body)?;
            let result = state.cluster.lock().unwrap().query(&db, &csl)?;
            Ok(responses::v2_frames(
                &result.columns,
                result.rows,
                result.visualization.as_deref(),
            ))
        }
        ["v1", "rest", "ingest", database, table] => {
            let data = decode_ingest_body(
                &body,
                record.content_encoding.as_deref(),
                state.options.streaming_limit_bytes,
            )?;
            let params = query_params(&query);
            let format_name = params
                .iter()
                .find(|(k, _)| k == "streamFormat")
                .map(|(_, v)| v.as_str());
            let format = format_name.and_then(Format::parse).ok_or_else(|| {
                KustoFailure::bad_request(
                    "BadRequest_InvalidArgument",
                    format!(
                        "streamFormat `{}` is missing or not supported here (json, multijson, csv)",
                        format_name.unwrap_or("")
                    ),
                )
            })?;
            let mapping = params
                .iter()
                .find(|(k, _)| k == "mappingName")
                .map(|(_, v)| v.as_str());
            let database = percent_decode(database);
            let table = percent_decode(table);
            let count = state.cluster.lock().unwrap().ingest(IngestRequest {
                database: &database,
                table: &table,
                format,
                mapping_name: mapping,
                data: &data,
            })?;
            Ok(
                json!({ "Tables": [{ "TableName": "Table_0", "Columns": [{"ColumnName": "RowCount", "DataType": "Int64", "ColumnType": "long"}], "Rows": [[count]] }] }),
            )
        }
        _ => Err(KustoFailure::not_found(format!(
            "POST {path} is not supported"
        ))),
    }
}

fn check_token(state: &Shared, authorization: Option<&str>) -> Result<(), KustoFailure> {
    let valid = |token: &str| match &state.options.token_check {
        Some(check) => check(token),
        None => token == state.options.token,
    };
    match authorization.and_then(|a| a.strip_prefix("Bearer ")) {
        Some(token) if valid(token) => Ok(()),
        Some(_) => Err(KustoFailure::unauthorized(
            "The bearer token is not valid for this endpoint",
        )),
        None => Err(KustoFailure::unauthorized(
            "The request has no bearer token",
        )),
    }
}

/// The body, and the room it takes in the body budget (held while the body is in use). A
/// declared length beyond the limit is refused unread.
async fn read_body(
    state: &Shared,
    request: Request<Incoming>,
) -> Result<(Vec<u8>, tokio::sync::OwnedSemaphorePermit), KustoFailure> {
    let declared = request
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if let Some(length) = declared.filter(|&length| length > MAX_BODY_BYTES) {
        return Err(too_large(format!(
            "The request body of {length} bytes is larger than the {MAX_BODY_BYTES} bytes this endpoint reads"
        )));
    }
    let room = declared.unwrap_or(MAX_BODY_BYTES).div_ceil(MIB).max(1);
    let room = state
        .body_budget
        .clone()
        .acquire_many_owned(room as u32)
        .await
        .expect("the budget is never closed");
    // Into one buffer of the declared size: no second copy of a large body.
    let mut body = Vec::with_capacity(declared.unwrap_or(0));
    let mut incoming = Limited::new(request.into_body(), MAX_BODY_BYTES);
    while let Some(frame) = incoming.frame().await {
        let frame =
            frame.map_err(|e| too_large(format!("The request body could not be read: {e}")))?;
        if let Ok(data) = frame.into_data() {
            body.extend_from_slice(&data);
        }
    }
    Ok((body, room))
}

fn too_large(message: String) -> KustoFailure {
    KustoFailure {
        status: 413,
        code: "BadRequest_RequestSizeExceeded",
        message,
        permanent: true,
    }
}

/// Gunzips when asked to, and enforces the streaming size limit on the data itself.
fn decode_ingest_body(
    body: &[u8],
    encoding: Option<&str>,
    limit: usize,
) -> Result<String, KustoFailure> {
    let data = match encoding {
        Some(e) if e.eq_ignore_ascii_case("gzip") => {
            let mut data = Vec::new();
            flate2::read::GzDecoder::new(body)
                .take(limit as u64 + 1)
                .read_to_end(&mut data)
                .map_err(|e| {
                    KustoFailure::bad_request(
                        "BadRequest_InvalidData",
                        format!("The gzip body is invalid: {e}"),
                    )
                })?;
            data
        }
        None => body.to_vec(),
        Some(other) => {
            return Err(KustoFailure::bad_request(
                "BadRequest_InvalidArgument",
                format!("Content-Encoding `{other}` is not supported"),
            ))
        }
    };
    if data.len() > limit {
        return Err(too_large(format!(
            "The data of a streaming ingestion request is limited to {limit} bytes"
        )));
    }
    String::from_utf8(data)
        .map_err(|_| KustoFailure::bad_request("BadRequest_InvalidData", "The data is not UTF-8"))
}

fn command_body(body: &[u8]) -> Result<(String, String), KustoFailure> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        KustoFailure::bad_request(
            "BadRequest_InvalidArgument",
            format!("The body is not JSON: {e}"),
        )
    })?;
    let field = |name: &str| value[name].as_str().map(str::to_string);
    match (field("db"), field("csl")) {
        (Some(db), Some(csl)) => Ok((db, csl)),
        _ => Err(KustoFailure::bad_request(
            "BadRequest_InvalidArgument",
            "The body must be {\"db\": …, \"csl\": …}",
        )),
    }
}

fn query_params(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (percent_decode(k), percent_decode(v)))
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Now, in nanoseconds since the Unix epoch.
pub(crate) fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
