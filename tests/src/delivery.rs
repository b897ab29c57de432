//! Delivery scenarios: a real broker, the local endpoint, and the host as a process, with
//! numbered messages counted at the end in the table and in the dead-letter files.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::broker::Broker;
use crate::broker_security::{endpoint_settings, SecureSetup, Security};
use crate::host_process::HostProcess;
use crate::{LocalAdx, DATABASE};
use dataflow_testkit::publisher::Outgoing;

pub const TABLE: &str = "readings";
const CREATE_TABLE: &str = ".create table readings (n: long, site: string, MqttTopic: string)";

#[derive(Debug, Clone)]
pub struct ScenarioOptions {
    /// Streaming ingestion enabled on the database from the start.
    pub streaming: bool,
    pub max_inflight_messages: u16,
    pub latency_seconds: u64,
    pub max_messages: u64,
    /// The dataflow's topic filter.
    pub filter: String,
    /// The broker logs every packet, for `Broker::packet_counts`.
    pub broker_logs_packets: bool,
    /// The table (its first column is the message number `n`).
    pub create_table: String,
    /// The table's `MqttTopic` column is the message's topic (a `columns` entry of its
    /// KustoTable resource); without it, `create_table` has no such column.
    pub topic_column: bool,
    /// A `builtInTransformationSettings` block (its keys at column 0) for the dataflow.
    pub transformation: Option<String>,
    /// The dataflow's profile: `None` for `default`, else a DataflowProfile with this
    /// instanceCount.
    pub instance_count: Option<u16>,
    /// How the host reaches the broker (publishers always use its plain listener).
    pub security: Security,
    /// Environment variables of the hosts (the identity services' addresses, say).
    pub host_env: Vec<(&'static str, String)>,
}

impl Default for ScenarioOptions {
    fn default() -> Self {
        Self {
            streaming: true,
            max_inflight_messages: 1000,
            latency_seconds: 1,
            max_messages: 500,
            filter: "readings/#".into(),
            broker_logs_packets: false,
            create_table: CREATE_TABLE.into(),
            topic_column: true,
            transformation: None,
            instance_count: None,
            security: Security::Plain,
            host_env: Vec::new(),
        }
    }
}

pub struct Scenario {
    pub dir: PathBuf,
    pub broker: Broker,
    pub adx: LocalAdx,
    /// The broker's TLS and token files and the host's mounts, unless `Security::Plain`.
    pub secure: Option<SecureSetup>,
    host_env: Vec<(&'static str, String)>,
}

/// The first service account token of a scenario: projected and accepted from the start.
pub const FIRST_TOKEN: &str = "token-1";

impl Scenario {
    pub async fn start(name: &str, options: ScenarioOptions) -> Self {
        let dir = std::env::temp_dir().join(format!("delivery-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("config")).unwrap();
        let (secure, mut broker_options) = match options.security {
            Security::Plain => (None, Default::default()),
            security => {
                let (setup, broker_options) = SecureSetup::write(&dir, security);
                setup.project_token(FIRST_TOKEN);
                setup.accept_tokens(&[FIRST_TOKEN]);
                (Some(setup), broker_options)
            }
        };
        broker_options.log_packets = options.broker_logs_packets;
        let broker = Broker::start_with(&dir, broker_options).unwrap();
        let host_broker = match broker.secure_port {
            Some(port) => format!("localhost:{port}"),
            None => broker.address(),
        };
        let adx = LocalAdx::start(&options.create_table, options.streaming).await;
        let endpoint =
            adx.endpoint_yaml("adx", None, options.latency_seconds, options.max_messages);
        let config = format!(
            r#"{endpoint}---
apiVersion: connectivity.iotoperations.azure.com/v1
kind: DataflowEndpoint
metadata:
  name: plant-broker
spec:
  endpointType: Mqtt
  mqttSettings:
    host: {broker}
    maxInflightMessages: {inflight}
    sessionExpirySeconds: 3600
{security}---
apiVersion: connectivity.iotoperations.azure.com/v1
kind: Dataflow
metadata:
  name: readings
spec:
  profileRef: {profile}
  operations:
    - operationType: Source
      sourceSettings:
        endpointRef: plant-broker
        dataSources: ["{filter}"]{transformation}
    - operationType: Destination
      destinationSettings:
        endpointRef: adx
        dataDestination: {TABLE}
---
apiVersion: dataflow-host/v1
kind: KustoTable
metadata:
  name: {TABLE}
spec:
  schema: "{create_table}"
{topic_column}{profile_resource}"#,
            profile = if options.instance_count.is_some() { "scaled" } else { "default" },
            profile_resource = options.instance_count.map_or(String::new(), |count| format!(
                "---\napiVersion: connectivity.iotoperations.azure.com/v1\nkind: DataflowProfile\nmetadata:\n  name: scaled\nspec:\n  instanceCount: {count}\n"
            )),
            transformation = options.transformation.as_deref().map_or(String::new(), |t| {
                let indented: Vec<String> = t.lines().map(|l| format!("        {l}")).collect();
                format!("\n    - operationType: BuiltInTransformation\n      builtInTransformationSettings:\n{}", indented.join("\n"))
            }),
            broker = host_broker,
            security = endpoint_settings(options.security),
            inflight = options.max_inflight_messages,
            filter = options.filter,
            create_table = options.create_table,
            topic_column = match options.topic_column {
                true => "  columns:\n    - name: MqttTopic\n      source: $metadata.topic\n",
                false => "",
            },
        );
        std::fs::write(dir.join("config/dataflow.yaml"), config).unwrap();
        Self {
            dir,
            broker,
            adx,
            secure,
            host_env: options.host_env,
        }
    }

    /// The MQTT client id of host instance `instance` (the default prefix, the dataflow).
    pub fn host_client_id(instance: &str) -> String {
        format!("dataflow-host-{TABLE}-{instance}")
    }

    /// Starts a host instance; its log is `host-<instance>.log`, its dead letters
    /// `dead-letter-<instance>.jsonl`.
    pub fn start_host(&self, instance: &str) -> HostProcess {
        let file = self.dir.join(format!("dead-letter-{instance}.jsonl"));
        self.start_host_with(instance, &["--dead-letter", &file.display().to_string()])
    }

    /// Starts a host instance with these further arguments (at least a dead-letter option).
    pub fn start_host_with(&self, instance: &str, extra: &[&str]) -> HostProcess {
        let config = self.dir.join("config").display().to_string();
        let mut args: Vec<String> = ["run", "--config", &config, "--instance", instance]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        if let Some(secure) = &self.secure {
            // The mounts, but where `extra` names another.
            for pair in secure.host_args().chunks(2) {
                if !extra.contains(&pair[0].as_str()) {
                    args.extend(pair.iter().cloned());
                }
            }
        }
        args.extend([
            "--cache-dir".to_string(),
            shared_artifact_cache().display().to_string(),
        ]);
        HostProcess::start_with_env(
            &args,
            &self.dir.join(format!("host-{instance}.log")),
            &self.host_env,
        )
    }

    /// Starts a host instance and waits until its subscription is in place (a first start)
    /// or its session resumed (a restart: `connections` is how many it has made in all).
    pub async fn start_host_ready(&self, instance: &str, connections: usize) -> HostProcess {
        let file = self.dir.join(format!("dead-letter-{instance}.jsonl"));
        let file = file.display().to_string();
        self.start_host_ready_with(instance, connections, &["--dead-letter", &file])
            .await
    }

    /// A first `start_host_ready` of instance `instance` that serves its metrics and probes
    /// on a free loopback address, which is returned with it.
    pub async fn start_host_ready_with_metrics(&self, instance: &str) -> (HostProcess, String) {
        let metrics = format!("127.0.0.1:{}", crate::broker::free_port());
        let dead_letters = self.dir.join(format!("dead-letter-{instance}.jsonl"));
        let extra = [
            "--dead-letter",
            &dead_letters.display().to_string(),
            "--metrics-addr",
            &metrics,
        ];
        let host = self.start_host_ready_with(instance, 1, &extra).await;
        (host, metrics)
    }

    /// `start_host_ready` with these further arguments (at least a dead-letter option).
    pub async fn start_host_ready_with(
        &self,
        instance: &str,
        connections: usize,
        extra: &[&str],
    ) -> HostProcess {
        let mut host = self.start_host_with(instance, extra);
        let text = if connections == 1 {
            "subscribed to"
        } else {
            "connected to the MQTT broker"
        };
        host.wait_for_log(text, connections, Duration::from_secs(60))
            .await;
        host
    }

    /// Counts every number in the table and in the dead-letter files.
    pub fn tally(&self, published: u64) -> Tally {
        let mut ingested: BTreeMap<u64, u64> = BTreeMap::new();
        for row in self.adx.emulator.rows(DATABASE, TABLE) {
            if let Some(n) = row[0].as_u64() {
                *ingested.entry(n).or_default() += 1;
            }
        }
        let mut dead: BTreeMap<u64, u64> = BTreeMap::new();
        let mut reasons = Vec::new();
        for entry in std::fs::read_dir(&self.dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if !name.starts_with("dead-letter-") {
                continue;
            }
            for line in std::fs::read_to_string(&path).unwrap().lines() {
                let letter: Value = serde_json::from_str(line).expect("a JSON dead letter");
                let payload: Value =
                    serde_json::from_str(letter["payload"].as_str().unwrap()).unwrap();
                let n = payload["n"]
                    .as_str()
                    .and_then(|s| s.strip_prefix("bad-"))
                    .and_then(|s| s.parse().ok())
                    .expect("dead letters carry their number");
                *dead.entry(n).or_default() += 1;
                reasons.push(letter["reason"].as_str().unwrap_or_default().to_string());
            }
        }
        let lost: Vec<u64> = (0..published)
            .filter(|n| !ingested.contains_key(n) && !dead.contains_key(n))
            .collect();
        let duplicates = ingested.values().chain(dead.values()).map(|c| c - 1).sum();
        Tally {
            published,
            ingested: ingested.len() as u64,
            dead_lettered: dead.len() as u64,
            duplicates,
            lost,
            reasons,
        }
    }

    /// Waits until nothing published is missing (or the timeout), and returns the count.
    pub async fn wait_for_all(&self, published: u64, timeout: Duration) -> Tally {
        let deadline = Instant::now() + timeout;
        loop {
            let tally = self.tally(published);
            if tally.lost.is_empty() || Instant::now() > deadline {
                return tally;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Fails the test with the first lost numbers and the hosts' logs if anything was lost.
    pub fn assert_nothing_lost(&self, tally: &Tally) {
        assert!(
            tally.lost.is_empty(),
            "lost {} (first: {:?})\n{}",
            tally.lost.len(),
            tally.first_lost(),
            self.host_logs()
        );
    }

    pub fn host_logs(&self) -> String {
        let mut logs = String::new();
        for entry in std::fs::read_dir(&self.dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "log") {
                logs.push_str(&format!("--- {}\n", path.display()));
                logs.push_str(&std::fs::read_to_string(&path).unwrap_or_default());
            }
        }
        logs
    }
}

impl Drop for Scenario {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Messages `range` on topics `readings/site<k>`; every `bad_every`-th one has a value the
/// table cannot take (its `n` is text).
/// One artifact cache for the test run, not the user's: hosts after the first one load the
/// plugin instead of compiling it.
pub fn shared_artifact_cache() -> PathBuf {
    std::env::temp_dir().join(format!("host-artifacts-{}", std::process::id()))
}

pub fn numbered(range: std::ops::Range<u64>, bad_every: Option<u64>) -> Vec<Outgoing> {
    range
        .map(|n| {
            let site = n % 3;
            let bad = bad_every.is_some_and(|k| n % k == k - 1);
            let payload = if bad {
                format!(r#"{{"n": "bad-{n}", "site": "s{site}"}}"#)
            } else {
                format!(r#"{{"n": {n}, "site": "s{site}"}}"#)
            };
            Outgoing {
                topic: format!("readings/site{site}"),
                payload: payload.into_bytes(),
            }
        })
        .collect()
}

/// What became of the published messages.
#[derive(Debug, Clone)]
pub struct Tally {
    pub published: u64,
    /// Distinct numbers in the table.
    pub ingested: u64,
    /// Distinct numbers in the dead-letter files.
    pub dead_lettered: u64,
    /// Extra copies, in the table and the dead-letter files.
    pub duplicates: u64,
    /// Numbers in neither.
    pub lost: Vec<u64>,
    pub reasons: Vec<String>,
}

impl Tally {
    /// The first lost numbers, for a failure message.
    pub fn first_lost(&self) -> Vec<u64> {
        self.lost.iter().take(20).copied().collect()
    }

    /// One line of RELIABILITY.md's table.
    pub fn row(&self, scenario: &str, peak_rss_bytes: u64) -> String {
        format!(
            "| {scenario} | {} | {} | {} | {} | {} | {:.1} MB |",
            self.published,
            self.ingested,
            self.dead_lettered,
            self.duplicates,
            self.lost.len(),
            peak_rss_bytes as f64 / 1_000_000.0
        )
    }
}
