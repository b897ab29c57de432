//! The emulated cluster's state: databases, tables with their schemas and rows, streaming
//! ingestion policies, and the management commands and queries that act on them.

use std::collections::BTreeMap;

use serde_json::Value;

use kusto_model::schema::{unquote_name, Column, TableSchema};

use super::formats::{parse_rows, Format};
use super::query::{self, QueryResult};
use super::responses::{result_table, KustoFailure};

#[derive(Default)]
pub struct Table {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Value>>,
    /// When each row was ingested (Unix nanoseconds): what Kusto's `ingestion_time()` gives.
    pub ingested_at: Vec<u64>,
    /// Table-level policy; `None` defers to the database.
    streaming: Option<bool>,
}

#[derive(Default)]
pub struct Database {
    pub tables: BTreeMap<String, Table>,
    streaming: bool,
}

#[derive(Default)]
pub struct Cluster {
    pub databases: BTreeMap<String, Database>,
}

/// What one streaming ingestion request carried.
pub struct IngestRequest<'a> {
    pub database: &'a str,
    pub table: &'a str,
    pub format: Format,
    pub mapping_name: Option<&'a str>,
    pub data: &'a str,
}

impl Cluster {
    /// Runs a management command (`.create table`, `.alter … policy streamingingestion`, …).
    pub fn execute(&mut self, database: &str, command: &str) -> Result<Value, KustoFailure> {
        let command = command.trim();
        let words: Vec<&str> = command.split_whitespace().collect();
        let lower: Vec<String> = words.iter().map(|w| w.to_ascii_lowercase()).collect();
        let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
        match lower.as_slice() {
            [".create" | ".create-merge", "table", ..] => self.create_table(database, command),
            [".alter", "database", _, "policy", "streamingingestion", setting] => {
                let name = unquote_name(words[2]);
                let enabled = policy_setting(setting)?;
                self.databases.entry(name.clone()).or_default().streaming = enabled;
                Ok(policy_result(&name, enabled))
            }
            [".alter", "table", _, "policy", "streamingingestion", setting] => {
                let name = unquote_name(words[2]);
                let enabled = policy_setting(setting)?;
                let table = self.table_mut(database, &name)?;
                table.streaming = Some(enabled);
                Ok(policy_result(&name, enabled))
            }
            [".drop", "table", _, ..] => {
                let name = unquote_name(words[2]);
                self.databases
                    .get_mut(database)
                    .and_then(|db| db.tables.remove(&name))
                    .ok_or_else(|| {
                        KustoFailure::not_found(format!(
                            "Table '{name}' was not found in database '{database}'"
                        ))
                    })?;
                Ok(self.show_tables(database))
            }
            [".show", "tables"] => Ok(self.show_tables(database)),
            [".show", "table", _, "schema"] => {
                let name = unquote_name(words[2]);
                let table = self.table(database, &name).ok_or_else(|| {
                    KustoFailure::not_found(format!(
                        "Table '{name}' was not found in database '{database}'"
                    ))
                })?;
                let schema: Vec<String> = table
                    .columns
                    .iter()
                    .map(|c| format!("{}:{}", c.name, c.kusto_type.name()))
                    .collect();
                let columns =
                    TableSchema::parse("TableName: string, Schema: string, DatabaseName: string")
                        .unwrap()
                        .columns;
                Ok(result_table(
                    &columns,
                    vec![vec![
                        Value::from(name),
                        Value::from(schema.join(",")),
                        Value::from(database),
                    ]],
                ))
            }
            _ => Err(KustoFailure::bad_request(
                "BadRequest_SyntaxError",
                format!("Unsupported management command: {command}"),
            )),
        }
    }

    fn create_table(&mut self, database: &str, command: &str) -> Result<Value, KustoFailure> {
        let schema = TableSchema::parse(command)
            .map_err(|e| KustoFailure::bad_request("BadRequest_SyntaxError", e))?;
        let name = schema.table.clone().unwrap_or_default();
        let db = self.databases.entry(database.to_string()).or_default();
        let table = db.tables.entry(name).or_default();
        let merge = command
            .trim_start()
            .to_ascii_lowercase()
            .starts_with(".create-merge");
        if table.columns.is_empty() || !merge {
            if !table.rows.is_empty() && table.columns != schema.columns {
                return Err(KustoFailure::bad_request(
                    "BadRequest_EntityAlreadyExists",
                    "A table with that name and a different schema already exists",
                ));
            }
            table.columns = schema.columns.clone();
        } else {
            for column in schema.columns {
                if !table.columns.iter().any(|c| c.name == column.name) {
                    table.columns.push(column);
                    for row in &mut table.rows {
                        row.push(Value::Null);
                    }
                }
            }
        }
        let columns = table.columns.clone();
        Ok(result_table(&columns, vec![]))
    }

    fn show_tables(&self, database: &str) -> Value {
        let columns = TableSchema::parse("TableName: string, DatabaseName: string")
            .unwrap()
            .columns;
        let rows = self
            .databases
            .get(database)
            .map(|db| {
                db.tables
                    .keys()
                    .map(|t| vec![Value::String(t.clone()), Value::String(database.into())])
                    .collect()
            })
            .unwrap_or_default();
        result_table(&columns, rows)
    }

    fn table_mut(&mut self, database: &str, table: &str) -> Result<&mut Table, KustoFailure> {
        self.databases
            .get_mut(database)
            .and_then(|db| db.tables.get_mut(table))
            .ok_or_else(|| {
                KustoFailure::not_found(format!(
                    "Table '{table}' was not found in database '{database}'"
                ))
            })
    }

