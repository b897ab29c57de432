//! TLS configuration of the host's client: the webpki roots plus extra CAs.

use std::sync::Arc;

use anyhow::{Context, Result};
use rustls::crypto::ring::default_provider;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

/// Trusts the webpki roots and every certificate in `extra_ca_pem`.
pub fn client_config(extra_ca_pem: &[u8]) -> Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.into(),
    };
    for certificate in CertificateDer::pem_slice_iter(extra_ca_pem) {
        roots.add(certificate.context("reading a CA certificate")?)?;
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(default_provider()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // HTTP/2 where the server offers it, HTTP/1.1 otherwise.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
