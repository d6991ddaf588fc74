//! The `clientConfiguration` of an MQTT integration: TBMQ's field names, defaults and validation
//! messages, parsed into a checked [`Config`].
//!
//! Parsing walks a `serde_json::Value` by hand instead of deriving `Deserialize`, so that every
//! problem (a wrong type included) is reported against its own field and parsing never stops at
//! the first one. Unknown fields are ignored, as TBMQ's UI sends extra ones. TLS material is
//! only checked for being readable PEM here; the TLS client itself is built in `tls`.

use std::time::Duration;

use serde_json::Value;
use trib_plugin_api::{
    driver::FieldError,
    support::{
        credentials::{self, Credentials},
        fields::{self, Fields},
    },
};

use crate::{
    tls,
    topic::{check_static_parts, parse_template, TargetTopic},
};

/// Default `port` when the field is missing (TBMQ's UI default; Java's 0 would be invalid).
const fn default_port() -> i64 {
    1883
}
/// Default `connectTimeoutSec` (UI default; Java's 0 would be invalid).
const fn default_connect_timeout_sec() -> i64 {
    10
}
/// Default `reconnectPeriodSec` (UI default; Java's 0 would silently disable reconnecting).
const fn default_reconnect_period_sec() -> i64 {
    5
}
/// Default `mqttVersion` (UI default: MQTT 3.1.1; Java's 0 would be invalid).
const fn default_mqtt_version() -> i64 {
    4
}
/// Default `qos` (UI default: at least once).
const fn default_qos() -> i64 {
    1
}
/// Default `keepAliveSec` (UI default).
const fn default_keep_alive_sec() -> i64 {
    60
}

/// The MQTT protocol spoken to the target broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MqttVersion {
    /// MQTT 3.1.1 (`mqttVersion` 4).
    V311,
    /// MQTT 5 (`mqttVersion` 5).
    V5,
}

/// A checked MQTT integration configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Target broker host name or address.
    pub host: String,
    /// Target broker port.
    pub port: u16,
    /// Where messages are published.
    pub topic: TargetTopic,
    /// MQTT client id used on the target broker.
    pub client_id: String,
    /// Anonymous, basic (username/password) or cert.PEM (TLS material).
    pub credentials: Credentials,
    /// Whether the connection uses TLS (`ssl`, or implied by cert.PEM credentials).
    pub tls: bool,
    /// How long to wait for CONNACK.
    pub connect_timeout: Duration,
    /// Delay between reconnection attempts; `None` = never reconnect (`reconnectPeriodSec` 0).
    pub reconnect_period: Option<Duration>,
    /// Protocol version.
    pub version: MqttVersion,
    /// QoS used when `use_msg_qos` is false.
    pub qos: u8,
    /// Use the message's own QoS.
    pub use_msg_qos: bool,
    /// Retain flag used when `use_msg_retain` is false.
    pub retained: bool,
    /// Use the message's own retain flag.
    pub use_msg_retain: bool,
    /// Keep alive in seconds; 0 disables keep alive.
    pub keep_alive_sec: u16,
    /// Send the raw payload instead of the JSON envelope.
    pub send_only_msg_payload: bool,
}

