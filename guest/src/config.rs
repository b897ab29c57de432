//! The destination's configuration, read from the key/value pairs the host passes to `open`.
//! Every problem is a configuration error that names the key.

use crate::message::DestinationError;
use crate::schema::{Column, KustoType, TableSchema};

pub const DEFAULT_MAX_MESSAGES: u64 = 100_000;
pub const DEFAULT_LATENCY_SECONDS: u64 = 60;
/// Kusto's documented limit on the data of one streaming ingestion request.
pub const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;
/// On an edge device CPU is scarcer than the few percent of bytes a higher level saves
/// (BENCHMARKS.md has the figures).
pub const DEFAULT_COMPRESSION_LEVEL: u64 = 1;

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

/// One step of a JSON path into the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathStep {
    Key(String),
    Index(usize),
}

/// Where a column takes its value from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnSource {
    /// A top-level field of the JSON payload.
    Field(String),
    /// A JSON path into the payload: `$.a.b[0]`, `$['a b'].c`.
    Path(Vec<PathStep>),
    /// `$metadata.topic`
    Topic,
    /// `$metadata.user_property.<key>`
    UserProperty(String),
    /// `$metadata.system_property.content_type`
    ContentType,
    /// `$const:<text>`: the same text for every row, converted to the column's type.
    Constant(String),
}

impl ColumnSource {
    pub fn parse(text: &str) -> Result<Self, String> {
        if let Some(constant) = text.strip_prefix("$const:") {
            return Ok(Self::Constant(constant.to_string()));
        }
        if text.starts_with("$.") || text.starts_with("$[") {
            return parse_path(text).map(Self::Path);
        }
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

    /// How the source is named in messages to the user.
    pub fn describe(&self) -> String {
        match self {
            Self::Field(name) => format!("field `{name}`"),
            Self::Path(steps) => {
                let mut path = String::from("$");
                for step in steps {
                    match step {
                        PathStep::Key(k) if k.chars().all(|c| c.is_alphanumeric() || c == '_') => {
                            path.push('.');
                            path.push_str(k);
                        }
                        PathStep::Key(k) => path.push_str(&format!("['{k}']")),
                        PathStep::Index(i) => path.push_str(&format!("[{i}]")),
                    }
                }
                format!("path `{path}`")
            }
            Self::Topic => "the topic".into(),
            Self::UserProperty(key) => format!("user property `{key}`"),
            Self::ContentType => "the content type".into(),
            Self::Constant(_) => "the constant".into(),
        }
    }
}

/// `$.a.b[0]`, `$['key with spaces'][2].c`
fn parse_path(text: &str) -> Result<Vec<PathStep>, String> {
    let invalid = |why: &str| format!("`{text}` is not a JSON path ({why})");
    let mut rest = text
        .strip_prefix('$')
        .ok_or_else(|| invalid("it must start with $"))?;
    let mut steps = Vec::new();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            if end == 0 {
                return Err(invalid("a `.` is not followed by a name"));
            }
            steps.push(PathStep::Key(after[..end].to_string()));
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix("['") {
            let end = after
                .find("']")
                .ok_or_else(|| invalid("`['` is not closed by `']`"))?;
            steps.push(PathStep::Key(after[..end].to_string()));
            rest = &after[end + 2..];
        } else if let Some(after) = rest.strip_prefix('[') {
            let end = after
                .find(']')
                .ok_or_else(|| invalid("`[` is not closed"))?;
            let index = after[..end]
                .trim()
                .parse()
                .map_err(|_| invalid("an index must be a whole number"))?;
            steps.push(PathStep::Index(index));
            rest = &after[end + 1..];
        } else {
            return Err(invalid("expected `.name`, `['name']` or `[index]`"));
        }
    }
    if steps.is_empty() {
        return Err(invalid("it selects nothing"));
    }
    Ok(steps)
}

/// How numbers in a `datetime` column are read. By default they are rejected: a bare number
/// has no unit, and guessing one is how other tools ingest wrong dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumericDatetimes {
    Reject,
    UnixSeconds,
    UnixMilliseconds,
    UnixMicroseconds,
    UnixNanoseconds,
}

impl NumericDatetimes {
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "reject" => Self::Reject,
            "unixSeconds" => Self::UnixSeconds,
            "unixMilliseconds" => Self::UnixMilliseconds,
            "unixMicroseconds" => Self::UnixMicroseconds,
            "unixNanoseconds" => Self::UnixNanoseconds,
            _ => return None,
        })
    }

    /// Units of the number per second; none when numbers are rejected.
    pub fn per_second(self) -> Option<i64> {
        match self {
            Self::Reject => None,
            Self::UnixSeconds => Some(1),
            Self::UnixMilliseconds => Some(1_000),
            Self::UnixMicroseconds => Some(1_000_000),
            Self::UnixNanoseconds => Some(1_000_000_000),
        }
    }
}

const UNITS: &str = "reject, unixSeconds, unixMilliseconds, unixMicroseconds, unixNanoseconds";

