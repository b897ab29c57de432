//! `dataflow-host run`: a dataflow of a set of YAML resources, its Azure Data Explorer
//! destination in its plugin, fed from its MQTT topics (or a JSON Lines file).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, watch};

use crate::bundled;
use crate::config::{Deployment, DestinationPlan, MqttEndpoint};
use crate::dead_letter::{DeadLetterSink, MqttDeadLetters};
use crate::http_client::{HttpClient, Transport};
use crate::identity::{self, IdentityEndpoints};
use crate::metrics::{Metrics, Registry};
use crate::pipeline::{self, Delivery, PipelineOptions, PipelineReport, RetryPolicy};
use crate::plugin::{directory, ArtifactCache, Limits, Loaded, PluginRuntime, PluginSink};
use crate::progress::Progress;
use crate::sources::mqtt::{self, MqttSourceOptions, ProtocolVersion};
use crate::sources::{self, jsonl};

/// The settings of a run; also the `run` subcommand's arguments (doc comments are its help).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RunOptions {
    /// YAML files, or directories of them.
    #[arg(long, required = true, num_args = 1..)]
    pub config: Vec<PathBuf>,
    /// JSON Lines to feed the dataflow (`-` for standard input); without it the dataflow
    /// reads its MQTT topics.
    #[arg(long)]
    pub input: Option<String>,
    /// Which dataflow, when the configuration holds several.
    #[arg(long)]
    pub dataflow: Option<String>,
    /// A PEM file of CA certificates to trust besides the system's.
    #[arg(long)]
    pub trust_ca: Option<PathBuf>,
    /// The broker behind the built-in `default` endpoint.
    #[arg(long, value_name = "HOST:PORT")]
    pub broker: Option<String>,
    /// This host's name when several share one subscription (part of the MQTT client
    /// id: keep it across restarts, so the broker resumes the session).
    #[arg(long)]
    pub instance: Option<String>,
    /// JSON Lines file for rejected messages [default: <dataflow>.dead-letter.jsonl].
    #[arg(long)]
    pub dead_letter: Option<PathBuf>,
    /// Publish rejected messages to this topic on the source's broker instead (QoS 1; a
    /// message is acknowledged once the broker confirmed its dead letter to a subscriber).
    #[arg(long, conflicts_with = "dead_letter")]
    pub dead_letter_topic: Option<String>,
    /// Where compiled plugins are kept between runs [default: ~/.cache/dataflow-host/components].
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Where plugins named `name@version` (the endpoint's `dataflow-host/plugin`
    /// annotation) are found, as <dir>/<name>/<version>.wasm [default: plugins].
    #[arg(long)]
    pub plugin_dir: Option<PathBuf>,
    /// The MQTT version spoken to the broker: 5, or 3.1.1 for brokers without MQTT 5.
    #[arg(long, default_value = "5")]
    pub mqtt_version: ProtocolVersion,
    /// Serve Prometheus metrics at http://ADDR/metrics (for example 127.0.0.1:9464).
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// Set to `true` to stop: stop reading, deliver what was taken, acknowledge, return.
    #[arg(skip)]
    pub shutdown: Option<watch::Receiver<bool>>,
    /// Probing interval while the endpoint is paused by a permanent error.
    #[arg(skip)]
    pub pause: Option<RetryPolicy>,
    /// Where this dataflow's metrics go when a host serves several dataflows' together.
    #[arg(skip)]
    pub metrics_registry: Option<Arc<Registry>>,
}

/// The broker of the built-in `default` endpoint when none is given.
pub const DEFAULT_BROKER: &str = "localhost:1883";

/// Loads and checks the configuration; the error lists every problem, one per line.
pub fn load(paths: &[PathBuf]) -> Result<Deployment> {
    Deployment::load(paths).map_err(|problems| {
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        anyhow!(
            "{} problem(s) in the configuration:\n{}",
            problems.len(),
            lines.join("\n")
        )
    })
}

