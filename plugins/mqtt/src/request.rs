//! Pure translation of one host [`Message`] into the PUBLISH sent to the target broker: topic
//! (static, template or the message's own), QoS, retain flag, payload (raw bytes or the TBMQ JSON
//! envelope) and, for MQTT 5, the message's properties. No IO here.

use trib_plugin_api::{
    driver::{Message, Outcome},
    support::envelope::EnvelopeContext,
};

use crate::{
    config::{Config, MqttVersion},
    topic::target_topic,
};

/// The largest remaining length an MQTT packet can announce (268,435,455 bytes).
pub const MQTT_MAX_REMAINING_LENGTH: usize = 268_435_455;

/// One PUBLISH to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    /// Target topic.
    pub topic: String,
    /// QoS 0, 1 or 2.
    pub qos: u8,
    /// Retain flag.
    pub retain: bool,
    /// Payload bytes.
    pub payload: Vec<u8>,
    /// MQTT 5 properties; `None` for MQTT 3.1.1.
    pub properties: Option<Properties>,
}

/// The MQTT 5 properties passed through from the source message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Properties {
    /// User properties, in order.
    pub user: Vec<(String, String)>,
    /// Content type (payload-only mode).
    pub content_type: Option<String>,
    /// Correlation data.
    pub correlation_data: Option<Vec<u8>>,
    /// Response topic.
    pub response_topic: Option<String>,
    /// Message expiry interval in seconds.
    pub message_expiry_secs: Option<u32>,
    /// Payload format indicator (payload-only mode).
    pub payload_format: Option<u8>,
}

/// Builds the PUBLISH for `msg`, or the outcome that says why it can never be sent.
pub fn build(config: &Config, envelope: &EnvelopeContext, msg: &Message<'_>) -> Result<Publish, Outcome> {
    let topic = target_topic(&config.topic, msg);
    check_topic(&topic)?;
    let qos = if config.use_msg_qos { msg.qos } else { config.qos };
    if qos > 2 {
        return Err(Outcome::Rejected(format!("invalid QoS {qos}")));
    }
    let retain = if config.use_msg_retain { msg.retain } else { config.retained };
    let payload = if config.send_only_msg_payload { msg.payload().to_vec() } else { envelope.to_vec_base64(msg) };
    let properties = (config.version == MqttVersion::V5).then(|| properties(msg, config.send_only_msg_payload));
    let publish = Publish { topic, qos, retain, payload, properties };
    if packet_size(&publish) > MQTT_MAX_REMAINING_LENGTH {
        return Err(Outcome::Rejected("message is larger than the MQTT maximum packet size".to_string()));
    }
    Ok(publish)
}

/// The size of the encoded PUBLISH without its fixed header (an upper bound for MQTT 5, where
/// the property lengths are counted with 4-byte length prefixes).
pub fn packet_size(publish: &Publish) -> usize {
    let mut size = 2 + publish.topic.len() + publish.payload.len();
    if publish.qos > 0 {
        size += 2;
    }
    if let Some(p) = &publish.properties {
        size += 4;
        size += p.user.iter().map(|(k, v)| 5 + k.len() + v.len()).sum::<usize>();
        size += p.content_type.as_ref().map_or(0, |s| 3 + s.len());
        size += p.correlation_data.as_ref().map_or(0, |s| 3 + s.len());
        size += p.response_topic.as_ref().map_or(0, |s| 3 + s.len());
        size += p.message_expiry_secs.map_or(0, |_| 5);
        size += p.payload_format.map_or(0, |_| 2);
    }
    size
}

/// A topic the target broker would refuse by dropping the connection is refused here instead.
fn check_topic(topic: &str) -> Result<(), Outcome> {
    let problem = if topic.is_empty() {
        "is empty"
    } else if topic.contains(['+', '#']) {
        "contains a wildcard character"
    } else if topic.contains('\0') {
        "contains a NUL character"
    } else if topic.len() > usize::from(u16::MAX) {
        "is longer than 65535 bytes"
    } else {
        return Ok(());
    };
    Err(Outcome::Rejected(format!("target topic '{topic}' {problem}")))
}

/// The MQTT 5 properties of `msg`. Content type and payload format describe the original payload,
/// so they are only passed on when that payload is sent as it is.
fn properties(msg: &Message<'_>, payload_only: bool) -> Properties {
    Properties {
        user: msg.user_properties().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        content_type: msg.content_type.as_ref().map(|s| s.to_string()).into_option().filter(|_| payload_only),
        correlation_data: msg.correlation_data.as_ref().map(|d| d.to_vec()).into_option(),
        response_topic: msg.response_topic.as_ref().map(|s| s.to_string()).into_option(),
        message_expiry_secs: msg.message_expiry_secs.into_option(),
        payload_format: msg.payload_is_utf8.into_option().filter(|_| payload_only).map(u8::from),
    }
}
