//! TBMQ's MQTT client credentials, read from the management plane's database at every CONNECT.
//!
//! With `SECURITY_MQTT_BASIC_ENABLED`: the `MQTT_BASIC` records for the client id and/or user name
//! (TBMQ's lookup: `username|u`, `client_id|c`, `mixed|u|c`) are tried; the first whose password
//! matches (or that has none) lets the client in with its rules. A client id that some record
//! binds (its `clientId`) may only be used by a client that authenticates with such a record:
//! anybody else is refused before the session is touched, so the holder stays connected.
//! With `SECURITY_MQTT_SSL_ENABLED` and a verified client certificate: TBMQ's chain walk
//! (`CredentialStore::ssl`): the certificates the client presented, leaf first, are looked up by
//! CN, and the first `X_509` record found lets the client in with the rules its `authRulesMapping`
//! gives the leaf's CN; so a record for a CA admits every device certificate it signed. A chain
//! without a record, or whose record maps no rules to the leaf's CN, is refused. A client that no record concerns falls through to the built-in
//! authenticator (anonymous clients as `SECURITY_ALLOW_ANONYMOUS` says, the configured users).
//! Nothing is cached: a record created, changed or deleted on any node applies to the next CONNECT.

use std::sync::Arc;

use trib_management::CredentialStore;
use trib_ops::login::PasswordPool;

use super::{AuthDecision, AuthFuture, AuthRequest, Authenticator, BasicAuthenticator, TopicRules};

/// Which of TBMQ's providers are on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Providers {
    /// `SECURITY_MQTT_BASIC_ENABLED`: client id / user name / password records.
    pub basic: bool,
    /// `SECURITY_MQTT_SSL_ENABLED`: certificate CN records.
    pub ssl: bool,
}

/// Database credentials first, then the built-in authenticator.
pub struct StoredCredentials {
    store: CredentialStore,
    providers: Providers,
    fallback: BasicAuthenticator,
    pool: PasswordPool,
}

impl StoredCredentials {
    /// Checks `store` for the enabled `providers`, then `fallback`.
    pub fn new(store: CredentialStore, providers: Providers, fallback: BasicAuthenticator) -> StoredCredentials {
        StoredCredentials { store, providers, fallback, pool: PasswordPool::shared() }
    }

    async fn decide(&self, request: &AuthRequest) -> AuthDecision {
        let mut client_id_bound = false;
        if self.providers.basic {
            let found = match self.store.basic(&request.client_id, request.username.as_deref()).await {
                Ok(found) => found,
                Err(e) => {
                    tracing::warn!(error = %e, "CONNECT refused: the credentials could not be read.");
                    return AuthDecision::NotAuthorized;
                }
            };
            client_id_bound = found.client_id_bound;
            if !found.candidates.is_empty() {
                let hashes: Vec<String> = found.candidates.iter().filter_map(|c| c.password_hash.clone()).collect();
                let open = found.candidates.iter().find(|c| c.password_hash.is_none());
                let matched = match open {
                    Some(open) => Some(open),
                    None => {
                        let password = request.password.clone().unwrap_or_default();
                        let i = self.pool.verify_any(hashes, password).await;
                        i.and_then(|i| found.candidates.iter().filter(|c| c.password_hash.is_some()).nth(i))
                    }
                };
                return match matched {
                    Some(c) => {
                        tracing::debug!(credentials = ?c.name, "Authenticated with MQTT_BASIC credentials.");
                        AuthDecision::AllowWith(Arc::new(TopicRules::new(&c.publish, &c.subscribe)))
                    }
                    None => AuthDecision::BadCredentials,
                };
            }
        }
        if client_id_bound {
            tracing::debug!("CONNECT refused: the client id is bound to credentials it did not use.");
            return AuthDecision::NotAuthorized;
        }
        if let (true, Some(certificate)) = (self.providers.ssl, &request.certificate) {
            let chain: Vec<&str> = certificate.chain_cns().collect();
            return match self.store.ssl(&chain).await {
                Ok(Some(m)) => {
                    tracing::debug!(credentials = ?m.name, "Authenticated with X_509 credentials.");
                    AuthDecision::AllowWith(Arc::new(TopicRules::new(&m.publish, &m.subscribe)))
                }
                Ok(None) => AuthDecision::NotAuthorized,
                Err(e) => {
                    tracing::warn!(error = %e, "CONNECT refused: the credentials could not be read.");
                    AuthDecision::NotAuthorized
                }
            };
        }
        self.fallback.authenticate(request).await
    }
}

impl Authenticator for StoredCredentials {
    fn authenticate<'a>(&'a self, request: &'a AuthRequest) -> AuthFuture<'a> {
        Box::pin(self.decide(request))
    }
}

/// The broker service's authenticator from TBMQ's switches: [`StoredCredentials`] when
/// `SECURITY_MQTT_BASIC_ENABLED` or `SECURITY_MQTT_SSL_ENABLED` (both false by default, as TBMQ),
/// else the built-in one; behind the lockout of `SECURITY_MAX_FAILED_LOGIN_ATTEMPTS` (5) failures
/// for `SECURITY_FAILED_LOGIN_LOCKOUT_SEC` (300) seconds.
pub fn from_lookup(
    lookup: &dyn Fn(&str) -> Option<String>,
    config: &crate::BrokerConfig,
    store: CredentialStore,
) -> Result<Arc<dyn Authenticator>, trib_queue::config::ConfigError> {
    use trib_ops::login::{Lockout, DEFAULT_LOCKOUT, DEFAULT_MAX_FAILED_ATTEMPTS};
    let providers = Providers {
        basic: flag(lookup, "SECURITY_MQTT_BASIC_ENABLED")?,
        ssl: flag(lookup, "SECURITY_MQTT_SSL_ENABLED")?,
    };
    let attempts = number(lookup, "SECURITY_MAX_FAILED_LOGIN_ATTEMPTS", u64::from(DEFAULT_MAX_FAILED_ATTEMPTS))?;
    let lockout = number(lookup, "SECURITY_FAILED_LOGIN_LOCKOUT_SEC", DEFAULT_LOCKOUT.as_secs())?;
    let basic = BasicAuthenticator::new(config.security.allow_anonymous, &config.security.credentials);
    let inner: Arc<dyn Authenticator> = if providers.basic || providers.ssl {
        Arc::new(StoredCredentials::new(store, providers, basic))
    } else {
        Arc::new(basic)
    };
    let lockout = Lockout::new(u32::try_from(attempts).unwrap_or(u32::MAX), std::time::Duration::from_secs(lockout));
    Ok(Arc::new(super::Locking::new(inner, Arc::new(lockout))))
}

fn flag(lookup: &dyn Fn(&str) -> Option<String>, name: &str) -> Result<bool, trib_queue::config::ConfigError> {
    parse(lookup, name, false)
}

fn number(
    lookup: &dyn Fn(&str) -> Option<String>,
    name: &str,
    default: u64,
) -> Result<u64, trib_queue::config::ConfigError> {
    parse(lookup, name, default)
}

fn parse<T: std::str::FromStr>(
    lookup: &dyn Fn(&str) -> Option<String>,
    name: &str,
    default: T,
) -> Result<T, trib_queue::config::ConfigError>
where
    T::Err: std::fmt::Display,
{
    match lookup(name).filter(|v| !v.trim().is_empty()) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|e: T::Err| trib_queue::config::ConfigError {
            name: name.into(),
            value: v.clone(),
            reason: e.to_string(),
        }),
    }
}
