//! TBMQ's MQTT client credentials: the business rules of `/api/mqtt/client/credentials` and the
//! lookups the broker makes at every CONNECT ([`CredentialStore`]).
//!
//! Two types, as TBMQ: `MQTT_BASIC` (client id and/or user name, an optional password stored as an
//! argon2 hash, publish and subscribe rules) and `X_509` (a certificate CN, exact or a regex, with
//! rules per CN regex). The `credentialsId` that makes credentials unique is computed from the
//! value as TBMQ does (`username|u`, `client_id|c`, `mixed|u|c`, `ssl|cn`). Passwords never leave
//! this module in clear or hashed: answers carry `password: null` and
//! `additionalInfo.mqttBasicPasswordIsSet`. The REST types are in `api/credentials.rs`, the table in
//! `db/credentials.rs`; nothing here caches, so a change is seen by the next CONNECT on every node.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use trib_ops::login::PasswordPool;
use uuid::Uuid;

use crate::db::{Db, DbError};
use crate::model::{Page, PageLink};
use crate::service::{ServiceError, ServiceResult};

/// `additionalInfo` key saying whether a password is set (TBMQ's `mqttBasicPasswordIsSet`).
pub const PASSWORD_IS_SET: &str = "mqttBasicPasswordIsSet";
/// Sort properties of the list (API names).
pub const SORT_PROPERTIES: &[&str] = &["createdTime", "name", "clientType", "credentialsType"];
/// TBMQ's placeholder for the certificate CN in X_509 rules.
const CN_PLACEHOLDER: &str = "${cn}";

/// `DEVICE` or `APPLICATION` (TBMQ's `ClientType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ClientType {
    /// A device (the default).
    Device,
    /// An application client.
    Application,
}

/// `MQTT_BASIC` or `X_509` (TBMQ's `ClientCredentialsType`, without SCRAM).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CredentialsType {
    /// Client id and/or user name and password.
    #[serde(rename = "MQTT_BASIC")]
    MqttBasic,
    /// A client certificate's CN.
    #[serde(rename = "X_509")]
    X509,
}

/// Publish and subscribe topic regexes (TBMQ's `PubSubAuthorizationRules`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthRules {
    /// A topic may be published to when one of these matches it whole.
    #[serde(default, alias = "pub")]
    pub pub_auth_rule_patterns: Option<Vec<String>>,
    /// A filter may be subscribed to when one of these matches it whole.
    #[serde(default, alias = "sub")]
    pub sub_auth_rule_patterns: Option<Vec<String>>,
}

/// The `credentialsValue` of `MQTT_BASIC` (TBMQ's `BasicMqttCredentials`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BasicValue {
    /// The client id the credentials are bound to.
    #[serde(default)]
    pub client_id: Option<String>,
    /// The user name.
    #[serde(default)]
    pub user_name: Option<String>,
    /// In a request: the password in clear; stored: its argon2 hash; answered: always null.
    #[serde(default)]
    pub password: Option<String>,
    /// The rules.
    #[serde(default)]
    pub auth_rules: Option<AuthRules>,
}

/// The `credentialsValue` of `X_509` (TBMQ's `SslMqttCredentials`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SslValue {
    /// The CN, or a regex for it when `certCnIsRegex`.
    #[serde(default)]
    pub cert_cn_pattern: Option<String>,
    /// Whether `certCnPattern` is a regex (searched in the CN).
    #[serde(default)]
    pub cert_cn_is_regex: bool,
    /// CN regex -> rules; every entry whose regex is found in the CN applies.
    #[serde(default)]
    pub auth_rules_mapping: Option<serde_json::Map<String, Value>>,
}

/// Stored credentials (TBMQ's `MqttClientCredentials`); `credentials_value` holds the hash.
#[derive(Debug, Clone, PartialEq)]
pub struct MqttClientCredentials {
    /// Id.
    pub id: Uuid,
    /// Created at (ms).
    pub created_time: i64,
    /// Unique name.
    pub name: String,
    /// Device or application.
    pub client_type: ClientType,
    /// Basic or X.509.
    pub credentials_type: CredentialsType,
    /// Unique key computed from the value.
    pub credentials_id: String,
    /// JSON text; for basic credentials the password is an argon2 hash.
    pub credentials_value: String,
    /// The client id basic credentials bind (ours: a column so that the broker finds it).
    pub client_id: Option<String>,
    /// Free JSON.
    pub additional_info: Option<Value>,
}

