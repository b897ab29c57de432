//! The demo, run as a library call, exactly as `dataflow-host demo` does.

use dataflow_host::demo::{self, DemoOptions};

#[tokio::test]
async fn the_demo_ingests_every_generated_message() {
    let options = DemoOptions {
        messages: 3000,
        max_messages: Some(1000),
        ..DemoOptions::default()
    };
    let result = demo::run(&options).await.unwrap();
    assert!(result.succeeded(), "{:?}", result.report);
    assert_eq!(result.rows_in_table, 3000);
    assert_eq!(result.report.statistics.as_ref().unwrap().requests, 3);
    assert_eq!(result.first_rows.rows.len(), 5);
    assert_eq!(result.first_rows.columns[4], "MqttTopic");
    assert!(result.first_rows.rows[0][4]
        .as_str()
        .unwrap()
        .starts_with("factory/"));
    demo::print_and_check(&result).unwrap();
}

#[tokio::test]
async fn the_demo_reports_bad_lines_by_file_and_line() {
    let dir = std::env::temp_dir().join(format!("demo-input-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("input.jsonl");
    std::fs::write(
        &input,
        "{\"assetName\": \"a\", \"CurrentTemperature\": 20.5}\nnot json\n{\"assetName\": \"b\", \"Timestamp\": 1764325230}\n",
    )
    .unwrap();
    let options = DemoOptions {
        input: Some(input.display().to_string()),
        ..DemoOptions::default()
    };
    let result = demo::run(&options).await.unwrap();
    assert_eq!((result.report.ingested, result.report.rejected), (1, 2));
    assert!(
        result.succeeded(),
        "rejections with reasons still account for every message"
    );
    let rejections = &result.report.rejections;
    assert!(
        rejections[0].0.ends_with("input.jsonl:2")
            && rejections[0].1.starts_with("payload is not JSON"),
        "{rejections:?}"
    );
    assert!(
        rejections[1].0.ends_with("input.jsonl:3")
            && rejections[1].1.contains("column `Timestamp` (datetime)"),
        "{rejections:?}"
    );
}
