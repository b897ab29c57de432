//! What keep-alive saves: the same ingestion requests to the local endpoint over HTTPS, from
//! the host's client with its connection pool and from the same client without keep-alive
//! (a TCP connection and a TLS handshake per request, as the host did before it pooled),
//! side by side in one run. The endpoint counts the connections it accepted.

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use bytes::Bytes;
use dataflow_runtime::http_client::HttpClient;
use local_adx::tls::LoopbackCertificate;
use local_adx::{Emulator, EmulatorOptions};

#[derive(Debug, Clone)]
pub struct Reuse {
    pub requests: u64,
    /// Connections the endpoint accepted (each a TLS handshake).
    pub handshakes: u64,
    /// Request latency, in seconds.
    pub p50: f64,
    pub p99: f64,
}

#[derive(Debug, Clone)]
pub struct Connections {
    pub pooled: Reuse,
    pub per_request: Reuse,
}

const TOKEN: &str = "bench-token";

pub async fn measure(requests: usize) -> Result<Connections> {
    let certificate = LoopbackCertificate::generate()?;
    let mut options = EmulatorOptions::loopback(TOKEN);
    options.tls = Some(certificate.server_config()?);
    let emulator = Emulator::start(options).await?;
    let pooled = HttpClient::trusting(certificate.ca_pem.as_bytes())?;
    let url = emulator.url();
    let command = |csl: &str| {
        post(
            &url,
            "/v1/rest/mgmt",
            serde_json::json!({"db": "bench", "csl": csl}).to_string(),
        )
    };
    for csl in [
        ".create table t (n: long)",
        ".alter table t policy streamingingestion enable",
    ] {
        let answer = pooled.send(command(csl), Duration::from_secs(10)).await?;
        ensure!(answer.status == 200, "{csl}: HTTP {}", answer.status);
    }
    let per_request = pooled.without_keep_alive();
    let mut results = Vec::new();
    for client in [&pooled, &per_request] {
        // One request first, so both start from a connection in hand (the pool's).
        let ingest = |n: usize| {
            post(
                &url,
                "/v1/rest/ingest/bench/t?streamFormat=json",
                format!("{{\"n\": {n}}}"),
            )
        };
        client.send(ingest(0), Duration::from_secs(10)).await?;
        let before = emulator.connections_accepted();
        let mut latencies = Vec::with_capacity(requests);
        for n in 0..requests {
            let started = Instant::now();
            let answer = client.send(ingest(n), Duration::from_secs(10)).await?;
            latencies.push(started.elapsed().as_secs_f64());
            ensure!(answer.status == 200, "ingest: HTTP {}", answer.status);
        }
        latencies.sort_by(f64::total_cmp);
        results.push(Reuse {
            requests: requests as u64,
            handshakes: emulator.connections_accepted() - before,
            p50: latencies[latencies.len() / 2],
            p99: latencies[(latencies.len() * 99 / 100).min(latencies.len() - 1)],
        });
    }
    let per_request = results.pop().expect("two results");
    let pooled = results.pop().expect("two results");
    Ok(Connections {
        pooled,
        per_request,
    })
}

fn post(url: &str, path: &str, body: String) -> http::Request<Bytes> {
    http::Request::post(format!("{url}{path}"))
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("content-type", "application/json")
        .body(Bytes::from(body))
        .expect("a valid request")
}
