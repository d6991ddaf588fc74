//! TLS material of an HTTP integration: the PEM texts of `cert.PEM` credentials parsed (with
//! ureq's PEM reader) and checked once, when the configuration is validated, so that a bad
//! certificate or a key that does not match its certificate is a field error, not a failure of
//! every request later. Building the client's [`TlsConfig`] from it happens in [`TlsMaterial::tls_config`].

use std::sync::Arc;

use rustls::{
    pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer},
    sign::CertifiedKey,
    RootCertStore,
};
use trib_plugin_api::{driver::FieldError, support::credentials::Credentials};
use ureq::tls::{parse_pem, Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};

/// Parsed trust anchors, client certificate and verification switch.
#[derive(Debug, Clone)]
pub struct TlsMaterial {
    /// `caCert`: when given, the only trust anchors; `None` = the bundled Mozilla roots.
    pub roots: Option<Arc<Vec<Certificate<'static>>>>,
    /// `cert` + `privateKey`: the client certificate chain and key for mTLS.
    pub client: Option<ClientCert>,
    /// `skipCertificateVerification`: accept any server certificate.
    pub skip_verification: bool,
}

impl TlsMaterial {
    /// Parses the PEM texts of `credentials` (anonymous and basic have none).
    pub fn parse(credentials: &Credentials, skip_verification: bool) -> Result<TlsMaterial, Vec<FieldError>> {
        let mut material = TlsMaterial { roots: None, client: None, skip_verification };
        let Credentials::CertPem { ca_cert, cert, private_key, .. } = credentials else {
            return Ok(material);
        };
        let mut errors = Vec::new();
        if !ca_cert.trim().is_empty() {
            match ca_certs(ca_cert) {
                Ok(certs) => material.roots = Some(Arc::new(certs)),
                Err(e) => errors.push(FieldError::new("credentials.caCert", e)),
            }
        }
        if !cert.trim().is_empty() && !private_key.trim().is_empty() {
            match client_cert(cert, private_key) {
                Ok(client) => material.client = Some(client),
                Err((field, e)) => errors.push(FieldError::new(format!("credentials.{field}"), e)),
            }
        }
        if errors.is_empty() {
            Ok(material)
        } else {
            Err(errors)
        }
    }

    /// The ureq TLS configuration. Built once per agent: ureq shares pooled connections only
    /// between identical (same `Arc`) roots and client certificates.
    pub fn tls_config(&self) -> TlsConfig {
        let roots = match &self.roots {
            Some(certs) => RootCerts::Specific(Arc::clone(certs)),
            None => RootCerts::WebPki,
        };
        TlsConfig::builder()
            .root_certs(roots)
            .client_cert(self.client.clone())
            .disable_verification(self.skip_verification)
            .build()
    }
}

/// Every certificate of a PEM text, each checked to be a usable trust anchor.
fn ca_certs(pem: &str) -> Result<Vec<Certificate<'static>>, String> {
    let certs = certificates(pem)?;
    let mut store = RootCertStore::empty();
    for cert in &certs {
        store
            .add(CertificateDer::from(cert.der().to_vec()))
            .map_err(|e| format!("is not a usable CA certificate: {e}"))?;
    }
    Ok(certs)
}

/// The client chain and key, checked to belong together. On error: the field and the problem.
fn client_cert(chain_pem: &str, key_pem: &str) -> Result<ClientCert, (&'static str, String)> {
    let chain = certificates(chain_pem).map_err(|e| ("cert", e))?;
    let key = PrivateKey::from_pem(key_pem.as_bytes())
        .map_err(|e| ("privateKey", format!("is not a valid PEM private key: {e}")))?;
    // The same PEM read by rustls' reader, only to check that key and certificate belong together.
    let rustls_key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| ("privateKey", format!("is not a valid PEM private key: {e}")))?;
    let rustls_chain = chain.iter().map(|c| CertificateDer::from(c.der().to_vec())).collect();
    CertifiedKey::from_der(rustls_chain, rustls_key, &rustls::crypto::ring::default_provider())
        .map_err(|e| ("privateKey", format!("cannot be used with cert: {e}")))?;
    Ok(ClientCert::new_with_certs(&chain, key))
}

/// The certificates of a PEM text; an error when there are none or the PEM is malformed.
fn certificates(pem: &str) -> Result<Vec<Certificate<'static>>, String> {
    let mut certs = Vec::new();
    for item in parse_pem(pem.as_bytes()) {
        match item {
            Ok(PemItem::Certificate(cert)) => certs.push(cert),
            Ok(_) => {}
            Err(e) => return Err(format!("is not a valid PEM certificate: {e}")),
        }
    }
    if certs.is_empty() {
        return Err("contains no PEM certificate".to_string());
    }
    Ok(certs)
}
