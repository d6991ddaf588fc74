//! Broker configuration: the serde shape (TBMQ key names and defaults) and its checked form.
//!
//! `BrokerConfig` is what a config file deserializes into; `validate()` turns it into `Settings`,
//! the only form the running broker reads. Environment-variable overrides (TBMQ's names) are in
//! `config::env`.

pub mod env;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use std::sync::Arc;

use serde::Deserialize;

use crate::acl::{Acl, AclError};
use crate::auth::Credential;

#[cfg(test)]
mod tests;

/// The whole broker configuration.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct BrokerConfig {
    /// Network listeners (`listener.*`).
    pub listener: ListenersConfig,
    /// MQTT protocol limits and session behaviour (`mqtt.*`).
    pub mqtt: MqttConfig,
    /// Client authentication (`security.*`).
    pub security: SecurityConfig,
}

/// The listeners.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ListenersConfig {
    /// Plain TCP (`listener.tcp`).
    pub tcp: TcpListenerConfig,
    /// TLS over TCP (`listener.ssl`).
    pub ssl: SslListenerConfig,
    /// MQTT over WebSocket (`listener.ws`).
    pub ws: WsListenerConfig,
}

/// The plain TCP listener.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct TcpListenerConfig {
    /// Whether to listen (LISTENER_TCP_ENABLED, default true).
    pub enabled: bool,
    /// Address to bind (LISTENER_TCP_BIND_ADDRESS, default 0.0.0.0).
    pub bind_address: String,
    /// Port to bind; 0 picks a free port (LISTENER_TCP_BIND_PORT, default 1883).
    pub bind_port: u16,
    /// Largest packet accepted from a client, in bytes (TCP_NETTY_MAX_PAYLOAD_SIZE, default 65536).
    pub max_payload_size: usize,
}

impl Default for TcpListenerConfig {
    fn default() -> Self {
        TcpListenerConfig {
            enabled: true,
            bind_address: default_bind_address(),
            bind_port: default_tcp_port(),
            max_payload_size: default_max_payload_size(),
        }
    }
}

/// The TLS listener (PEM files).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct SslListenerConfig {
    /// Whether to listen (LISTENER_SSL_ENABLED, default false).
    pub enabled: bool,
    /// Address to bind (LISTENER_SSL_BIND_ADDRESS, default 0.0.0.0).
    pub bind_address: String,
    /// Port to bind; 0 picks a free port (LISTENER_SSL_BIND_PORT, default 8883).
    pub bind_port: u16,
    /// Largest packet accepted from a client, in bytes (SSL_NETTY_MAX_PAYLOAD_SIZE, default 65536).
    pub max_payload_size: usize,
    /// PEM file with the server certificate chain (LISTENER_SSL_PEM_CERT).
    pub cert_file: Option<PathBuf>,
    /// PEM file with the server private key (LISTENER_SSL_PEM_KEY).
    pub key_file: Option<PathBuf>,
    /// Whether clients are asked for a certificate (LISTENER_SSL_CLIENT_AUTH, default none).
    pub client_auth: ClientAuth,
    /// PEM file with the CA certificates that client certificates must chain to
    /// (LISTENER_SSL_PEM_CLIENT_CA); needed unless `client_auth` is `none`.
    pub client_ca_file: Option<PathBuf>,
}

/// Client certificates on the TLS listener.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// Not asked for.
    #[default]
    None,
    /// Asked for; a client without one authenticates with its user name and password (or as
    /// anonymous). A certificate that is presented must be valid.
    Optional,
    /// The TLS handshake fails without a valid certificate.
    Required,
}

impl std::str::FromStr for ClientAuth {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" | "" => Ok(ClientAuth::None),
            "optional" | "want" => Ok(ClientAuth::Optional),
            "required" | "need" => Ok(ClientAuth::Required),
            _ => Err(()),
        }
    }
}

