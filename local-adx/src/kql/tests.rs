//! Query → expected result over one fixed data set. The same table runs through the REST
//! API and the official Python client in `tests/all/kql.rs`.

use serde_json::{json, Value};

use kusto_model::schema::TableSchema;

use super::{run, QueryResult, Source};

fn data() -> (Vec<kusto_model::schema::Column>, Vec<Vec<Value>>, Vec<u64>) {
    let columns = TableSchema::parse(
        "Timestamp: datetime, assetName: string, CurrentTemperature: real, Pressure: long, Status: string",
    )
    .unwrap()
    .columns;
    let rows = vec![
        json!(["2026-12-01T10:00:10Z", "oven-1", 20.5, 100, "Running OK"]),
        json!(["2026-12-01T10:00:50Z", "oven-1", 21.5, 110, "running"]),
        json!([
            "2026-12-01T10:01:20Z",
            "oven-2",
            30.0,
            null,
            "Stopped-by-operator"
        ]),
        json!(["2026-12-01T10:02:05Z", "oven-1", null, 120, ""]),
        json!(["2026-12-01T10:02:30Z", "oven-2", 32.0, 90, "Running"]),
    ];
    let rows = rows
        .into_iter()
        .map(|r| r.as_array().unwrap().clone())
        .collect();
    // Ingested one second apart from 2026-12-01T10:05:00Z.
    let base = 1_796_119_500_000_000_000_u64;
    let ingested = (0..5).map(|i| base + i * 1_000_000_000).collect();
    (columns, rows, ingested)
}

fn query(text: &str) -> Result<QueryResult, crate::KustoFailure> {
    let (columns, rows, ingested) = data();
    run(text, |name| {
        (name == "T").then(|| Source {
            columns: &columns,
            rows: &rows,
            ingested_at: &ingested,
        })
    })
}

fn rows(text: &str) -> Vec<Value> {
    let result = query(text).unwrap_or_else(|e| panic!("{text}: {}", e.message));
    result.rows.into_iter().map(Value::from).collect()
}

#[test]
fn the_queries_people_type_first_answer_as_kusto_does() {
    let cases: &[(&str, Value)] = &[
        ("T | count", json!([[5]])),
        ("T | where Pressure > 100 and assetName == 'oven-1' | project Pressure", json!([[110], [120]])),
        ("T | where Pressure < 100 or CurrentTemperature > 31 | project assetName, Pressure", json!([["oven-2", 90]])),
        // A null compared is null, and `where` drops it; `!=` of a null and a value is true.
        ("T | where Pressure != 100 | project Pressure", json!([[110], [null], [120], [90]])),
        ("T | where CurrentTemperature between (21.0 .. 30.0) | project CurrentTemperature", json!([[21.5], [30.0]])),
        ("T | where Pressure !between (95 .. 115) | project Pressure", json!([[120], [90]])),
        ("T | where Status contains 'RUN' | count", json!([[3]])),
        ("T | where Status contains_cs 'Run' | count", json!([[2]])),
        // `has` matches whole terms: "operator" is a term of "Stopped-by-operator", "oper" is not.
        ("T | where Status has 'operator' | count", json!([[1]])),
        ("T | where Status has 'oper' | count", json!([[0]])),
        ("T | where Status !has 'running' | count", json!([[2]])),
        ("T | where Status startswith 'stop' | project assetName", json!([["oven-2"]])),
        ("T | where isnull(CurrentTemperature) | project Pressure", json!([[120]])),
        ("T | where isempty(Status) | project Pressure", json!([[120]])),
        ("T | where isnotempty(Status) and isnotnull(Pressure) | count", json!([[3]])),
        ("T | where assetName in ('oven-2', 'oven-9') | count", json!([[2]])),
        ("T | where assetName in~ ('OVEN-2') | count", json!([[2]])),
        ("T | where assetName =~ 'OVEN-1' | count", json!([[3]])),
        ("T | where Timestamp > datetime(2026-12-01 10:01:00) | count", json!([[3]])),
        ("T | where Timestamp < ago(1d) | count", json!([[5]])),
        ("T | where Timestamp > now() | count", json!([[0]])),
        (
            "T | where Pressure > 100 | extend Bar = Pressure / 10, Kelvin = CurrentTemperature + 273.15, Late = Timestamp + 1h | project Bar, Kelvin, Late",
            json!([[11, 294.65, "2026-12-01T11:00:50Z"], [12, null, "2026-12-01T11:02:05Z"]]),
        ),
        ("T | extend Pressure = Pressure * 2 | take 1 | project Pressure", json!([[200]])),
        ("T | project Since = Timestamp - datetime(2026-12-01 10:00:00) | take 2", json!([["00:00:10"], ["00:00:50"]])),
        (
            "T | summarize count(), avg(CurrentTemperature), min(Pressure), max(Timestamp), sum(Pressure) by assetName",
            json!([
                ["oven-1", 3, 21.0, 100, "2026-12-01T10:02:05Z", 330],
                ["oven-2", 2, 31.0, 90, "2026-12-01T10:02:30Z", 90]
            ]),
        ),
        (
            "T | summarize Readings = count(), Hot = countif(CurrentTemperature > 25) by bin(Timestamp, 1m)",
            json!([
                ["2026-12-01T10:00:00Z", 2, 0],
                ["2026-12-01T10:01:00Z", 1, 1],
                ["2026-12-01T10:02:00Z", 2, 1]
            ]),
        ),
        ("T | summarize dcount(assetName)", json!([[2]])),
        ("T | where Pressure > 1000 | summarize count(), avg(Pressure)", json!([[0, null]])),
        ("T | top 2 by Pressure | project Pressure", json!([[120], [110]])),
        // Descending puts nulls last, ascending first, unless told.
        ("T | top 2 by CurrentTemperature asc | project CurrentTemperature", json!([[null], [20.5]])),
        ("T | order by Pressure asc nulls last | project Pressure", json!([[90], [100], [110], [120], [null]])),
        ("T | sort by assetName asc, Pressure desc | project assetName, Pressure",
            json!([["oven-1", 120], ["oven-1", 110], ["oven-1", 100], ["oven-2", 90], ["oven-2", null]])),
        ("T | distinct assetName", json!([["oven-1"], ["oven-2"]])),
        ("T | project assetName | distinct *", json!([["oven-1"], ["oven-2"]])),
        ("T | take 1 | project ingestion_time()", json!([["2026-12-01T10:05:00Z"]])),
        ("T | where ingestion_time() > datetime(2026-12-01T10:05:02Z) | count", json!([[2]])),
        ("T | project N = strlen(assetName), U = toupper(assetName), S = strcat(assetName, '/', tostring(Pressure)) | take 1",
            json!([[6, "OVEN-1", "oven-1/100"]])),
        ("T | project iif(Pressure > 100, 'high', 'low'), round(CurrentTemperature / 3, 2) | take 2",
            json!([["low", 6.83], ["high", 7.17]])),
        ("T | summarize avg(CurrentTemperature) by assetName | where avg_CurrentTemperature > 25", json!([["oven-2", 31.0]])),
    ];
    for (text, expected) in cases {
        assert_eq!(&Value::from(rows(text)), expected, "{text}");
    }
}

