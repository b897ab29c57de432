//! Shared set-up for the end-to-end tests: a local ADX endpoint with a table, the real plugin
//! component opened against it, and messages to feed it.

pub mod broker;
pub mod broker_security;
pub mod campaign;
pub mod delivery;
pub mod host_process;
pub mod identity_services;

use std::sync::Arc;

use dataflow_runtime::http_client::HttpClient;
use dataflow_runtime::identity::StaticToken;
use dataflow_runtime::plugin::{Limits, Message, PluginRuntime, PluginSink};
use dataflow_testkit::kusto_client::KustoClient;
use local_adx::{Emulator, EmulatorOptions};

/// The `http-probe` test plugin (tests/fixtures/http-probe).
pub fn http_probe_wasm() -> Vec<u8> {
    std::fs::read(env!("HTTP_PROBE_WASM")).expect("the http-probe fixture was built")
}

/// The ADX plugin built against the 1.0 contract (no `accept-batch`): an older version of
/// the bundled one, which implements 1.2.
pub fn adx_destination_1_0_wasm() -> Vec<u8> {
    std::fs::read(env!("ADX_DESTINATION_1_0_WASM")).expect("the 1.0 build of the ADX plugin")
}

/// The ADX plugin built against the 1.1 contract (packed batches, rejections without kind).
pub fn adx_destination_1_1_wasm() -> Vec<u8> {
    std::fs::read(env!("ADX_DESTINATION_1_1_WASM")).expect("the 1.1 build of the ADX plugin")
}

/// `GET /metrics` from a host's `--metrics-addr`: the whole response, headers included.
pub fn scrape_metrics(addr: &str) -> String {
    let (status, response) = http_get(addr, "/metrics");
    assert_eq!(status, 200, "{response}");
    response
}

/// A Python virtual environment under `target/<name>` with `package` (a pinned requirement)
/// installed from PyPI, made once; its interpreter.
pub fn python_with(name: &str, package: &str) -> std::path::PathBuf {
    use std::process::Command;
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target")
        .join(name);
    let python = dir.join("bin/python");
    // The marker names the directory it was made in: a venv's scripts hold absolute paths,
    // so one copied or moved elsewhere is made again.
    let marker = dir.join(format!("{package}.installed"));
    let made_here = dir.to_string_lossy().into_owned();
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(made_here.as_str()) {
        return python;
    }
    let _ = std::fs::remove_dir_all(&dir);
    let status = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&dir)
        .status()
        .expect("python3 is needed for this test (tests/run.sh installs it)");
    assert!(status.success(), "python3 -m venv failed");
    let status = Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            package,
        ])
        .status()
        .unwrap();
    assert!(status.success(), "pip install {package} failed");
    std::fs::write(&marker, &made_here).unwrap();
    python
}

/// `GET path` on a plain HTTP/1.1 server: the status code and the whole response.
pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response}"));
    (status, response)
}

pub const DATABASE: &str = "telemetry";

/// A running local endpoint with one table.
pub struct LocalAdx {
    pub emulator: Emulator,
    pub token: String,
    pub client: KustoClient,
}

impl LocalAdx {
    /// Starts the endpoint, creates the table with `create_table`, and enables streaming
    /// ingestion unless `streaming` is false.
    pub async fn start(create_table: &str, streaming: bool) -> Self {
        Self::start_with(
            create_table,
            streaming,
            EmulatorOptions::loopback("test-token-123"),
            HttpClient::system(),
        )
        .await
    }

    /// As `start`, with the endpoint's options (for example a token check); the set-up
    /// commands authenticate with `options.token`.
    pub async fn start_with(
        create_table: &str,
        streaming: bool,
        options: EmulatorOptions,
        http: HttpClient,
    ) -> Self {
        let token = options.token.clone();
        let emulator = Emulator::start(options).await.unwrap();
        let client = KustoClient::with_client(&emulator.url(), &token, http);
        client.management(DATABASE, create_table).await.unwrap();
        if streaming {
            client
                .management(
                    DATABASE,
                    &format!(".alter database ['{DATABASE}'] policy streamingingestion enable"),
                )
                .await
                .unwrap();
        }
        Self {
            emulator,
            token,
            client,
        }
    }

