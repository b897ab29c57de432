use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

use dataflow_host::bench::{self, BenchOptions};
use dataflow_host::demo::{self, DemoOptions};
use dataflow_host::emulator::{Emulator, EmulatorOptions, STREAMING_LIMIT_BYTES};
use dataflow_host::run::{self, RunOptions};
use dataflow_host::tls::LoopbackCertificate;

#[derive(Parser)]
#[command(
    name = "dataflow-host",
    version,
    about = "Runs destination plugins for an edge dataflow"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
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
    },
    /// Checks DataflowEndpoint, Dataflow and KustoTable YAML without running anything, and
    /// reports every problem at once.
    Validate {
        /// YAML files, or directories of them.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Runs the dataflows described by YAML resources.
    Run {
        /// YAML files, or directories of them.
        #[arg(long, required = true, num_args = 1..)]
        config: Vec<PathBuf>,
        /// JSON Lines to feed the dataflow (`-` for standard input).
        #[arg(long)]
        input: Option<String>,
        /// Which dataflow, when the configuration holds several.
        #[arg(long)]
        dataflow: Option<String>,
        /// A PEM file of CA certificates to trust besides the system's.
        #[arg(long)]
        trust_ca: Option<PathBuf>,
    },
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
    },
    /// Runs the local ADX-compatible endpoint until interrupted.
    Emulator {
        #[arg(long, default_value_t = 8080)]
        port: u16,
        #[arg(long, default_value = "127.0.0.1")]
        bind: IpAddr,
        /// The bearer token the endpoint accepts.
        #[arg(long, default_value = "local-dev-token")]
        token: String,
        /// Serve HTTPS with a certificate from a CA made on the spot; its certificate is
        /// written to this file, for clients to trust.
        #[arg(long)]
        tls_ca_out: Option<PathBuf>,
    },
}

#[tokio::main]
async fn main() {
    if let Err(error) = execute(Cli::parse().command).await {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
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
            demo::print_and_check(&result)
        }
        Command::Bench {
            quick,
            messages,
            runs,
        } => {
            let mut options = if quick {
                BenchOptions::quick()
            } else {
                BenchOptions::default()
            };
            options.messages = messages.unwrap_or(options.messages);
            options.runs = runs.unwrap_or(options.runs).max(1);
            let report = bench::run(&options).await?;
            println!("{}", report.render());
            Ok(())
        }
        Command::Validate { paths } => {
            let deployment = run::load(&paths)?;
            println!(
                "valid: {} endpoint(s), {} dataflow(s), {} table(s)",
                deployment.endpoints.len(),
                deployment.dataflows.len(),
                deployment.tables.len()
            );
            Ok(())
        }
        Command::Run {
            config,
            input,
            dataflow,
            trust_ca,
        } => {
            let report = run::run(&RunOptions {
                config,
                input,
                dataflow,
                trust_ca,
            })
            .await?;
            for line in report.summary() {
                println!("{line}");
            }
            if !report.all_accounted_for() {
                anyhow::bail!(
                    "some messages were neither ingested nor rejected: {:?}",
                    report.failure
                );
            }
            Ok(())
        }
        Command::Emulator {
            port,
            bind,
            token,
            tls_ca_out,
        } => {
            let tls = match &tls_ca_out {
                Some(path) => {
                    let certificate = LoopbackCertificate::generate()?;
                    std::fs::write(path, &certificate.ca_pem)?;
                    println!("CA certificate to trust: {}", path.display());
                    Some(certificate.server_config()?)
                }
                None => None,
            };
            let emulator = Emulator::start(EmulatorOptions {
                bind: SocketAddr::new(bind, port),
                token: token.clone(),
                token_check: None,
                streaming_limit_bytes: STREAMING_LIMIT_BYTES,
                tls,
            })
            .await?;
            println!("local ADX-compatible endpoint on {}", emulator.url());
            println!("bearer token: {token}");
            println!(
                "management: POST {}/v1/rest/mgmt  {{\"db\": \"…\", \"csl\": \".create table …\"}}",
                emulator.url()
            );
            tokio::signal::ctrl_c().await?;
            Ok(())
        }
    }
}
