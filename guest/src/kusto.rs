//! The Kusto streaming ingestion request and what its answers mean.
//! `POST {cluster}/v1/rest/ingest/{database}/{table}?streamFormat=…[&mappingName=…]`

use std::io::Write;

use crate::config::DestinationConfig;
use crate::message::DestinationError;

pub const APP_NAME: &str = "dataflow-adx-destination";
pub const CLIENT_VERSION: &str = concat!("dataflow-adx-destination:", env!("CARGO_PKG_VERSION"));

#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, Default)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub fn ingest_url(config: &DestinationConfig) -> String {
    let mut url = format!(
        "{}/v1/rest/ingest/{}/{}?streamFormat={}",
        config.base_url,
        percent_encode(&config.database),
        percent_encode(&config.table),
        config.format.query_value()
    );
    if let Some(mapping) = &config.mapping_name {
        url.push_str("&mappingName=");
        url.push_str(&percent_encode(mapping));
    }
    url
}

/// One attempt: the body (gzipped unless `compression_level` is 0) and a fresh client
/// request id.
/// The streaming ingestion request for `data`, the rows given as pieces back to back.
pub fn ingest_request(
    url: &str,
    data: &[&[u8]],
    compression_level: u32,
    request_id: &str,
) -> HttpRequest {
    let (body, encoding) = match compression_level {
        0 => (data.concat(), None),
        level => (
            gzip(data, level),
            Some(("content-encoding".to_string(), "gzip".to_string())),
        ),
    };
    HttpRequest {
        url: url.to_string(),
        headers: encoding
            .into_iter()
            .chain([
                ("content-type".into(), "application/octet-stream".into()),
                (
                    "x-ms-client-request-id".into(),
                    format!("{APP_NAME};{request_id}"),
                ),
                ("x-ms-app".into(), APP_NAME.into()),
                ("x-ms-client-version".into(), CLIENT_VERSION.into()),
            ])
            .collect(),
        body,
    }
}

pub fn gzip(data: &[&[u8]], level: u32) -> Vec<u8> {
    let len: usize = data.iter().map(|piece| piece.len()).sum();
    let mut encoder =
        flate2::write::GzEncoder::new(Vec::with_capacity(len / 4), flate2::Compression::new(level));
    for piece in data {
        encoder
            .write_all(piece)
            .expect("writing to a Vec cannot fail");
    }
    encoder.finish().expect("writing to a Vec cannot fail")
}

/// Kusto's error body: `{"error":{"code","message","@type","@message","@permanent",…}}`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct KustoError {
    pub code: String,
    pub message: String,
    pub detail: String,
    pub permanent: Option<bool>,
}

impl KustoError {
    pub fn parse(body: &[u8]) -> Self {
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
            return Self {
                message: String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned(),
                ..Self::default()
            };
        };
        let error = &value["error"];
        let text = |key: &str| error[key].as_str().unwrap_or_default().to_string();
        Self {
            code: text("code"),
            message: text("message"),
            detail: text("@message"),
            permanent: error["@permanent"].as_bool(),
        }
    }

    fn describe(&self) -> String {
        let mut parts: Vec<&str> = [
            self.code.as_str(),
            self.message.as_str(),
            self.detail.as_str(),
        ]
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect();
        parts.dedup();
        parts.join(": ")
    }
}

/// Why Kusto did not take a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The destination as a whole cannot take data now (throttled, down, streaming off,
    /// no permission, table missing): the rows stay buffered for a later attempt.
    Destination(DestinationError),
    /// Kusto refuses these rows as they are: retrying them cannot help, so they are
    /// rejected with Kusto's error and the next rows go on.
    Rows(String),
}

/// Error codes that speak of the destination, not of the rows sent (for example
/// `BadRequest_StreamingIngestionPolicyNotEnabled`, `BadRequest_EntityNotFound`).
const DESTINATION_CODE_MARKS: &[&str] = &["NotEnabled", "NotFound", "Forbidden", "Unauthorized"];

/// Success, or why the attempt failed, following the official SDKs: retry unless Kusto says
/// `@permanent`, and never retry a request Kusto refuses as malformed.
pub fn classify(config: &DestinationConfig, response: &HttpResponse) -> Result<(), Refusal> {
    let status = response.status;
    if (200..300).contains(&status) {
        return Ok(());
    }
    let error = KustoError::parse(&response.body);
    let target = format!("{}.{}", config.database, config.table);
    let described = format!(
        "HTTP {status} ingesting into {target}: {}",
        error.describe()
    );
    let destination = |e: DestinationError| Err(Refusal::Destination(e));
    if error.code == "BadRequest_StreamingIngestionPolicyNotEnabled" {
        return destination(DestinationError::permanent(format!(
            "{described}. Streaming ingestion is off: run `.alter database ['{}'] policy streamingingestion enable` (or `.alter table {} policy streamingingestion enable`) in the cluster; sending resumes once it is on",
            config.database, config.table
        )));
    }
    let retry_after_ms = response
        .header("retry-after")
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|seconds| (seconds * 1000.0) as u64);
    let about_destination = DESTINATION_CODE_MARKS
        .iter()
        .any(|mark| error.code.contains(mark));
    match status {
        401 => destination(DestinationError::transient(
            format!("{described} (the token was refused; the host will fetch a new one)"),
            retry_after_ms,
        )),
        403 => destination(DestinationError::permanent(format!(
            "{described}. The identity lacks permission: grant it the Ingestor role on database {}",
            config.database
        ))),
        404 => destination(DestinationError::permanent(format!(
            "{described}. Check that database {} and table {} exist",
            config.database, config.table
        ))),
        408 | 429 => destination(DestinationError::transient(described, retry_after_ms)),
        400..=499 if error.permanent != Some(false) && about_destination => {
            destination(DestinationError::permanent(described))
        }
        400..=499 if error.permanent != Some(false) => Err(Refusal::Rows(described)),
        _ if error.permanent == Some(true) => destination(DestinationError::permanent(described)),
        _ => destination(DestinationError::transient(described, retry_after_ms)),
    }
}

