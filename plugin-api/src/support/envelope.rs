//! The JSON envelope TBMQ sends when `sendOnlyMsgPayload` is false, byte for byte in TBMQ's
//! field order: `payload, topicName, clientId, eventType, qos, retain, tbmqIeNode, tbmqNode, ts,
//! [clientCertCn], props, metadata`.

use base64::{engine::general_purpose::STANDARD, Engine};
use serde::{ser::SerializeMap, Serialize, Serializer};
use serde_json::value::RawValue;

use crate::abi::Message;

/// How the `payload` field is rendered.
#[derive(Debug, Clone)]
pub enum PayloadField<'a> {
    /// Standard base64 with padding (TBMQ's default, and always for MQTT and Kafka).
    Base64(&'a [u8]),
    /// The payload parsed as JSON and embedded as a JSON value.
    Json(&'a serde_json::Value),
    /// The payload as a string (invalid UTF-8 already replaced by U+FFFD).
    Text(&'a str),
}

/// Per-instance values of the envelope: the executor's service id and the metadata map.
#[derive(Debug, Clone)]
pub struct EnvelopeContext {
    service_id: String,
    metadata: Box<RawValue>,
}

impl EnvelopeContext {
    /// Builds the context from the start configuration's service id and metadata JSON text.
    ///
    /// A metadata text that is not a JSON object becomes `{}`.
    pub fn new(service_id: &str, metadata_json: &str) -> Self {
        let metadata = match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(metadata_json) {
            Ok(map) => serde_json::value::to_raw_value(&map),
            Err(_) => serde_json::value::to_raw_value(&serde_json::Map::new()),
        }
        .expect("a JSON map always serializes");
        EnvelopeContext { service_id: service_id.to_string(), metadata }
    }

    /// Writes the envelope of `msg` as UTF-8 JSON into `out` (appending).
    pub fn write(&self, msg: &Message<'_>, payload: PayloadField<'_>, out: &mut Vec<u8>) {
        let envelope = Envelope {
            payload: PayloadSer(payload),
            topic_name: msg.topic.as_str(),
            client_id: msg.client_id.as_str(),
            event_type: "PUBLISH_MSG",
            qos: msg.qos,
            retain: msg.retain,
            tbmq_ie_node: &self.service_id,
            tbmq_node: msg.broker_node.as_str(),
            ts: msg.timestamp_ms,
            client_cert_cn: msg.client_cert_cn.as_ref().map(|s| s.as_str()).into_option(),
            props: Props(msg),
            metadata: &self.metadata,
        };
        serde_json::to_writer(out, &envelope).expect("writing JSON to a Vec cannot fail");
    }

    /// Convenience: the envelope of `msg` with a base64 payload, as a new buffer.
    pub fn to_vec_base64(&self, msg: &Message<'_>) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + msg.payload.len() * 4 / 3);
        self.write(msg, PayloadField::Base64(msg.payload.as_slice()), &mut out);
        out
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a> {
    payload: PayloadSer<'a>,
    topic_name: &'a str,
    client_id: &'a str,
    event_type: &'static str,
    qos: u8,
    retain: bool,
    tbmq_ie_node: &'a str,
    tbmq_node: &'a str,
    ts: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_cert_cn: Option<&'a str>,
    props: Props<'a, 'a>,
    metadata: &'a RawValue,
}

struct PayloadSer<'a>(PayloadField<'a>);

impl Serialize for PayloadSer<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            PayloadField::Base64(bytes) => s.serialize_str(&STANDARD.encode(bytes)),
            PayloadField::Json(value) => value.serialize(s),
            PayloadField::Text(text) => s.serialize_str(text),
        }
    }
}

/// User properties as a JSON object; a repeated key keeps its first position and its last value.
struct Props<'a, 'm>(&'m Message<'a>);

impl Serialize for Props<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut pairs: Vec<(&str, &str)> = Vec::with_capacity(self.0.user_properties.len());
        for p in self.0.user_properties.as_slice() {
            match pairs.iter_mut().find(|(k, _)| *k == p.key.as_str()) {
                Some(entry) => entry.1 = p.value.as_str(),
                None => pairs.push((p.key.as_str(), p.value.as_str())),
            }
        }
        let mut map = s.serialize_map(Some(pairs.len()))?;
        for (k, v) in pairs {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}
