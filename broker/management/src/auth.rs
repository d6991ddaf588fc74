//! Administrators and tokens: argon2 password hashes, HS256 JWTs (access and refresh), and the
//! administrator created at first start.
//!
//! A login verifies its password on the process's bounded hashing pool (`trib_ops::login`), never
//! on an async worker; an unknown user costs what a wrong password costs; a user name is locked
//! for 5 minutes after 5 failures in a row (ThingsBoard's `maxFailedLoginAttempts`; TBMQ has none).
//!
//! Every token carries `cv`, a keyed fingerprint of the password hash it was issued under:
//! changing the password (or the administrator's name) makes every earlier access and refresh
//! token invalid, on every node (a node reads the fingerprint from the database at most
//! [`FINGERPRINT_CACHE`] after another node changed it).

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use parking_lot::Mutex;
use sha2::{Digest, Sha256};

use argon2::{
    password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Argon2,
};
use jsonwebtoken::{decode, encode, errors::ErrorKind, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::{distributions::Alphanumeric, rngs::OsRng, Rng};
use trib_ops::login::{Lockout, PasswordPool, DEFAULT_LOCKOUT, DEFAULT_MAX_FAILED_ATTEMPTS};

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
    /// Too many failed logins: the account is locked for a while.
    #[error("User account is locked due to security policy")]
    Locked,
    /// A new password breaks the password rules (400).
    #[error("{0}")]
    Rejected(String),
    /// The database failed.
    #[error("{0}")]
    Db(String),
}

/// How long a node trusts the password fingerprint it read from the database.
pub const FINGERPRINT_CACHE: Duration = Duration::from_secs(2);

