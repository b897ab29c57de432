//! A broker as a client meets it on a cluster: TLS with a server certificate from a CA the
//! test makes, client certificates, and service account tokens checked by an auth plugin
//! (`tests/fixtures/mosquitto-token-auth`, built here with the system's C compiler against
//! Debian's mosquitto-dev). The files the host reads are laid out as Kubernetes mounts them:
//! `mounts/config-maps/<name>/ca.crt`, `mounts/secrets/<name>/client_cert.pem`, …,
//! `mounts/tokens/<audience>`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use dataflow_testkit::broker::{BrokerOptions, ListenerTls, SecureListener};

/// The ConfigMap and Secret names the endpoints reference.
pub const TRUST_BUNDLE: &str = "azure-iot-operations-aio-ca-trust-bundle";
pub const CLIENT_SECRET: &str = "broker-client";
pub const AUDIENCE: &str = "aio-internal";

/// How the host reaches the broker in a scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Security {
    /// Plain TCP, anonymous (`tls.mode: Disabled`, `method: Anonymous`).
    #[default]
    Plain,
    /// TLS verified against the trust bundle, anonymous.
    Tls,
    /// TLS with a client certificate the broker requires (`X509Certificate`).
    X509,
    /// TLS and a service account token (`ServiceAccountToken`, K8S-SAT).
    ServiceAccountToken,
    /// TLS and an Entra ID token from a managed identity (`SystemAssignedManagedIdentity`,
    /// Event Grid's OAUTH2-JWT).
    EntraToken,
}

/// A CA, the broker's certificate (for `localhost` only) and a client certificate, as PEM.
pub struct Pki {
    pub ca: String,
    pub server_certificate: String,
    pub server_key: String,
    pub client_certificate: String,
    pub client_key: String,
}

impl Pki {
    pub fn generate() -> Self {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        // A name of its own: a CA with another's name would fail as a bad signature.
        static MADE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let serial = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        ca_params.distinguished_name.push(
            rcgen::DnType::CommonName,
            format!("test broker CA {serial}"),
        );
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let server_key = rcgen::KeyPair::generate().unwrap();
        let server = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .signed_by(&server_key, &ca, &ca_key)
            .unwrap();
        let client_key = rcgen::KeyPair::generate().unwrap();
        let mut client_params =
            rcgen::CertificateParams::new(vec!["dataflow-host".to_string()]).unwrap();
        client_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "dataflow-host");
        let client = client_params.signed_by(&client_key, &ca, &ca_key).unwrap();
        Self {
            ca: ca.pem(),
            server_certificate: server.pem(),
            server_key: server_key.serialize_pem(),
            client_certificate: client.pem(),
            client_key: client_key.serialize_pem(),
        }
    }
}