impl Config {
    /// `host:port`, as used in connection messages.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// Checks a `clientConfiguration` JSON text; an empty list means valid.
pub fn validate(json: &str) -> Vec<FieldError> {
    parse(json).err().unwrap_or_default()
}

/// Parses and checks a `clientConfiguration` JSON text.
pub fn parse(json: &str) -> Result<Config, Vec<FieldError>> {
    let obj = fields::object(json)?;
    let mut f = Fields::new(&obj);

    let host = f.strict_string("host").unwrap_or_default();
    if host.trim().is_empty() {
        f.error("host", "Host cannot be empty");
    }
    let port = f.integer("port", default_port());
    if !(1..=65535).contains(&port) {
        f.error("port", "Port must be between 1 and 65535");
    }
    let use_msg_topic_name = f.boolean("useMsgTopicName");
    let topic = if use_msg_topic_name { TargetTopic::Source } else { f.template() };
    let client_id = f.strict_string("clientId").unwrap_or_default();
    if client_id.trim().is_empty() {
        f.error("clientId", "Client ID is required");
    }
    let credentials = f.credentials();
    let ssl = f.boolean("ssl");
    let connect_timeout = f.integer("connectTimeoutSec", default_connect_timeout_sec());
    if connect_timeout <= 0 {
        f.error("connectTimeoutSec", "Connection timeout (seconds) must be greater than 0");
    }
    let reconnect_period = f.integer("reconnectPeriodSec", default_reconnect_period_sec());
    if reconnect_period < 0 {
        f.error("reconnectPeriodSec", "Reconnect period (seconds) must not be less than 0");
    }
    let version = match f.integer("mqttVersion", default_mqtt_version()) {
        4 => MqttVersion::V311,
        5 => MqttVersion::V5,
        3 => {
            f.error(
                "mqttVersion",
                "MQTT 3.1 (mqttVersion 3) is not supported by this driver: use 4 (MQTT_3_1_1) or 5 (MQTT_5)",
            );
            MqttVersion::V311
        }
        _ => {
            f.error("mqttVersion", "Invalid MQTT version. Allowed values: 3 (MQTT_3_1), 4 (MQTT_3_1_1), 5 (MQTT_5)");
            MqttVersion::V311
        }
    };
    let qos = f.integer("qos", default_qos());
    if !(0..=2).contains(&qos) {
        f.error(
            "qos",
            "Invalid MQTT Quality of Service (QoS). Allowed values: 0 (AT_MOST_ONCE), 1 (AT_LEAST_ONCE), 2 (EXACTLY_ONCE)",
        );
    }
    let keep_alive = f.integer("keepAliveSec", default_keep_alive_sec());
    if keep_alive < 0 {
        f.error("keepAliveSec", "Keep Alive (seconds) must not be less than 0");
    } else if keep_alive > i64::from(u16::MAX) {
        f.error("keepAliveSec", "Keep Alive (seconds) must not be greater than 65535");
    }
    let config = Config {
        host: host.trim().to_string(),
        port: u16::try_from(port).unwrap_or(0),
        topic,
        client_id,
        tls: ssl || matches!(credentials, Credentials::CertPem { .. }),
        credentials,
        connect_timeout: Duration::from_secs(u64::try_from(connect_timeout).unwrap_or(0)),
        reconnect_period: u64::try_from(reconnect_period).ok().filter(|s| *s > 0).map(Duration::from_secs),
        version,
        qos: u8::try_from(qos).unwrap_or(0),
        use_msg_qos: f.boolean("useMsgQoS"),
        retained: f.boolean("retained"),
        use_msg_retain: f.boolean("useMsgRetain"),
        keep_alive_sec: u16::try_from(keep_alive).unwrap_or(0),
        send_only_msg_payload: f.boolean("sendOnlyMsgPayload"),
    };
    f.finish(config)
}

/// The MQTT driver's own readers on top of the shared [`Fields`].
trait MqttFields {
    fn template(&mut self) -> TargetTopic;
    fn credentials(&mut self) -> Credentials;
}

impl MqttFields for Fields<'_> {
    /// The `topicName` template, checked as TBMQ checks a static topic.
    fn template(&mut self) -> TargetTopic {
        let text = self.strict_string("topicName").unwrap_or_default();
        if text.is_empty() {
            self.error("topicName", "Topic name is required when useMsgTopicName is disabled!");
            return TargetTopic::Template(Vec::new());
        }
        match parse_template(&text) {
            Ok(parts) => {
                if let Some(message) = check_static_parts(&parts) {
                    self.error("topicName", message);
                }
                TargetTopic::Template(parts)
            }
            Err(message) => {
                self.error("topicName", message);
                TargetTopic::Template(Vec::new())
            }
        }
    }

    /// The credentials object, with its own checks and the PEM material parsed.
    fn credentials(&mut self) -> Credentials {
        let value = self.raw("credentials").cloned().unwrap_or(Value::Null);
        match credentials::deserialize_optional(value) {
            Ok(creds) => {
                self.extend(creds.validate("credentials"));
                if let Err((field, message)) = tls::check_material(&creds) {
                    self.error(format!("credentials.{field}"), message);
                }
                creds
            }
            Err(e) => {
                self.error("credentials", format!("is invalid: {e}"));
                Credentials::Anonymous
            }
        }
    }
}
