//! `dataflow-host run`: a dataflow of a set of YAML resources, its Azure Data Explorer
//! destination in its plugin, fed from its MQTT topics (or a JSON Lines file).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::config::{Deployment, DestinationPlan, MqttAuthentication, MqttEndpoint};
use crate::dead_letter::{DeadLetterSink, MqttDeadLetters};
use crate::http_client::{HttpClient, Transport};
use crate::identity::{self, IdentityEndpoints};
use crate::metrics::{Metrics, Registry};
use crate::pipeline::{
    self, Delivery, PipelineOptions, PipelineReport, RetryPolicy, TransformStage,
};
use crate::plugin::{directory, ArtifactCache, Limits, Loaded, PluginRuntime, PluginSink};
use crate::progress::Progress;
use crate::sources::mqtt::{self, MqttSourceOptions, ProtocolVersion};
use crate::sources::{self, jsonl};

/// The `run` subcommand's arguments (doc comments are its help).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RunArgs {
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
    /// Where the datasets of transformations are read: the records of state store key KEY
    /// are the JSON Lines of DIR/KEY.jsonl (one object per line), read at start.
    #[arg(long, value_name = "DIR")]
    pub state_store: Option<PathBuf>,
    /// Where the schemas that transformations name (`schemaRef: aio-sr://NS/NAME:VERSION`)
    /// are read: DIR/NS/NAME/VERSION.json, Delta/1.0 or JSON Schema draft-07.
    #[arg(long, value_name = "DIR")]
    pub schema_registry: Option<PathBuf>,
    /// Where the ConfigMaps that endpoints reference are mounted: the CA bundle of
    /// `trustedCaCertificateConfigMapRef: NAME` is every file of DIR/NAME
    /// [default: /etc/dataflow-host/config-maps].
    #[arg(long, value_name = "DIR")]
    pub config_maps: Option<PathBuf>,
    /// Where the Secrets that endpoints reference are mounted: `x509CertificateSettings.secretRef:
    /// NAME` is DIR/NAME/client_cert.pem and client_key.pem [default: /etc/dataflow-host/secrets].
    #[arg(long, value_name = "DIR")]
    pub secrets: Option<PathBuf>,
    /// Where projected service account tokens are: the token for audience AUDIENCE is the file
    /// DIR/AUDIENCE, read again whenever Kubernetes rotates it [default: /var/run/secrets/tokens].
    #[arg(long, value_name = "DIR")]
    pub service_account_tokens: Option<PathBuf>,
    /// Plugin instances per dataflow, each with one request to the destination at a time:
    /// while one waits for its answer, the next messages go to another. Acknowledgements
    /// stay in arrival order. 1 sends one request at a time. From 1 to 64 [default: 4].
    #[arg(long, value_name = "N",
          value_parser = clap::builder::ValueParser::new(clap::builder::TypedValueParser::map(
              clap::value_parser!(u8).range(1..=crate::pipeline::MAX_LANES as i64), usize::from)))]
    pub requests_in_flight: Option<usize>,
}

impl RunArgs {
    /// Where referenced ConfigMaps, Secrets and tokens are found.
    pub fn mounts(&self) -> crate::mounts::Mounts {
        let defaults = crate::mounts::Mounts::default();
        crate::mounts::Mounts {
            config_maps: self.config_maps.clone().unwrap_or(defaults.config_maps),
            secrets: self.secrets.clone().unwrap_or(defaults.secrets),
            service_account_tokens: self
                .service_account_tokens
                .clone()
                .unwrap_or(defaults.service_account_tokens),
        }
    }
}

/// What the caller gives a run besides its arguments.
#[derive(Clone, Default)]
pub struct RunContext {
    /// Set to `true` to stop: stop reading, deliver what was taken, acknowledge, return.
    pub shutdown: Option<watch::Receiver<bool>>,
    /// Probing interval while an endpoint is paused by a permanent error.
    pub pause: Option<RetryPolicy>,
    /// The plugin of endpoints that name none (`dataflow-host` bundles the ADX destination).
    pub default_plugin: Option<&'static [u8]>,
}