/// The WebSocket listener (MQTT in binary WebSocket messages, HTTP upgrade on any path).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct WsListenerConfig {
    /// Whether to listen (LISTENER_WS_ENABLED, default false; TBMQ's is true).
    pub enabled: bool,
    /// Address to bind (LISTENER_WS_BIND_ADDRESS, default 0.0.0.0).
    pub bind_address: String,
    /// Port to bind; 0 picks a free port (LISTENER_WS_BIND_PORT, default 8084).
    pub bind_port: u16,
    /// Largest MQTT packet accepted from a client, in bytes (WS_NETTY_MAX_PAYLOAD_SIZE, default 65536).
    pub max_payload_size: usize,
    /// Comma-separated WebSocket subprotocols the listener agrees to, first offered match wins
    /// (WS_NETTY_SUB_PROTOCOLS, default `mqttv3.1,mqtt`).
    pub sub_protocols: String,
}

impl Default for WsListenerConfig {
    fn default() -> Self {
        WsListenerConfig {
            enabled: false,
            bind_address: default_bind_address(),
            bind_port: 8084,
            max_payload_size: default_max_payload_size(),
            sub_protocols: "mqttv3.1,mqtt".to_owned(),
        }
    }
}

impl Default for SslListenerConfig {
    fn default() -> Self {
        SslListenerConfig {
            enabled: false,
            bind_address: default_bind_address(),
            bind_port: default_ssl_port(),
            max_payload_size: default_max_payload_size(),
            cert_file: None,
            key_file: None,
            client_auth: ClientAuth::None,
            client_ca_file: None,
        }
    }
}

/// MQTT limits and session behaviour.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct MqttConfig {
    /// Outgoing QoS 1/2 messages in flight per client; also the receive maximum announced to
    /// MQTT 5 clients (MQTT_MAX_IN_FLIGHT_MSGS, default 1000).
    pub max_in_flight_msgs: u16,
    /// Outgoing in-flight window for MQTT 3.x clients, which cannot announce one
    /// (MQTT_FLOW_CONTROL_MQTT_3X_RECEIVE_MAX, default 65535).
    pub flow_control_mqtt_3x_receive_max: u16,
    /// Largest keep alive a client may use, in seconds; MQTT 5 clients asking for more (or 0) are
    /// told this value (MQTT_KEEP_ALIVE_MAX_KEEP_ALIVE_SEC, default 600).
    pub max_keep_alive_sec: u16,
    /// Topic aliases an MQTT 5 client may use towards the broker (MQTT_TOPIC_ALIAS_MAX, default 10);
    /// 0 also turns off aliases from the broker to clients.
    pub topic_alias_max: u16,
    /// Topics longer than this get an alias towards MQTT 5 clients that accept aliases
    /// (MQTT_TOPIC_MIN_LENGTH_FOR_ALIAS_REPLACEMENT, default 50).
    pub min_length_for_alias_replacement: usize,
    /// Messages queued or in flight per session, connected or not; beyond it the drop policy of
    /// the README applies (MQTT_PERSISTENT_SESSION_DEVICE_PERSISTED_MESSAGES_LIMIT, default 10000).
    pub max_queued_messages: usize,
    /// Bytes queued or in flight per session (MQTT_SESSION_QUEUE_MAX_BYTES, ours, default 16 MiB).
    pub max_queued_bytes: usize,
    /// Bytes queued or in flight for all sessions together (MQTT_SESSIONS_MEMORY_BUDGET_BYTES,
    /// ours, default 256 MiB).
    pub sessions_memory_budget_bytes: usize,
    /// Cap on the session expiry interval, in seconds; MQTT 3.x persistent sessions get this value
    /// (MQTT_CLIENT_SESSION_EXPIRY_MAX_EXPIRY_INTERVAL, default 604800).
    pub max_session_expiry_sec: u32,
    /// Longest client id accepted from MQTT 3.1 clients (MQTT_3_1_MAX_CLIENT_ID_LENGTH, default 1024).
    pub max_client_id_length_v31: usize,
    /// Time a new connection has to send CONNECT, in milliseconds (MQTT_CONNECT_TIMEOUT_MS, default 10000).
    pub connect_timeout_ms: u64,
    /// Most simultaneous client connections; 0 means no limit (MQTT_SESSIONS_LIMIT, default 0).
    pub max_connections: usize,
    /// Whether retained messages are stored and delivered (MQTT_RETAIN_AVAILABLE, default true).
    pub retain_available: bool,
    /// Per-client limit on incoming PUBLISH packets.
    pub incoming_rate_limit: RateLimitConfig,
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            max_in_flight_msgs: default_max_in_flight(),
            flow_control_mqtt_3x_receive_max: default_mqtt3x_receive_max(),
            max_keep_alive_sec: default_max_keep_alive(),
            topic_alias_max: default_topic_alias_max(),
            min_length_for_alias_replacement: 50,
            max_queued_messages: default_max_queued(),
            max_queued_bytes: 16 << 20,
            sessions_memory_budget_bytes: 256 << 20,
            max_session_expiry_sec: default_max_session_expiry(),
            max_client_id_length_v31: default_max_client_id_v31(),
            connect_timeout_ms: default_connect_timeout_ms(),
            max_connections: 0,
            retain_available: true,
            incoming_rate_limit: RateLimitConfig::default(),
        }
    }
}