/// A create or update request.
#[derive(Debug, Clone, PartialEq)]
pub struct CredentialsInput {
    /// Set to update.
    pub id: Option<Uuid>,
    /// Name.
    pub name: Option<String>,
    /// Defaults to `DEVICE`.
    pub client_type: Option<ClientType>,
    /// Required.
    pub credentials_type: Option<CredentialsType>,
    /// JSON text of [`BasicValue`] or [`SslValue`].
    pub credentials_value: Option<String>,
    /// Free JSON.
    pub additional_info: Option<Value>,
}

/// The management side of MQTT client credentials.
#[derive(Debug, Clone)]
pub struct Credentials {
    db: Db,
    pool: PasswordPool,
}

impl Credentials {
    /// Credentials in `db`, passwords hashed on `pool`.
    pub fn new(db: Db, pool: PasswordPool) -> Credentials {
        Credentials { db, pool }
    }

    /// Creates (no id) or updates credentials, as TBMQ's `saveMqttClientCredentials`: an update
    /// keeps the stored password (change it with [`Credentials::change_password`]).
    pub async fn save(&self, input: CredentialsInput) -> ServiceResult<MqttClientCredentials> {
        let credentials_type =
            input.credentials_type.ok_or_else(|| invalid("MQTT Client credentials type should be specified"))?;
        let text = input.credentials_value.as_deref().unwrap_or("null");
        let current = match input.id {
            Some(id) => Some(
                self.db
                    .mqtt_credentials(id)
                    .await?
                    .ok_or_else(|| invalid("Unable to update non-existent MQTT Client credentials!"))?,
            ),
            None => None,
        };
        let (credentials_id, client_id, value) = match credentials_type {
            CredentialsType::MqttBasic => {
                let mut basic = parse_basic(text)?;
                let id = basic_credentials_id(&basic)?;
                validate_rules(basic.auth_rules.as_ref(), None)?;
                basic.password = match &current {
                    Some(current) => stored_password(current),
                    None => match basic.password.take().filter(|p| !p.is_empty()) {
                        Some(p) => Some(self.pool.hash(p).await.map_err(|e| invalid(e.to_string()))?),
                        None => None,
                    },
                };
                let client_id = basic.client_id.clone().filter(|c| !c.is_empty());
                (id, client_id, to_json(&basic))
            }
            CredentialsType::X509 => {
                let ssl = parse_ssl(text)?;
                (validate_ssl(&ssl)?, None, to_json(&ssl))
            }
        };
        let name = input.name.ok_or_else(|| invalid("MQTT Client credentials name should be specified!"))?;
        let mut additional_info = input.additional_info.filter(|v| !v.is_null());
        if let Some(Value::Object(map)) = &mut additional_info {
            map.remove(PASSWORD_IS_SET);
        }
        let record = MqttClientCredentials {
            id: current.as_ref().map_or_else(Uuid::new_v4, |c| c.id),
            created_time: current.as_ref().map_or_else(trib_queue::now_ms, |c| c.created_time),
            name,
            client_type: input.client_type.unwrap_or(ClientType::Device),
            credentials_type,
            credentials_id,
            credentials_value: value,
            client_id,
            additional_info,
        };
        self.check_unique(&record, current.is_some()).await?;
        match self.db.save_mqtt_credentials(&record, current.is_none()).await {
            Ok(()) => Ok(record),
            Err(e) if e.is_unique_violation() => Err(invalid("Specified credentials are already registered!")),
            Err(e) => Err(e.into()),
        }
    }

    /// One credentials record (404 when missing).
    pub async fn get(&self, id: Uuid) -> ServiceResult<MqttClientCredentials> {
        self.db.mqtt_credentials(id).await?.ok_or(ServiceError::NotFound)
    }

    /// A page; `textSearch` is a case-insensitive "contains" on the name.
    pub async fn list(&self, link: &PageLink) -> ServiceResult<Page<MqttClientCredentials>> {
        Ok(self.db.mqtt_credentials_page(link).await?)
    }

    /// Deletes credentials (404 when missing); connections they authenticated stay connected,
    /// the next CONNECT with them is refused.
    pub async fn delete(&self, id: Uuid) -> ServiceResult<()> {
        if self.db.delete_mqtt_credentials(id).await? {
            Ok(())
        } else {
            Err(ServiceError::NotFound)
        }
    }

