//! A small client for the Kusto REST management and query endpoints: how the demo and the
//! tests set up and read back the local endpoint, the same way a user would.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use serde_json::{json, Value};

use dataflow_runtime::http_client::HttpClient;

const TIMEOUT: Duration = Duration::from_secs(30);

pub struct KustoClient {
    /// `http://host:port` or `https://cluster`
    base_url: String,
    token: String,
    client: HttpClient,
}

/// A result table: column names and rows.
#[derive(Debug, Clone)]
pub struct ResultTable {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

impl KustoClient {
    pub fn new(base_url: &str, token: &str) -> Self {
        Self::with_client(base_url, token, HttpClient::system())
    }

    pub fn with_client(base_url: &str, token: &str, client: HttpClient) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_string(),
            token: token.to_string(),
            client,
        }
    }

    /// Runs a management command (`.create table …`).
    pub async fn management(&self, database: &str, command: &str) -> Result<ResultTable> {
        self.post("/v1/rest/mgmt", database, command).await
    }

    pub async fn query(&self, database: &str, query: &str) -> Result<ResultTable> {
        self.post("/v1/rest/query", database, query).await
    }

    async fn post(&self, path: &str, database: &str, csl: &str) -> Result<ResultTable> {
        let url = format!("{}{path}", self.base_url);
        let body = json!({ "db": database, "csl": csl }).to_string();
        let request = http::Request::post(&url)
            .header("authorization", format!("Bearer {}", self.token))
            .header("content-type", "application/json; charset=utf-8")
            .body(Bytes::from(body))?;
        let answer = self
            .client
            .send(request, TIMEOUT)
            .await
            .with_context(|| format!("POST {url}"))?;
        let value: Value = serde_json::from_slice(&answer.body).with_context(|| {
            format!(
                "{url} answered {} with a body that is not JSON",
                answer.status
            )
        })?;
        if answer.status != 200 {
            let error = &value["error"];
            bail!(
                "{csl}: HTTP {} {}: {}",
                answer.status,
                error["code"].as_str().unwrap_or_default(),
                error["@message"].as_str().unwrap_or_default()
            );
        }
        let table = &value["Tables"][0];
        let columns = table["Columns"]
            .as_array()
            .map(|cols| {
                cols.iter()
                    .map(|c| c["ColumnName"].as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default();
        let rows = table["Rows"]
            .as_array()
            .map(|rows| {
                rows.iter()
                    .map(|r| r.as_array().cloned().unwrap_or_default())
                    .collect()
            })
            .unwrap_or_default();
        Ok(ResultTable { columns, rows })
    }
}

impl ResultTable {
    /// Renders the table as aligned text columns.
    pub fn render(&self) -> String {
        let cell = |v: &Value| match v {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        let cells: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| r.iter().map(cell).collect())
            .collect();
        let widths: Vec<usize> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, name)| {
                cells
                    .iter()
                    .filter_map(|r| r.get(i))
                    .map(|c| c.chars().count())
                    .chain([name.len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |values: &[String]| {
            values
                .iter()
                .zip(&widths)
                .map(|(v, w)| format!("{v:<w$}"))
                .collect::<Vec<_>>()
                .join(" | ")
                .trim_end()
                .to_string()
        };
        let mut out = vec![line(&self.columns)];
        out.push(
            widths
                .iter()
                .map(|w| "-".repeat(*w))
                .collect::<Vec<_>>()
                .join("-+-"),
        );
        out.extend(cells.iter().map(|r| line(r)));
        out.join("\n")
    }
}
