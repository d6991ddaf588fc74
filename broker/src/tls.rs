//! TLS for the `listener.ssl` listener: loading PEM files into a rustls server configuration,
//! with optional or required client certificates verified against a CA bundle.
//!
//! A verified client certificate's subject CN (`subject::common_name`) is the client's identity;
//! the CNs of the issuers it presented, as far as they chain to a trusted CA (`chain`), are what
//! TBMQ's X.509 chain walk matches credentials against.

mod chain;
mod subject;

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsAcceptor;

use crate::auth::ClientCertificate;
use crate::config::ClientAuth;

pub(crate) use subject::common_name;

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
    /// The client CA file has no certificate rustls accepts as a trust anchor.
    #[error("no usable CA certificate in {0}")]
    NoClientCa(PathBuf),
    /// rustls refused the certificate or key.
    #[error("invalid tls configuration: {0}")]
    Config(String),
}

/// The `listener.ssl` handshake, and the client certificate it verified.
#[derive(Clone)]
pub(crate) struct Acceptor {
    tls: TlsAcceptor,
    /// The CAs client certificates are verified against; `None` when none are asked for.
    anchors: Option<Arc<chain::Anchors>>,
}

impl Acceptor {
    /// Runs the TLS handshake on `stream`.
    pub(crate) fn accept<IO: AsyncRead + AsyncWrite + Unpin>(&self, stream: IO) -> tokio_rustls::Accept<IO> {
        self.tls.accept(stream)
    }

    /// The verified client certificate of an accepted connection, if it presented one with a CN:
    /// the leaf's CN and those of the issuers presented after it that chain to a trusted CA.
    pub(crate) fn client_identity<S>(&self, stream: &tokio_rustls::server::TlsStream<S>) -> Option<ClientCertificate> {
        let presented = stream.get_ref().1.peer_certificates()?;
        let cn = common_name(presented.first()?)?;
        let trusted = self.anchors.as_ref().map_or(1, |a| a.trusted_len(presented));
        let issuer_cns = presented[1..trusted].iter().filter_map(|c| common_name(c)).collect();
        Some(ClientCertificate { cn, issuer_cns })
    }
}

/// Builds the acceptor from a PEM certificate chain and a PEM private key; `client_ca` (PEM, one
/// or more CA certificates) verifies client certificates when `client_auth` asks for them.
pub(crate) fn acceptor(
    cert: &Path,
    key: &Path,
    client_auth: ClientAuth,
    client_ca: Option<&Path>,
) -> Result<Acceptor, TlsError> {
    let certs = read_certs(cert)?;
    if certs.is_empty() {
        return Err(TlsError::NoCert(cert.to_path_buf()));
    }
    let mut key_reader = BufReader::new(File::open(key).map_err(read_err(key))?);
    let private_key = rustls_pemfile::private_key(&mut key_reader)
        .map_err(read_err(key))?
        .ok_or_else(|| TlsError::NoKey(key.to_path_buf()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let mut anchors = None;
    let builder = match (client_auth, client_ca) {
        (ClientAuth::None, _) | (_, None) => builder.with_no_client_auth(),
        (mode, Some(ca)) => {
            let mut roots = rustls::RootCertStore::empty();
            let cas: Vec<_> = read_certs(ca)?.into_iter().filter(|c| roots.add(c.clone()).is_ok()).collect();
            if cas.is_empty() {
                return Err(TlsError::NoClientCa(ca.to_path_buf()));
            }
            anchors = Some(Arc::new(chain::Anchors::new(cas, provider.signature_verification_algorithms)));
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if mode == ClientAuth::Optional { verifier.allow_unauthenticated() } else { verifier };
            builder.with_client_cert_verifier(verifier.build().map_err(|e| TlsError::Config(e.to_string()))?)
        }
    };
    let config = builder.with_single_cert(certs, private_key).map_err(|e| TlsError::Config(e.to_string()))?;
    Ok(Acceptor { tls: TlsAcceptor::from(Arc::new(config)), anchors })
}

fn read_err(path: &Path) -> impl FnOnce(std::io::Error) -> TlsError {
    let path = path.to_path_buf();
    move |source| TlsError::Read { path, source }
}

fn read_certs(path: &Path) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, TlsError> {
    let mut reader = BufReader::new(File::open(path).map_err(read_err(path))?);
    rustls_pemfile::certs(&mut reader).collect::<Result<Vec<_>, _>>().map_err(read_err(path))
}