    /// TBMQ's `changeMqttBasicCredentialsPassword`: the current password must match (both empty
    /// counts as matching), the new one must differ; an empty new password removes it.
    pub async fn change_password(
        &self,
        id: Uuid,
        current_password: Option<String>,
        new_password: Option<String>,
    ) -> ServiceResult<MqttClientCredentials> {
        let mut record = self.get(id).await?;
        if record.credentials_type != CredentialsType::MqttBasic {
            return Err(invalid("MQTT credentials should be of 'MQTT_BASIC' type!"));
        }
        let mut basic = parse_basic(&record.credentials_value)?;
        let current = current_password.filter(|p| !p.is_empty());
        let new = new_password.filter(|p| !p.is_empty());
        let stored = basic.password.clone();
        let matches = |clear: Option<String>| async {
            match (clear, stored.clone()) {
                (None, None) => true,
                (Some(clear), Some(hash)) => self.pool.verify_any(vec![hash], clear.into_bytes()).await.is_some(),
                _ => false,
            }
        };
        if !matches(current).await {
            return Err(invalid("Current password doesn't match!"));
        }
        if matches(new.clone()).await {
            return Err(invalid("New password should be different from existing!"));
        }
        basic.password = match new {
            Some(p) => Some(self.pool.hash(p).await.map_err(|e| invalid(e.to_string()))?),
            None => None,
        };
        record.credentials_value = to_json(&basic);
        self.db.save_mqtt_credentials(&record, false).await?;
        Ok(record)
    }

    async fn check_unique(&self, record: &MqttClientCredentials, update: bool) -> ServiceResult<()> {
        let other = |found: Option<MqttClientCredentials>| found.filter(|f| f.id != record.id).is_some();
        if other(self.db.mqtt_credentials_by_credentials_id(&record.credentials_id).await?) {
            return Err(invalid(if update {
                "New MQTT Client credentials are already created!"
            } else {
                "Such MQTT Client credentials are already created!"
            }));
        }
        if other(self.db.mqtt_credentials_by_name(&record.name).await?) {
            return Err(invalid("MQTT Client credentials with such name are already created!"));
        }
        Ok(())
    }
}

/// What an answer shows: the value without its password, and whether one is set.
pub fn sanitized(record: &MqttClientCredentials) -> (String, Option<Value>) {
    if record.credentials_type != CredentialsType::MqttBasic {
        return (record.credentials_value.clone(), record.additional_info.clone());
    }
    let Ok(mut basic) = parse_basic(&record.credentials_value) else {
        return ("{}".to_owned(), record.additional_info.clone());
    };
    let is_set = basic.password.take().is_some();
    let mut info = match record.additional_info.clone() {
        Some(Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    info.insert(PASSWORD_IS_SET.to_owned(), Value::Bool(is_set));
    (to_json(&basic), Some(Value::Object(info)))
}

/// What the broker needs of one `MQTT_BASIC` record at CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasicMatch {
    /// The credentials' name (for logs).
    pub name: String,
    /// The argon2 hash; `None` = any password (TBMQ: credentials without a password).
    pub password_hash: Option<String>,
    /// Publish regexes (empty = nothing allowed).
    pub publish: Vec<String>,
    /// Subscribe regexes (empty = nothing allowed).
    pub subscribe: Vec<String>,
}

/// The `MQTT_BASIC` records a CONNECT may authenticate with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BasicCandidates {
    /// Records matching the client id and/or user name as TBMQ looks them up (`username|u`,
    /// `client_id|c`, `mixed|u|c`); when the client id is bound, only records that bind it.
    pub candidates: Vec<BasicMatch>,
    /// Whether some record binds the client id: then only those records may use it.
    pub client_id_bound: bool,
}

/// Rules of the `X_509` record that matched a certificate CN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SslMatch {
    /// The credentials' name.
    pub name: String,
    /// Publish regexes of every mapping entry matching the CN, `${cn}` replaced.
    pub publish: Vec<String>,
    /// Subscribe regexes, likewise.
    pub subscribe: Vec<String>,
}

/// A lookup failure (the database).
#[derive(Debug, thiserror::Error)]
#[error("credentials lookup failed: {0}")]
pub struct StoreError(String);

impl From<DbError> for StoreError {
    fn from(e: DbError) -> Self {
        StoreError(e.to_string())
    }
}

/// The broker's read side: one database query per CONNECT, no cache, so a change made through
/// any node's REST API applies to the next CONNECT on every node.
#[derive(Debug, Clone)]
pub struct CredentialStore {
    db: Db,
}

