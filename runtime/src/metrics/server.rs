//! On the address `--metrics-addr` gives: `GET /metrics` (Prometheus), `/healthz` (the process
//! answers: Kubernetes' liveness probe) and `/readyz` (every dataflow connected to its broker
//! with its destination not paused: the readiness probe; 503 with the reasons otherwise).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use super::Registry;

/// Serves the metrics until the returned task is aborted; returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Registry>,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
                    let metrics = metrics.clone();
                    async move {
                        let text = |status: StatusCode, body: String| {
                            Response::builder()
                                .status(status)
                                .header("content-type", "text/plain; charset=utf-8")
                                .body(Full::new(Bytes::from(body)))
                        };
                        let response = match request.uri().path() {
                            "/metrics" => Response::builder()
                                .header("content-type", "text/plain; version=0.0.4; charset=utf-8")
                                .body(Full::new(Bytes::from(metrics.render()))),
                            "/healthz" => text(StatusCode::OK, "ok\n".into()),
                            "/readyz" => match metrics.readiness() {
                                Ok(()) => text(StatusCode::OK, "ready\n".into()),
                                Err(reasons) => text(
                                    StatusCode::SERVICE_UNAVAILABLE,
                                    format!("not ready:\n{}\n", reasons.join("\n")),
                                ),
                            },
                            _ => text(
                                StatusCode::NOT_FOUND,
                                "here are /metrics, /healthz and /readyz\n".into(),
                            ),
                        };
                        Ok::<_, Infallible>(response.expect("a valid response"))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok((bound, task))
}