/// A token-bucket limit in TBMQ's format.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// Whether the limit applies (MQTT_INCOMING_RATE_LIMITS_ENABLED, default false).
    pub enabled: bool,
    /// Comma-separated `<messages>:<seconds>` buckets, all of which must have room
    /// (MQTT_INCOMING_RATE_LIMITS_CONFIG, default `10:1,300:60`).
    pub config: String,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig { enabled: false, config: default_rate_limit() }
    }
}

/// Authentication.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// Whether clients without a user name are let in (SECURITY_ALLOW_ANONYMOUS, default true).
    pub allow_anonymous: bool,
    /// Known users with argon2 PHC password hashes (make one with `auth::hash_password`).
    pub credentials: Vec<Credential>,
    /// Topic authorization rules, inline (SECURITY_MQTT_ACL; syntax in the `acl` module). With no
    /// rules here nor in `acl_file`, every client may publish and subscribe to every topic.
    pub acl: String,
    /// A file of topic authorization rules, added to `acl` (SECURITY_MQTT_ACL_FILE).
    pub acl_file: Option<PathBuf>,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig { allow_anonymous: true, credentials: Vec::new(), acl: String::new(), acl_file: None }
    }
}

/// A configuration the broker refuses.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// A bind address that does not parse.
    #[error("invalid bind address {0:?}")]
    BindAddress(String),
    /// A value out of its range.
    #[error("{key} must be {expected}")]
    OutOfRange {
        /// The config key.
        key: &'static str,
        /// The allowed range, in words.
        expected: &'static str,
    },
    /// A rate limit that is not `<messages>:<seconds>[,...]`.
    #[error("invalid rate limit {0:?}: expected <messages>:<seconds>[,...]")]
    RateLimit(String),
    /// The TLS listener is enabled without certificate and key files.
    #[error("listener.ssl needs cert_file and key_file")]
    MissingTlsFiles,
    /// Client certificates are asked for without a CA file to verify them.
    #[error("listener.ssl.client_auth needs client_ca_file")]
    MissingClientCa,
    /// The WebSocket listener has no subprotocol to agree to.
    #[error("listener.ws.sub_protocols must name at least one subprotocol")]
    NoSubProtocols,
    /// The ACL file could not be read or has a rule that does not parse.
    #[error("acl file {path}: {message}")]
    AclFile {
        /// The file.
        path: PathBuf,
        /// The cause.
        message: String,
    },
    /// An ACL rule that does not parse.
    #[error(transparent)]
    Acl(#[from] AclError),
    /// An environment variable whose value does not parse.
    #[error("environment variable {name} has an invalid value {value:?}")]
    Env {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
    },
}

