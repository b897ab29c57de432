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
    // Full batches of maxMessages, and at the end at most one partial batch per plugin
    // instance (the pipeline keeps up to REQUESTS_IN_FLIGHT side by side).
    let requests = result.report.statistics.as_ref().unwrap().requests;
    let instances = dataflow_runtime::pipeline::REQUESTS_IN_FLIGHT as u64;
    assert!(
        (3..=3 + instances - 1).contains(&requests),
        "{requests} requests"
    );
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

/// `demo --serve`: the summary names the page's address (token and first query in its
/// fragment); the endpoint stays up with the demo's rows until SIGINT, then exits cleanly.
#[tokio::test]
async fn the_demo_serves_its_page_until_interrupted() {
    use end_to_end_tests::host_process::HostProcess;
    let dir = std::env::temp_dir().join(format!("demo-serve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("demo.log");
    let args: Vec<String> = ["demo", "--messages", "700", "--rows", "1", "--serve"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let host = HostProcess::start(&args, &log);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let page_url = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(line) = text
            .lines()
            .find(|l| l.starts_with("the table in a browser: "))
        {
            if text.contains("serving ") {
                break line
                    .trim_start_matches("the table in a browser: ")
                    .to_string();
            }
        }
        assert!(std::time::Instant::now() < deadline, "{text}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let (origin, fragment) = page_url.split_once("/#").unwrap();
    let token = fragment
        .split('&')
        .find_map(|p| p.strip_prefix("token="))
        .unwrap();
    assert!(
        fragment.contains("query=thermostat%20%7C%20summarize"),
        "{fragment}"
    );
    let addr = origin.trim_start_matches("http://");
    let (status, page) = end_to_end_tests::http_get(addr, "/");
    assert_eq!(status, 200);
    assert!(page.contains("<title>Local ADX-compatible endpoint</title>"));
    // The run is over, and its rows are still there to look at.
    let client = dataflow_testkit::kusto_client::KustoClient::new(origin, token);
    let count = client
        .query("telemetry", "thermostat | count")
        .await
        .unwrap();
    assert_eq!(count.rows[0][0], 700);
    host.signal("INT");
    let status = host.wait(std::time::Duration::from_secs(10)).await;
    assert!(status.success(), "{status:?}");
}
