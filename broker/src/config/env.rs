//! Overrides from TBMQ's environment variable names (`LISTENER_TCP_BIND_PORT`, ...).
//!
//! The lookup is a parameter so that tests (and embedders) need not touch the process environment.

use std::path::PathBuf;
use std::str::FromStr;

use super::{BrokerConfig, ConfigError};

impl BrokerConfig {
    /// Applies every TBMQ environment variable that `lookup` knows, over the current values.
    ///
    /// Use `|name| std::env::var(name).ok()` for the process environment.
    pub fn apply_env(&mut self, lookup: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        macro_rules! set {
            ($name:literal, $field:expr) => {
                if let Some(value) = lookup($name) {
                    $field = parse($name, &value)?;
                }
            };
        }
        // An empty value (the default in the distribution's config file) means no file.
        macro_rules! set_path {
            ($name:literal, $field:expr) => {
                if let Some(value) = lookup($name) {
                    $field = (!value.trim().is_empty()).then(|| PathBuf::from(value));
                }
            };
        }
        let tcp = &mut self.listener.tcp;
        set!("LISTENER_TCP_ENABLED", tcp.enabled);
        set!("LISTENER_TCP_BIND_ADDRESS", tcp.bind_address);
        set!("LISTENER_TCP_BIND_PORT", tcp.bind_port);
        set!("TCP_NETTY_MAX_PAYLOAD_SIZE", tcp.max_payload_size);
        let ssl = &mut self.listener.ssl;
        set!("LISTENER_SSL_ENABLED", ssl.enabled);
        set!("LISTENER_SSL_BIND_ADDRESS", ssl.bind_address);
        set!("LISTENER_SSL_BIND_PORT", ssl.bind_port);
        set!("SSL_NETTY_MAX_PAYLOAD_SIZE", ssl.max_payload_size);
        set_path!("LISTENER_SSL_PEM_CERT", ssl.cert_file);
        set_path!("LISTENER_SSL_PEM_KEY", ssl.key_file);
        set!("LISTENER_SSL_CLIENT_AUTH", ssl.client_auth);
        set_path!("LISTENER_SSL_PEM_CLIENT_CA", ssl.client_ca_file);
        let ws = &mut self.listener.ws;
        set!("LISTENER_WS_ENABLED", ws.enabled);
        set!("LISTENER_WS_BIND_ADDRESS", ws.bind_address);
        set!("LISTENER_WS_BIND_PORT", ws.bind_port);
        set!("WS_NETTY_MAX_PAYLOAD_SIZE", ws.max_payload_size);
        set!("WS_NETTY_SUB_PROTOCOLS", ws.sub_protocols);
        let m = &mut self.mqtt;
        set!("MQTT_MAX_IN_FLIGHT_MSGS", m.max_in_flight_msgs);
        set!("MQTT_FLOW_CONTROL_MQTT_3X_RECEIVE_MAX", m.flow_control_mqtt_3x_receive_max);
        set!("MQTT_KEEP_ALIVE_MAX_KEEP_ALIVE_SEC", m.max_keep_alive_sec);
        set!("MQTT_TOPIC_ALIAS_MAX", m.topic_alias_max);
        set!("MQTT_TOPIC_MIN_LENGTH_FOR_ALIAS_REPLACEMENT", m.min_length_for_alias_replacement);
        set!("MQTT_PERSISTENT_SESSION_DEVICE_PERSISTED_MESSAGES_LIMIT", m.max_queued_messages);
        set!("MQTT_SESSION_QUEUE_MAX_BYTES", m.max_queued_bytes);
        set!("MQTT_SESSIONS_MEMORY_BUDGET_BYTES", m.sessions_memory_budget_bytes);
        set!("MQTT_CLIENT_SESSION_EXPIRY_MAX_EXPIRY_INTERVAL", m.max_session_expiry_sec);
        set!("MQTT_3_1_MAX_CLIENT_ID_LENGTH", m.max_client_id_length_v31);
        set!("MQTT_CONNECT_TIMEOUT_MS", m.connect_timeout_ms);
        set!("MQTT_SESSIONS_LIMIT", m.max_connections);
        set!("MQTT_RETAIN_AVAILABLE", m.retain_available);
        set!("MQTT_INCOMING_RATE_LIMITS_ENABLED", m.incoming_rate_limit.enabled);
        set!("MQTT_INCOMING_RATE_LIMITS_CONFIG", m.incoming_rate_limit.config);
        let sec = &mut self.security;
        set!("SECURITY_ALLOW_ANONYMOUS", sec.allow_anonymous);
        set!("SECURITY_MQTT_ACL", sec.acl);
        set_path!("SECURITY_MQTT_ACL_FILE", sec.acl_file);
        Ok(())
    }
}

fn parse<T: FromStr>(name: &'static str, value: &str) -> Result<T, ConfigError> {
    value.trim().parse().map_err(|_| ConfigError::Env { name, value: value.to_owned() })
}