/// The checked configuration the running broker uses.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub tcp: Option<Listener>,
    pub ssl: Option<SslSettings>,
    pub ws: Option<WsSettings>,
    pub max_in_flight: u16,
    pub mqtt3x_receive_max: u16,
    pub max_keep_alive: u16,
    pub topic_alias_max: u16,
    pub alias_min_length: usize,
    pub max_queued: usize,
    pub max_queued_bytes: usize,
    pub memory_budget: usize,
    pub max_session_expiry: u32,
    pub max_client_id_v31: usize,
    pub connect_timeout: Duration,
    pub max_connections: usize,
    pub retain_available: bool,
    pub incoming_rate: Option<Vec<(u32, Duration)>>,
    pub allow_anonymous: bool,
    pub credentials: Vec<Credential>,
    pub acl: Option<Arc<Acl>>,
}

/// The checked TLS listener.
#[derive(Debug, Clone)]
pub(crate) struct SslSettings {
    pub listener: Listener,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_auth: ClientAuth,
    pub client_ca: Option<PathBuf>,
}

/// The checked WebSocket listener.
#[derive(Debug, Clone)]
pub(crate) struct WsSettings {
    pub listener: Listener,
    pub sub_protocols: Vec<String>,
}

/// A checked listener.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Listener {
    pub addr: SocketAddr,
    pub max_packet_size: usize,
}

impl BrokerConfig {
    /// Checks the configuration and returns its runtime form.
    pub(crate) fn validate(&self) -> Result<Settings, ConfigError> {
        let l = &self.listener;
        let tcp = if l.tcp.enabled {
            Some(listener(&l.tcp.bind_address, l.tcp.bind_port, l.tcp.max_payload_size)?)
        } else {
            None
        };
        let ssl = if l.ssl.enabled {
            let (Some(cert), Some(key)) = (&l.ssl.cert_file, &l.ssl.key_file) else {
                return Err(ConfigError::MissingTlsFiles);
            };
            if l.ssl.client_auth != ClientAuth::None && l.ssl.client_ca_file.is_none() {
                return Err(ConfigError::MissingClientCa);
            }
            Some(SslSettings {
                listener: listener(&l.ssl.bind_address, l.ssl.bind_port, l.ssl.max_payload_size)?,
                cert: cert.clone(),
                key: key.clone(),
                client_auth: l.ssl.client_auth,
                client_ca: l.ssl.client_ca_file.clone(),
            })
        } else {
            None
        };
        let ws = if l.ws.enabled {
            let sub_protocols: Vec<String> =
                l.ws.sub_protocols.split(',').map(str::trim).filter(|p| !p.is_empty()).map(str::to_owned).collect();
            if sub_protocols.is_empty() {
                return Err(ConfigError::NoSubProtocols);
            }
            let lst = listener(&l.ws.bind_address, l.ws.bind_port, l.ws.max_payload_size)?;
            Some(WsSettings { listener: lst, sub_protocols })
        } else {
            None
        };
        let m = &self.mqtt;
        if m.max_in_flight_msgs == 0 || m.max_in_flight_msgs == u16::MAX {
            return Err(ConfigError::OutOfRange { key: "mqtt.max_in_flight_msgs", expected: "between 1 and 65534" });
        }
        if m.flow_control_mqtt_3x_receive_max == 0 {
            return Err(ConfigError::OutOfRange {
                key: "mqtt.flow_control_mqtt_3x_receive_max",
                expected: "at least 1",
            });
        }
        if m.max_queued_messages == 0 {
            return Err(ConfigError::OutOfRange { key: "mqtt.max_queued_messages", expected: "at least 1" });
        }
        if m.max_queued_bytes < 1024 {
            return Err(ConfigError::OutOfRange { key: "mqtt.max_queued_bytes", expected: "at least 1024" });
        }
        if m.sessions_memory_budget_bytes < m.max_queued_bytes {
            return Err(ConfigError::OutOfRange {
                key: "mqtt.sessions_memory_budget_bytes",
                expected: "at least mqtt.max_queued_bytes",
            });
        }
        let incoming_rate =
            if m.incoming_rate_limit.enabled { Some(parse_rate_limit(&m.incoming_rate_limit.config)?) } else { None };
        let acl = self.security.acl()?.map(Arc::new);
        Ok(Settings {
            tcp,
            ssl,
            ws,
            max_in_flight: m.max_in_flight_msgs,
            mqtt3x_receive_max: m.flow_control_mqtt_3x_receive_max.min(m.max_in_flight_msgs),
            max_keep_alive: m.max_keep_alive_sec,
            topic_alias_max: m.topic_alias_max,
            alias_min_length: m.min_length_for_alias_replacement,
            max_queued: m.max_queued_messages,
            max_queued_bytes: m.max_queued_bytes,
            memory_budget: m.sessions_memory_budget_bytes,
            max_session_expiry: m.max_session_expiry_sec,
            max_client_id_v31: m.max_client_id_length_v31,
            connect_timeout: Duration::from_millis(m.connect_timeout_ms.max(1)),
            max_connections: m.max_connections,
            retain_available: m.retain_available,
            incoming_rate,
            allow_anonymous: self.security.allow_anonymous,
            credentials: self.security.credentials.clone(),
            acl,
        })
    }
}