/// Runs every dataflow of the configuration that writes to Azure Data Explorer, each with
/// its own plugin (its own version), source, dead letters and pipeline, side by side in this
/// process; or only the one `--dataflow` names. Reports come back by dataflow.
pub async fn run_all(options: &RunOptions) -> Result<Vec<(String, PipelineReport)>> {
    let deployment = load(&options.config)?;
    let names: Vec<String> = deployment
        .destination_plans()
        .iter()
        .map(|p| p.dataflow.name.clone())
        .collect();
    if options.dataflow.is_some() || names.len() < 2 {
        let report = run(options).await?;
        let name = options.dataflow.clone().or(names.into_iter().next());
        return Ok(vec![(name.unwrap_or_default(), report)]);
    }
    for (given, option) in [
        (options.input.is_some(), "--input"),
        (options.dead_letter.is_some(), "--dead-letter"),
    ] {
        if given {
            bail!(
                "{option} is for one dataflow, and the configuration has {} ({}): choose one with --dataflow",
                names.len(),
                names.join(", ")
            );
        }
    }
    tracing::info!("running {} dataflows: {}", names.len(), names.join(", "));
    let metrics_registry = match options.metrics_addr {
        Some(addr) => Some(serve_metrics(addr).await?),
        None => None,
    };
    let tasks: Vec<_> = names
        .iter()
        .map(|name| {
            let options = RunOptions {
                dataflow: Some(name.clone()),
                metrics_addr: None,
                metrics_registry: metrics_registry.clone(),
                ..options.clone()
            };
            tokio::spawn(async move { run(&options).await })
        })
        .collect();
    let mut reports = Vec::new();
    for (name, task) in names.into_iter().zip(tasks) {
        let report = task
            .await
            .context("a dataflow's task")?
            .with_context(|| format!("dataflow {name}"))?;
        reports.push((name, report));
    }
    Ok(reports)
}

pub async fn run(options: &RunOptions) -> Result<PipelineReport> {
    let deployment = load(&options.config)?;
    let plans = deployment.destination_plans();
    let plan = choose(&plans, options.dataflow.as_deref())?;
    let client = match &options.trust_ca {
        Some(path) => {
            let pem = crate::files::read_regular(path, crate::files::MAX_PEM_BYTES)
                .with_context(|| format!("reading {}", path.display()))?;
            HttpClient::trusting(&pem)?
        }
        None => HttpClient::system(),
    };
    // Counted always (the progress line reads them); served only with --metrics-addr.
    let metrics = Metrics::new(
        &plan.dataflow.destination_endpoint,
        &plan.dataflow.data_destination,
    );
    let registry = match (&options.metrics_registry, options.metrics_addr) {
        (Some(registry), _) => Some(registry.clone()),
        (None, Some(addr)) => Some(serve_metrics(addr).await?),
        (None, None) => None,
    };
    if let Some(registry) = registry {
        registry.add(metrics.clone());
    }
    let opener = Arc::new(SinkOpener {
        transport: Arc::new(client),
        cache: match &options.cache_dir {
            Some(dir) => Some(ArtifactCache::new(dir)),
            None => ArtifactCache::default_location(),
        },
        metrics: metrics.clone(),
        plugin_dir: options
            .plugin_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(directory::DEFAULT_PLUGIN_DIR)),
    });
    let mut sink = opener.open(plan).await?;
    let swaps = swap_on_hangup(
        opener.clone(),
        options.config.clone(),
        plan.dataflow.name.clone(),
    );
    let source_options = match (&options.input, &options.dead_letter_topic) {
        (Some(_), None) => None,
        _ => Some(mqtt_source(plan, &deployment, options)?),
    };
    let dead_letters = match (&options.dead_letter_topic, &source_options) {
        (Some(topic), Some(source)) => {
            if topic.is_empty() || topic.contains(['+', '#']) {
                bail!("--dead-letter-topic: `{topic}` is not a topic name (no wildcards)");
            }
            DeadLetterSink::Mqtt(MqttDeadLetters::start(
                &source.endpoint,
                format!("{}-dead-letters", source.client_id),
                topic.clone(),
            ))
        }
        _ => {
            let path = options.dead_letter.clone().unwrap_or_else(|| {
                PathBuf::from(format!("{}.dead-letter.jsonl", plan.dataflow.name))
            });
            DeadLetterSink::json_lines(&path).await?
        }
    };
    tracing::info!(
        "dataflow {}: into {} {}.{}; rejected messages go to {}",
        plan.dataflow.name,
        plan.endpoint.host,
        plan.endpoint.database,
        plan.dataflow.data_destination,
        dead_letters.describe()
    );
    let mut pipeline_options = PipelineOptions::default();
    if let Some(pause) = &options.pause {
        pipeline_options.pause = pause.clone();
    }
    let delivery = Delivery {
        acknowledger: None,
        metrics: Some(metrics.clone()),
        dead_letters,
        shutdown: options.shutdown.clone(),
        swaps: Some(swaps),
    };

    if let Some(input) = options.input.clone() {
        let (sender, receiver) = sources::channel();
        // Lines from a file carry the file's path as their topic (there is no MQTT topic).
        let producer = tokio::spawn(async move { jsonl::read_path(&input, &input, sender).await });
        let progress = Progress::start(&progress_label(options), metrics);
        let report = pipeline::run_with(&mut sink, receiver, delivery, &pipeline_options).await;
        progress.finish().await;
        let report = report?;
        producer.abort();
        if let Ok(result) = producer.await {
            result?;
        }
        return Ok(report);
    }

    let source_options = source_options.expect("an MQTT source without --input");
    tracing::info!(
        "reading {} from the MQTT broker at {}:{} as client `{}`, at most {} message(s) in flight",
        plan.dataflow.data_sources.join(", "),
        source_options.endpoint.host,
        source_options.endpoint.port,
        source_options.client_id,
        source_options.window()
    );
    let progress = Progress::start(&progress_label(options), metrics);
    let report = from_mqtt(&mut sink, &source_options, delivery, pipeline_options).await;
    progress.finish().await;
    report
}

