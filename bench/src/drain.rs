//! Draining a backlog: messages queued by mosquitto for a persistent session (QoS 1,
//! published beforehand by `mosquitto_pub`, a process of its own), then taken by a client
//! with a receive maximum of 100. The broker's own client, `mosquitto_sub`, sets the limit:
//! it only reads and acknowledges. The host reads, (transforms,) converts, sends each
//! batch to the local endpoint over HTTP, and acknowledges in order once the rows are in;
//! its time ends when the last row is stored. Over plain TCP and over TLS, without a
//! transformation and with howto-create-dataflow's thermostat filter and map; against
//! mosquitto as installed and with `set_tcp_nodelay true`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::loopback::LoopbackEndpoint;
use anyhow::{bail, Context, Result};
use tokio::sync::watch;

use dataflow_runtime::config::MqttEndpoint;
use dataflow_runtime::pipeline::{Delivery, PipelineOptions, TransformStage};
use dataflow_runtime::plugin::PluginRuntime;
use dataflow_runtime::run;
use dataflow_runtime::sources::mqtt::{MqttSourceOptions, ProtocolVersion};
use dataflow_testkit::broker::{BrokerOptions, ListenerTls, LocalBroker, SecureListener};
use dataflow_transform::{documented, Transformation};
use local_adx::tls::LoopbackCertificate;

const DATABASE: &str = "bench";
const RECEIVE_MAXIMUM: u16 = 100;
const TOPIC: &str = "drain/thermostat";

#[derive(Debug, Clone)]
pub struct DrainCase {
    /// The broker ran with `set_tcp_nodelay true` (mosquitto's default is false).
    pub broker_nodelay: bool,
    pub tls: bool,
    pub transformed: bool,
    /// Seconds to drain the backlog: `mosquitto_sub`, and the host.
    pub subscriber: f64,
    pub host: f64,
}

impl DrainCase {
    /// The host's rate as a share of `mosquitto_sub`'s.
    pub fn share(&self) -> f64 {
        self.subscriber / self.host
    }
}

#[derive(Debug, Clone)]
pub struct Drain {
    pub messages: usize,
    pub cases: Vec<DrainCase>,
}

