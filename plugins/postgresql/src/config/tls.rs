//! `caCertificate`: the PEM text of the CA certificates a server's chain is checked against in
//! `sslMode` `verify-ca` and `verify-full` (and `require`, as libpq does when it has a root
//! certificate). Parsed at validation time, so that a broken PEM is a field error and not a
//! failed connection later. Building the TLS client lives in [`crate::service::tls`].

use rustls::{
    pki_types::{pem::PemObject, CertificateDer},
    RootCertStore,
};

/// Parsed CA certificates; empty when `caCertificate` is absent or blank.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaCertificates(pub Vec<CertificateDer<'static>>);

impl CaCertificates {
    /// Parses every `CERTIFICATE` block of `pem`; other blocks are ignored. A text that is not
    /// blank must hold at least one certificate usable as a trust anchor.
    pub fn parse(pem: &str) -> Result<CaCertificates, String> {
        if pem.trim().is_empty() {
            return Ok(CaCertificates::default());
        }
        let mut certificates = Vec::new();
        for item in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            match item {
                Ok(der) => certificates.push(der),
                Err(e) => return Err(format!("CA certificate: invalid PEM: {e}")),
            }
        }
        if certificates.is_empty() {
            return Err("CA certificate: no PEM certificate found (-----BEGIN CERTIFICATE----- ...)".to_string());
        }
        let mut store = RootCertStore::empty();
        for (n, der) in certificates.iter().enumerate() {
            if let Err(e) = store.add(der.clone()) {
                return Err(format!("CA certificate: certificate {} cannot be a trust anchor: {e}", n + 1));
            }
        }
        Ok(CaCertificates(certificates))
    }

    /// Whether no certificate was given.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
