//! What a resource references by name, found where Kubernetes mounts it: a ConfigMap or a
//! Secret is a directory with one file per key (`<root>/<name>/<key>`, the keys being symbolic
//! links into a `..data` directory that the kubelet swaps on update), and a projected service
//! account token is one file (`<root>/<audience>`). The roots are command-line options, so
//! the same resources run in a pod and on a laptop.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::files;
use crate::tls::ClientIdentity;

/// The keys of an X.509 Secret of an MQTT endpoint (howto-configure-mqtt-endpoint: "the
/// secret must have `client_cert.pem` and `client_key.pem` as the key names … Optionally …
/// `client_intermediate_certs.pem`").
pub const CLIENT_CERT_KEY: &str = "client_cert.pem";
pub const CLIENT_KEY_KEY: &str = "client_key.pem";
pub const CLIENT_INTERMEDIATES_KEY: &str = "client_intermediate_certs.pem";

#[derive(Debug, Clone)]
pub struct Mounts {
    pub config_maps: PathBuf,
    pub secrets: PathBuf,
    pub service_account_tokens: PathBuf,
}

impl Default for Mounts {
    fn default() -> Self {
        Self {
            config_maps: PathBuf::from(DEFAULT_CONFIG_MAPS),
            secrets: PathBuf::from(DEFAULT_SECRETS),
            service_account_tokens: PathBuf::from(DEFAULT_SERVICE_ACCOUNT_TOKENS),
        }
    }
}

pub const DEFAULT_CONFIG_MAPS: &str = "/etc/dataflow-host/config-maps";
pub const DEFAULT_SECRETS: &str = "/etc/dataflow-host/secrets";
pub const DEFAULT_SERVICE_ACCOUNT_TOKENS: &str = "/var/run/secrets/tokens";

impl Mounts {
    /// Every certificate in every key of the ConfigMap `name` (a trust bundle such as
    /// `azure-iot-operations-aio-ca-trust-bundle`, whose key is `ca.crt`).
    pub fn ca_certificates(&self, name: &str) -> Result<Vec<CertificateDer<'static>>> {
        let dir = self.config_maps.join(checked_name(name)?);
        let mut certificates = Vec::new();
        for key in keys(&dir).with_context(|| {
            format!(
                "the ConfigMap `{name}` is not mounted at {} (--config-maps)",
                dir.display()
            )
        })? {
            let pem = files::read_regular(&key, files::MAX_PEM_BYTES)
                .map_err(|e| anyhow::anyhow!("{}: {e}", key.display()))?;
            for certificate in CertificateDer::pem_slice_iter(&pem) {
                certificates.push(
                    certificate
                        .with_context(|| format!("{}: not a PEM certificate", key.display()))?,
                );
            }
        }
        if certificates.is_empty() {
            bail!(
                "the ConfigMap `{name}` ({}) holds no PEM certificate",
                dir.display()
            );
        }
        Ok(certificates)
    }

    /// The client certificate (with its intermediates) and key of the Secret `name`.
    pub fn client_identity(&self, name: &str) -> Result<ClientIdentity> {
        let dir = self.secrets.join(checked_name(name)?);
        let read = |key: &str| -> Result<Vec<u8>> {
            files::read_regular(&dir.join(key), files::MAX_PEM_BYTES).map_err(|e| {
                anyhow::anyhow!(
                    "the Secret `{name}` has no readable key `{key}` at {} (--secrets): {e}",
                    dir.join(key).display()
                )
            })
        };
        let certificates = |pem: &[u8], key: &str| -> Result<Vec<CertificateDer<'static>>> {
            CertificateDer::pem_slice_iter(pem)
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("the Secret `{name}`, key `{key}`: not PEM certificates"))
        };
        let mut chain = certificates(&read(CLIENT_CERT_KEY)?, CLIENT_CERT_KEY)?;
        if chain.is_empty() {
            bail!("the Secret `{name}`, key `{CLIENT_CERT_KEY}`: no certificate in it");
        }
        if dir.join(CLIENT_INTERMEDIATES_KEY).exists() {
            chain.extend(certificates(
                &read(CLIENT_INTERMEDIATES_KEY)?,
                CLIENT_INTERMEDIATES_KEY,
            )?);
        }
        let key_pem = read(CLIENT_KEY_KEY)?;
        if key_pem
            .windows(b"ENCRYPTED".len())
            .any(|w| w == b"ENCRYPTED")
        {
            bail!("the Secret `{name}`, key `{CLIENT_KEY_KEY}`: the key is encrypted; it must not be password protected (howto-configure-mqtt-endpoint)");
        }
        let key = PrivateKeyDer::from_pem_slice(&key_pem).with_context(|| {
            format!("the Secret `{name}`, key `{CLIENT_KEY_KEY}`: not a PEM private key")
        })?;
        Ok(ClientIdentity { chain, key })
    }

    /// Where the projected token for `audience` is: `<root>/<audience>`, characters that
    /// cannot be in a file name replaced by `_` (`https://x` → `https___x`).
    pub fn service_account_token(&self, audience: &str) -> PathBuf {
        let file: String = audience
            .chars()
            .map(
                |c| match c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_') {
                    true => c,
                    false => '_',
                },
            )
            .collect();
        self.service_account_tokens.join(file)
    }
}

/// A Kubernetes object name (a DNS subdomain) cannot climb out of the root.
fn checked_name(name: &str) -> Result<&str> {
    let valid = !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && !name.starts_with('.');
    if !valid {
        bail!("`{name}` is not a Kubernetes object name (lowercase letters, digits, `-` and `.`)");
    }
    Ok(name)
}

/// The key files of a mounted ConfigMap or Secret: its entries but the kubelet's own
/// (`..data`, `..2024_…`), sorted so that certificates are read in one order.
fn keys(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut keys = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with("..") {
            continue;
        }
        keys.push(entry.path());
    }
    keys.sort();
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_leave_the_root_and_audiences_are_file_names() {
        assert!(checked_name("../etc").is_err());
        assert!(checked_name("Trust").is_err());
        assert!(checked_name("azure-iot-operations-aio-ca-trust-bundle").is_ok());
        let mounts = Mounts::default();
        assert_eq!(
            mounts.service_account_token("aio-internal"),
            Path::new("/var/run/secrets/tokens/aio-internal")
        );
        assert_eq!(
            mounts.service_account_token("https://eventgrid.azure.net/"),
            Path::new("/var/run/secrets/tokens/https___eventgrid.azure.net_")
        );
    }

    /// A ConfigMap as the kubelet mounts it: the key a link into `..data`.
    #[test]
    fn a_mounted_config_map_is_read_through_its_links_and_a_missing_one_named() {
        let root = std::env::temp_dir().join(format!("mounts-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let bundle = root.join("trust");
        let data = bundle.join("..2026_12_02_00_00_00.1");
        std::fs::create_dir_all(&data).unwrap();
        let ca = rcgen::generate_simple_self_signed(vec!["ca".into()]).unwrap();
        std::fs::write(data.join("ca.crt"), ca.cert.pem()).unwrap();
        std::os::unix::fs::symlink("..2026_12_02_00_00_00.1", bundle.join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/ca.crt", bundle.join("ca.crt")).unwrap();
        let mounts = Mounts {
            config_maps: root.clone(),
            ..Mounts::default()
        };
        assert_eq!(mounts.ca_certificates("trust").unwrap().len(), 1);
        let missing = mounts.ca_certificates("other").unwrap_err();
        assert!(format!("{missing:#}").contains("the ConfigMap `other` is not mounted at"));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