/// The token-auth plugin, compiled once per test run into the temporary directory.
pub fn token_auth_plugin() -> PathBuf {
    static PLUGIN: OnceLock<PathBuf> = OnceLock::new();
    PLUGIN
        .get_or_init(|| {
            let source = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fixtures/mosquitto-token-auth/token_auth.c");
            let dir = std::env::temp_dir().join(format!("token-auth-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let plugin = dir.join("token_auth.so");
            let output = Command::new("cc")
                .args(["-Wall", "-Werror", "-shared", "-fPIC", "-o"])
                .arg(&plugin)
                .arg(&source)
                .output()
                .expect("a C compiler (cc) for the broker's auth plugin");
            assert!(
                output.status.success(),
                "building {} (needs mosquitto-dev): {}",
                source.display(),
                String::from_utf8_lossy(&output.stderr)
            );
            plugin
        })
        .clone()
}

/// Everything one scenario's broker and host share: the files and the broker's options.
pub struct SecureSetup {
    pub pki: Pki,
    /// The root of the mounts the host is given (`--config-maps` etc. under it).
    pub mounts: PathBuf,
    /// The tokens the broker accepts now, one per line (the plugin reads it at every check).
    pub accepted_tokens: PathBuf,
    /// The plugin's decisions, one per line.
    pub auth_log: PathBuf,
}

impl SecureSetup {
    /// Writes the broker's and the host's files under `dir` for `security`.
    pub fn write(dir: &Path, security: Security) -> (Self, BrokerOptions) {
        let pki = Pki::generate();
        let files = dir.join("broker-files");
        std::fs::create_dir_all(&files).unwrap();
        // mosquitto, started as root, runs as its own user: its plugin writes the log here.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&files, std::fs::Permissions::from_mode(0o777)).unwrap();
        let write = |name: &str, text: &str| {
            let path = files.join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let tls = ListenerTls {
            certificate: write("server.crt", &pki.server_certificate),
            key: write("server.key", &pki.server_key),
            ca: write("ca.crt", &pki.ca),
        };
        let accepted_tokens = write("accepted-tokens", "");
        let auth_log = files.join("auth.log");
        let mounts = dir.join("mounts");
        let trust = mounts.join("config-maps").join(TRUST_BUNDLE);
        std::fs::create_dir_all(&trust).unwrap();
        std::fs::write(trust.join("ca.crt"), &pki.ca).unwrap();
        let secret = mounts.join("secrets").join(CLIENT_SECRET);
        std::fs::create_dir_all(&secret).unwrap();
        std::fs::write(secret.join("client_cert.pem"), &pki.client_certificate).unwrap();
        std::fs::write(secret.join("client_key.pem"), &pki.client_key).unwrap();
        std::fs::create_dir_all(mounts.join("tokens")).unwrap();
        let secure = match security {
            Security::Plain => None,
            Security::Tls => Some(SecureListener {
                tls: Some(tls),
                ..SecureListener::default()
            }),
            Security::X509 => Some(SecureListener {
                tls: Some(tls),
                require_certificate: true,
                plugin: None,
            }),
            Security::ServiceAccountToken | Security::EntraToken => Some(SecureListener {
                tls: Some(tls),
                require_certificate: false,
                plugin: Some((
                    token_auth_plugin(),
                    vec![
                        ("tokens".into(), accepted_tokens.display().to_string()),
                        ("log".into(), auth_log.display().to_string()),
                        (
                            "method".into(),
                            match security {
                                Security::EntraToken => "OAUTH2-JWT",
                                _ => "K8S-SAT",
                            }
                            .into(),
                        ),
                    ],
                )),
            }),
        };
        let setup = Self {
            pki,
            mounts,
            accepted_tokens,
            auth_log,
        };
        (
            setup,
            BrokerOptions {
                secure,
                ..BrokerOptions::default()
            },
        )
    }

    /// The host's arguments that point at the mounts.
    pub fn host_args(&self) -> Vec<String> {
        let path = |sub: &str| self.mounts.join(sub).display().to_string();
        vec![
            "--config-maps".into(),
            path("config-maps"),
            "--secrets".into(),
            path("secrets"),
            "--service-account-tokens".into(),
            path("tokens"),
        ]
    }

    /// The projected token the host reads (as the kubelet writes it: the whole file anew).
    pub fn project_token(&self, token: &str) {
        let file = self.mounts.join("tokens").join(AUDIENCE);
        let fresh = file.with_extension("new");
        std::fs::write(&fresh, token).unwrap();
        std::fs::rename(&fresh, &file).unwrap();
    }

    /// The tokens the broker accepts from now on.
    pub fn accept_tokens(&self, tokens: &[&str]) {
        let mut text = tokens.join("\n");
        text.push('\n');
        std::fs::write(&self.accepted_tokens, text).unwrap();
    }

    /// The plugin's decisions so far: (accepted?, client id, token).
    pub fn auth_decisions(&self) -> Vec<(bool, String, String)> {
        std::fs::read_to_string(&self.auth_log)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| {
                let mut parts = line.splitn(3, ' ');
                let decision = parts.next()? == "accepted";
                Some((
                    decision,
                    parts.next()?.to_string(),
                    parts.next()?.to_string(),
                ))
            })
            .collect()
    }
}

/// The `tls` and `authentication` of the broker endpoint for `security`.
pub fn endpoint_settings(security: Security) -> String {
    let tls = "    tls:\n      mode: Enabled\n      trustedCaCertificateConfigMapRef: azure-iot-operations-aio-ca-trust-bundle\n";
    match security {
        Security::Plain => "    tls:\n      mode: Disabled\n    authentication:\n      method: Anonymous\n      anonymousSettings: {}\n".into(),
        Security::Tls => format!("{tls}    authentication:\n      method: Anonymous\n      anonymousSettings: {{}}\n"),
        Security::X509 => format!("{tls}    authentication:\n      method: X509Certificate\n      x509CertificateSettings:\n        secretRef: {CLIENT_SECRET}\n"),
        Security::ServiceAccountToken => format!("{tls}    authentication:\n      method: ServiceAccountToken\n      serviceAccountTokenSettings:\n        audience: {AUDIENCE}\n"),
        Security::EntraToken => format!("{tls}    authentication:\n      method: SystemAssignedManagedIdentity\n      systemAssignedManagedIdentitySettings: {{}}\n"),
    }
}