impl SecurityConfig {
    /// The configured rules (inline, then the file's), or `None` when neither has any text.
    fn acl(&self) -> Result<Option<Acl>, ConfigError> {
        let mut acl = if self.acl.trim().is_empty() { None } else { Some(Acl::parse(&self.acl)?) };
        if let Some(path) = &self.acl_file {
            let file_err = |message: String| ConfigError::AclFile { path: path.clone(), message };
            let text = std::fs::read_to_string(path).map_err(|e| file_err(e.to_string()))?;
            let from_file = Acl::parse(&text).map_err(|e| file_err(e.to_string()))?;
            acl = Some(match acl {
                Some(inline) => inline.merged(from_file),
                None => from_file,
            });
        }
        Ok(acl)
    }
}

fn listener(address: &str, port: u16, max_payload: usize) -> Result<Listener, ConfigError> {
    let ip = address.parse().map_err(|_| ConfigError::BindAddress(address.to_owned()))?;
    if !(16..=268_435_460).contains(&max_payload) {
        return Err(ConfigError::OutOfRange { key: "max_payload_size", expected: "between 16 and 268435460" });
    }
    Ok(Listener { addr: SocketAddr::new(ip, port), max_packet_size: max_payload })
}

/// Parses TBMQ's `<messages>:<seconds>[,<messages>:<seconds>...]`.
pub(crate) fn parse_rate_limit(text: &str) -> Result<Vec<(u32, Duration)>, ConfigError> {
    let err = || ConfigError::RateLimit(text.to_owned());
    let mut buckets = Vec::new();
    for part in text.split(',') {
        let (n, secs) = part.trim().split_once(':').ok_or_else(err)?;
        let n: u32 = n.trim().parse().map_err(|_| err())?;
        let secs: u64 = secs.trim().parse().map_err(|_| err())?;
        if n == 0 || secs == 0 {
            return Err(err());
        }
        buckets.push((n, Duration::from_secs(secs)));
    }
    Ok(buckets)
}

fn default_bind_address() -> String {
    "0.0.0.0".to_owned()
}
fn default_tcp_port() -> u16 {
    1883
}
fn default_ssl_port() -> u16 {
    8883
}
fn default_max_payload_size() -> usize {
    65536
}
fn default_max_in_flight() -> u16 {
    1000
}
fn default_mqtt3x_receive_max() -> u16 {
    65535
}
fn default_max_keep_alive() -> u16 {
    600
}
fn default_topic_alias_max() -> u16 {
    10
}
fn default_max_queued() -> usize {
    10_000
}
fn default_max_session_expiry() -> u32 {
    604_800
}
fn default_max_client_id_v31() -> usize {
    1024
}
fn default_connect_timeout_ms() -> u64 {
    10_000
}
fn default_rate_limit() -> String {
    "10:1,300:60".to_owned()
}