/// The broker of the built-in `default` endpoint when none is given.
pub const DEFAULT_BROKER: &str = "localhost:1883";

/// Loads and checks the configuration; the error lists every problem, one per line.
/// `schema_registry`: the directory that transformations' `schemaRef`s are read from.
pub fn load(paths: &[PathBuf], schema_registry: Option<&std::path::Path>) -> Result<Deployment> {
    Deployment::load_with(paths, schema_registry).map_err(|problems| {
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        anyhow!(
            "{} problem(s) in the configuration:\n{}",
            problems.len(),
            lines.join("\n")
        )
    })
}

/// Where a dataflow's messages come from.
enum Source {
    Mqtt(Box<MqttSourceOptions>),
    /// JSON Lines from a file (or `-`, standard input).
    JsonLines(String),
}

/// Runs every dataflow of the configuration that writes to Azure Data Explorer, or only the
/// one `--dataflow` names, side by side in this process, each with its own plugin (its own
/// version), source, dead letters and pipeline. They are supervised as a set: the first to
/// fail is reported at once and the others are told to stop (they deliver and acknowledge
/// what they took, then return). The configuration is read once. Reports come back in the
/// configuration's order.
pub async fn run_all(args: &RunArgs, context: RunContext) -> Result<Vec<(String, PipelineReport)>> {
    let deployment = Arc::new(load(&args.config, args.schema_registry.as_deref())?);
    let plans = deployment.destination_plans();
    for dataflow in &deployment.dataflows {
        if !plans.iter().any(|p| p.dataflow.name == dataflow.name) {
            tracing::warn!(
                "dataflow {} writes to endpoint `{}`, which is not Azure Data Explorer: this host does not run it",
                dataflow.name,
                dataflow.destination_endpoint
            );
        }
    }
    let chosen: Vec<DestinationPlan> = match args.dataflow.as_deref() {
        Some(name) => {
            let plan = choose(&plans, Some(name))?;
            if !plan.dataflow.enabled {
                bail!("dataflow {name} has `mode: Disabled` (spec.mode): it does not run");
            }
            vec![plan.clone()]
        }
        None if plans.is_empty() => bail!("no Dataflow writes to a DataExplorer endpoint"),
        None => {
            let (enabled, disabled): (Vec<_>, Vec<_>) =
                plans.iter().cloned().partition(|p| p.dataflow.enabled);
            for plan in &disabled {
                tracing::info!(
                    "dataflow {} has `mode: Disabled` (spec.mode): it does not run",
                    plan.dataflow.name
                );
            }
            if enabled.is_empty() {
                bail!(
                    "every dataflow that writes to Azure Data Explorer has `mode: Disabled` ({}): nothing to run",
                    disabled.iter().map(|p| p.dataflow.name.as_str()).collect::<Vec<_>>().join(", ")
                );
            }
            enabled
        }
    };
    // Transformations are compiled, and their datasets read, before anything starts.
    let mut transforms = Vec::with_capacity(chosen.len());
    for plan in &chosen {
        transforms.push(transform_stage(plan, args.state_store.as_deref())?);
    }
    let mut transforms = transforms.into_iter();
    let names: Vec<String> = chosen.iter().map(|p| p.dataflow.name.clone()).collect();
    let several = names.len() > 1;
    if several {
        for (given, option) in [
            (args.input.is_some(), "--input"),
            (args.dead_letter.is_some(), "--dead-letter"),
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
    }
    let registry = match args.metrics_addr {
        Some(addr) => Some(serve_metrics(addr).await?),
        None => None,
    };
    let plugins = Arc::new(Plugins::new(args, context.default_plugin)?);
    // Shared cancellation: the caller's shutdown, or a dataflow of the set failing.
    let (cancel, cancelled) = watch::channel(false);
    if let Some(mut shutdown) = context.shutdown.clone() {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            while !*shutdown.borrow_and_update() {
                if shutdown.changed().await.is_err() {
                    return;
                }
            }
            let _ = cancel.send(true);
        });
    }
    let mut reloads = Vec::new();
    let mut set = JoinSet::new();
    for (index, plan) in chosen.into_iter().enumerate() {
        let metrics = Metrics::new(
            &plan.dataflow.destination_endpoint,
            &plan.dataflow.data_destination,
        );
        if let Some(registry) = &registry {
            registry.add(metrics.clone());
        }
        let opener = Arc::new(SinkOpener {
            plugins: plugins.clone(),
            metrics: metrics.clone(),
        });
        let (swap, swaps) = mpsc::channel(1);
        reloads.push(Reloadable {
            name: plan.dataflow.name.clone(),
            transformation: plan
                .dataflow
                .transformation
                .as_ref()
                .map(|t| t.spec.clone()),
            opener: opener.clone(),
            swaps: swap,
        });
        let dataflow = Dataflow {
            transform: transforms.next().expect("one per dataflow"),
            plan,
            deployment: deployment.clone(),
            args: args.clone(),
            metrics,
            opener,
            labelled: several || args.dataflow.is_some(),
        };
        let (shutdown, pause) = (cancelled.clone(), context.pause.clone());
        set.spawn(async move { (index, dataflow.run(shutdown, swaps, pause).await) });
    }
    reload_on_hangup(args.config.clone(), args.schema_registry.clone(), reloads);
    let mut results: Vec<Option<Result<PipelineReport>>> = names.iter().map(|_| None).collect();
    let mut failed = None;
    while let Some(joined) = set.join_next().await {
        let (index, result) = joined.context("a dataflow's task")?;
        if let (Err(e), None) = (&result, failed) {
            if several {
                tracing::error!(
                    "dataflow {} failed: {e:#}; the other dataflows stop",
                    names[index]
                );
            }
            let _ = cancel.send(true);
            failed = Some(index);
        }
        results[index] = Some(result);
    }
    if let Some(index) = failed {
        let error = results[index].take().expect("joined").unwrap_err();
        return Err(if several {
            error.context(format!("dataflow {}", names[index]))
        } else {
            error
        });
    }
    Ok(names
        .into_iter()
        .zip(results)
        .map(|(name, result)| (name, result.expect("joined").expect("no failure")))
        .collect())
}

