//! TLS for the local endpoint: a server certificate issued on the spot by a throwaway CA.

use std::sync::Arc;

use anyhow::Result;
use rustls::crypto::ring::default_provider;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A server certificate for `127.0.0.1` and `localhost`, and the CA that issued it.
pub struct LoopbackCertificate {
    /// The CA's certificate: what a client must trust.
    pub ca_pem: String,
    /// The server's certificate and key as PEM, for another server on loopback (a broker).
    pub certificate_pem: String,
    pub key_pem: String,
    chain: Vec<CertificateDer<'static>>,
    key_der: Vec<u8>,
}

impl LoopbackCertificate {
    pub fn generate() -> Result<Self> {
        let ca_key = rcgen::KeyPair::generate()?;
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(
            rcgen::DnType::CommonName,
            "local ADX-compatible endpoint CA",
        );
        let ca = ca_params.self_signed(&ca_key)?;
        let key = rcgen::KeyPair::generate()?;
        let params = rcgen::CertificateParams::new(vec![
            "127.0.0.1".to_string(),
            "localhost".to_string(),
            "::1".to_string(),
        ])?;
        let certificate = params.signed_by(&key, &ca, &ca_key)?;
        Ok(Self {
            ca_pem: ca.pem(),
            certificate_pem: certificate.pem(),
            key_pem: key.serialize_pem(),
            chain: vec![certificate.der().clone(), ca.der().clone()],
            key_der: key.serialize_der(),
        })
    }

    /// The CA's certificate, as a client adds it to its roots.
    pub fn ca_der(&self) -> CertificateDer<'static> {
        self.chain[1].clone()
    }

    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>> {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()));
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(default_provider()))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), key)?;
        // As Azure Data Explorer does: HTTP/2 to clients that offer it, HTTP/1.1 to others.
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}
