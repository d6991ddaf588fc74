//! Administrators and tokens: argon2 password hashes, HS256 JWTs (access and refresh), and the
//! administrator created at first start.

use std::time::Duration;

use argon2::{
    password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Argon2,
};
use jsonwebtoken::{decode, encode, errors::ErrorKind, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::{distributions::Alphanumeric, rngs::OsRng, Rng};

use crate::{
    config::ManagementConfig,
    db::{Db, DbError},
};

/// The only role; TBMQ's integration endpoints need `SYS_ADMIN`.
pub const SYS_ADMIN: &str = "SYS_ADMIN";
/// User name of the administrator created when none is configured.
pub const GENERATED_ADMIN: &str = "sysadmin@tributary.local";

/// Why a token or login was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Wrong user name or password.
    #[error("Invalid username or password")]
    BadCredentials,
    /// The token expired.
    #[error("Token has expired")]
    Expired,
    /// The token is malformed, badly signed or of the wrong kind.
    #[error("Invalid JWT token")]
    Invalid,
    /// The database failed.
    #[error("{0}")]
    Db(String),
}

impl From<DbError> for AuthError {
    fn from(e: DbError) -> Self {
        AuthError::Db(e.to_string())
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Claims {
    sub: String,
    scopes: Vec<String>,
    iat: u64,
    exp: u64,
    /// `access` or `refresh`.
    typ: String,
}

/// A pair of tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tokens {
    /// Access token.
    pub token: String,
    /// Refresh token.
    pub refresh_token: String,
}

/// Issues and checks tokens.
pub struct Auth {
    db: Db,
    encoding: EncodingKey,
    decoding: DecodingKey,
    access_ttl: Duration,
    refresh_ttl: Duration,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth").finish_non_exhaustive()
    }
}

impl Auth {
    /// Creates the token service; an empty key is replaced by a random one (logged at WARN).
    pub fn new(db: Db, config: &ManagementConfig) -> Self {
        let key = if config.jwt_signing_key.is_empty() {
            tracing::warn!("No JWT signing key is configured; using a random one, so tokens do not survive a restart.");
            random_text(48)
        } else {
            config.jwt_signing_key.clone()
        };
        Auth {
            db,
            encoding: EncodingKey::from_secret(key.as_bytes()),
            decoding: DecodingKey::from_secret(key.as_bytes()),
            access_ttl: config.jwt_token_expiration,
            refresh_ttl: config.jwt_refresh_token_expiration,
        }
    }

    /// Creates the configured administrator (or resets its password to the configured one), or,
    /// with none configured and no administrator in the database, one with a random password
    /// that is logged once at WARN.
    pub async fn ensure_admin(&self, config: &ManagementConfig) -> Result<(), AuthError> {
        let now = trib_core::now_ms();
        match &config.admin {
            Some(admin) => {
                let current = self.db.admin_password_hash(&admin.username).await?;
                if current.as_deref().is_some_and(|h| verify(h, &admin.password)) {
                    return Ok(());
                }
                self.db.upsert_admin(&admin.username, &hash(&admin.password), now).await?;
                if current.is_some() {
                    tracing::warn!(user = %admin.username, "Administrator password was reset to the configured one.");
                } else {
                    tracing::info!(user = %admin.username, "Administrator created.");
                }
            }
            None if self.db.admin_count().await? == 0 => {
                let password = random_text(20);
                self.db.upsert_admin(GENERATED_ADMIN, &hash(&password), now).await?;
                tracing::warn!(
                    user = GENERATED_ADMIN,
                    password = %password,
                    "No administrator is configured, so one was created with this random password; it is shown only once."
                );
            }
            None => {}
        }
        Ok(())
    }

    /// Checks a password and issues tokens.
    pub async fn login(&self, username: &str, password: &str) -> Result<Tokens, AuthError> {
        let stored = self.db.admin_password_hash(username).await?;
        match stored {
            Some(h) if verify(&h, password) => Ok(self.issue(username)),
            _ => Err(AuthError::BadCredentials),
        }
    }

    /// Exchanges a refresh token for new tokens.
    pub async fn refresh(&self, refresh_token: &str) -> Result<Tokens, AuthError> {
        let claims = self.decode(refresh_token, "refresh")?;
        if self.db.admin_password_hash(&claims.sub).await?.is_none() {
            return Err(AuthError::Invalid);
        }
        Ok(self.issue(&claims.sub))
    }

    /// Checks an access token; returns the user name.
    pub fn verify_access(&self, token: &str) -> Result<String, AuthError> {
        Ok(self.decode(token, "access")?.sub)
    }

    fn issue(&self, user: &str) -> Tokens {
        let now = (trib_core::now_ms() / 1000) as u64;
        Tokens {
            token: self.sign(user, now, now + self.access_ttl.as_secs(), "access"),
            refresh_token: self.sign(user, now, now + self.refresh_ttl.as_secs(), "refresh"),
        }
    }

    fn sign(&self, user: &str, iat: u64, exp: u64, typ: &str) -> String {
        let claims = Claims { sub: user.into(), scopes: vec![SYS_ADMIN.into()], iat, exp, typ: typ.into() };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing of plain claims cannot fail")
    }

    fn decode(&self, token: &str, typ: &str) -> Result<Claims, AuthError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        let claims = decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                _ => AuthError::Invalid,
            })?
            .claims;
        if claims.typ != typ || !claims.scopes.iter().any(|s| s == SYS_ADMIN) {
            return Err(AuthError::Invalid);
        }
        Ok(claims)
    }
}

fn hash(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with default parameters cannot fail")
        .to_string()
}

fn verify(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

fn random_text(len: usize) -> String {
    OsRng.sample_iter(&Alphanumeric).take(len).map(char::from).collect()
}
