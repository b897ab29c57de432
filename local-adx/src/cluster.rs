//! The emulated cluster's state: databases, tables with their schemas and rows, streaming
//! ingestion policies, and the management commands and queries that act on them.

use std::collections::BTreeMap;

use serde_json::Value;

use kusto_model::schema::{unquote_name, Column, TableSchema};

use super::formats::{json_records, parse_csv, parse_rows, Format};
use super::kql::{self, QueryResult};
use super::literal::{command_words, Word};
use super::mapping::{Mapping, MappingKind};
use super::responses::{result_table, KustoFailure};

#[derive(Default)]
pub struct Table {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Value>>,
    /// When each row was ingested (Unix nanoseconds): what Kusto's `ingestion_time()` gives.
    pub ingested_at: Vec<u64>,
    /// Table-level policy; `None` defers to the database.
    streaming: Option<bool>,
    /// Ingestion mappings by kind and name.
    pub mappings: BTreeMap<(MappingKind, String), Mapping>,
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
        let parsed = command_words(command).map_err(syntax_error)?;
        if let Some(result) = self.mapping_command(database, &parsed)? {
            return Ok(result);
        }
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

    /// `.create[-or-alter] table T ingestion K mapping "m" '…'`, `.show table T ingestion
    /// [K] mappings`, `.show table T ingestion K mapping "m"`, `.drop table T ingestion K
    /// mapping "m"`; `None` when the command is not about mappings.
    fn mapping_command(
        &mut self,
        database: &str,
        words: &[Word],
    ) -> Result<Option<Value>, KustoFailure> {
        let keywords: Vec<String> = words
            .iter()
            .map(|w| w.keyword().unwrap_or_default())
            .collect();
        let k: Vec<&str> = keywords.iter().map(String::as_str).collect();
        if k.get(3) != Some(&"ingestion") || !matches!(k.get(1), Some(&"table" | &"database")) {
            return Ok(None);
        }
        if k[1] == "database" {
            return Err(KustoFailure::bad_request(
                "BadRequest_SyntaxError",
                "database-scoped ingestion mappings are not kept by the local endpoint; create the mapping on the table (.create table T ingestion json mapping …)",
            ));
        }
        let table_name = words[2].name();
        let kind = |word: &Word| {
            word.keyword()
                .and_then(|w| MappingKind::parse(&w))
                .ok_or_else(|| {
                    KustoFailure::bad_request(
                        "BadRequest_SyntaxError",
                        format!(
                            "mapping kind `{}`: the local endpoint keeps json and csv mappings",
                            word.name()
                        ),
                    )
                })
        };
        let table = self.table_mut(database, &table_name)?;
        let shown: Vec<(MappingKind, String)> = match k.as_slice() {
            [verb @ (".create" | ".create-or-alter" | ".alter"), _, _, _, _, "mapping", _, _] => {
                let kind = kind(&words[4])?;
                let name = words[6].name();
                let Word::Quoted(text) = &words[7] else {
                    return Err(syntax_error(
                        "the mapping must be a string literal: '[{\"Column\": …}]'".into(),
                    ));
                };
                let mapping = Mapping::parse(kind, text).map_err(|e| {
                    KustoFailure::bad_request("BadRequest_InvalidMapping", e)
                })?;
                let key = (kind, name.clone());
                let exists = table.mappings.contains_key(&key);
                if *verb == ".create" && exists {
                    return Err(KustoFailure::bad_request(
                        "BadRequest_EntityAlreadyExists",
                        format!("Entity ID '{name}' of kind 'Mapping' already exists"),
                    ));
                }
                if *verb == ".alter" && !exists {
                    return Err(mapping_not_found(&name, kind, &table_name));
                }
                table.mappings.insert(key.clone(), mapping);
                vec![key]
            }
            [".show", _, _, _, "mappings"] => table.mappings.keys().cloned().collect(),
            [".show", _, _, _, _, "mappings"] => {
                let kind = kind(&words[4])?;
                table
                    .mappings
                    .keys()
                    .filter(|(k, _)| *k == kind)
                    .cloned()
                    .collect()
            }
            [".show", _, _, _, _, "mapping", _] => {
                let key = (kind(&words[4])?, words[6].name());
                if !table.mappings.contains_key(&key) {
                    return Err(mapping_not_found(&key.1, key.0, &table_name));
                }
                vec![key]
            }
            [".drop", _, _, _, _, "mapping", _] => {
                let key = (kind(&words[4])?, words[6].name());
                if table.mappings.remove(&key).is_none() {
                    return Err(mapping_not_found(&key.1, key.0, &table_name));
                }
                table.mappings.keys().cloned().collect()
            }
            _ => {
                return Err(syntax_error(
                    "ingestion mapping commands: .create[-or-alter] table T ingestion json|csv mapping \"name\" '[…]', \
                     .show table T ingestion [json|csv] mappings, .show table T ingestion json|csv mapping \"name\", \
                     .drop table T ingestion json|csv mapping \"name\""
                        .into(),
                ))
            }
        };
        let columns = TableSchema::parse(
            "Name: string, Kind: string, Mapping: string, Database: string, Table: string",
        )
        .expect("a schema")
        .columns;
        let rows = shown
            .iter()
            .map(|key| {
                let mapping = &table.mappings[key];
                vec![
                    Value::from(key.1.clone()),
                    Value::from(mapping.kind.name()),
                    Value::from(mapping.text.clone()),
                    Value::from(database),
                    Value::from(table_name.clone()),
                ]
            })
            .collect();
        Ok(Some(result_table(&columns, rows)))
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
        let rows = match request.mapping_name {
            Some(name) => {
                let kind = match request.format {
                    Format::Json | Format::MultiJson => MappingKind::Json,
                    Format::Csv => MappingKind::Csv,
                };
                let mapping = table
                    .mappings
                    .get(&(kind, name.to_string()))
                    .ok_or_else(|| mapping_not_found(name, kind, request.table))?;
                map_rows(mapping, request.format, request.data, &table.columns)?
            }
            None => parse_rows(request.format, request.data, &table.columns)
                .map_err(|e| KustoFailure::bad_request("BadRequest_InvalidData", e))?,
        };
        let count = rows.len();
        table.rows.extend(rows);
        let now = crate::now_nanos();
        table.ingested_at.resize(table.rows.len(), now);
        Ok(count)
    }