#[test]
fn result_columns_are_named_and_typed_as_kusto_names_them() {
    let result =
        query("T | summarize count(), avg(CurrentTemperature) by assetName, bin(Timestamp, 5m)")
            .unwrap();
    let names: Vec<(&str, &str)> = result
        .columns
        .iter()
        .map(|c| (c.name.as_str(), c.kusto_type.name()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("assetName", "string"),
            ("Timestamp", "datetime"),
            ("count_", "long"),
            ("avg_CurrentTemperature", "real")
        ]
    );
    let result = query("T | project Pressure + 1, Pressure * 1.5").unwrap();
    assert_eq!(result.columns[0].name, "Column1");
    assert_eq!(result.columns[0].kusto_type.name(), "long");
    assert_eq!(result.columns[1].kusto_type.name(), "real");
    let chart = query(
        "T | summarize avg(CurrentTemperature) by assetName, bin(Timestamp, 1m) | render timechart",
    )
    .unwrap();
    assert_eq!(chart.visualization.as_deref(), Some("timechart"));
}

#[test]
fn what_is_outside_the_subset_is_an_error_that_says_so() {
    let message = |text: &str| {
        let e = query(text).unwrap_err();
        (e.code, e.message)
    };
    let cases: &[(&str, &str, &str)] = &[
        (
            "T | where Nope == 1",
            "General_BadRequest",
            "'where' operator: Failed to resolve scalar expression named 'Nope'",
        ),
        (
            "Nope | count",
            "General_BadRequest",
            "Failed to resolve table or column expression named 'Nope'",
        ),
        (
            "T | where assetName == 1",
            "General_BadRequest",
            "Cannot compare values of types string and long",
        ),
        (
            "T | where Pressure",
            "General_BadRequest",
            "the predicate is of type long, not bool",
        ),
        (
            "T | join (T) on assetName",
            "BadRequest_SyntaxError",
            "Unsupported query operator: join (supported: where, project",
        ),
        (
            "T | project percentile(Pressure, 50)",
            "General_BadRequest",
            "Unknown function: 'percentile'",
        ),
        (
            "T | extend x = count()",
            "General_BadRequest",
            "count() is an aggregation: use it in summarize",
        ),
        (
            "T | summarize stdev(Pressure)",
            "General_BadRequest",
            "stdev() is not an aggregation function here",
        ),
        (
            "T | where Pressure > ",
            "BadRequest_SyntaxError",
            "expected a value, a column or a function at the end of the query",
        ),
        (
            "T | render piechart",
            "BadRequest_SyntaxError",
            "renders timechart, linechart and table",
        ),
        (
            "T | render timechart | take 1",
            "BadRequest_SyntaxError",
            "render must be the last operator",
        ),
        (
            "T | extend s = assetName + 1",
            "General_BadRequest",
            "the operator '+' cannot be applied to string and long",
        ),
        (
            "T | take many",
            "BadRequest_SyntaxError",
            "expected a row count",
        ),
    ];
    for (text, code, fragment) in cases {
        let (actual_code, actual) = message(text);
        assert!(actual.contains(fragment), "{text}: {actual}");
        assert_eq!(actual_code, *code, "{text}: {actual}");
    }
}