/// Feeds `sink` from an MQTT source until `delivery.shutdown`; the source's in-flight bound
/// is the pipeline's, and each message is acknowledged to the broker once settled.
pub async fn from_mqtt(
    sink: &mut PluginSink,
    source_options: &MqttSourceOptions,
    mut delivery: Delivery,
    mut pipeline_options: PipelineOptions,
) -> Result<PipelineReport> {
    pipeline_options.max_in_flight = source_options.window();
    pipeline_options.flush_when_idle = source_options.flush_when_idle();
    let (sender, receiver) = sources::unbounded_channel();
    let (source, acknowledger) = mqtt::start(source_options, sender);
    if let Some(metrics) = &delivery.metrics {
        metrics.watch_mqtt(source.counters.clone());
    }
    delivery.acknowledger = Some(acknowledger);
    let report = pipeline::run_with(sink, receiver, delivery, &pipeline_options).await;
    let counters = source.counters.clone();
    source.stop().await?;
    let mut report = report?;
    report.mqtt = Some(counters.totals());
    Ok(report)
}

/// Opens a dataflow's plugin sink from its plan: at the start, and for each live swap.
struct SinkOpener {
    transport: Arc<dyn Transport>,
    cache: Option<ArtifactCache>,
    metrics: Arc<Metrics>,
    plugin_dir: PathBuf,
}

impl SinkOpener {
    async fn open(&self, plan: &DestinationPlan) -> Result<PluginSink> {
        let tokens = identity::provider_for(
            &plan.endpoint.authentication,
            &IdentityEndpoints::from_env(),
        )?;
        self.metrics.watch_tokens(tokens.clone());
        let (wasm, name) = match &plan.endpoint.plugin {
            Some(reference) => {
                let path = directory::resolve(reference, &self.plugin_dir)?;
                tracing::info!("plugin {reference}: {}", path.display());
                let wasm = crate::files::read_regular(&path, crate::files::MAX_PLUGIN_BYTES)
                    .with_context(|| format!("reading the plugin {}", path.display()))?;
                (wasm, reference.clone())
            }
            None => (
                bundled::ADX_DESTINATION.to_vec(),
                "the bundled ADX destination".to_string(),
            ),
        };
        let runtime = PluginRuntime::load(&wasm, Limits::default(), self.cache.as_ref())?
            .with_transport(self.transport.clone())
            .with_observer(self.metrics.clone());
        let how = match runtime.loaded {
            Loaded::Compiled => "compiled",
            Loaded::FromCache => "loaded from the artifact cache",
        };
        tracing::info!(
            "plugin {name} {how} in {:.1} ms (contract {})",
            runtime.load_time.as_secs_f64() * 1e3,
            runtime.contract
        );
        runtime
            .open(
                &plan.dataflow.name,
                &plan.endpoint.host,
                tokens,
                plan.plugin_config.clone(),
            )
            .await
    }
}

