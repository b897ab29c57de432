//! `dataflow-host run`: the dataflows of a set of YAML resources, each Azure Data Explorer
//! destination in its plugin, fed from a JSON Lines file or standard input.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};

use crate::bundled;
use crate::config::{Deployment, DestinationPlan};
use crate::http_client::HttpClient;
use crate::identity::{self, IdentityEndpoints};
use crate::pipeline::{self, PipelineOptions, PipelineReport};
use crate::plugin::{Limits, PluginRuntime};
use crate::sources::{self, jsonl};

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub config: Vec<PathBuf>,
    /// JSON Lines to feed the dataflow (`-` for standard input).
    pub input: Option<String>,
    /// Which dataflow, when the configuration holds several.
    pub dataflow: Option<String>,
    /// A PEM file of CA certificates to trust besides the system's (a local endpoint's).
    pub trust_ca: Option<PathBuf>,
}

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

pub async fn run(options: &RunOptions) -> Result<PipelineReport> {
    let deployment = load(&options.config)?;
    let plans = deployment.destination_plans();
    let plan = choose(&plans, options.dataflow.as_deref())?;
    let Some(input) = options.input.clone() else {
        bail!(
            "dataflow {} reads MQTT topics {:?}; this build reads messages from a file: give --input FILE (or - for standard input)",
            plan.dataflow.name,
            plan.dataflow.data_sources
        );
    };
    let tokens = identity::provider_for(
        &plan.endpoint.authentication,
        &IdentityEndpoints::from_env(),
    )?;
    let wasm = match &plan.endpoint.plugin {
        Some(path) => std::fs::read(path).with_context(|| format!("reading the plugin {path}"))?,
        None => bundled::ADX_DESTINATION.to_vec(),
    };
    let client = match &options.trust_ca {
        Some(path) => {
            let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            HttpClient::trusting(&pem)?
        }
        None => HttpClient::system(),
    };
    let runtime = PluginRuntime::new(&wasm, Limits::default())?.with_transport(Arc::new(client));
    let mut sink = runtime
        .open(
            &plan.dataflow.name,
            &plan.endpoint.host,
            tokens,
            plan.plugin_config.clone(),
        )
        .await?;
    let (sender, receiver) = sources::channel();
    // Lines from a file carry the file's path as their topic (there is no MQTT topic).
    let producer = tokio::spawn(async move { jsonl::read_path(&input, &input, sender).await });
    let report = pipeline::run(&mut sink, receiver, &PipelineOptions::default()).await?;
    producer.await??;
    Ok(report)
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