pub async fn measure(runtime: &PluginRuntime, messages: usize) -> Result<Drain> {
    for tool in ["mosquitto_pub", "mosquitto_sub"] {
        if Command::new(tool).arg("--help").output().is_err() {
            bail!("{tool} is not installed (`apt-get install mosquitto-clients`)");
        }
    }
    let dir = std::env::temp_dir().join(format!("bench-drain-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let certificate = LoopbackCertificate::generate()?;
    let pem = |name: &str, text: &str| -> Result<PathBuf> {
        let path = dir.join(name);
        std::fs::write(&path, text)?;
        Ok(path)
    };
    let tls = ListenerTls {
        certificate: pem("broker.crt", &certificate.certificate_pem)?,
        key: pem("broker.key", &certificate.key_pem)?,
        ca: pem("ca.crt", &certificate.ca_pem)?,
    };
    let endpoint = LoopbackEndpoint::start(DATABASE).await?;
    let (emulator, client) = (&endpoint.emulator, &endpoint.client);
    let input = dir.join("backlog.txt");
    let lines: Vec<String> = (0..messages as u64)
        .map(|i| String::from_utf8(documented::thermostat_payload(i)).expect("UTF-8"))
        .collect();
    std::fs::write(&input, lines.join("\n") + "\n")?;

    let mut broker: Option<LocalBroker> = None;
    let mut cases = Vec::new();
    // mosquitto as installed holds small packets back (Nagle) until the client has
    // acknowledged what went before, which a client's delayed ACKs stretch to 40 ms; with
    // `set_tcp_nodelay true` it sends each at once, its own rate whatever the client.
    for (index, (broker_nodelay, tls_on, transformed)) in [false, true]
        .into_iter()
        .flat_map(|nodelay| {
            [(false, false), (false, true), (true, false), (true, true)]
                .map(|(tls, transformed)| (nodelay, tls, transformed))
        })
        .enumerate()
    {
        if index % 4 == 0 {
            // One broker at a time: the last one stops first.
            drop(broker.take());
            broker = Some(LocalBroker::start_with(
                &dir.join(format!("broker-{index}")),
                BrokerOptions {
                    secure: Some(SecureListener {
                        tls: Some(tls.clone()),
                        ..SecureListener::default()
                    }),
                    tcp_nodelay: broker_nodelay,
                    ..BrokerOptions::default()
                },
            )?);
        }
        let broker = broker.as_ref().expect("started above");
        let secure_port = broker.secure_port.context("the broker's TLS listener")?;
        let port = if tls_on { secure_port } else { broker.port };
        let ca = tls_on.then_some(tls.ca.as_path());
        let subscriber_id = format!("drain-sub-{index}");
        subscribe(&subscriber_id, port, ca, None)?;
        publish(broker.port, &input)?;
        let started = Instant::now();
        subscribe(&subscriber_id, port, ca, Some(messages))?;
        let subscriber = started.elapsed().as_secs_f64();

        let table = format!("drain{index}");
        let schema = match transformed {
            true => format!(".create table {table} (assetName: string, TemperatureF: real, Humidity: real, MqttTopic: string)"),
            false => format!(".create table {table} (assetName: string, temperature: dynamic, MqttTopic: string)"),
        };
        client.management(DATABASE, &schema).await?;
        let host_id = format!("drain-host-{index}");
        // The host's session, subscribed before the backlog is published, as a deployed
        // host's is; then the host takes it over.
        subscribe(&host_id, port, ca, None)?;
        publish(broker.port, &input)?;
        let sink = endpoint
            .open(
                runtime,
                "drain",
                &table,
                &schema,
                &[
                    ("batching.maxMessages", "1000"),
                    ("batching.latencySeconds", "1"),
                ],
            )
            .await?;
        let mut broker_endpoint =
            MqttEndpoint::at(&format!("localhost:{port}")).map_err(anyhow::Error::msg)?;
        broker_endpoint.max_inflight_messages = RECEIVE_MAXIMUM;
        let source = MqttSourceOptions {
            endpoint: broker_endpoint,
            client_id: host_id,
            filters: vec![TOPIC.into()],
            version: ProtocolVersion::V5,
            tls: match tls_on {
                true => Some(dataflow_runtime::tls::mqtt_client_config(
                    &[certificate.ca_der()],
                    None,
                )?),
                false => None,
            },
            credential: None,
        };
        let (stop, stopped) = watch::channel(false);
        let delivery = Delivery {
            shutdown: Some(stopped),
            transform: transformed.then(|| {
                TransformStage::new(
                    Transformation::compile(&documented::thermostat())
                        .expect("the documented rules compile"),
                    "bench".into(),
                )
            }),
            ..Delivery::default()
        };
        let started = Instant::now();
        let pipeline = tokio::spawn(async move {
            run::from_mqtt(sink, &source, delivery, PipelineOptions::default()).await
        });
        let deadline = started + Duration::from_secs(120);
        loop {
            // Counted, not copied: the wait must not take the host's CPU.
            let rows = emulator.row_count(DATABASE, &table);
            if rows >= messages {
                break;
            }
            if Instant::now() > deadline {
                bail!("the host stored {rows} of {messages} rows within 120 s");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let host = started.elapsed().as_secs_f64();
        stop.send(true).ok();
        let report = pipeline.await.context("the pipeline task")??;
        let rows = emulator.row_count(DATABASE, &table);
        if rows != messages || report.ingested != messages as u64 {
            bail!(
                "{rows} rows stored and {} ingested for {messages} messages",
                report.ingested
            );
        }
        cases.push(DrainCase {
            broker_nodelay,
            tls: tls_on,
            transformed,
            subscriber,
            host,
        });
    }
    drop(broker);
    std::fs::remove_dir_all(&dir).ok();
    Ok(Drain { messages, cases })
}

/// `mosquitto_sub` with a persistent session (QoS 1, an hour's expiry, the receive maximum)
/// under `id`: it takes `count` messages, or without a count subscribes and exits, leaving
/// the session for the backlog. The session is made with the receive maximum it is drained
/// with, as a deployed host's would be.
fn subscribe(id: &str, port: u16, ca: Option<&Path>, count: Option<usize>) -> Result<()> {
    let mut command = Command::new("mosquitto_sub");
    command.args([
        "-V", "mqttv5", "-i", id, "-c", "-x", "3600", "-q", "1", "-t", TOPIC,
    ]);
    // Its PUBACKs sent at once (Nagle off), as the host's are: the broker at its own rate.
    command.arg("--nodelay");
    command.args(["-D", "connect", "receive-maximum"]);
    command.arg(RECEIVE_MAXIMUM.to_string());
    command.args(["-p", &port.to_string()]);
    match ca {
        Some(ca) => command.args(["-h", "localhost", "--cafile"]).arg(ca),
        None => command.args(["-h", "127.0.0.1"]),
    };
    match count {
        None => command.arg("-E"),
        // Gives up rather than waits for ever if the backlog is short.
        Some(count) => command.args(["-W", "120", "-C", &count.to_string()]),
    };
    let output = command
        .stdout(Stdio::null())
        .output()
        .context("running mosquitto_sub")?;
    if !output.status.success() {
        bail!(
            "mosquitto_sub failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// Publishes each line of `input` at QoS 1 from a process of its own.
fn publish(port: u16, input: &Path) -> Result<()> {
    let status = Command::new("mosquitto_pub")
        .args([
            "-V",
            "mqttv5",
            "-h",
            "127.0.0.1",
            "-q",
            "1",
            "-t",
            TOPIC,
            "-l",
        ])
        .args(["-p", &port.to_string()])
        .stdin(std::fs::File::open(input)?)
        .stdout(Stdio::null())
        .status()
        .context("running mosquitto_pub")?;
    if !status.success() {
        bail!("mosquitto_pub failed ({status})");
    }
    Ok(())
}
