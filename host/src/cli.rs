//! The command line: `dataflow-host demo | validate | run | bench | plugin | emulator`.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::{Parser, Subcommand};

use tokio::sync::watch;

use crate::demo::{self, DemoOptions};
use dataflow_bench::{self as bench, BenchOptions};
use dataflow_runtime::run::{self, RunArgs, RunContext};

#[derive(Parser)]
#[command(
    name = "dataflow-host",
    version,
    about = "Runs destination plugins for an edge dataflow"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log lines as text for people, or as JSON objects for log collectors. Levels by module
    /// come from DATAFLOW_LOG (for example `info,plugin=debug`; default `info`).
    #[arg(long, global = true, value_enum, default_value = "human")]
    log_format: LogFormat,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

/// `default` is the filter when `DATAFLOW_LOG` sets none.
fn init_logging(format: LogFormat, default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("DATAFLOW_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Human => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

#[derive(Subcommand)]
enum Command {
    /// Runs the whole product end to end on this machine, against the local ADX-compatible endpoint.
    Demo {
        /// Synthetic thermostat messages to send.
        #[arg(long, default_value_t = 100_000)]
        messages: u64,
        /// Send the lines of this JSON Lines file (`-` for standard input) instead.
        #[arg(long)]
        input: Option<String>,
        /// Stream format the plugin sends: multijson, json or csv.
        #[arg(long, default_value = "multijson")]
        format: String,
        /// batching.maxMessages for the plugin (default 100000).
        #[arg(long)]
        max_messages: Option<u64>,
        /// batching.latencySeconds for the plugin (default 60).
        #[arg(long)]
        latency_seconds: Option<u64>,
        /// Rows of the table to print at the end.
        #[arg(long, default_value_t = 5)]
        rows: usize,
        /// Keep the local endpoint and its page up after the run, until interrupted.
        #[arg(long)]
        serve: bool,
    },
    /// Checks DataflowEndpoint, Dataflow and KustoTable YAML without running anything, and
    /// reports every problem at once.
    Validate {
        /// YAML files, or directories of them.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Where the schemas that transformations name (`schemaRef: aio-sr://NS/NAME:VERSION`)
        /// are read: DIR/NS/NAME/VERSION.json.
        #[arg(long, value_name = "DIR")]
        schema_registry: Option<PathBuf>,
    },
    /// Runs a dataflow described by YAML resources.
    Run(Box<RunArgs>),
    /// Measures the plugin: the same messages through the wasm component and the same core
    /// compiled natively, per format, gzip level and batch size.
    Bench {
        /// A short run (one batch size, one run), as CI does.
        #[arg(long)]
        quick: bool,
        #[arg(long)]
        messages: Option<usize>,
        #[arg(long)]
        runs: Option<usize>,
        /// A Python interpreter with the official Kusto client (azure-kusto-ingest), for the
        /// comparison of the whole host with it; without it that row is skipped.
        #[arg(long)]
        python: Option<PathBuf>,
    },
    /// Plugin components: what they are and whether this host runs them.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
    /// Runs the local ADX-compatible endpoint until interrupted.
    Emulator(local_adx::serve::ServeArgs),
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Prints what a component exports and imports, its contract version, and whether this
    /// host can run it (exit 1 if not).
    Inspect {
        /// A `.wasm` component; the plugin bundled with this host when omitted.
        file: Option<PathBuf>,
    },
}

/// Parses the command line and runs the command; exits 1 with the error on failure.
pub fn main() {
    let cli = Cli::parse();
    // The benchmark opens hundreds of plugin instances, each of which says so at `info`:
    // only warnings and errors come between its progress lines and its table.
    let default_filter = match cli.command {
        Command::Bench { .. } => "warn",
        _ => "info",
    };
    init_logging(cli.log_format, default_filter);
    let command = cli.command;
    let runtime = tokio::runtime::Runtime::new().expect("starting the async runtime");
    if let Err(error) = runtime.block_on(execute(command)) {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}

/// The first SIGINT or SIGTERM asks for a graceful stop; a second one exits at once (nothing
/// that was not ingested has been acknowledged, so the broker still holds it).
fn shutdown_on_signals() -> Result<watch::Receiver<bool>> {
    use tokio::signal::unix::{signal, SignalKind};
    let (sender, receiver) = watch::channel(false);
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    tokio::spawn(async move {
        let mut received = 0;
        loop {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            received += 1;
            if received > 1 {
                tracing::warn!("second signal: exiting now");
                std::process::exit(130);
            }
            tracing::warn!("stopping: no more reading; delivering what was taken (a second signal exits at once)");
            let _ = sender.send(true);
        }
    });
    Ok(receiver)
}

async fn execute(command: Command) -> Result<()> {
    match command {
        Command::Demo {
            messages,
            input,
            format,
            max_messages,
            latency_seconds,
            rows,
            serve,
        } => {
            let options = DemoOptions {
                messages,
                input,
                format,
                max_messages,
                latency_seconds,
                rows_to_show: rows,
                ..DemoOptions::default()
            };
            let result = demo::run(&options).await?;
            demo::print_and_check(&result)?;
            if serve {
                println!(
                    "serving {} until interrupted (Ctrl-C or SIGTERM)",
                    result.emulator.url()
                );
                let mut stop = shutdown_on_signals()?;
                let _ = stop.wait_for(|stopping| *stopping).await;
            } else {
                println!("(the endpoint stops now; `demo --serve` keeps it and the page up)");
            }
            Ok(())
        }
        Command::Bench {
            quick,
            messages,
            runs,
            python,
        } => {
            let mut options = if quick {
                BenchOptions::quick()
            } else {
                BenchOptions::default()
            };
            options.messages = messages.unwrap_or(options.messages);
            options.runs = runs.unwrap_or(options.runs).max(1);
            options.python = python
                .map(|p| bench::official_sdk::check_python(&p))
                .transpose()?;
            options.host_command = Some(std::env::current_exe()?);
            let report = bench::run(&options, crate::bundled::ADX_DESTINATION).await?;
            println!("{}", report.render());
            Ok(())
        }
        Command::Validate {
            paths,
            schema_registry,
        } => validate(&paths, schema_registry.as_deref()),
        Command::Run(args) => run_dataflows(&args).await,
        Command::Plugin {
            command: PluginCommand::Inspect { file },
        } => inspect(file.as_deref()),
        Command::Emulator(args) => local_adx::serve::serve(args).await,
    }
}

fn validate(paths: &[PathBuf], schema_registry: Option<&Path>) -> Result<()> {
    let deployment = run::load(paths, schema_registry)?;
    println!(
        "valid: {} endpoint(s), {} dataflow(s), {} table(s)",
        deployment.endpoints.len(),
        deployment.dataflows.len(),
        deployment.tables.len()
    );
    for line in deployment.describe() {
        println!("{line}");
    }
    Ok(())
}

/// `run`: every dataflow until a signal, then each one's summary; fails when a message
/// was neither ingested nor rejected.
async fn run_dataflows(args: &RunArgs) -> Result<()> {
    let context = RunContext {
        shutdown: Some(shutdown_on_signals()?),
        pause: None,
        default_plugin: Some(crate::bundled::ADX_DESTINATION),
    };
    let reports = run::run_all(args, context).await?;
    let several = reports.len() > 1;
    for (name, report) in &reports {
        if several {
            println!("dataflow {name}:");
        }
        for line in report.summary() {
            println!("{}{line}", if several { "  " } else { "" });
        }
    }
    if let Some(bytes) = dataflow_runtime::metrics::peak_resident_bytes() {
        println!("peak memory        {:.1} MB resident", bytes as f64 / 1e6);
    }
    for (name, report) in &reports {
        if !report.all_accounted_for() {
            anyhow::bail!(
                "dataflow {name}: some messages were neither ingested nor rejected: {:?}",
                report.failure
            );
        }
    }
    Ok(())
}

/// `plugin inspect`: what a component is and whether this host runs it (exit 1 if not).
fn inspect(file: Option<&Path>) -> Result<()> {
    let (name, wasm) = match file {
        Some(path) => (
            path.display().to_string(),
            dataflow_runtime::files::read_regular(path, dataflow_runtime::files::MAX_PLUGIN_BYTES)
                .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?,
        ),
        None => (
            "the bundled ADX destination".to_string(),
            crate::bundled::ADX_DESTINATION.to_vec(),
        ),
    };
    let (summary, runs) = dataflow_runtime::plugin::inspect(&wasm)?;
    println!("component  {name} ({} bytes)", wasm.len());
    let contract = summary.contract.map_or("none".to_string(), |v| {
        format!("{}@{v}", dataflow_contract::version::DESTINATION_INTERFACE)
    });
    println!("contract   {contract}");
    println!("exports    {}", summary.exports.join("\n           "));
    println!("imports    {}", summary.imports.join("\n           "));
    let host = dataflow_contract::version::NEWEST;
    match (runs, summary.contract) {
        (Ok(bindings), Some(declared)) => {
            let calls = match bindings.minor {
                0 => "accept (a list of messages, 1.0)",
                1 => "accept-batch (packed batches, since 1.1)",
                _ => "accept-batch-classified (packed batches, rejections with their kind, since 1.2)",
            };
            println!("messages   {calls}");
            println!("runs here  yes (plugin contract {declared}, host contract {host})");
            Ok(())
        }
        (Ok(_), None) => unreachable!("a component runs only with a contract version"),
        (Err(e), _) => {
            println!("runs here  no: {e:#}");
            std::process::exit(1);
        }
    }
}