/// On each SIGHUP: the configuration is read again and the dataflow's plugin (its version,
/// its settings) opened anew; the pipeline swaps it in. A configuration that does not load
/// leaves the running plugin in place.
fn swap_on_hangup(
    opener: Arc<SinkOpener>,
    paths: Vec<PathBuf>,
    dataflow: String,
) -> mpsc::Receiver<PluginSink> {
    let (swaps, receiver) = mpsc::channel(1);
    // Registered now, before the task runs: until then a SIGHUP would end the process.
    let hangups = signal(SignalKind::hangup());
    tokio::spawn(async move {
        let Ok(mut hangups) = hangups else {
            return;
        };
        while hangups.recv().await.is_some() {
            tracing::info!("SIGHUP: reading the configuration again for a live swap");
            let reloaded = async {
                let deployment = load(&paths)?;
                let plans = deployment.destination_plans();
                let plan = choose(&plans, Some(&dataflow))?;
                opener.open(plan).await
            };
            match reloaded.await {
                Ok(sink) => {
                    if swaps.send(sink).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    tracing::error!("the reload failed, the running plugin stays: {e:#}")
                }
            }
        }
    });
    receiver
}

/// The MQTT source of a dataflow: its endpoint (or the `default` broker) and a client id
/// that stays the same across restarts, so the broker keeps the session.
fn mqtt_source(
    plan: &DestinationPlan,
    deployment: &Deployment,
    options: &RunOptions,
) -> Result<MqttSourceOptions> {
    let dataflow = &plan.dataflow;
    let endpoint = match &plan.source {
        Some(endpoint) => endpoint.clone(),
        None => match deployment.endpoint(&dataflow.source_endpoint) {
            Some(other) => bail!(
                "dataflow {} reads from endpoint `{}`, which is not an MQTT broker: this host reads MQTT sources (or a file, with --input)",
                dataflow.name,
                other.name
            ),
            None => {
                let address = options.broker.as_deref().unwrap_or(DEFAULT_BROKER);
                MqttEndpoint::at(address).map_err(|e| anyhow!("--broker: {e}"))?
            }
        },
    };
    let prefix = endpoint
        .client_id_prefix
        .clone()
        .unwrap_or_else(|| "dataflow-host-".to_string());
    let instance = options.instance.as_deref().unwrap_or("0");
    Ok(MqttSourceOptions {
        client_id: format!("{prefix}{}-{instance}", dataflow.name),
        endpoint,
        filters: dataflow.data_sources.clone(),
        version: options.mqtt_version,
    })
}

/// Serves `/metrics` at `addr` for the dataflows added to the returned registry.
async fn serve_metrics(addr: SocketAddr) -> Result<Arc<Registry>> {
    let registry = Arc::new(Registry::default());
    let (bound, _server) = crate::metrics::serve(addr, registry.clone()).await?;
    tracing::info!("metrics on http://{bound}/metrics");
    Ok(registry)
}

/// `progress`, or the dataflow's name when the host runs several.
fn progress_label(options: &RunOptions) -> String {
    match &options.dataflow {
        Some(name) => format!("progress {name}"),
        None => "progress".to_string(),
    }
}

fn choose<'a>(plans: &'a [DestinationPlan], name: Option<&str>) -> Result<&'a DestinationPlan> {
    let names: Vec<&str> = plans.iter().map(|p| p.dataflow.name.as_str()).collect();
    match (name, plans) {
        (_, []) => bail!("no Dataflow writes to a DataExplorer endpoint"),
        (None, [only]) => Ok(only),
        (None, _) => bail!(
            "several dataflows write to Azure Data Explorer ({}); choose one with --dataflow",
            names.join(", ")
        ),
        (Some(name), _) => plans
            .iter()
            .find(|p| p.dataflow.name == name)
            .ok_or_else(|| {
                anyhow!(
                    "no dataflow `{name}` writes to Azure Data Explorer (these do: {})",
                    names.join(", ")
                )
            }),
    }
}
