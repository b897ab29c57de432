//! The local endpoint's REST contract, spoken to over real HTTP.

use std::io::{Read, Write};

use end_to_end_tests::LocalAdx;
use serde_json::Value;

/// A raw HTTP/1.1 POST, so the test controls every header and byte.
fn post(
    addr: std::net::SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Value) {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

#[tokio::test]
async fn ingestion_checks_the_token_the_size_and_the_format() {
    let adx = LocalAdx::start(".create table t (n: long, s: string)", true).await;
    let addr = adx.emulator.addr();
    let path = "/v1/rest/ingest/telemetry/t?streamFormat=multijson";
    let auth = "Bearer test-token-123";
    tokio::task::spawn_blocking(move || {
        let (status, body) = post(addr, path, &[("authorization", "Bearer wrong")], b"{}");
        assert_eq!(status, 401);
        assert_eq!(body["error"]["code"], "Unauthorized");

        let rows = gzip(b"{\"n\": 1, \"s\": \"a\"}\n{\"n\": \"x\", \"s\": 2}\n");
        let (status, _) = post(
            addr,
            path,
            &[("authorization", auth), ("content-encoding", "gzip")],
            &rows,
        );
        assert_eq!(status, 200);

        let big = gzip(&vec![b' '; 4 * 1024 * 1024 + 1]);
        let (status, body) = post(
            addr,
            path,
            &[("authorization", auth), ("content-encoding", "gzip")],
            &big,
        );
        assert_eq!(status, 413, "{body}");
        assert_eq!(body["error"]["@permanent"], true);

        let (status, body) = post(
            addr,
            "/v1/rest/ingest/telemetry/t?streamFormat=avro",
            &[("authorization", auth)],
            b"",
        );
        assert_eq!(status, 400, "{body}");

        let (status, body) = post(
            addr,
            "/v1/rest/ingest/telemetry/nope?streamFormat=json",
            &[("authorization", auth)],
            b"{}",
        );
        assert_eq!(status, 404, "{body}");
    })
    .await
    .unwrap();
    // Kusto's own rule for a value that does not fit: null (the plugin never sends one).
    let rows = adx.emulator.rows("telemetry", "t");
    assert_eq!(
        rows,
        vec![
            vec![Value::from(1), Value::from("a")],
            vec![Value::Null, Value::from("2")]
        ]
    );
    let result = adx.client.query("telemetry", "t | take 1").await.unwrap();
    assert_eq!(result.columns, vec!["n", "s"]);
    assert_eq!(result.rows.len(), 1);
}

/// `dataflow-host emulator --fault …`, as a user rehearses an outage: ingestion requests get
/// the fault, management requests do not.
#[tokio::test]
async fn the_command_line_endpoint_injects_the_faults_it_is_given() {
    let dir = std::env::temp_dir().join(format!("emulator-faults-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = end_to_end_tests::broker::free_port();
    let args: Vec<String> = [
        "emulator",
        "--port",
        &port.to_string(),
        "--token",
        "t0k",
        "--fault",
        "429=3s",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut host = end_to_end_tests::host_process::HostProcess::start(&args, &dir.join("log"));
    host.wait_for_log(
        "injecting into ingestion",
        1,
        std::time::Duration::from_secs(30),
    )
    .await;
    let log = std::fs::read_to_string(dir.join("log")).unwrap();
    assert!(
        log.contains(&format!("connection string: Data Source=http://127.0.0.1:{port};Initial Catalog=telemetry;AAD Federated Security=True;Application Token=t0k")),
        "{log}"
    );
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let auth = [("authorization", "Bearer t0k")];
    let (status, _) = post(
        addr,
        "/v1/rest/mgmt",
        &auth,
        br#"{"db": "telemetry", "csl": ".create table t (n: long)"}"#,
    );
    assert_eq!(status, 200);
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "POST /v1/rest/ingest/telemetry/t?streamFormat=json HTTP/1.1\r\nhost: x\r\nauthorization: Bearer t0k\r\ncontent-length: 9\r\nconnection: close\r\n\r\n{{\"n\": 1}}"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 429"), "{response}");
    assert!(response.contains("retry-after: 3\r\n"), "{response}");
    assert!(response.contains("\"@permanent\":false"), "{response}");
    drop(host);
    std::fs::remove_dir_all(&dir).ok();
}
