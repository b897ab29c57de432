//! The host's own HTTP requests (identity services, Kusto management from the demo and tests),
//! over wasmtime-wasi-http's sender: plain HTTP, or HTTPS with the webpki root certificates.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use wasmtime_wasi_http::{default_send_request, Error, RequestOptions};

/// A complete answer.
#[derive(Debug, Clone)]
pub struct HttpAnswer {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

/// Sends `request` (its URI absolute) and reads the whole answer.
pub async fn send(request: http::Request<Bytes>, timeout: Duration) -> Result<HttpAnswer, Error> {
    let (mut parts, body) = request.into_parts();
    if !parts.headers.contains_key(http::header::HOST) {
        let authority = parts.uri.authority().ok_or(Error::HttpRequestUriInvalid)?;
        let host = http::HeaderValue::from_str(authority.as_str())
            .map_err(|_| Error::HttpRequestUriInvalid)?;
        parts.headers.insert(http::header::HOST, host);
    }
    let body = Full::new(body).map_err(|never| match never {});
    let options = RequestOptions {
        connect_timeout: Some(timeout),
        first_byte_timeout: Some(timeout),
        between_bytes_timeout: Some(timeout),
    };
    let (response, io) =
        default_send_request(http::Request::from_parts(parts, body), Some(options)).await?;
    // The connection's I/O must keep running while the body is read.
    let io = tokio::spawn(io);
    let (parts, body) = response.into_parts();
    let body = body.collect().await?.to_bytes();
    let _ = io.await;
    Ok(HttpAnswer {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
    })
}

/// Percent-encodes a query or form value (RFC 3986 unreserved characters stay).
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `a=1&b=2`, each value percent-encoded.
pub fn form(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{k}={}", percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}