    /// A query in the KQL subset `kql` knows.
    pub fn query(&self, database: &str, query: &str) -> Result<QueryResult, KustoFailure> {
        kql::run(query, |name| {
            self.table(database, name).map(|table| kql::Source {
                columns: &table.columns,
                rows: &table.rows,
                ingested_at: &table.ingested_at,
            })
        })
    }
}

/// Rows through a mapping: every column the mapping names must be in the table (streaming
/// ingestion does not add columns, as queued ingestion may).
fn map_rows(
    mapping: &Mapping,
    format: Format,
    data: &str,
    columns: &[Column],
) -> Result<Vec<Vec<Value>>, KustoFailure> {
    let unknown = mapping.unknown_columns(columns);
    if !unknown.is_empty() {
        return Err(KustoFailure::bad_request(
            "BadRequest_InvalidMapping",
            format!(
                "the mapping writes column(s) {} that the table does not have",
                unknown.join(", ")
            ),
        ));
    }
    let invalid = |e: String| KustoFailure::bad_request("BadRequest_InvalidData", e);
    let mapped = |e: String| KustoFailure::bad_request("BadRequest_InvalidMapping", e);
    match format {
        Format::Json | Format::MultiJson => json_records(format, data)
            .map_err(invalid)?
            .iter()
            .enumerate()
            .map(|(i, record)| {
                mapping
                    .apply(columns, Some(record), None, i + 1)
                    .map_err(mapped)
            })
            .collect(),
        Format::Csv => parse_csv(data)
            .map_err(invalid)?
            .iter()
            .enumerate()
            .map(|(i, fields)| {
                mapping
                    .apply(columns, None, Some(fields), i + 1)
                    .map_err(mapped)
            })
            .collect(),
    }
}