    /// Opens `wasm` for this endpoint with the host's token provider.
    pub async fn open(&self, runtime: &PluginRuntime, config: Vec<(String, String)>) -> PluginSink {
        runtime
            .open(
                "test",
                &self.emulator.url(),
                Arc::new(StaticToken(self.token.clone())),
                config,
            )
            .await
            .unwrap()
    }

    /// Runs `messages` synthetic thermostat messages through the plugin configured with
    /// `config`, in the host's pipeline, and says that every one was ingested.
    pub async fn ingest_synthetic(
        &self,
        runtime: &PluginRuntime,
        config: Vec<(String, String)>,
        messages: u64,
    ) {
        use dataflow_runtime::pipeline::{self, PipelineOptions};
        use dataflow_runtime::sources::{self, synthetic};
        let sink = self.open(runtime, config).await;
        let (sender, receiver) = sources::channel();
        tokio::spawn(synthetic::generate(messages, sender));
        let report = pipeline::run(sink, receiver, &PipelineOptions::default())
            .await
            .unwrap();
        assert_eq!(report.ingested, messages);
    }

    /// Configuration for the ADX plugin against this endpoint.
    pub fn adx_config(
        &self,
        table: &str,
        schema: &str,
        extra: &[(&str, &str)],
    ) -> Vec<(String, String)> {
        let mut config = vec![
            ("host".to_string(), self.emulator.url()),
            ("database".to_string(), DATABASE.to_string()),
            ("table".to_string(), table.to_string()),
            ("schema".to_string(), schema.to_string()),
        ];
        config.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        config
    }

    /// A `DataflowEndpoint` resource for this endpoint, with its batching, and the plugin it
    /// names (`name@version`), if any.
    pub fn endpoint_yaml(
        &self,
        name: &str,
        plugin: Option<&str>,
        latency_seconds: u64,
        max_messages: u64,
    ) -> String {
        let annotations = plugin.map_or(String::new(), |plugin| {
            format!("  annotations:\n    dataflow-host/plugin: {plugin}\n")
        });
        format!(
            r#"apiVersion: connectivity.iotoperations.azure.com/v1
kind: DataflowEndpoint
metadata:
  name: {name}
{annotations}spec:
  endpointType: DataExplorer
  dataExplorerSettings:
    host: {url}
    database: {DATABASE}
    authentication:
      method: DevelopmentToken
      developmentTokenSettings:
        token: {token}
    batching:
      latencySeconds: {latency_seconds}
      maxMessages: {max_messages}
"#,
            url = self.emulator.url(),
            token = self.token
        )
    }

    /// Ingest requests the endpoint answered, with their statuses.
    pub fn ingest_statuses(&self) -> Vec<u16> {
        self.emulator
            .requests()
            .iter()
            .filter(|r| r.path_and_query.starts_with("/v1/rest/ingest/"))
            .map(|r| r.status)
            .collect()
    }

    /// The first column of `table` as numbers, sorted (duplicates kept, to be counted).
    pub fn numbers(&self, table: &str) -> Vec<u64> {
        let mut numbers: Vec<u64> = self
            .emulator
            .rows(DATABASE, table)
            .iter()
            .filter_map(|row| row[0].as_u64())
            .collect();
        numbers.sort();
        numbers
    }
}

pub fn adx_runtime() -> PluginRuntime {
    PluginRuntime::new(dataflow_host::bundled::ADX_DESTINATION, Limits::default()).unwrap()
}

pub fn message(sequence: u64, topic: &str, payload: &str) -> Message {
    Message {
        sequence,
        topic: topic.to_string(),
        payload: payload.as_bytes().to_vec(),
        content_type: Some("application/json".into()),
        user_properties: Vec::new(),
        timestamp_nanos: 0,
    }
}

/// A source of `count` messages `{"n": 0}`, `{"n": 1}`, … on topic `t` (origins `m0`, `m1`,
/// …), one every `every`.
pub fn numbered_messages(
    count: u64,
    every: std::time::Duration,
) -> dataflow_runtime::sources::SourceReceiver {
    use dataflow_runtime::sources::{self, SourceMessage};
    let (sender, receiver) = sources::channel();
    tokio::spawn(async move {
        for n in 0..count {
            tokio::time::sleep(every).await;
            let message = SourceMessage {
                topic: "t".into(),
                payload: format!(r#"{{"n": {n}}}"#).into_bytes(),
                origin: format!("m{n}").into(),
                ..Default::default()
            };
            sender.send(message).await.unwrap();
        }
    });
    receiver
}
