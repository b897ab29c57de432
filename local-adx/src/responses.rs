//! Kusto's REST answers: v1 result tables and the error body with `@permanent`.

use serde_json::{json, Value};

use kusto_model::schema::Column;

/// `{"Tables":[{"TableName":"Table_0","Columns":[…],"Rows":[…]}]}` (the v1 response shape).
pub fn result_table(columns: &[Column], rows: Vec<Vec<Value>>) -> Value {
    let columns: Vec<Value> = columns
        .iter()
        .map(|c| {
            json!({
                "ColumnName": c.name,
                "DataType": c.kusto_type.dotnet_name().trim_start_matches("System."),
                "ColumnType": c.kusto_type.name(),
            })
        })
        .collect();
    json!({ "Tables": [{ "TableName": "Table_0", "Columns": columns, "Rows": rows }] })
}

/// The v2 response shape (`/v2/rest/query`): a list of frames, the result in a
/// `PrimaryResult` data table between the data set's header and completion.
/// A `render` is told as Kusto tells it: a `Visualization` row in `@ExtendedProperties`.
pub fn v2_frames(columns: &[Column], rows: Vec<Vec<Value>>, visualization: Option<&str>) -> Value {
    let properties: Vec<Value> = visualization
        .map(|kind| {
            let value = json!({ "Visualization": kind, "Title": null, "XColumn": null,
                                "Series": null, "YColumns": null });
            vec![json!([1, "Visualization", value.to_string()])]
        })
        .unwrap_or_default();
    let columns: Vec<Value> = columns
        .iter()
        .map(|c| json!({ "ColumnName": c.name, "ColumnType": c.kusto_type.name() }))
        .collect();
    json!([
        { "FrameType": "DataSetHeader", "IsProgressive": false, "Version": "v2.0",
          "IsFragmented": false, "ErrorReportingPlacement": "EndOfTable" },
        { "FrameType": "DataTable", "TableId": 0, "TableKind": "QueryProperties",
          "TableName": "@ExtendedProperties",
          "Columns": [
              { "ColumnName": "TableId", "ColumnType": "int" },
              { "ColumnName": "Key", "ColumnType": "string" },
              { "ColumnName": "Value", "ColumnType": "dynamic" }
          ],
          "Rows": properties },
        { "FrameType": "DataTable", "TableId": 1, "TableKind": "PrimaryResult",
          "TableName": "PrimaryResult", "Columns": columns, "Rows": rows },
        { "FrameType": "DataSetCompletion", "HasErrors": false, "Cancelled": false }
    ])
}

/// A failed request: status and Kusto's error body.
#[derive(Debug, Clone)]
pub struct KustoFailure {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub permanent: bool,
}

impl KustoFailure {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: 400,
            code,
            message: message.into(),
            permanent: true,
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: 404,
            code: "NotFound",
            message: message.into(),
            permanent: true,
        }
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self {
            status: 401,
            code: "Unauthorized",
            message: message.into(),
            permanent: false,
        }
    }

    pub fn body(&self) -> Value {
        let general = match self.status {
            400 => "Request is invalid and cannot be executed.",
            401 => "Unauthorized",
            404 => "Entity not found",
            413 => "Request entity too large",
            _ => "Request failed",
        };
        json!({
            "error": {
                "code": self.code,
                "message": general,
                "@type": format!("Kusto.Emulator.{}", self.code),
                "@message": self.message,
                "@context": { "service": "local ADX-compatible endpoint" },
                "@permanent": self.permanent,
            }
        })
    }
}