pub use kusto_model::percent_encode;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::ErrorClass;

    fn config(extra: &[(&str, &str)]) -> DestinationConfig {
        let mut pairs: Vec<(String, String)> = [
            ("host", "https://c.westeurope.kusto.windows.net"),
            ("database", "my db"),
            ("schema", ".create table thermostat (a: string)"),
        ]
        .iter()
        .chain(extra)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        pairs.shrink_to_fit();
        DestinationConfig::from_pairs(&pairs).unwrap()
    }

    fn response(status: u16, body: &str) -> HttpResponse {
        HttpResponse {
            status,
            headers: vec![("Retry-After".into(), "2".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn builds_the_documented_url_and_headers() {
        assert_eq!(
            ingest_url(&config(&[("mappingName", "m 1")])),
            "https://c.westeurope.kusto.windows.net/v1/rest/ingest/my%20db/thermostat?streamFormat=multijson&mappingName=m%201"
        );
        let request = ingest_request("u", &[b"{}\n"], 1, "abc");
        let plain = ingest_request("u", &[b"{}", b"\n"], 0, "abc");
        assert_eq!(plain.body, b"{}\n");
        assert!(plain.headers.iter().all(|(k, _)| k != "content-encoding"));
        let header = |n: &str| {
            request
                .headers
                .iter()
                .find(|(k, _)| k == n)
                .unwrap()
                .1
                .clone()
        };
        assert_eq!(header("content-encoding"), "gzip");
        assert_eq!(
            header("x-ms-client-request-id"),
            "dataflow-adx-destination;abc"
        );
        assert!(header("x-ms-client-version").starts_with("dataflow-adx-destination:"));
        let mut decoded = String::new();
        use std::io::Read;
        flate2::read::GzDecoder::new(&request.body[..])
            .read_to_string(&mut decoded)
            .unwrap();
        assert_eq!(decoded, "{}\n");
    }

    #[test]
    fn streaming_policy_off_is_permanent_and_names_the_fix() {
        let body = r#"{"error":{"code":"BadRequest_StreamingIngestionPolicyNotEnabled","message":"Request is invalid and cannot be executed.","@type":"Kusto.DataNode.Exceptions.StreamingIngestionPolicyNotEnabledException","@message":"Streaming ingestion policy is not enabled for the table","@permanent":true}}"#;
        let e = destination_error(classify(&config(&[]), &response(400, body)));
        assert_eq!(e.class, ErrorClass::Permanent);
        assert!(
            e.message
                .contains(".alter database ['my db'] policy streamingingestion enable"),
            "{}",
            e.message
        );
        assert!(e.message.contains("HTTP 400"));
    }

    #[test]
    fn classifies_statuses_like_the_official_clients() {
        let c = config(&[]);
        let class = |status: u16, body: &str| {
            destination_error(classify(&c, &response(status, body))).class
        };
        assert!(classify(&c, &response(200, "")).is_ok());
        let throttled = destination_error(classify(&c, &response(429, "")));
        assert_eq!(
            (throttled.class, throttled.retry_after_ms),
            (ErrorClass::Transient, Some(2000))
        );
        assert_eq!(class(503, "oops"), ErrorClass::Transient);
        assert_eq!(class(520, ""), ErrorClass::Transient);
        assert_eq!(
            class(500, r#"{"error":{"code":"X","@permanent":true}}"#),
            ErrorClass::Permanent
        );
        assert_eq!(
            class(400, r#"{"error":{"code":"X","@permanent":false}}"#),
            ErrorClass::Transient
        );
        assert_eq!(class(401, ""), ErrorClass::Transient);
        let forbidden = destination_error(classify(&c, &response(403, "")));
        assert!(forbidden.message.contains("Ingestor"));
        assert!(destination_error(classify(&c, &response(404, "")))
            .message
            .contains("exist"));
        assert_eq!(
            class(
                400,
                r#"{"error":{"code":"BadRequest_EntityNotFound","@permanent":true}}"#
            ),
            ErrorClass::Permanent
        );
    }

    #[test]
    fn a_bad_request_about_the_data_refuses_the_rows_not_the_destination() {
        let c = config(&[]);
        let body =
            r#"{"error":{"code":"BadRequest_InvalidBlob","message":"bad json","@permanent":true}}"#;
        match classify(&c, &response(400, body)) {
            Err(Refusal::Rows(reason)) => {
                assert!(
                    reason.contains("HTTP 400") && reason.contains("BadRequest_InvalidBlob"),
                    "{reason}"
                )
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            classify(&c, &response(400, "{}")),
            Err(Refusal::Rows(_))
        ));
        assert!(matches!(
            classify(&c, &response(413, "")),
            Err(Refusal::Rows(_))
        ));
    }

    fn destination_error(result: Result<(), Refusal>) -> DestinationError {
        match result {
            Err(Refusal::Destination(e)) => e,
            other => panic!("expected a destination error, got {other:?}"),
        }
    }
}
