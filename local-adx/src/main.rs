//! `local-adx`: the local ADX-compatible endpoint on its own (the same as `dataflow-host
//! emulator`).

use clap::Parser;

/// Runs a local Azure Data Explorer-compatible endpoint until interrupted.
#[derive(Parser)]
#[command(name = "local-adx", version)]
struct Cli {
    #[command(flatten)]
    serve: local_adx::serve::ServeArgs,
}

#[tokio::main]
async fn main() {
    if let Err(e) = local_adx::serve::serve(Cli::parse().serve).await {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
