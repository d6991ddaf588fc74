//! TLS for the `listener.ssl` listener: loading PEM files into a rustls server configuration.
//!
//! Client certificates (X.509 authentication) are not supported yet.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_rustls::TlsAcceptor;

/// Why the TLS listener could not be configured.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The key file has no private key.
    #[error("no private key in {0}")]
    NoKey(PathBuf),
    /// The certificate file has no certificate.
    #[error("no certificate in {0}")]
    NoCert(PathBuf),
    /// rustls refused the certificate or key.
    #[error("invalid tls configuration: {0}")]
    Config(String),
}

/// Builds the acceptor from a PEM certificate chain and a PEM private key.
pub(crate) fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let read_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TlsError::Read { path, source }
    };
    let mut cert_reader = BufReader::new(File::open(cert).map_err(read_err(cert))?);
    let certs = rustls_pemfile::certs(&mut cert_reader).collect::<Result<Vec<_>, _>>().map_err(read_err(cert))?;
    if certs.is_empty() {
        return Err(TlsError::NoCert(cert.to_path_buf()));
    }
    let mut key_reader = BufReader::new(File::open(key).map_err(read_err(key))?);
    let private_key = rustls_pemfile::private_key(&mut key_reader)
        .map_err(read_err(key))?
        .ok_or_else(|| TlsError::NoKey(key.to_path_buf()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, private_key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}
