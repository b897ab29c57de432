//! TLS configuration of the host's clients: the webpki roots plus extra CAs; for MQTT
//! brokers, a client certificate where the endpoint authenticates with one.

use std::sync::Arc;

use anyhow::{Context, Result};
use rustls::crypto::ring::default_provider;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

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

/// A client certificate chain (leaf first) and its key.
pub struct ClientIdentity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

/// For an MQTT broker: the webpki roots and `extra_cas` trusted, TLS 1.2 or 1.3, the server
/// name checked; with `identity`, the client certificate offered to a broker that asks.
pub fn mqtt_client_config(
    extra_cas: &[CertificateDer<'static>],
    identity: Option<ClientIdentity>,
) -> Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.into(),
    };
    for certificate in extra_cas {
        roots
            .add(certificate.clone())
            .context("a trusted CA certificate is not valid")?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(default_provider()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let config = match identity {
        Some(identity) => builder
            .with_client_auth_cert(identity.chain, identity.key)
            .context("the client certificate and key do not go together")?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}
