//! The subset of KQL the local endpoint answers, over one table's rows: `T`, then any of
//! `| count`, `| take N` (`limit`), `| where C == V` (or `!=`), `| order by C [asc|desc]`
//! (`sort by`; descending unless told, as in Kusto) and `| summarize count() by C`.
//! Operators are split at `|`, so a string value may not contain one.

use std::cmp::Ordering;

use serde_json::Value;

use kusto_model::schema::{Column, KustoType, TableSchema};

use super::KustoFailure;

/// Columns and rows: what a query gives, before a response shape (v1 or v2) is chosen.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Value>>,
}

const SUPPORTED: &str =
    "count, take N, where C == V, where C != V, order by C [asc|desc], summarize count() by C";

/// Applies `operators` (the text after the table name, split at `|`) in order.
pub fn run<'a>(
    mut result: QueryResult,
    operators: impl Iterator<Item = &'a str>,
) -> Result<QueryResult, KustoFailure> {
    for operator in operators {
        result = apply(result, operator.trim())?;
    }
    Ok(result)
}

fn apply(mut result: QueryResult, operator: &str) -> Result<QueryResult, KustoFailure> {
    let words: Vec<&str> = operator.split_whitespace().collect();
    match words.as_slice() {
        ["count"] => Ok(QueryResult {
            columns: TableSchema::parse("Count: long").expect("a schema").columns,
            rows: vec![vec![Value::from(result.rows.len())]],
        }),
        ["take" | "limit", n] => {
            let n: usize = n
                .parse()
                .map_err(|_| bad(format!("`{n}` is not a row count")))?;
            result.rows.truncate(n);
            Ok(result)
        }
        ["where", column, op @ ("==" | "!="), ..] => {
            let index = column_index(&result, column)?;
            let literal = operator
                .split_once(op)
                .map(|(_, v)| v.trim())
                .unwrap_or_default();
            let wanted = parse_literal(literal, result.columns[index].kusto_type)?;
            let keep_equal = *op == "==";
            result
                .rows
                .retain(|row| (row[index] == wanted) == keep_equal);
            Ok(result)
        }
        ["order" | "sort", "by", column, rest @ ..] => {
            let index = column_index(&result, column)?;
            let descending = match rest {
                [] | ["desc"] => true,
                ["asc"] => false,
                _ => return Err(bad(format!("`{operator}`: expected asc or desc"))),
            };
            result.rows.sort_by(|a, b| {
                let order = compare(&a[index], &b[index]);
                if descending {
                    order.reverse()
                } else {
                    order
                }
            });
            Ok(result)
        }
        ["summarize", "count()", "by", column] => {
            let index = column_index(&result, column)?;
            let mut groups: Vec<(Value, u64)> = Vec::new();
            for row in &result.rows {
                match groups.iter_mut().find(|(key, _)| *key == row[index]) {
                    Some((_, count)) => *count += 1,
                    None => groups.push((row[index].clone(), 1)),
                }
            }
            let mut columns = vec![result.columns[index].clone()];
            columns.extend(
                TableSchema::parse("count_: long")
                    .expect("a schema")
                    .columns,
            );
            Ok(QueryResult {
                columns,
                rows: groups
                    .into_iter()
                    .map(|(key, count)| vec![key, Value::from(count)])
                    .collect(),
            })
        }
        _ => Err(bad(format!(
            "Unsupported query operator: {operator} (supported: {SUPPORTED})"
        ))),
    }
}

fn bad(message: String) -> KustoFailure {
    KustoFailure::bad_request("General_BadRequest", message)
}

fn column_index(result: &QueryResult, name: &str) -> Result<usize, KustoFailure> {
    result
        .columns
        .iter()
        .position(|c| c.name == name)
        .ok_or_else(|| {
            bad(format!(
                "Failed to resolve scalar expression named '{name}'"
            ))
        })
}

/// A literal as the column holds values: numbers, `true`/`false`, `"text"` or `'text'`.
fn parse_literal(text: &str, kusto_type: KustoType) -> Result<Value, KustoFailure> {
    let unquoted = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .or_else(|| text.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')));
    if let Some(text) = unquoted {
        return Ok(Value::from(text));
    }
    let value = match kusto_type {
        KustoType::Bool => text.parse::<bool>().ok().map(Value::from),
        KustoType::Int | KustoType::Long => text.parse::<i64>().ok().map(Value::from),
        KustoType::Real => text.parse::<f64>().ok().map(Value::from),
        _ => None,
    };
    value.ok_or_else(|| bad(format!("`{text}` is not a {} literal", kusto_type.name())))
}

/// Kusto's order: nulls first, numbers by value, text by its characters.
fn compare(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Less,
        (_, Value::Null) => Ordering::Greater,
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        _ => a.to_string().cmp(&b.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn table() -> QueryResult {
        QueryResult {
            columns: TableSchema::parse("n: long, site: string").unwrap().columns,
            rows: vec![
                vec![json!(3), json!("a")],
                vec![json!(1), json!("b")],
                vec![Value::Null, json!("a")],
                vec![json!(2), json!("a")],
            ],
        }
    }

    fn query(text: &str) -> Result<QueryResult, KustoFailure> {
        run(table(), text.split('|').skip(1))
    }

    #[test]
    fn filters_orders_counts_and_groups_like_kusto() {
        let rows = |text: &str| query(text).unwrap().rows;
        assert_eq!(rows("T | where site == 'a' | count"), vec![vec![json!(3)]]);
        assert_eq!(
            rows("T | where site != \"a\""),
            vec![vec![json!(1), json!("b")]]
        );
        assert_eq!(rows("T | where n == 2"), vec![vec![json!(2), json!("a")]]);
        let ordered = rows("T | order by n");
        assert_eq!(
            ordered.iter().map(|r| r[0].clone()).collect::<Vec<_>>(),
            vec![json!(3), json!(2), json!(1), Value::Null],
            "descending unless told"
        );
        let ascending = rows("T | sort by n asc | take 2");
        assert_eq!(ascending[0][0], Value::Null);
        assert_eq!(ascending[1][0], json!(1));
        let grouped = query("T | summarize count() by site").unwrap();
        assert_eq!(grouped.columns[1].name, "count_");
        assert_eq!(
            grouped.rows,
            vec![vec![json!("a"), json!(3)], vec![json!("b"), json!(1)]]
        );
    }

    #[test]
    fn unknown_columns_operators_and_literals_are_named() {
        let message = |text: &str| query(text).unwrap_err().message;
        assert!(message("T | where x == 1").contains("'x'"));
        assert!(message("T | project n").contains("Unsupported query operator: project n"));
        assert!(message("T | where n == abc").contains("`abc` is not a long literal"));
    }
}
