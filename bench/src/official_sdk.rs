//! The whole host against what a user would write with Microsoft's official Python client:
//! the same JSON Lines of thermostat messages into the same table of the local endpoint,
//! rows as MULTIJSON in batches of 1000 with gzip level 1 on both sides. Each side is a
//! process of its own, timed by the CPU (user + system) the kernel charged it, in pairs
//! one after the other; the endpoint runs in this process and is charged to neither.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::loopback::LoopbackEndpoint;
use anyhow::{bail, Context, Result};

use dataflow_runtime::sources::now_nanos;
use dataflow_runtime::sources::synthetic::{thermostat_message, THERMOSTAT_TABLE};
use local_adx::Emulator;

use crate::Spread;

/// The script, written next to its input at run time so that the bench needs no source tree.
const SCRIPT: &str = include_str!("../python/official_sdk_streaming.py");
/// What `--python` must have installed (the version this comparison was written against).
pub const REQUIREMENT: &str = "azure-kusto-ingest==6.0.4";

const DATABASE: &str = "bench";
const TABLE: &str = "thermostat";

#[derive(Debug, Clone)]
pub struct SdkComparison {
    pub messages: usize,
    /// CPU seconds (user + system) per run.
    pub host: Spread,
    pub python: Spread,
    /// Python's CPU over the host's, pair by pair.
    pub ratio: Spread,
    pub pairs: usize,
}

/// Why the comparison was not run, when it was not.
pub fn skipped_without_python() -> String {
    format!(
        "no --python given; point it at an interpreter with {REQUIREMENT}, e.g. `python3 -m venv /tmp/kusto-sdk && /tmp/kusto-sdk/bin/pip install {REQUIREMENT}`, then `bench --python /tmp/kusto-sdk/bin/python`"
    )
}

/// Runs `host` (`dataflow-host`) and the Python script under `python`, `pairs` times each,
/// alternating, after one warm-up run of each (the host's artifact cache and Python's
/// bytecode are then as a user's second run finds them).
pub async fn measure(
    host: &Path,
    python: &Path,
    messages: usize,
    pairs: usize,
) -> Result<SdkComparison> {
    let dir = std::env::temp_dir().join(format!("bench-sdk-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("config"))?;
    let endpoint = LoopbackEndpoint::start(DATABASE).await?;
    endpoint
        .client
        .management(DATABASE, THERMOSTAT_TABLE)
        .await?;
    let (emulator, token) = (&endpoint.emulator, &endpoint.token);
    let input = dir.join("thermostat.jsonl");
    let base = now_nanos();
    let mut lines = Vec::new();
    for i in 0..messages as u64 {
        lines.extend_from_slice(&thermostat_message(i, base).payload);
        lines.push(b'\n');
    }
    std::fs::write(&input, lines)?;
    std::fs::write(
        dir.join("config/dataflow.yaml"),
        config(&emulator.url(), token),
    )?;
    let script = dir.join("official_sdk_streaming.py");
    std::fs::write(&script, SCRIPT)?;
    // `run --input` gives each line the file's path as its topic; the script does the same.
    let topic = input.display().to_string();

    let host_run = || {
        let mut command = Command::new(host);
        command
            .arg("run")
            .arg("--config")
            .arg(dir.join("config"))
            .arg("--input")
            .arg(&input)
            .arg("--cache-dir")
            .arg(dir.join("cache"))
            .arg("--dead-letter")
            .arg(dir.join("dead-letter.jsonl"))
            .env("DATAFLOW_LOG", "warn");
        command
    };
    let python_run = || {
        let mut command = Command::new(python);
        command
            .arg(&script)
            .arg(emulator.connection_string(DATABASE))
            .arg(DATABASE)
            .arg(TABLE)
            .arg(&input)
            .arg(&topic);
        command
    };

    let mut stored = 0;
    let mut expect_rows = |emulator: &Emulator, who: &str| -> Result<()> {
        stored += messages;
        let rows = emulator.row_count(DATABASE, TABLE);
        if rows != stored {
            bail!("after a run of {who}, {rows} rows are stored, not {stored}");
        }
        Ok(())
    };
    let (mut host_cpu, mut python_cpu, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for pair in 0..=pairs {
        let h = cpu_of(host_run(), "dataflow-host run").await?;
        expect_rows(emulator, "the host")?;
        let p = cpu_of(python_run(), "the Python script").await?;
        expect_rows(emulator, "the Python script")?;
        // The first pair warms both up and is not counted.
        if pair > 0 {
            host_cpu.push(h.as_secs_f64());
            python_cpu.push(p.as_secs_f64());
            ratios.push(p.as_secs_f64() / h.as_secs_f64().max(1e-9));
        }
    }
    std::fs::remove_dir_all(&dir).ok();
    Ok(SdkComparison {
        messages,
        host: Spread::of(host_cpu),
        python: Spread::of(python_cpu),
        ratio: Spread::of(ratios),
        pairs,
    })
}

/// The DataExplorer endpoint, the dataflow and the table, as a user writes them; the MQTT
/// endpoint is never connected to (`--input` replaces the source).
fn config(url: &str, token: &str) -> String {
    format!(
        r#"apiVersion: connectivity.iotoperations.azure.com/v1
kind: DataflowEndpoint
metadata:
  name: adx
spec:
  endpointType: DataExplorer
  dataExplorerSettings:
    host: {url}
    database: {DATABASE}
    authentication:
      method: DevelopmentToken
      developmentTokenSettings:
        token: {token}
    batching:
      latencySeconds: 60
      maxMessages: 1000
---
apiVersion: connectivity.iotoperations.azure.com/v1
kind: DataflowEndpoint
metadata:
  name: plant-broker
spec:
  endpointType: Mqtt
  mqttSettings:
    host: localhost:1883
---
apiVersion: connectivity.iotoperations.azure.com/v1
kind: Dataflow
metadata:
  name: thermostats
spec:
  profileRef: default
  operations:
    - operationType: Source
      sourceSettings:
        endpointRef: plant-broker
        dataSources: ["factory/#"]
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
  schema: "{THERMOSTAT_TABLE}"
  columns:
    - name: MqttTopic
      source: $metadata.topic
"#
    )
}

/// Runs `command` to its end and returns the CPU the kernel charged it and its children.
async fn cpu_of(mut command: Command, what: &str) -> Result<Duration> {
    let what = what.to_string();
    tokio::task::spawn_blocking(move || {
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {what}"))?;
        let pid = child.id() as libc::pid_t;
        let mut stderr = child.stderr.expect("piped");
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut stderr, &mut text).ok();
            text
        });
        // wait4 reaps the child and reports its own resource use (std's `wait` does not).
        let mut status = 0;
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `pid` is our child, not yet reaped; both pointers are to live locals.
        let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if reaped != pid {
            bail!("waiting for {what}: {}", std::io::Error::last_os_error());
        }
        let errors = reader.join().unwrap_or_default();
        if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
            bail!("{what} failed (wait status {status}):\n{errors}");
        }
        let seconds = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
        Ok(seconds(usage.ru_utime) + seconds(usage.ru_stime))
    })
    .await?
}

/// The interpreter `--python` names, checked to have the client.
pub fn check_python(python: &Path) -> Result<PathBuf> {
    let output = Command::new(python)
        .args(["-c", "import azure.kusto.ingest"])
        .output()
        .with_context(|| format!("--python {}: cannot run it", python.display()))?;
    if !output.status.success() {
        bail!(
            "--python {}: it has no azure.kusto.ingest ({}); install {REQUIREMENT} into it",
            python.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(python.to_path_buf())
}