    pub fn table(&self, database: &str, table: &str) -> Option<&Table> {
        self.databases.get(database)?.tables.get(table)
    }

    /// Streaming ingestion: all rows of the request are added, or none.
    pub fn ingest(&mut self, request: IngestRequest) -> Result<usize, KustoFailure> {
        let db_streaming = self
            .databases
            .get(request.database)
            .ok_or_else(|| {
                KustoFailure::not_found(format!("Database '{}' was not found", request.database))
            })?
            .streaming;
        let table = self.table_mut(request.database, request.table)?;
        if !table.streaming.unwrap_or(db_streaming) {
            return Err(KustoFailure::bad_request(
                "BadRequest_StreamingIngestionPolicyNotEnabled",
                format!(
                    "Streaming ingestion policy is not enabled for the table '{}' in database '{}'",
                    request.table, request.database
                ),
            ));
        }
        if let Some(mapping) = request.mapping_name {
            return Err(KustoFailure::bad_request(
                "BadRequest_MappingReferenceWasNotFound",
                format!(
                    "Mapping reference '{mapping}' of kind '{:?}' was not found",
                    request.format
                ),
            ));
        }
        let rows = parse_rows(request.format, request.data, &table.columns)
            .map_err(|e| KustoFailure::bad_request("BadRequest_InvalidData", e))?;
        let count = rows.len();
        table.rows.extend(rows);
        let now = crate::now_nanos();
        table.ingested_at.resize(table.rows.len(), now);
        Ok(count)
    }

    /// Queries: a table, then the operators `query.rs` knows.
    pub fn query(&self, database: &str, query: &str) -> Result<QueryResult, KustoFailure> {
        let mut parts = query.split('|').map(str::trim);
        let name = unquote_name(parts.next().unwrap_or_default());
        let table = self.table(database, &name).ok_or_else(|| {
            KustoFailure::bad_request(
                "General_BadRequest",
                format!("Failed to resolve table or column expression named '{name}'"),
            )
        })?;
        let all = QueryResult {
            columns: table.columns.clone(),
            rows: table.rows.clone(),
        };
        query::run(all, parts)
    }
}

fn policy_setting(setting: &str) -> Result<bool, KustoFailure> {
    match setting {
        "enable" => Ok(true),
        "disable" => Ok(false),
        other => Err(KustoFailure::bad_request(
            "BadRequest_SyntaxError",
            format!("expected enable or disable, found `{other}`"),
        )),
    }
}

fn policy_result(entity: &str, enabled: bool) -> Value {
    let columns = TableSchema::parse("PolicyName: string, EntityName: string, Policy: string")
        .unwrap()
        .columns;
    let policy = format!("{{\"IsEnabled\": {enabled}}}");
    result_table(
        &columns,
        vec![vec![
            "StreamingIngestionPolicy".into(),
            Value::String(entity.into()),
            Value::String(policy),
        ]],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ingest(cluster: &mut Cluster, data: &str) -> Result<usize, KustoFailure> {
        cluster.ingest(IngestRequest {
            database: "db",
            table: "t",
            format: Format::MultiJson,
            mapping_name: None,
            data,
        })
    }

    #[test]
    fn refuses_streaming_until_the_policy_is_enabled() {
        let mut c = Cluster::default();
        c.execute("db", ".create table t (a: long)").unwrap();
        let e = ingest(&mut c, r#"{"a":1}"#).unwrap_err();
        assert_eq!(
            (e.status, e.code),
            (400, "BadRequest_StreamingIngestionPolicyNotEnabled")
        );
        assert_eq!(e.body()["error"]["@permanent"], true);
        c.execute(
            "db",
            ".alter database ['db'] policy streamingingestion enable",
        )
        .unwrap();
        assert_eq!(ingest(&mut c, r#"{"a":1}{"a":2}"#).unwrap(), 2);
        c.execute("db", ".alter table t policy streamingingestion disable")
            .unwrap();
        assert!(ingest(&mut c, r#"{"a":3}"#).is_err());
        let result = c.query("db", "t | count").unwrap();
        assert_eq!(result.rows[0][0], 2);
    }

    #[test]
    fn unknown_tables_and_commands_fail_like_kusto() {
        let mut c = Cluster::default();
        c.execute("db", ".alter database db policy streamingingestion enable")
            .unwrap();
        assert_eq!(ingest(&mut c, "{}").unwrap_err().status, 404);
        assert_eq!(
            c.execute("db", ".frobnicate").unwrap_err().code,
            "BadRequest_SyntaxError"
        );
        assert!(c.query("db", "nope | take 1").is_err());
    }

    #[test]
    fn take_returns_the_first_rows_with_types() {
        let mut c = Cluster::default();
        c.execute("db", ".create table t (a: long, s: string)")
            .unwrap();
        c.execute("db", ".alter database db policy streamingingestion enable")
            .unwrap();
        ingest(&mut c, r#"{"a":1,"s":"x"}{"a":2,"s":"y"}{"a":3}"#).unwrap();
        let result = c.query("db", "t | take 2").unwrap();
        let table = &result_table(&result.columns, result.rows)["Tables"][0];
        assert_eq!(table["Rows"], serde_json::json!([[1, "x"], [2, "y"]]));
        assert_eq!(table["Columns"][0]["ColumnType"], "long");
    }
}