/// The shortest password `changePassword` accepts (ThingsBoard's default policy).
pub const MIN_PASSWORD_LENGTH: usize = 6;

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
    /// Fingerprint of the password hash the token was issued under.
    #[serde(default)]
    cv: String,
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
    pool: PasswordPool,
    lockout: Lockout,
    /// The signing key, which also keys the password fingerprints.
    key: Vec<u8>,
    /// Fingerprints read from the database, per user (None: no such user), with when.
    fingerprints: Mutex<HashMap<String, (Option<String>, Instant)>>,
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
            pool: PasswordPool::shared(),
            lockout: Lockout::new(DEFAULT_MAX_FAILED_ATTEMPTS, DEFAULT_LOCKOUT),
            key: key.into_bytes(),
            fingerprints: Mutex::new(HashMap::new()),
        }
    }

    /// Creates the configured administrator (or resets its password to the configured one), or,
    /// with none configured and no administrator in the database, one with a random password
    /// that is logged once at WARN.
    pub async fn ensure_admin(&self, config: &ManagementConfig) -> Result<(), AuthError> {
        let now = trib_queue::now_ms();
        match &config.admin {
            Some(admin) => {
                // The configured administrator is the only one: a renamed one can no longer log in.
                for old in self.db.delete_admins_except(&admin.username).await? {
                    tracing::warn!(user = %old, "Administrator removed: another one is configured.");
                }
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
        if self.lockout.is_locked(username) {
            return Err(AuthError::Locked);
        }
        // An unknown user is verified against a dummy hash: the answer takes as long.
        let stored: Vec<String> = self.db.admin_password_hash(username).await?.into_iter().collect();
        let fingerprint = stored.first().map(|h| self.fingerprint(h));
        if self.pool.verify_any(stored, password.as_bytes().to_vec()).await.is_some() {
            self.lockout.succeeded(username);
            return Ok(self.issue(username, &fingerprint.unwrap_or_default()));
        }
        if self.lockout.failed(username) {
            tracing::warn!(user = ?username, "Administrator login locked after repeated failures.");
        }
        Err(AuthError::BadCredentials)
    }

    /// Exchanges a refresh token for new tokens (never one issued before a password change).
    pub async fn refresh(&self, refresh_token: &str) -> Result<Tokens, AuthError> {
        let claims = self.decode(refresh_token, "refresh")?;
        let Some(hash) = self.db.admin_password_hash(&claims.sub).await? else {
            return Err(AuthError::Invalid);
        };
        let fingerprint = self.fingerprint(&hash);
        if claims.cv != fingerprint {
            return Err(AuthError::Invalid);
        }
        Ok(self.issue(&claims.sub, &fingerprint))
    }

    /// Checks an access token (never one issued before a password change); returns the user.
    pub async fn verify_access(&self, token: &str) -> Result<String, AuthError> {
        let claims = self.decode(token, "access")?;
        if self.current_fingerprint(&claims.sub).await?.as_deref() != Some(claims.cv.as_str()) {
            return Err(AuthError::Invalid);
        }
        Ok(claims.sub)
    }

    /// Changes `user`'s password after checking the current one (ThingsBoard's
    /// `changePassword`); every token issued before stops working, and new ones are returned.
    pub async fn change_password(&self, user: &str, current: &str, new: &str) -> Result<Tokens, AuthError> {
        if self.lockout.is_locked(user) {
            return Err(AuthError::Locked);
        }
        let stored: Vec<String> = self.db.admin_password_hash(user).await?.into_iter().collect();
        if self.pool.verify_any(stored, current.as_bytes().to_vec()).await.is_none() {
            self.lockout.failed(user);
            return Err(AuthError::Rejected("Current password doesn't match!".into()));
        }
        if new.chars().count() < MIN_PASSWORD_LENGTH {
            return Err(AuthError::Rejected(format!(
                "Password must be at least {MIN_PASSWORD_LENGTH} characters long"
            )));
        }
        if new == current {
            return Err(AuthError::Rejected("New password should be different from existing!".into()));
        }
        let hash = hash(new);
        self.db.upsert_admin(user, &hash, trib_queue::now_ms()).await?;
        let fingerprint = self.fingerprint(&hash);
        self.fingerprints.lock().insert(user.to_string(), (Some(fingerprint.clone()), Instant::now()));
        tracing::info!(user = %user, "Administrator password changed; earlier tokens are no longer valid.");
        Ok(self.issue(user, &fingerprint))
    }

    /// The fingerprint of `user`'s password hash now (None: no such user), cached for
    /// [`FINGERPRINT_CACHE`].
    async fn current_fingerprint(&self, user: &str) -> Result<Option<String>, AuthError> {
        if let Some((fingerprint, at)) = self.fingerprints.lock().get(user) {
            if at.elapsed() < FINGERPRINT_CACHE {
                return Ok(fingerprint.clone());
            }
        }
        let fingerprint = self.db.admin_password_hash(user).await?.map(|h| self.fingerprint(&h));
        let mut cache = self.fingerprints.lock();
        if cache.len() > 1024 {
            cache.clear();
        }
        cache.insert(user.to_string(), (fingerprint.clone(), Instant::now()));
        Ok(fingerprint)
    }

    /// A keyed fingerprint of a password hash: changes with every password change, and tells
    /// nothing about the password or the hash to whoever reads a token.
    fn fingerprint(&self, password_hash: &str) -> String {
        let mut h = Sha256::new();
        h.update(&self.key);
        h.update([0u8]);
        h.update(password_hash.as_bytes());
        h.finalize().iter().take(12).map(|b| format!("{b:02x}")).collect()
    }

    fn issue(&self, user: &str, fingerprint: &str) -> Tokens {
        let now = (trib_queue::now_ms() / 1000) as u64;
        Tokens {
            token: self.sign(user, fingerprint, now, now + self.access_ttl.as_secs(), "access"),
            refresh_token: self.sign(user, fingerprint, now, now + self.refresh_ttl.as_secs(), "refresh"),
        }
    }

    fn sign(&self, user: &str, fingerprint: &str, iat: u64, exp: u64, typ: &str) -> String {
        let claims = Claims {
            sub: user.into(),
            scopes: vec![SYS_ADMIN.into()],
            iat,
            exp,
            typ: typ.into(),
            cv: fingerprint.into(),
        };
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
