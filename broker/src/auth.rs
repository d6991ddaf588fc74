//! Client authentication: the pluggable `Authenticator` trait and the built-in user list.
//!
//! The built-in `BasicAuthenticator` checks user names against argon2 password hashes (PHC strings)
//! and lets anonymous clients in when configured; a client that presented a verified TLS client
//! certificate is let in without a password. Passwords are verified on the process's bounded
//! hashing pool (`trib_ops::login`), never on an async worker, and an unknown user name is verified
//! against a dummy hash so that it costs what a wrong password costs. `Locking` refuses a name
//! after repeated failures. TBMQ's MQTT client credentials from the database are `stored` (broker
//! service only); the topic rules they carry are [`TopicRules`]. Topic authorization is in `acl`.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use serde::Deserialize;
use trib_ops::login::{Lockout, PasswordPool};

mod rules;
#[cfg(feature = "service")]
pub mod stored;
#[cfg(test)]
mod tests;

pub use rules::TopicRules;

/// What a client presented in its CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRequest {
    /// The client id (after assignment of one for an empty id).
    pub client_id: String,
    /// The user name, if the client sent one.
    pub username: Option<String>,
    /// The password, if the client sent one.
    pub password: Option<Vec<u8>>,
    /// The client's address.
    pub peer: SocketAddr,
    /// The client certificate the TLS handshake verified, if any.
    pub certificate: Option<ClientCertificate>,
}

/// A client certificate the TLS handshake verified, as the subject CNs of the chain the client
/// presented (`tls::Acceptor::client_identity`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertificate {
    /// The leaf's CN: the client's identity (for the ACL and TBMQ's `${cn}`).
    pub cn: String,
    /// The CNs of the issuers the client presented after its leaf, nearest first, as far as each
    /// one signed the one before and the last is, or was signed by, a trusted CA. An issuer
    /// without a CN is left out.
    pub issuer_cns: Vec<String>,
}

impl ClientCertificate {
    /// A leaf presented without issuers.
    pub fn leaf(cn: impl Into<String>) -> ClientCertificate {
        ClientCertificate { cn: cn.into(), issuer_cns: Vec::new() }
    }

    /// The chain's CNs, leaf first.
    pub fn chain_cns(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.cn.as_str()).chain(self.issuer_cns.iter().map(String::as_str))
    }
}

/// The answer of an authenticator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthDecision {
    /// Let the client in.
    Allow,
    /// Let the client in, limited to these topics (TBMQ's credentials rules), on top of the ACL.
    AllowWith(Arc<TopicRules>),
    /// Unknown user or wrong password (CONNACK 0x86 / 3.1.1 return code 4).
    BadCredentials,
    /// Not allowed to connect, e.g. anonymous when anonymous is off (CONNACK 0x87 / return code 5).
    NotAuthorized,
}

/// What [`Authenticator::authenticate`] returns.
pub type AuthFuture<'a> = Pin<Box<dyn Future<Output = AuthDecision> + Send + 'a>>;

/// Decides whether a client may connect.
///
/// Called on an async worker once per CONNECT: slow work (password hashing) belongs on a
/// [`PasswordPool`], database lookups are awaited.
pub trait Authenticator: Send + Sync + 'static {
    /// Checks one CONNECT.
    fn authenticate<'a>(&'a self, request: &'a AuthRequest) -> AuthFuture<'a>;
}

/// A user known to the built-in authenticator.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Credential {
    /// The user name.
    pub username: String,
    /// The argon2 PHC hash of the password (`$argon2id$v=19$...`).
    pub password_hash: String,
}

/// Hashes a password with argon2id and a random salt, for `Credential::password_hash`.
pub fn hash_password(password: &str) -> Result<String, trib_ops::login::PasswordError> {
    trib_ops::login::hash_password(password)
}

/// User name and password against a configured list; anonymous clients as configured; clients with
/// a verified certificate always.
#[derive(Debug, Clone)]
pub struct BasicAuthenticator {
    allow_anonymous: bool,
    users: HashMap<String, String>,
    pool: PasswordPool,
}

impl BasicAuthenticator {
    /// An authenticator for `credentials`; a later entry for the same user name wins.
    pub fn new(allow_anonymous: bool, credentials: &[Credential]) -> BasicAuthenticator {
        BasicAuthenticator {
            allow_anonymous,
            users: credentials.iter().map(|c| (c.username.clone(), c.password_hash.clone())).collect(),
            pool: PasswordPool::shared(),
        }
    }

    /// The decision without the certificate shortcut: anonymous as configured, else the user list
    /// (an unknown user is verified against a dummy hash, as long as a wrong password takes).
    pub async fn check_user(&self, request: &AuthRequest) -> AuthDecision {
        let Some(username) = &request.username else {
            return if self.allow_anonymous { AuthDecision::Allow } else { AuthDecision::NotAuthorized };
        };
        let hashes = self.users.get(username).cloned().into_iter().collect();
        let password = request.password.clone().unwrap_or_default();
        match self.pool.verify_any(hashes, password).await {
            Some(_) => AuthDecision::Allow,
            None => AuthDecision::BadCredentials,
        }
    }
}

impl Authenticator for BasicAuthenticator {
    fn authenticate<'a>(&'a self, request: &'a AuthRequest) -> AuthFuture<'a> {
        Box::pin(async move {
            if request.certificate.is_some() {
                // Verified against the configured CA during the handshake: the certificate is the
                // credential, and any user name or password sent with it is not checked.
                return AuthDecision::Allow;
            }
            self.check_user(request).await
        })
    }
}

/// Refuses a name (the user name, else the client id) for a while after repeated failures,
/// without asking the inner authenticator (no hashing while locked).
pub struct Locking {
    inner: Arc<dyn Authenticator>,
    lockout: Arc<Lockout>,
}

impl Locking {
    /// `inner` behind `lockout`.
    pub fn new(inner: Arc<dyn Authenticator>, lockout: Arc<Lockout>) -> Locking {
        Locking { inner, lockout }
    }
}

impl Authenticator for Locking {
    fn authenticate<'a>(&'a self, request: &'a AuthRequest) -> AuthFuture<'a> {
        Box::pin(async move {
            let name = request.username.as_deref().unwrap_or(&request.client_id);
            if self.lockout.is_locked(name) {
                tracing::debug!(name = ?name, "CONNECT refused: locked after repeated failures.");
                return AuthDecision::NotAuthorized;
            }
            let decision = self.inner.authenticate(request).await;
            match decision {
                AuthDecision::Allow | AuthDecision::AllowWith(_) => self.lockout.succeeded(name),
                AuthDecision::BadCredentials | AuthDecision::NotAuthorized => {
                    if self.lockout.failed(name) {
                        tracing::warn!(name = ?name, "MQTT login locked after repeated failures.");
                    }
                }
            }
            decision
        })
    }
}