/// Runs the one dataflow of the configuration (or the one `--dataflow` names).
pub async fn run(args: &RunArgs, context: RunContext) -> Result<PipelineReport> {
    let mut reports = run_all(args, context).await?;
    match reports.len() {
        1 => Ok(reports.remove(0).1),
        _ => bail!(
            "several dataflows write to Azure Data Explorer ({}); choose one with --dataflow",
            reports
                .iter()
                .map(|(name, _)| name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// One dataflow of a run, with what it needs to start.
struct Dataflow {
    plan: DestinationPlan,
    transform: Option<TransformStage>,
    deployment: Arc<Deployment>,
    args: RunArgs,
    metrics: Arc<Metrics>,
    opener: Arc<SinkOpener>,
    /// Whether its progress line names it (when the host runs several).
    labelled: bool,
}

impl Dataflow {
    /// Opens its plugin, source and dead letters, and runs its pipeline until `shutdown`
    /// (the run's shared cancellation), swapping in each plugin `swaps` brings.
    async fn run(
        self,
        shutdown: watch::Receiver<bool>,
        swaps: mpsc::Receiver<PluginSink>,
        pause: Option<RetryPolicy>,
    ) -> Result<PipelineReport> {
        let Self {
            plan,
            transform,
            deployment,
            args,
            metrics,
            opener,
            labelled,
        } = self;
        let sink = opener.open(&plan).await?;
        let source = match &args.input {
            Some(input) if args.dead_letter_topic.is_none() => Source::JsonLines(input.clone()),
            _ => Source::Mqtt(Box::new(mqtt_source(&plan, &deployment, &args)?)),
        };
        let dead_letters = match (&args.dead_letter_topic, &source) {
            (Some(topic), Source::Mqtt(mqtt)) => {
                if topic.is_empty() || topic.contains(['+', '#']) {
                    bail!("--dead-letter-topic: `{topic}` is not a topic name (no wildcards)");
                }
                DeadLetterSink::Mqtt(MqttDeadLetters::start(
                    &mqtt.endpoint,
                    format!("{}-dead-letters", mqtt.client_id),
                    topic.clone(),
                ))
            }
            _ => {
                let path = args.dead_letter.clone().unwrap_or_else(|| {
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
        let mut pipeline_options = PipelineOptions {
            requests_in_flight: args
                .requests_in_flight
                .unwrap_or(crate::pipeline::REQUESTS_IN_FLIGHT),
            ..PipelineOptions::default()
        };
        if let Some(pause) = pause {
            pipeline_options.pause = pause;
        }
        let delivery = Delivery {
            acknowledger: None,
            metrics: Some(metrics.clone()),
            dead_letters,
            shutdown: Some(shutdown),
            swaps: Some(swaps),
            transform,
        };
        let label = match labelled {
            true => format!("progress {}", plan.dataflow.name),
            false => "progress".to_string(),
        };
        match source {
            Source::JsonLines(input) => {
                metrics.source_started();
                let (sender, receiver) = sources::channel();
                // Lines from a file carry the file's path as their topic (there is no MQTT topic).
                let producer =
                    tokio::spawn(async move { jsonl::read_path(&input, &input, sender).await });
                let progress = Progress::start(&label, metrics);
                let report = pipeline::run_with(sink, receiver, delivery, &pipeline_options).await;
                progress.finish().await;
                let report = report?;
                producer.abort();
                if let Ok(result) = producer.await {
                    result?;
                }
                Ok(report)
            }
            Source::Mqtt(mqtt) => {
                tracing::info!(
                    "reading {} from the MQTT broker at {}:{} as client `{}`, at most {} message(s) in flight",
                    plan.dataflow.data_sources.join(", "),
                    mqtt.endpoint.host,
                    mqtt.endpoint.port,
                    mqtt.client_id,
                    mqtt.window()
                );
                let progress = Progress::start(&label, metrics);
                let report = from_mqtt(sink, &mqtt, delivery, pipeline_options).await;
                progress.finish().await;
                report
            }
        }
    }
}

/// Feeds `sink` from an MQTT source until `delivery.shutdown`; the source's in-flight bound
/// is the pipeline's, and each message is acknowledged to the broker once settled.
pub async fn from_mqtt(
    sink: PluginSink,
    source_options: &MqttSourceOptions,
    mut delivery: Delivery,
    mut pipeline_options: PipelineOptions,
) -> Result<PipelineReport> {
    pipeline_options.max_in_flight = source_options.window();
    pipeline_options.flush_when_idle = source_options.flush_when_idle();
    let (sender, receiver) = sources::unbounded_channel();
    let (source, acknowledger) = mqtt::start(source_options, sender)?;
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

/// Where a run's plugins come from and go through, shared by its dataflows.
struct Plugins {
    transport: Arc<dyn Transport>,
    cache: Option<ArtifactCache>,
    dir: PathBuf,
    default: Option<&'static [u8]>,
}

impl Plugins {
    fn new(args: &RunArgs, default: Option<&'static [u8]>) -> Result<Self> {
        let client = match &args.trust_ca {
            Some(path) => {
                let pem = crate::files::read_regular(path, crate::files::MAX_PEM_BYTES)
                    .with_context(|| format!("reading {}", path.display()))?;
                HttpClient::trusting(&pem)?
            }
            None => HttpClient::system(),
        };
        Ok(Self {
            transport: Arc::new(client),
            cache: match &args.cache_dir {
                Some(dir) => Some(ArtifactCache::new(dir)),
                None => ArtifactCache::default_location(),
            },
            dir: args
                .plugin_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from(directory::DEFAULT_PLUGIN_DIR)),
            default,
        })
    }
}

/// Opens a dataflow's plugin sink from its plan: at the start, and for each live swap.
struct SinkOpener {
    plugins: Arc<Plugins>,
    metrics: Arc<Metrics>,
}

impl SinkOpener {
    async fn open(&self, plan: &DestinationPlan) -> Result<PluginSink> {
        let tokens = identity::provider_for(
            &plan.endpoint.authentication,
            &IdentityEndpoints::from_env(),
        )?;
        self.metrics.watch_tokens(tokens.clone());
        let plugins = &self.plugins;
        let (wasm, name) = match (&plan.endpoint.plugin, plugins.default) {
            (Some(reference), _) => {
                let path = directory::resolve(reference, &plugins.dir)?;
                tracing::info!("plugin {reference}: {}", path.display());
                let wasm = crate::files::read_regular(&path, crate::files::MAX_PLUGIN_BYTES)
                    .with_context(|| format!("reading the plugin {}", path.display()))?;
                (wasm, reference.clone())
            }
            (None, Some(default)) => (default.to_vec(), "the bundled ADX destination".to_string()),
            (None, None) => bail!(
                "endpoint {} names no plugin (annotation {}) and this host bundles none",
                plan.dataflow.destination_endpoint,
                crate::config::PLUGIN_ANNOTATION
            ),
        };
        let runtime = PluginRuntime::load(&wasm, Limits::default(), plugins.cache.as_ref())?
            .with_transport(plugins.transport.clone())
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

/// On each SIGHUP: the configuration is read again, once, and each dataflow's plugin (its
/// version, its settings) opened anew; its pipeline swaps it in. A configuration that does
/// not load, or a plugin that does not open, leaves the running plugin in place.
/// A running dataflow as a reload sees it: what it runs with, and where a new plugin goes.
struct Reloadable {
    name: String,
    transformation: Option<dataflow_transform::TransformationSpec>,
    opener: Arc<SinkOpener>,
    swaps: mpsc::Sender<PluginSink>,
}

fn reload_on_hangup(paths: Vec<PathBuf>, registry: Option<PathBuf>, dataflows: Vec<Reloadable>) {
    // Registered now, before the task runs: until then a SIGHUP would end the process.
    let hangups = signal(SignalKind::hangup());
    tokio::spawn(async move {
        let Ok(mut hangups) = hangups else {
            return;
        };
        while hangups.recv().await.is_some() {
            tracing::info!("SIGHUP: reading the configuration again for a live swap");
            let deployment = match load(&paths, registry.as_deref()) {
                Ok(deployment) => deployment,
                Err(e) => {
                    tracing::error!("the reload failed, the running plugins stay: {e:#}");
                    continue;
                }
            };
            let plans = deployment.destination_plans();
            for Reloadable {
                name,
                transformation,
                opener,
                swaps,
            } in &dataflows
            {
                let reopened = async {
                    let plan = choose(&plans, Some(name))?;
                    // The pipeline holds the transformation (and its last known values) and
                    // its source: only the plugin is swapped live.
                    if plan.dataflow.transformation.as_ref().map(|t| &t.spec)
                        != transformation.as_ref()
                    {
                        bail!("its transformation changed, and a transformation is read at start: restart the host to apply it");
                    }
                    if !plan.dataflow.enabled {
                        bail!("it is now `mode: Disabled`: stop the host to stop it");
                    }
                    opener.open(plan).await
                };
                match reopened.await {
                    Ok(sink) => {
                        if swaps.send(sink).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => tracing::error!(
                        "dataflow {name}: the reload failed, the running plugin stays: {e:#}"
                    ),
                }
            }
        }
    });
}

/// The MQTT source of a dataflow: its endpoint (or the `default` broker) and a client id
/// that stays the same across restarts, so the broker keeps the session.
fn mqtt_source(
    plan: &DestinationPlan,
    deployment: &Deployment,
    options: &RunArgs,
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
    let profile = deployment
        .profile(&dataflow.profile)
        .expect("profileRef is checked when the configuration is read");
    let (instance, filters) = match profile.instance_count {
        1 => (
            options.instance.clone().unwrap_or_else(|| "0".into()),
            dataflow.data_sources.clone(),
        ),
        count => {
            // howto-configure-dataflow-source: with an instance count above one, "shared
            // subscription is automatically enabled": each instance subscribes to
            // $shared/<group>/<filter> and the broker spreads the messages among them.
            let instance = match options.instance.as_deref().map(str::parse::<u16>) {
                Some(Ok(i)) if i < count => i.to_string(),
                _ => bail!(
                    "dataflow {}: its profile `{}` has instanceCount {count}: start each of the {count} hosts with its own --instance, 0 to {} (the client id, so each keeps its own session)",
                    dataflow.name,
                    profile.name,
                    count - 1
                ),
            };
            let filters = dataflow
                .data_sources
                .iter()
                .map(
                    |f| match f.starts_with("$shared/") || f.starts_with("$share/") {
                        true => f.clone(),
                        false => format!("$shared/{}/{f}", dataflow.name),
                    },
                )
                .collect();
            (instance, filters)
        }
    };
    let (tls, credential) = broker_security(&endpoint, options)
        .with_context(|| format!("dataflow {}: its source endpoint", dataflow.name))?;
    Ok(MqttSourceOptions {
        client_id: format!("{prefix}{}-{instance}", dataflow.name),
        endpoint,
        filters,
        version: options.mqtt_version,
        tls,
        credential,
    })
}

/// A broker's TLS configuration and the credential the source presents.
type BrokerSecurity = (
    Option<Arc<rustls::ClientConfig>>,
    Option<Arc<mqtt::Credential>>,
);

/// The TLS configuration and the credential of a broker endpoint, from where Kubernetes
/// mounts what it references.
fn broker_security(endpoint: &MqttEndpoint, options: &RunArgs) -> Result<BrokerSecurity> {
    let mounts = options.mounts();
    let credential = match &endpoint.authentication {
        MqttAuthentication::Anonymous | MqttAuthentication::X509Certificate { .. } => None,
        MqttAuthentication::ServiceAccountToken { audience } => Some(
            mqtt::Credential::service_account_token(mounts.service_account_token(audience)),
        ),
        MqttAuthentication::ManagedIdentity(identity) => Some(mqtt::Credential::entra_token(
            identity::provider_for(identity, &IdentityEndpoints::from_env())?,
        )),
    };
    if credential.is_some() && options.mqtt_version == ProtocolVersion::V311 {
        bail!("its authentication sends a token by MQTT 5 enhanced authentication, which MQTT 3.1.1 (--mqtt-version) does not have");
    }
    let Some(tls) = &endpoint.tls else {
        return Ok((None, credential));
    };
    let cas = match &tls.trusted_ca_config_map {
        Some(name) => mounts.ca_certificates(name)?,
        None => Vec::new(),
    };
    let identity = match &endpoint.authentication {
        MqttAuthentication::X509Certificate { secret } => Some(mounts.client_identity(secret)?),
        _ => None,
    };
    Ok((
        Some(crate::tls::mqtt_client_config(&cas, identity)?),
        credential,
    ))
}

/// A dataflow's transformation, compiled, with its datasets read from the state store
/// directory; `None` without a transformation.
fn transform_stage(
    plan: &DestinationPlan,
    state_store: Option<&std::path::Path>,
) -> Result<Option<TransformStage>> {
    let Some(config) = &plan.dataflow.transformation else {
        return Ok(None);
    };
    let mut compiled = config.compile();
    let keys: Vec<String> = compiled
        .dataset_keys()
        .iter()
        .map(|k| k.to_string())
        .collect();
    if !keys.is_empty() {
        let Some(dir) = state_store else {
            bail!(
                "dataflow {}: {}.datasets reads state store key `{}`: give the directory that holds its records with --state-store (records of KEY in DIR/KEY.jsonl)",
                plan.dataflow.name,
                config.path,
                keys.join("`, `")
            );
        };
        let (store, records) = crate::state_store::StateStoreDir::open(dir, &keys)?;
        compiled.bind_datasets(&records);
        return Ok(Some(
            TransformStage::new(compiled, config.path.clone()).with_state_store(store),
        ));
    }
    Ok(Some(TransformStage::new(compiled, config.path.clone())))
}

/// Serves `/metrics` at `addr` for the dataflows added to the returned registry.
async fn serve_metrics(addr: SocketAddr) -> Result<Arc<Registry>> {
    let registry = Arc::new(Registry::default());
    let (bound, _server) = crate::metrics::serve(addr, registry.clone()).await?;
    tracing::info!("metrics on http://{bound}/metrics");
    Ok(registry)
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