impl CredentialStore {
    pub(crate) fn new(db: Db) -> CredentialStore {
        CredentialStore { db }
    }

    /// The `MQTT_BASIC` records for a CONNECT with `client_id` and `user_name`.
    pub async fn basic(&self, client_id: &str, user_name: Option<&str>) -> Result<BasicCandidates, StoreError> {
        let user_name = user_name.filter(|u| !u.is_empty());
        let mut ids = vec![format!("client_id|{client_id}")];
        if let Some(u) = user_name {
            ids.push(format!("username|{u}"));
            ids.push(format!("mixed|{u}|{client_id}"));
        }
        let rows = self.db.mqtt_basic_for_connect(&ids, client_id).await?;
        let client_id_bound = rows.iter().any(|r| r.client_id.as_deref() == Some(client_id));
        let candidates = rows
            .iter()
            .filter(|r| ids.contains(&r.credentials_id))
            .filter(|r| !client_id_bound || r.client_id.as_deref() == Some(client_id))
            .filter_map(|r| {
                let basic = parse_basic(&r.credentials_value).ok()?;
                let rules = basic.auth_rules.unwrap_or_default();
                Some(BasicMatch {
                    name: r.name.clone(),
                    password_hash: basic.password,
                    publish: rules.pub_auth_rule_patterns.unwrap_or_default(),
                    subscribe: rules.sub_auth_rule_patterns.unwrap_or_default(),
                })
            })
            .collect();
        Ok(BasicCandidates { candidates, client_id_bound })
    }

    /// The `X_509` record for a client certificate chain, given as its CNs leaf first, as TBMQ's
    /// `SslMqttClientAuthProvider` walks it: for each certificate in turn, regex records whose
    /// pattern is found anywhere in its CN (Java's `find`), then the record for exactly its CN;
    /// the first record found decides. Its rules are the `authRulesMapping` entries whose regex
    /// is found in the leaf's CN, with `${cn}` the leaf's CN, so that one record for a CA admits
    /// every device it signed, each to its own topics. `None` when no certificate of the chain
    /// has a record, or when the deciding record has no mapping entry for the leaf (TBMQ refuses
    /// then too; it does not walk on).
    ///
    /// TBMQ's `SslMqttClientAuthProvider.authWithSSLCredentials` walks `getPeerCertificates()`:
    /// the chain as the client sent it, leaf first, so a CA of the trust store counts only when
    /// the client sent it too; the rules come from `DefaultAuthorizationRuleService
    /// .parseSslAuthorizationRule` with the leaf's CN. It also checks each walked certificate's
    /// dates; here rustls has checked those of the verified path, and the broker passes only the
    /// issuers that chain to a trusted CA (`tls/chain.rs`).
    pub async fn ssl(&self, chain_cns: &[&str]) -> Result<Option<SslMatch>, StoreError> {
        let Some(leaf) = chain_cns.first() else {
            return Ok(None);
        };
        let rows = self.db.mqtt_credentials_of_type(CredentialsType::X509).await?;
        let parsed: Vec<(&MqttClientCredentials, SslValue)> =
            rows.iter().filter_map(|r| Some((r, parse_ssl(&r.credentials_value).ok()?))).collect();
        let found = chain_cns.iter().find_map(|cn| {
            parsed
                .iter()
                .find(|(_, v)| v.cert_cn_is_regex && v.cert_cn_pattern.as_deref().is_some_and(|p| regex_finds(p, cn)))
                .or_else(|| parsed.iter().find(|(r, _)| r.credentials_id == format!("ssl|{cn}")))
        });
        Ok(found.and_then(|(r, v)| ssl_rules(&r.name, v, leaf)))
    }
}

fn ssl_rules(name: &str, value: &SslValue, cn: &str) -> Option<SslMatch> {
    let quoted = regex::escape(cn);
    let mut found = SslMatch { name: name.to_owned(), publish: Vec::new(), subscribe: Vec::new() };
    let mut any = false;
    for (key, rules) in value.auth_rules_mapping.iter().flatten() {
        if !regex_finds(key, cn) {
            continue;
        }
        any = true;
        let rules: AuthRules = serde_json::from_value(rules.clone()).unwrap_or_default();
        let fill = |list: Option<Vec<String>>| -> Vec<String> {
            list.unwrap_or_default().into_iter().map(|p| p.replace(CN_PLACEHOLDER, &quoted)).collect()
        };
        found.publish.extend(fill(rules.pub_auth_rule_patterns));
        found.subscribe.extend(fill(rules.sub_auth_rule_patterns));
    }
    any.then_some(found)
}