/// How one column of the table is filled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnPlan {
    pub column: Column,
    pub source: ColumnSource,
    /// For datetime columns: how numbers are read.
    pub unit: NumericDatetimes,
    /// A message without a value for this column is rejected instead of getting null.
    pub required: bool,
}

#[derive(Debug, Clone)]
pub struct DestinationConfig {
    /// `scheme://authority`, without a trailing slash.
    pub base_url: String,
    pub database: String,
    pub table: String,
    pub schema: TableSchema,
    /// How each schema column is filled, in schema order.
    pub columns: Vec<ColumnPlan>,
    pub max_messages: u64,
    pub latency_seconds: u64,
    pub format: StreamFormat,
    pub mapping_name: Option<String>,
    pub max_request_bytes: usize,
    /// gzip level 1 (fastest) to 9 (smallest); 0 sends the data uncompressed.
    pub compression_level: u32,
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
    "compressionLevel",
    "columns.<column>",
    "units.<column>",
    "required",
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
            let known = KNOWN_KEYS.contains(&key.as_str())
                || key.starts_with("columns.")
                || key.starts_with("units.");
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

        let default_unit = match get("numericDatetimes") {
            None => NumericDatetimes::Reject,
            Some(text) => NumericDatetimes::parse(text)
                .ok_or_else(|| err(format!("numericDatetimes: `{text}` is not one of {UNITS}")))?,
        };
        let mut columns: Vec<ColumnPlan> = schema
            .columns
            .iter()
            .map(|c| ColumnPlan {
                column: c.clone(),
                source: ColumnSource::Field(c.name.clone()),
                unit: default_unit,
                required: false,
            })
            .collect();
        let position = |key: &str, column: &str| {
            schema
                .columns
                .iter()
                .position(|c| c.name == column)
                .ok_or_else(|| err(format!("{key}: the table has no column `{column}`")))
        };
        for (key, value) in pairs {
            if let Some(column) = key.strip_prefix("columns.") {
                let index = position(key, column)?;
                columns[index].source =
                    ColumnSource::parse(value.trim()).map_err(|e| err(format!("{key}: {e}")))?;
            } else if let Some(column) = key.strip_prefix("units.") {
                let index = position(key, column)?;
                if columns[index].column.kusto_type != KustoType::DateTime {
                    return Err(err(format!(
                        "{key}: column `{column}` is {}, and units apply to datetime columns only",
                        columns[index].column.kusto_type
                    )));
                }
                columns[index].unit = NumericDatetimes::parse(value.trim()).ok_or_else(|| {
                    err(format!("{key}: `{}` is not one of {UNITS}", value.trim()))
                })?;
            }
        }
        for name in get("required").unwrap_or_default().split(',') {
            let name = name.trim();
            if !name.is_empty() {
                let index = position("required", name)?;
                columns[index].required = true;
            }
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
        let compression_level = number("compressionLevel", DEFAULT_COMPRESSION_LEVEL, 9)? as u32;

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
        let mapping_name = get("mappingName")
            .filter(|m| !m.is_empty())
            .map(str::to_string);

        Ok(Self {
            base_url,
            database,
            table,
            schema,
            columns,
            max_messages,
            latency_seconds,
            format,
            mapping_name,
            max_request_bytes,
            compression_level,
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
        assert_eq!(c.columns[0].source, ColumnSource::Field("a".into()));
        assert_eq!(c.columns[0].unit, NumericDatetimes::Reject);
        assert!(!c.columns[0].required);
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
        assert_eq!(c.columns[1].source, ColumnSource::Topic);
        assert_eq!(c.columns[0].unit, NumericDatetimes::UnixMilliseconds);
    }

    #[test]
    fn reads_paths_constants_units_and_required_columns() {
        let mut p = pairs(&[
            ("host", "c.kusto.windows.net"),
            ("database", "db"),
            (
                "schema",
                ".create table t (a: string, b: long, c: datetime, d: string)",
            ),
            ("columns.a", "$.outer['the key'][2].x"),
            ("columns.b", "$const:42"),
            ("units.c", "unixMicroseconds"),
            ("required", "a,c"),
        ]);
        p.push(("columns.d".into(), "$metadata.user_property.site".into()));
        let c = DestinationConfig::from_pairs(&p).unwrap();
        use PathStep::*;
        assert_eq!(
            c.columns[0].source,
            ColumnSource::Path(vec![
                Key("outer".into()),
                Key("the key".into()),
                Index(2),
                Key("x".into())
            ])
        );
        assert_eq!(
            c.columns[0].source.describe(),
            "path `$.outer['the key'][2].x`"
        );
        assert_eq!(c.columns[1].source, ColumnSource::Constant("42".into()));
        assert_eq!(c.columns[2].unit, NumericDatetimes::UnixMicroseconds);
        assert_eq!(
            c.columns.iter().map(|c| c.required).collect::<Vec<_>>(),
            [true, false, true, false]
        );
        assert_eq!(
            c.columns[3].source,
            ColumnSource::UserProperty("site".into())
        );
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
            (
                &[("compressionLevel", "10")],
                "compressionLevel: 10 is outside 0..9",
            ),
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
