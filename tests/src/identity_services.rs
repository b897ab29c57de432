//! Loopback doubles of the Azure identity services, faithful to their documented protocols:
//! IMDS (`GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=…[&client_id=…]`,
//! header `Metadata: true`, answer with `access_token`, `expires_on` as a string of epoch
//! seconds, `expires_in`, `resource`, `token_type`) and the Entra ID token endpoint
//! (`POST /{tenant}/oauth2/v2.0/token`, form fields, answer with `access_token`, `expires_in`).
//! Every token issued is remembered with its expiry, so the local ADX endpoint can accept
//! exactly the valid ones.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;

use local_adx::TokenCheck;

/// One request as the identity service received it.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    pub method: String,
    pub path_and_query: String,
    pub metadata_header: Option<String>,
    pub content_type: Option<String>,
    pub body: String,
}

pub struct IdentityService {
    pub url: String,
    pub lifetime: Duration,
    issued: Arc<Mutex<HashMap<String, Instant>>>,
    requests: Arc<Mutex<Vec<SeenRequest>>>,
    down: Arc<AtomicBool>,
    server: tokio::task::JoinHandle<()>,
}

impl IdentityService {
    /// Starts the double; tokens live for `lifetime`.
    pub async fn start(lifetime: Duration) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let issued: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
        let requests: Arc<Mutex<Vec<SeenRequest>>> = Arc::default();
        let down = Arc::new(AtomicBool::new(false));
        let (i, r, d) = (issued.clone(), requests.clone(), down.clone());
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (issued, requests, down) = (i.clone(), r.clone(), d.clone());
                tokio::spawn(async move {
                    let service = service_fn(
                        move |request: hyper::Request<hyper::body::Incoming>| {
                            let (issued, requests, down) =
                                (issued.clone(), requests.clone(), down.clone());
                            async move {
                                let header = |n: &str| {
                                    request
                                        .headers()
                                        .get(n)
                                        .and_then(|v| v.to_str().ok())
                                        .map(str::to_string)
                                };
                                let mut seen = SeenRequest {
                                    method: request.method().to_string(),
                                    path_and_query: request
                                        .uri()
                                        .path_and_query()
                                        .map(|p| p.to_string())
                                        .unwrap_or_default(),
                                    metadata_header: header("metadata"),
                                    content_type: header("content-type"),
                                    body: String::new(),
                                };
                                let body = request
                                    .into_body()
                                    .collect()
                                    .await
                                    .map(|b| b.to_bytes())
                                    .unwrap_or_default();
                                seen.body = String::from_utf8_lossy(&body).into_owned();
                                let is_imds = seen
                                    .path_and_query
                                    .starts_with("/metadata/identity/oauth2/token");
                                requests.lock().unwrap().push(seen);
                                let (status, answer) = if down.load(Ordering::SeqCst) {
                                    (
                                        500,
                                        json!({"error": "temporarily_unavailable", "error_description": "the identity service is down"}),
                                    )
                                } else {
                                    let mut issued = issued.lock().unwrap();
                                    let token = format!(
                                        "issued-{}-{}",
                                        issued.len() + 1,
                                        std::process::id()
                                    );
                                    issued.insert(token.clone(), Instant::now() + lifetime);
                                    let expires_on = SystemTime::now()
                                        .duration_since(UNIX_EPOCH)
                                        .unwrap()
                                        .as_secs()
                                        + lifetime.as_secs();
                                    if is_imds {
                                        (
                                            200,
                                            json!({
                                                "access_token": token,
                                                "expires_on": expires_on.to_string(),
                                                "resource": "https://api.kusto.windows.net",
                                                "token_type": "Bearer",
                                            }),
                                        )
                                    } else {
                                        (
                                            200,
                                            json!({"access_token": token, "expires_in": lifetime.as_secs(), "token_type": "Bearer"}),
                                        )
                                    }
                                };
                                let response = hyper::Response::builder()
                                    .status(status)
                                    .header("content-type", "application/json")
                                    .body(Full::new(Bytes::from(answer.to_string())))
                                    .unwrap();
                                Ok::<_, Infallible>(response)
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            url,
            lifetime,
            issued,
            requests,
            down,
            server,
        }
    }

    /// A check for the local ADX endpoint: a token this service issued and that has not expired.
    pub fn token_check(&self) -> TokenCheck {
        let issued = self.issued.clone();
        Arc::new(move |token: &str| {
            issued
                .lock()
                .unwrap()
                .get(token)
                .is_some_and(|expiry| Instant::now() < *expiry)
        })
    }

    pub fn requests(&self) -> Vec<SeenRequest> {
        self.requests.lock().unwrap().clone()
    }

    /// Revokes every token issued so far (as if the identity's permissions were reset).
    pub fn revoke_all(&self) {
        self.issued.lock().unwrap().clear();
    }

    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }
}

impl Drop for IdentityService {
    fn drop(&mut self) {
        self.server.abort();
    }
}