fn regex_finds(pattern: &str, text: &str) -> bool {
    regex::Regex::new(pattern).is_ok_and(|r| r.is_match(text))
}

fn invalid(message: impl Into<String>) -> ServiceError {
    ServiceError::InvalidArgument(message.into())
}

fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("credentials values are plain JSON")
}

fn parse_basic(text: &str) -> ServiceResult<BasicValue> {
    parse_value(text)
}

fn parse_ssl(text: &str) -> ServiceResult<SslValue> {
    parse_value(text)
}

/// TBMQ's `getMqttCredentials`: the value's JSON text, refused with TBMQ's message.
fn parse_value<T: serde::de::DeserializeOwned>(text: &str) -> ServiceResult<T> {
    match serde_json::from_str::<Option<T>>(text) {
        Ok(Some(v)) => Ok(v),
        Ok(None) => Err(invalid("Could not parse client credentials! credentialsValue is missing")),
        Err(e) => Err(invalid(format!("Could not parse client credentials! {e}"))),
    }
}

fn stored_password(current: &MqttClientCredentials) -> Option<String> {
    (current.credentials_type == CredentialsType::MqttBasic)
        .then(|| parse_basic(&current.credentials_value).ok()?.password)
        .flatten()
}

/// TBMQ's `credentialsId` of basic credentials.
fn basic_credentials_id(basic: &BasicValue) -> ServiceResult<String> {
    let client_id = basic.client_id.as_deref().filter(|c| !c.is_empty());
    let user_name = basic.user_name.as_deref().filter(|u| !u.is_empty());
    match (client_id, user_name) {
        (None, None) => Err(invalid("Both mqtt client id and user name are empty!")),
        (None, Some(u)) => Ok(format!("username|{u}")),
        (Some(c), None) => Ok(format!("client_id|{c}")),
        (Some(c), Some(u)) => Ok(format!("mixed|{u}|{c}")),
    }
}

/// TBMQ's `AuthRulesUtil.validateAndCompileAuthRules`; `cn` substitutes `${cn}` (X_509).
fn validate_rules(rules: Option<&AuthRules>, cn: Option<&str>) -> ServiceResult<()> {
    let rules = rules.ok_or_else(|| invalid("AuthRules are null!"))?;
    let compiles = |list: &Option<Vec<String>>| {
        list.iter().flatten().all(|p| {
            let p = cn.map_or_else(|| p.clone(), |cn| p.replace(CN_PLACEHOLDER, &regex::escape(cn)));
            regex::Regex::new(&p).is_ok()
        })
    };
    if !compiles(&rules.pub_auth_rule_patterns) {
        return Err(invalid("Publish auth rule patterns should be a valid regexes!"));
    }
    if !compiles(&rules.sub_auth_rule_patterns) {
        return Err(invalid("Subscribe auth rule patterns should be a valid regexes!"));
    }
    Ok(())
}

/// TBMQ's `preprocessSslMqttCredentials`: the `credentialsId`.
fn validate_ssl(ssl: &SslValue) -> ServiceResult<String> {
    let pattern = ssl
        .cert_cn_pattern
        .as_deref()
        .filter(|p| !p.is_empty())
        .ok_or_else(|| invalid("Certificate common name pattern should be specified!"))?;
    if ssl.cert_cn_is_regex && regex::Regex::new(pattern).is_err() {
        return Err(invalid(format!("Certificate common name pattern [{pattern}] must be a valid regex")));
    }
    let mapping = ssl
        .auth_rules_mapping
        .as_ref()
        .filter(|m| !m.is_empty())
        .ok_or_else(|| invalid("Authorization rules mapping should be specified!"))?;
    for (key, rules) in mapping {
        if regex::Regex::new(key).is_err() {
            return Err(invalid(format!("Certificate matcher regex [{key}] must be a valid regex")));
        }
        let rules: Option<AuthRules> = serde_json::from_value(rules.clone())
            .map_err(|e| invalid(format!("Could not parse client credentials! {e}")))?;
        validate_rules(rules.as_ref(), Some("tbmq.io"))?;
    }
    Ok(format!("ssl|{pattern}"))
}
