//! The application message as the broker routes it, and as integrations receive it.
//!
//! One `PublishedMessage` is built per incoming PUBLISH (or will) and shared by reference count
//! between all subscribers, the retained store and integration sinks; the payload is a
//! `bytes::Bytes`, so fan-out never copies it. Per-subscriber details (granted QoS, packet id,
//! subscription identifiers) are not part of it.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::protocol::QoS;

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
