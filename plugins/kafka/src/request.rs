//! Pure: what one MQTT message becomes as a Kafka record (key, value, headers). No IO here.
//!
//! The value is TBMQ's: the JSON envelope with a base64 payload, or with `sendOnlyMsgPayload`
//! the payload as text when it is valid UTF-8 and as standard base64 otherwise. The key is
//! TBMQ's static key, extended with the placeholders of [`KeyTemplate`].

use base64::{engine::general_purpose::STANDARD, Engine};
use trib_plugin_api::{abi::Message, support::envelope::EnvelopeContext};

use crate::config::KafkaConfig;
pub use crate::key::{KeyTemplate, KEY_PLACEHOLDERS};

/// One record to send: everything but the topic, which is fixed per integration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The record key; `None` lets librdkafka's partitioner pick a partition.
    pub key: Option<Vec<u8>>,
    /// The record value.
    pub value: Vec<u8>,
}

/// Builds records for one started integration; the static headers are encoded once.
#[derive(Debug, Clone)]
pub struct RecordBuilder {
    key: Option<KeyTemplate>,
    send_only_msg_payload: bool,
    envelope: EnvelopeContext,
    headers: Vec<(String, Vec<u8>)>,
}

impl RecordBuilder {
    /// Prepares the builder from the checked configuration and the envelope context.
    pub fn new(config: &KafkaConfig, envelope: EnvelopeContext) -> Self {
        let charset = config.headers_charset;
        let headers = config.headers.iter().map(|(k, v)| (k.clone(), charset.encode(v))).collect();
        RecordBuilder {
            key: config.key.clone(),
            send_only_msg_payload: config.send_only_msg_payload,
            envelope,
            headers,
        }
    }

    /// The static headers with their values already encoded in `kafkaHeadersCharset`.
    pub fn headers(&self) -> &[(String, Vec<u8>)] {
        &self.headers
    }

    /// The record of `msg`.
    pub fn record(&self, msg: &Message<'_>) -> Record {
        let value = if self.send_only_msg_payload {
            payload_value(msg.payload.as_slice())
        } else {
            self.envelope.to_vec_base64(msg)
        };
        Record { key: self.key.as_ref().and_then(|k| k.render(msg)).map(String::into_bytes), value }
    }
}

/// The payload as TBMQ sends it with `sendOnlyMsgPayload`: the bytes themselves when they are
/// valid UTF-8, otherwise their standard base64 (with padding).
pub fn payload_value(payload: &[u8]) -> Vec<u8> {
    match std::str::from_utf8(payload) {
        Ok(_) => payload.to_vec(),
        Err(_) => STANDARD.encode(payload).into_bytes(),
    }
}
