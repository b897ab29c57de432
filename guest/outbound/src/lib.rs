//! One blocking HTTP request from inside a component, through `wasi:http/outgoing-handler`.
//! Shared by every guest of the project; compiles to nothing outside wasm.
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({
    path: "../../contract/wit/1.2.0",
    inline: "
        package local:outbound;
        world client {
            import wasi:http/outgoing-handler@0.2.12;
        }
    ",
    world: "local:outbound/client",
    generate_all,
});

use wasi::http::types::{
    ErrorCode, Fields, Method, OutgoingBody, OutgoingRequest, RequestOptions, Scheme,
};
use wasi::io::streams::StreamError;

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

#[derive(Debug)]
pub struct SendError {
    pub message: String,
    /// The host refused the request (`HTTP-request-denied`).
    pub denied: bool,
}

const READ_CHUNK: u64 = 64 * 1024;

fn failed(message: String) -> SendError {
    SendError {
        message,
        denied: false,
    }
}

/// Sends a POST to `url` (`http://` or `https://`). A header the host forbids is not an error
/// here: it is returned in the second part so callers can report it.
pub fn post(
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Result<(Response, Vec<String>), SendError> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| failed(format!("bad URL {url}")))?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));

    let fields = Fields::new();
    let mut refused = Vec::new();
    for (name, value) in headers {
        if let Err(e) = fields.append(name, value.as_bytes()) {
            refused.push(format!("{name}: {e:?}"));
        }
    }
    fields
        .append("content-length", body.len().to_string().as_bytes())
        .map_err(|e| failed(format!("header content-length: {e:?}")))?;
    let request = OutgoingRequest::new(fields);
    let _ = request.set_method(&Method::Post);
    let _ = request.set_scheme(Some(&if scheme == "http" {
        Scheme::Http
    } else {
        Scheme::Https
    }));
    let _ = request.set_authority(Some(authority));
    let _ = request.set_path_with_query(Some(path));
    let outgoing_body = request
        .body()
        .map_err(|_| failed("request body unavailable".into()))?;

    let options = RequestOptions::new();
    let _ = options.set_connect_timeout(Some(30_000_000_000));
    let _ = options.set_first_byte_timeout(Some(120_000_000_000));
    // Hand the request over before writing the body: the host buffers only one chunk.
    let future =
        wasi::http::outgoing_handler::handle(request, Some(options)).map_err(to_send_error)?;
    {
        let stream = outgoing_body
            .write()
            .map_err(|_| failed("request body stream unavailable".into()))?;
        // As much per call as the host takes (its chunk size, 1 MiB by default), rather than
        // `blocking-write-and-flush`'s 4096 bytes: each call is a round trip to the host.
        // On failure the real reason arrives through the response future below.
        let mut rest = body;
        while !rest.is_empty() {
            let permitted = match stream.check_write() {
                Ok(0) => {
                    stream.subscribe().block();
                    continue;
                }
                Ok(n) => usize::try_from(n).unwrap_or(usize::MAX).min(rest.len()),
                Err(_) => break,
            };
            if stream.write(&rest[..permitted]).is_err() {
                break;
            }
            rest = &rest[permitted..];
        }
        let _ = stream.blocking_flush();
    }
    let _ = OutgoingBody::finish(outgoing_body, None);

    future.subscribe().block();
    let response = future
        .get()
        .ok_or_else(|| failed("no response".into()))?
        .map_err(|_| failed("response already taken".into()))?
        .map_err(to_send_error)?;
    let status = response.status();
    let headers = response
        .headers()
        .entries()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
        .collect();
    let incoming = response
        .consume()
        .map_err(|_| failed("response body unavailable".into()))?;
    let stream = incoming
        .stream()
        .map_err(|_| failed("response body unavailable".into()))?;
    let mut body = Vec::new();
    loop {
        match stream.blocking_read(READ_CHUNK) {
            Ok(bytes) => body.extend_from_slice(&bytes),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(e)) => {
                return Err(failed(format!(
                    "reading the response: {}",
                    e.to_debug_string()
                )))
            }
        }
    }
    drop(stream);
    Ok((
        Response {
            status,
            headers,
            body,
        },
        refused,
    ))
}

fn to_send_error(code: ErrorCode) -> SendError {
    SendError {
        denied: matches!(code, ErrorCode::HttpRequestDenied),
        message: format!("{code:?}"),
    }
}
