//! The application message as the broker routes it, and as integrations receive it, with its
//! [`QoS`] (defined here, below the protocol codec, which encodes these messages).
//!
//! One `PublishedMessage` is built per incoming PUBLISH (or will) and shared by reference count
//! between all subscribers, the retained store and integration sinks; the payload is a
//! `bytes::Bytes`, so fan-out never copies it. Per-subscriber details (granted QoS, packet id,
//! subscription identifiers) are not part of it.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

/// Quality of service of a message or a subscription.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum QoS {
    /// At most once (0).
    AtMostOnce = 0,
    /// At least once (1).
    AtLeastOnce = 1,
    /// Exactly once (2).
    ExactlyOnce = 2,
}

impl QoS {
    /// Maps the two QoS bits of a packet; 3 is not a QoS.
    pub fn from_u8(value: u8) -> Option<QoS> {
        match value {
            0 => Some(QoS::AtMostOnce),
            1 => Some(QoS::AtLeastOnce),
            2 => Some(QoS::ExactlyOnce),
            _ => None,
        }
    }

    pub(crate) fn from_v5(qos: rumqttc::v5::mqttbytes::QoS) -> QoS {
        match qos {
            rumqttc::v5::mqttbytes::QoS::AtMostOnce => QoS::AtMostOnce,
            rumqttc::v5::mqttbytes::QoS::AtLeastOnce => QoS::AtLeastOnce,
            rumqttc::v5::mqttbytes::QoS::ExactlyOnce => QoS::ExactlyOnce,
        }
    }

    pub(crate) fn to_v5(self) -> rumqttc::v5::mqttbytes::QoS {
        match self {
            QoS::AtMostOnce => rumqttc::v5::mqttbytes::QoS::AtMostOnce,
            QoS::AtLeastOnce => rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
            QoS::ExactlyOnce => rumqttc::v5::mqttbytes::QoS::ExactlyOnce,
        }
    }

    pub(crate) fn from_v4(qos: rumqttc::mqttbytes::QoS) -> QoS {
        match qos {
            rumqttc::mqttbytes::QoS::AtMostOnce => QoS::AtMostOnce,
            rumqttc::mqttbytes::QoS::AtLeastOnce => QoS::AtLeastOnce,
            rumqttc::mqttbytes::QoS::ExactlyOnce => QoS::ExactlyOnce,
        }
    }

    pub(crate) fn to_v4(self) -> rumqttc::mqttbytes::QoS {
        match self {
            QoS::AtMostOnce => rumqttc::mqttbytes::QoS::AtMostOnce,
            QoS::AtLeastOnce => rumqttc::mqttbytes::QoS::AtLeastOnce,
            QoS::ExactlyOnce => rumqttc::mqttbytes::QoS::ExactlyOnce,
        }
    }
}

/// An application message received from a client, with its MQTT 5 properties.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishedMessage {
    /// The topic name (never a topic alias: aliases are resolved on receipt).
    pub topic: String,
    /// The payload.
    pub payload: Bytes,
    /// The QoS the publisher used.
    pub qos: QoS,
    /// The RETAIN flag the publisher set.
    pub retain: bool,
    /// The client id of the publisher.
    pub client_id: Arc<str>,
    /// MQTT 5 user properties, in the order received.
    pub user_properties: Vec<(String, String)>,
    /// MQTT 5 content type.
    pub content_type: Option<String>,
    /// MQTT 5 correlation data.
    pub correlation_data: Option<Bytes>,
    /// MQTT 5 response topic.
    pub response_topic: Option<String>,
    /// MQTT 5 message expiry interval in seconds, as received.
    pub message_expiry_interval: Option<u32>,
    /// MQTT 5 payload format indicator (0 bytes, 1 UTF-8).
    pub payload_format_indicator: Option<u8>,
    /// When the broker received the message, in milliseconds since the Unix epoch.
    pub received_at_ms: u64,
}

#[cfg(test)]
impl PublishedMessage {
    /// A message without properties (tests).
    pub(crate) fn plain(topic: &str, payload: Bytes, qos: QoS, retain: bool, client_id: &str) -> PublishedMessage {
        PublishedMessage {
            topic: topic.to_owned(),
            payload,
            qos,
            retain,
            client_id: client_id.into(),
            user_properties: Vec::new(),
            content_type: None,
            correlation_data: None,
            response_topic: None,
            message_expiry_interval: None,
            payload_format_indicator: None,
            received_at_ms: 0,
        }
    }
}

/// A message in flight through the broker: the published message plus its arrival instant.
#[derive(Debug)]
pub(crate) struct RoutedMessage {
    pub msg: PublishedMessage,
    pub received: Instant,
}

impl RoutedMessage {
    pub fn new(msg: PublishedMessage) -> Arc<RoutedMessage> {
        Arc::new(RoutedMessage { msg, received: Instant::now() })
    }

    /// The message expiry interval left now: `Err(())` once expired, `Ok(None)` if it never expires.
    #[allow(clippy::result_unit_err)]
    pub fn remaining_expiry(&self, now: Instant) -> Result<Option<u32>, ()> {
        let Some(interval) = self.msg.message_expiry_interval else {
            return Ok(None);
        };
        let elapsed = now.saturating_duration_since(self.received);
        let total = Duration::from_secs(u64::from(interval));
        if elapsed >= total {
            return Err(());
        }
        // Round up so that a message with time left never goes out with an interval of 0.
        let left = (total - elapsed).as_millis().div_ceil(1000);
        Ok(Some(u32::try_from(left).unwrap_or(u32::MAX)))
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)).unwrap_or(0)
}
