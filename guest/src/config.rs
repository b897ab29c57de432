//! The destination's configuration, read from the key/value pairs the host passes to `open`.
//! Every problem is a configuration error that names the key.

use crate::message::DestinationError;
use crate::schema::TableSchema;

pub const DEFAULT_MAX_MESSAGES: u64 = 100_000;
pub const DEFAULT_LATENCY_SECONDS: u64 = 60;
/// Kusto's documented limit on the data of one streaming ingestion request.
pub const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamFormat {
    MultiJson,
    Json,
    Csv,
}

impl StreamFormat {
    pub fn query_value(self) -> &'static str {
        match self {
            Self::MultiJson => "multijson",
            Self::Json => "json",
            Self::Csv => "csv",
        }
    }
}

/// Where a column takes its value from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnSource {
    /// A top-level field of the JSON payload.
    Field(String),
    /// `$metadata.topic`
    Topic,
    /// `$metadata.user_property.<key>`
    UserProperty(String),
    /// `$metadata.system_property.content_type`
    ContentType,
}

impl ColumnSource {
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.strip_prefix("$metadata.") {
            None if text.is_empty() => Err("the source is empty".into()),
            None => Ok(Self::Field(text.to_string())),
            Some("topic") => Ok(Self::Topic),
            Some("system_property.content_type") => Ok(Self::ContentType),
            Some(other) => match other.strip_prefix("user_property.") {
                Some(key) if !key.is_empty() => Ok(Self::UserProperty(key.to_string())),
                _ => Err(format!(
                    "unknown metadata `{text}` (known: $metadata.topic, $metadata.user_property.<key>, $metadata.system_property.content_type)"
                )),
            },
        }
    }
}

/// How numbers in a `datetime` column are read. By default they are rejected: a bare number
/// has no unit, and guessing one is how other tools ingest wrong dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumericDatetimes {
    Reject,
    UnixSeconds,
    UnixMilliseconds,
}

#[derive(Debug, Clone)]
pub struct DestinationConfig {
    /// `scheme://authority`, without a trailing slash.
    pub base_url: String,
    pub database: String,
    pub table: String,
    pub schema: TableSchema,
    /// The source of each schema column, in schema order.
    pub column_sources: Vec<ColumnSource>,
    pub max_messages: u64,
    pub latency_seconds: u64,
    pub format: StreamFormat,
    pub mapping_name: Option<String>,
    pub numeric_datetimes: NumericDatetimes,
    pub max_request_bytes: usize,
}

const KNOWN_KEYS: &[&str] = &[
    "host",
    "database",
    "table",
    "schema",
    "batching.maxMessages",
    "batching.latencySeconds",
    "format",
    "mappingName",
    "numericDatetimes",
    "maxRequestBytes",
    "columns.<column>",
];

impl DestinationConfig {
    pub fn from_pairs(pairs: &[(String, String)]) -> Result<Self, DestinationError> {
        let err = DestinationError::configuration;
        let get = |key: &str| {
            pairs
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.trim())
        };
        let required = |key: &str| match get(key) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(err(format!("{key}: required"))),
        };
        for (key, _) in pairs {
            let known = KNOWN_KEYS.contains(&key.as_str()) || key.starts_with("columns.");
            if !known {
                return Err(err(format!(
                    "{key}: unknown setting (known: {})",
                    KNOWN_KEYS.join(", ")
                )));
            }
        }

        let base_url = parse_host(required("host")?).map_err(|e| err(format!("host: {e}")))?;
        let database = required("database")?.to_string();
        let schema =
            TableSchema::parse(required("schema")?).map_err(|e| err(format!("schema: {e}")))?;
        let table = match (get("table").filter(|t| !t.is_empty()), &schema.table) {
            (Some(table), Some(named)) if table != named => {
                return Err(err(format!(
                    "table: `{table}` differs from the table `{named}` the schema creates"
                )))
            }
            (Some(table), _) => table.to_string(),
            (None, Some(named)) => named.clone(),
            (None, None) => return Err(err("table: required".to_string())),
        };

        let mut column_sources: Vec<ColumnSource> = schema
            .columns
            .iter()
            .map(|c| ColumnSource::Field(c.name.clone()))
            .collect();
        for (key, value) in pairs {
            let Some(column) = key.strip_prefix("columns.") else {
                continue;
            };
            let index = schema
                .columns
                .iter()
                .position(|c| c.name == column)
                .ok_or_else(|| err(format!("{key}: the table has no column `{column}`")))?;
            column_sources[index] =
                ColumnSource::parse(value.trim()).map_err(|e| err(format!("{key}: {e}")))?;
        }

        let number = |key: &str, default: u64, max: u64| -> Result<u64, DestinationError> {
            match get(key) {
                None => Ok(default),
                Some(text) => match text.parse::<u64>() {
                    Ok(v) if v <= max => Ok(v),
                    Ok(v) => Err(err(format!("{key}: {v} is outside 0..{max}"))),
                    Err(_) => Err(err(format!("{key}: `{text}` is not a whole number"))),
                },
            }
        };
        let max_messages = number(
            "batching.maxMessages",
            DEFAULT_MAX_MESSAGES,
            u32::MAX as u64,
        )?;
        let latency_seconds = number("batching.latencySeconds", DEFAULT_LATENCY_SECONDS, 65_535)?;
        let max_request_bytes = number(
            "maxRequestBytes",
            MAX_REQUEST_BYTES as u64,
            MAX_REQUEST_BYTES as u64,
        )? as usize;
        if max_request_bytes == 0 {
            return Err(err("maxRequestBytes: must be at least 1".to_string()));
        }

        let format = match get("format").unwrap_or("multijson") {
            "multijson" => StreamFormat::MultiJson,
            "json" => StreamFormat::Json,
            "csv" => StreamFormat::Csv,
            other => {
                return Err(err(format!(
                    "format: `{other}` is not supported (supported: multijson, json, csv)"
                )))
            }
        };
        let numeric_datetimes = match get("numericDatetimes").unwrap_or("reject") {
            "reject" => NumericDatetimes::Reject,
            "unixSeconds" => NumericDatetimes::UnixSeconds,
            "unixMilliseconds" => NumericDatetimes::UnixMilliseconds,
            other => {
                return Err(err(format!(
                "numericDatetimes: `{other}` is not one of reject, unixSeconds, unixMilliseconds"
            )))
            }
        };
        let mapping_name = get("mappingName")
            .filter(|m| !m.is_empty())
            .map(str::to_string);

        Ok(Self {
            base_url,
            database,
            table,
            schema,
            column_sources,
            max_messages,
            latency_seconds,
            format,
            mapping_name,
            numeric_datetimes,
            max_request_bytes,
        })
    }
}

