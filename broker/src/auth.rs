//! Client authentication: the pluggable `Authenticator` trait and the built-in user list.
//!
//! The built-in `BasicAuthenticator` checks user names against argon2 password hashes (PHC strings)
//! and lets anonymous clients in when configured; a client that presented a verified TLS client
//! certificate is let in without a password. Topic authorization is in `acl`.

use std::collections::HashMap;
use std::net::SocketAddr;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use serde::Deserialize;

#[cfg(test)]
mod tests;

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
    /// The subject CN of the client certificate the TLS handshake verified, if any.
    pub certificate_cn: Option<String>,
}

/// The answer of an authenticator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthDecision {
    /// Let the client in.
    Allow,
    /// Unknown user or wrong password (CONNACK 0x86 / 3.1.1 return code 4).
    BadCredentials,
    /// Not allowed to connect, e.g. anonymous when anonymous is off (CONNACK 0x87 / return code 5).
    NotAuthorized,
}

/// Decides whether a client may connect.
///
/// Called on a blocking thread (password hashing is slow by design), once per CONNECT.
pub trait Authenticator: Send + Sync + 'static {
    /// Checks one CONNECT.
    fn authenticate(&self, request: &AuthRequest) -> AuthDecision;
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

/// Why a password could not be hashed.
#[derive(Debug, thiserror::Error)]
#[error("cannot hash password: {0}")]
pub struct HashError(String);

/// Hashes a password with argon2id and a random salt, for `Credential::password_hash`.
pub fn hash_password(password: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

/// User name and password against a configured list; anonymous clients as configured; clients with
/// a verified certificate always.
#[derive(Debug, Clone)]
pub struct BasicAuthenticator {
    allow_anonymous: bool,
    users: HashMap<String, String>,
}

impl BasicAuthenticator {
    /// An authenticator for `credentials`; a later entry for the same user name wins.
    pub fn new(allow_anonymous: bool, credentials: &[Credential]) -> BasicAuthenticator {
        BasicAuthenticator {
            allow_anonymous,
            users: credentials.iter().map(|c| (c.username.clone(), c.password_hash.clone())).collect(),
        }
    }
}

impl Authenticator for BasicAuthenticator {
    fn authenticate(&self, request: &AuthRequest) -> AuthDecision {
        if request.certificate_cn.is_some() {
            // Verified against the configured CA during the handshake: the certificate is the
            // credential, and any user name or password sent with it is not checked.
            return AuthDecision::Allow;
        }
        let Some(username) = &request.username else {
            return if self.allow_anonymous { AuthDecision::Allow } else { AuthDecision::NotAuthorized };
        };
        let Some(stored) = self.users.get(username) else {
            return AuthDecision::BadCredentials;
        };
        let Ok(hash) = PasswordHash::new(stored) else {
            tracing::warn!(username = %username, "Stored password hash does not parse; refusing the user.");
            return AuthDecision::BadCredentials;
        };
        let password = request.password.as_deref().unwrap_or_default();
        match Argon2::default().verify_password(password, &hash) {
            Ok(()) => AuthDecision::Allow,
            Err(_) => AuthDecision::BadCredentials,
        }
    }
}
