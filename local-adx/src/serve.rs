//! Serving the endpoint until interrupted: the arguments and the loop behind both
//! `dataflow-host emulator` and this crate's own `local-adx` command.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::Result;

use crate::faults::Fault;
use crate::tls::LoopbackCertificate;
use crate::{Emulator, EmulatorOptions, STREAMING_LIMIT_BYTES};

/// How to serve the local ADX-compatible endpoint (doc comments are the command's help).
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// The bearer token the endpoint accepts.
    #[arg(long, default_value = "local-dev-token")]
    pub token: String,
    /// Serve HTTPS with a certificate from a CA made on the spot; its certificate is
    /// written to this file, for clients to trust.
    #[arg(long)]
    pub tls_ca_out: Option<PathBuf>,
    /// Inject faults into ingestion requests, to rehearse outages: KIND[:RATE][@START+LENGTH]
    /// with KIND one of 429, 429=<retry-after>, 500, 502, 503, 504, slow=<delay>, drop.
    /// For example `--fault 429:0.1 --fault 503@30s+30s`.
    #[arg(long = "fault", value_name = "FAULT")]
    pub faults: Vec<Fault>,
}

/// Starts the endpoint, prints how to reach it, and serves until Ctrl-C.
pub async fn serve(args: ServeArgs) -> Result<()> {
    let tls = match &args.tls_ca_out {
        Some(path) => {
            let certificate = LoopbackCertificate::generate()?;
            std::fs::write(path, &certificate.ca_pem)?;
            println!("CA certificate to trust: {}", path.display());
            Some(certificate.server_config()?)
        }
        None => None,
    };
    let emulator = Emulator::start(EmulatorOptions {
        bind: SocketAddr::new(args.bind, args.port),
        token: args.token.clone(),
        token_check: None,
        streaming_limit_bytes: STREAMING_LIMIT_BYTES,
        tls,
        faults: args.faults.clone(),
    })
    .await?;
    println!("local ADX-compatible endpoint on {}", emulator.url());
    println!("bearer token: {}", args.token);
    println!(
        "connection string: {}",
        emulator.connection_string("telemetry")
    );
    println!(
        "management: POST {}/v1/rest/mgmt  {{\"db\": \"…\", \"csl\": \".create table …\"}}",
        emulator.url()
    );
    for fault in &args.faults {
        println!("injecting into ingestion: {fault:?}");
    }
    tokio::signal::ctrl_c().await?;
    Ok(())
}