/// Accepts `cluster.region.kusto.windows.net`, with or without `https://` (the documentation
/// shows both), or an explicit `http://` URL for a local endpoint.
fn parse_host(host: &str) -> Result<String, String> {
    let (scheme, rest) = match host.split_once("://") {
        Some((scheme @ ("https" | "http"), rest)) => (scheme, rest),
        Some((scheme, _)) => return Err(format!("scheme `{scheme}` is not http or https")),
        None => ("https", host),
    };
    let authority = rest.trim_end_matches('/');
    if authority.is_empty() {
        return Err("no host name".into());
    }
    if authority.contains(['/', '?', '#', ' ', '<', '>']) {
        return Err(format!(
            "`{host}` is not a host name (expected for example `mycluster.westeurope.kusto.windows.net`)"
        ));
    }
    Ok(format!("{scheme}://{authority}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn base() -> Vec<(String, String)> {
        pairs(&[
            ("host", "mycluster.westeurope.kusto.windows.net"),
            ("database", "telemetry"),
            (
                "schema",
                ".create table thermostat (a: string, Topic: string)",
            ),
        ])
    }

    fn with(extra: &[(&str, &str)]) -> Result<DestinationConfig, DestinationError> {
        let mut p = base();
        p.extend(pairs(extra));
        DestinationConfig::from_pairs(&p)
    }

    #[test]
    fn applies_the_documented_defaults() {
        let c = with(&[]).unwrap();
        assert_eq!(c.base_url, "https://mycluster.westeurope.kusto.windows.net");
        assert_eq!(c.table, "thermostat");
        assert_eq!(c.max_messages, 100_000);
        assert_eq!(c.latency_seconds, 60);
        assert_eq!(c.format, StreamFormat::MultiJson);
        assert_eq!(c.max_request_bytes, 4 * 1024 * 1024);
        assert_eq!(c.column_sources[0], ColumnSource::Field("a".into()));
    }

    #[test]
    fn reads_every_setting() {
        let c = with(&[
            ("host", "https://mycluster.westeurope.kusto.windows.net/"),
            ("batching.maxMessages", "10"),
            ("batching.latencySeconds", "0"),
            ("format", "csv"),
            ("mappingName", "m1"),
            ("columns.Topic", "$metadata.topic"),
            ("numericDatetimes", "unixMilliseconds"),
        ])
        .unwrap();
        assert_eq!(c.base_url, "https://mycluster.westeurope.kusto.windows.net");
        assert_eq!((c.max_messages, c.latency_seconds), (10, 0));
        assert_eq!(c.format, StreamFormat::Csv);
        assert_eq!(c.mapping_name.as_deref(), Some("m1"));
        assert_eq!(c.column_sources[1], ColumnSource::Topic);
        assert_eq!(c.numeric_datetimes, NumericDatetimes::UnixMilliseconds);
    }

    #[test]
    fn names_the_field_in_every_error() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("batching.latencySeconds", "70000")],
                "batching.latencySeconds: 70000 is outside 0..65535",
            ),
            (
                &[("batching.maxMessages", "many")],
                "batching.maxMessages: `many` is not a whole number",
            ),
            (&[("format", "avro")], "format: `avro` is not supported"),
            (&[("table", "other")], "table: `other` differs"),
            (
                &[("columns.Nope", "x")],
                "columns.Nope: the table has no column `Nope`",
            ),
            (
                &[("columns.a", "$metadata.what")],
                "columns.a: unknown metadata",
            ),
            (&[("hots", "x")], "hots: unknown setting"),
            (&[("host", "ftp://x")], "host: scheme `ftp`"),
            (
                &[("schema", "a: nothing")],
                "schema: column `a`: unknown type",
            ),
        ];
        for (extra, expected) in cases {
            let e = with(extra).unwrap_err();
            assert_eq!(e.class, crate::message::ErrorClass::Configuration);
            assert!(
                e.message.contains(expected),
                "{} does not contain {expected}",
                e.message
            );
        }
        let e = DestinationConfig::from_pairs(&pairs(&[("host", "h")])).unwrap_err();
        assert_eq!(e.message, "database: required");
    }
}
