//! The rustls client configuration built from TBMQ's credentials object: a `caCert` becomes the
//! only trust anchor (else the system trust store is used), `cert` + `privateKey` give client
//! certificate authentication (mTLS).
//!
//! The crypto provider is named explicitly (ring) so that nothing depends on which rustls
//! providers other crates in the build happen to enable.

use std::sync::Arc;

use rustls::{
    pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer},
    ClientConfig, RootCertStore,
};
use trib_plugin_api::support::credentials::Credentials;

/// Parses the PEM material of cert.PEM credentials; on failure names the field (under
/// `credentials`) and what is wrong.
pub fn check_material(creds: &Credentials) -> Result<(), (&'static str, String)> {
    if let Credentials::CertPem { ca_cert, cert, private_key, .. } = creds {
        if !ca_cert.is_empty() {
            certificates(ca_cert).map_err(|e| ("caCert", e))?;
        }
        if !cert.is_empty() {
            certificates(cert).map_err(|e| ("cert", e))?;
        }
        if !private_key.is_empty() {
            PrivateKeyDer::from_pem_slice(private_key.as_bytes())
                .map_err(|e| ("privateKey", format!("cannot read the private key: {e}")))?;
        }
    }
    Ok(())
}

/// Builds the TLS client configuration for `creds`.
pub fn client_config(creds: &Credentials) -> Result<Arc<ClientConfig>, String> {
    let (ca_cert, client) = match creds {
        Credentials::CertPem { ca_cert, cert, private_key, .. } => {
            let client = (!cert.is_empty() && !private_key.is_empty()).then_some((cert, private_key));
            (ca_cert.as_str(), client)
        }
        _ => ("", None),
    };
    let mut roots = RootCertStore::empty();
    if ca_cert.is_empty() {
        let native = rustls_native_certs::load_native_certs();
        let (added, _ignored) = roots.add_parsable_certificates(native.certs);
        if added == 0 {
            return Err("no CA certificate given and the system trust store is empty".to_string());
        }
    } else {
        for cert in certificates(ca_cert)? {
            roots.add(cert).map_err(|e| format!("invalid CA certificate: {e}"))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let config = match client {
        Some((cert, key)) => {
            let key = PrivateKeyDer::from_pem_slice(key.as_bytes())
                .map_err(|e| format!("cannot read the private key: {e}"))?;
            builder
                .with_client_auth_cert(certificates(cert)?, key)
                .map_err(|e| format!("invalid client certificate: {e}"))?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// All certificates of a PEM text; at least one.
fn certificates(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("cannot read the certificate: {e}"))?;
    if certs.is_empty() {
        return Err("contains no PEM certificate".to_string());
    }
    Ok(certs)
}