fn mapping_not_found(name: &str, kind: MappingKind, table: &str) -> KustoFailure {
    KustoFailure::bad_request(
        "BadRequest_MappingReferenceWasNotFound",
        format!(
            "Mapping reference '{name}' of kind '{}' was not found for table '{table}'",
            kind.name()
        ),
    )
}

fn syntax_error(message: String) -> KustoFailure {
    KustoFailure::bad_request("BadRequest_SyntaxError", message)
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

    #[test]
    fn mappings_are_created_listed_applied_and_dropped_as_kusto_words_them() {
        let mut c = Cluster::default();
        c.execute("db", ".create table t (a: long, s: string, site: string)")
            .unwrap();
        c.execute("db", ".alter database db policy streamingingestion enable")
            .unwrap();
        let ingest_with = |c: &mut Cluster, mapping: &str, format, data: &str| {
            c.ingest(IngestRequest {
                database: "db",
                table: "t",
                format,
                mapping_name: Some(mapping),
                data,
            })
        };
        let e = ingest_with(&mut c, "m", Format::MultiJson, r#"{"x":1}"#).unwrap_err();
        assert_eq!(e.code, "BadRequest_MappingReferenceWasNotFound");
        assert!(e.body()["error"]["@permanent"].as_bool().unwrap());
        let create = r#".create table t ingestion json mapping "m" '[{"column":"a","Properties":{"Path":"$.n.v"}},{"Column":"site","Properties":{"ConstValue":"p7"}}]'"#;
        c.execute("db", create).unwrap();
        assert_eq!(
            c.execute("db", create).unwrap_err().code,
            "BadRequest_EntityAlreadyExists"
        );
        c.execute(
            "db",
            r#".create-or-alter table t ingestion csv mapping 'c' '[{"Column":"s","Properties":{"Ordinal":"1"}}]'"#,
        )
        .unwrap();
        let shown = c.execute("db", ".show table t ingestion mappings").unwrap();
        let rows = &shown["Tables"][0]["Rows"];
        assert_eq!(rows.as_array().unwrap().len(), 2);
        assert_eq!(rows[0][0], "m");
        assert_eq!(rows[0][1], "Json");
        let json_only = c
            .execute("db", ".show table t ingestion json mappings")
            .unwrap();
        assert_eq!(json_only["Tables"][0]["Rows"].as_array().unwrap().len(), 1);

        assert_eq!(
            ingest_with(
                &mut c,
                "m",
                Format::MultiJson,
                r#"{"n":{"v":5},"s":"ignored"}"#
            )
            .unwrap(),
            1
        );
        // A json mapping is not found for csv data: mappings are per kind.
        assert_eq!(
            ingest_with(&mut c, "m", Format::Csv, "1,x")
                .unwrap_err()
                .code,
            "BadRequest_MappingReferenceWasNotFound"
        );
        ingest_with(&mut c, "c", Format::Csv, "1,x\n").unwrap();
        assert_eq!(
            c.query("db", "t").unwrap().rows,
            vec![
                vec![
                    serde_json::json!(5),
                    serde_json::json!(""),
                    serde_json::json!("p7")
                ],
                vec![Value::Null, serde_json::json!("x"), serde_json::json!("")],
            ]
        );

        let invalid = c
            .execute(
                "db",
                r#".create table t ingestion json mapping "bad" '[{"Column":"a"}]'"#,
            )
            .unwrap_err();
        assert_eq!(invalid.code, "BadRequest_InvalidMapping");
        assert!(
            invalid.message.contains("column 'a' has no Path"),
            "{}",
            invalid.message
        );
        c.execute(
            "db",
            r#".create table t ingestion json mapping "wide" '[{"Column":"missing","Properties":{"Path":"$.a"}}]'"#,
        )
        .unwrap();
        let e = ingest_with(&mut c, "wide", Format::Json, r#"{"a":1}"#).unwrap_err();
        assert_eq!(e.code, "BadRequest_InvalidMapping");
        assert!(e.message.contains("missing"));

        c.execute("db", r#".drop table t ingestion json mapping "m""#)
            .unwrap();
        assert_eq!(
            c.execute("db", r#".drop table t ingestion json mapping "m""#)
                .unwrap_err()
                .code,
            "BadRequest_MappingReferenceWasNotFound"
        );
    }
}
