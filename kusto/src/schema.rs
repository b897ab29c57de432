//! Kusto column types and table schemas, parsed from the `.create table` command text a user
//! runs in Azure Data Explorer, or from a bare column list (`name: type, ...`).

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KustoType {
    Bool,
    Int,
    Long,
    Real,
    Decimal,
    String,
    DateTime,
    TimeSpan,
    Guid,
    Dynamic,
}

impl KustoType {
    /// Kusto's type names and their documented aliases.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().as_str() {
            "bool" | "boolean" => Self::Bool,
            "int" | "int32" => Self::Int,
            "long" | "int64" => Self::Long,
            "real" | "double" => Self::Real,
            "decimal" => Self::Decimal,
            "string" => Self::String,
            "datetime" | "date" => Self::DateTime,
            "timespan" | "time" => Self::TimeSpan,
            "guid" | "uniqueid" => Self::Guid,
            "dynamic" => Self::Dynamic,
            _ => return None,
        })
    }

    #[inline]
    pub fn name(self) -> &'static str {
        match self {
            Self::Bool => "bool",
            Self::Int => "int",
            Self::Long => "long",
            Self::Real => "real",
            Self::Decimal => "decimal",
            Self::String => "string",
            Self::DateTime => "datetime",
            Self::TimeSpan => "timespan",
            Self::Guid => "guid",
            Self::Dynamic => "dynamic",
        }
    }

    /// The .NET type name Kusto reports for the type in query results.
    #[inline]
    pub fn dotnet_name(self) -> &'static str {
        match self {
            Self::Bool => "System.SByte",
            Self::Int => "System.Int32",
            Self::Long => "System.Int64",
            Self::Real => "System.Double",
            Self::Decimal => "System.Data.SqlTypes.SqlDecimal",
            Self::String => "System.String",
            Self::DateTime => "System.DateTime",
            Self::TimeSpan => "System.TimeSpan",
            Self::Guid => "System.Guid",
            Self::Dynamic => "System.Object",
        }
    }
}

impl fmt::Display for KustoType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub kusto_type: KustoType,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSchema {
    /// The table name when the text was a `.create table` command.
    pub table: Option<String>,
    pub columns: Vec<Column>,
}

const ALL_TYPES: &str = "bool, int, long, real, decimal, string, datetime, timespan, guid, dynamic";

impl TableSchema {
    /// Parses `.create table T (a: string, b: real)` (also `.create-merge table`) or `a: string, b: real`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (table, column_list) = if let Some(command_text) = text.strip_prefix('.') {
            let (command, rest) = split_word(command_text);
            if !matches!(command, "create" | "create-merge") {
                return Err(format!(
                    "expected `.create table <name> (<column>: <type>, ...)`, found `.{command}`"
                ));
            }
            let (keyword, rest) = split_word(rest);
            if keyword != "table" {
                return Err(format!(
                    "expected `table` after `.{command}`, found `{keyword}`"
                ));
            }
            let open = rest.find('(').ok_or("expected `(` after the table name")?;
            let name = unquote_name(rest[..open].trim());
            if name.is_empty() {
                return Err("the table name is missing".into());
            }
            let close = rest
                .rfind(')')
                .ok_or("the column list has no closing `)`")?;
            if close < open {
                return Err("the column list has no closing `)`".into());
            }
            let trailing = rest[close + 1..].trim();
            if !trailing.is_empty() && !trailing.starts_with("with") {
                return Err(format!(
                    "unexpected text after the column list: `{trailing}`"
                ));
            }
            (Some(name), &rest[open + 1..close])
        } else {
            (None, text)
        };
        let mut columns: Vec<Column> = Vec::new();
        for (index, part) in column_list.split(',').enumerate() {
            let part = part.trim();
            if part.is_empty() {
                return Err(format!("column {} is empty", index + 1));
            }
            let (name, type_name) = part
                .split_once(':')
                .ok_or_else(|| format!("column `{part}` has no type (write `{part}: string`)"))?;
            let name = unquote_name(name.trim());
            if name.is_empty() {
                return Err(format!("column {} has no name", index + 1));
            }
            let type_name = type_name.trim();
            let kusto_type = KustoType::parse(type_name).ok_or_else(|| {
                format!("column `{name}`: unknown type `{type_name}` (Kusto types: {ALL_TYPES})")
            })?;
            if columns.iter().any(|c| c.name == name) {
                return Err(format!("column `{name}` appears twice"));
            }
            columns.push(Column { name, kusto_type });
        }
        Ok(Self { table, columns })
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

fn split_word(text: &str) -> (&str, &str) {
    let text = text.trim_start();
    let end = text
        .find(|c: char| c.is_whitespace() || c == '(')
        .unwrap_or(text.len());
    (&text[..end], &text[end..])
}

/// Kusto allows names quoted as `['name']` or `["name"]`.
pub fn unquote_name(name: &str) -> String {
    let name = name.trim();
    for (open, close) in [("['", "']"), ("[\"", "\"]")] {
        if let Some(inner) = name.strip_prefix(open).and_then(|n| n.strip_suffix(close)) {
            return inner.to_string();
        }
    }
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_create_table_command_of_the_documentation() {
        let schema = TableSchema::parse(
            ".create table thermostat (\n externalAssetId: string,\n assetName: string,\n CurrentTemperature: real,\n Pressure: real,\n MqttTopic: string,\n Timestamp: datetime\n)",
        )
        .unwrap();
        assert_eq!(schema.table.as_deref(), Some("thermostat"));
        let types: Vec<_> = schema.columns.iter().map(|c| c.kusto_type).collect();
        use KustoType::*;
        assert_eq!(types, [String, String, Real, Real, String, DateTime]);
        assert_eq!(schema.columns[2].name, "CurrentTemperature");
    }

    #[test]
    fn parses_a_bare_column_list_with_aliases_and_quoted_names() {
        let schema = TableSchema::parse("['my col']: double, b: boolean, c: uniqueid").unwrap();
        assert_eq!(schema.table, None);
        assert_eq!(schema.columns[0].name, "my col");
        assert_eq!(schema.columns[0].kusto_type, KustoType::Real);
        assert_eq!(schema.columns[1].kusto_type, KustoType::Bool);
        assert_eq!(schema.columns[2].kusto_type, KustoType::Guid);
    }

    #[test]
    fn reports_what_is_wrong() {
        let err = TableSchema::parse(".create table t (a: strng)").unwrap_err();
        assert!(err.contains("column `a`: unknown type `strng`"), "{err}");
        let err = TableSchema::parse("a: int, a: long").unwrap_err();
        assert!(err.contains("`a` appears twice"), "{err}");
        let err = TableSchema::parse(".create table t (a int)").unwrap_err();
        assert!(err.contains("has no type"), "{err}");
        let err = TableSchema::parse(".drop table t").unwrap_err();
        assert!(err.contains(".create table"), "{err}");
    }
}
