//! Serving the endpoint until interrupted: the arguments and the loop behind both
//! `dataflow-host emulator` and this crate's own `local-adx` command.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

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
    /// Connections served at once; more wait in the kernel's backlog.
    #[arg(long, default_value_t = crate::listener::DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,
    /// Seconds a connection may take to send a request head, and so stay idle between
    /// requests, before it is closed.
    #[arg(long, value_name = "SECONDS", default_value_t = crate::listener::DEFAULT_IDLE_TIMEOUT.as_secs_f64())]
    pub idle_timeout: f64,
}

/// Starts the endpoint, prints how to reach it, and serves until Ctrl-C.
pub async fn serve(args: ServeArgs) -> Result<()> {
    return_large_buffers_to_the_system();
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
        limits: crate::listener::ServerLimits {
            max_connections: args.max_connections,
            idle_timeout: Duration::try_from_secs_f64(args.idle_timeout)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "--idle-timeout: {} is not a positive number of seconds",
                        args.idle_timeout
                    )
                })?,
        },
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

/// glibc raises its mmap threshold (up to 32 MiB) each time a large buffer is freed, so later
/// request bodies of a few MiB come from the heap and can stay resident after they are freed.
/// A fixed threshold keeps buffers of 1 MiB and more in their own mappings, returned to the
/// system when freed. For the long-running command only: a library does not change its
/// caller's allocator.
fn return_large_buffers_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn mallopt(param: std::ffi::c_int, value: std::ffi::c_int) -> std::ffi::c_int;
        }
        const M_MMAP_THRESHOLD: std::ffi::c_int = -3;
        // SAFETY: mallopt only sets an allocator parameter; called before the server starts.
        unsafe {
            mallopt(M_MMAP_THRESHOLD, 1024 * 1024);
        }
    }
}
