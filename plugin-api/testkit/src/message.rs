//! Owned test messages and the borrowed [`abi::Message`] batches a driver's `process` takes.
//!
//! [`abi::Message`] borrows everything (the host does not copy payloads across the boundary), so
//! a test keeps [`TestMessage`] values alive and lends them out through a [`Batch`]:
//!
//! ```
//! use trib_plugin_testkit::message::{Batch, TestMessage};
//!
//! let messages = [
//!     TestMessage::new("sensors/1/temp", r#"{"t":25}"#).user_property("site", "A"),
//!     TestMessage::new("sensors/2/temp", "26").qos(0).retain(true),
//! ];
//! let batch = Batch::new(&messages);
//! let abi_messages = batch.messages();
//! assert_eq!(abi_messages.len(), 2);
//! assert_eq!(abi_messages[0].topic(), "sensors/1/temp");
//! assert_eq!(abi_messages[0].user_properties().collect::<Vec<_>>(), [("site", "A")]);
//! ```
//!
//! Where the values come from a real broker instead, see `trib-core`'s wire conversion; this
//! module only builds what a test needs.

use trib_plugin_api::{
    abi::{self, UserProperty},
    abi_stable::std_types::{ROption, RSlice, RStr},
};

/// Client id of a [`TestMessage`] unless set.
pub const DEFAULT_CLIENT_ID: &str = "test-client";
/// Broker node of a [`TestMessage`] unless set.
pub const DEFAULT_BROKER_NODE: &str = "tbmq-test";
/// Timestamp (epoch milliseconds) of a [`TestMessage`] unless set: fixed, so outputs are stable.
pub const DEFAULT_TIMESTAMP_MS: i64 = 1_717_000_000_000;

/// An owned MQTT message with every field of [`abi::Message`]; build it with [`TestMessage::new`]
/// and the chained setters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestMessage {
    /// The MQTT topic.
    pub topic: String,
    /// The payload bytes.
    pub payload: Vec<u8>,
    /// QoS 0, 1 or 2 (default 1).
    pub qos: u8,
    /// The retain flag (default false).
    pub retain: bool,
    /// The publisher's client id (default [`DEFAULT_CLIENT_ID`]).
    pub client_id: String,
    /// The routing broker's service id (default [`DEFAULT_BROKER_NODE`]).
    pub broker_node: String,
    /// Queueing time in epoch milliseconds (default [`DEFAULT_TIMESTAMP_MS`]).
    pub timestamp_ms: i64,
    /// MQTT 5 user properties, in order (keys may repeat).
    pub user_properties: Vec<(String, String)>,
    /// MQTT 5 content type.
    pub content_type: Option<String>,
    /// MQTT 5 correlation data.
    pub correlation_data: Option<Vec<u8>>,
    /// MQTT 5 response topic.
    pub response_topic: Option<String>,
    /// MQTT 5 message expiry interval in seconds.
    pub message_expiry_secs: Option<u32>,
    /// MQTT 5 payload format indicator.
    pub payload_is_utf8: Option<bool>,
    /// Common name of the publisher's client certificate.
    pub client_cert_cn: Option<String>,
}

impl TestMessage {
    /// A QoS 1 message on `topic` with `payload` and the defaults above.
    pub fn new(topic: impl Into<String>, payload: impl AsRef<[u8]>) -> Self {
        TestMessage {
            topic: topic.into(),
            payload: payload.as_ref().to_vec(),
            qos: 1,
            retain: false,
            client_id: DEFAULT_CLIENT_ID.to_string(),
            broker_node: DEFAULT_BROKER_NODE.to_string(),
            timestamp_ms: DEFAULT_TIMESTAMP_MS,
            user_properties: Vec::new(),
            content_type: None,
            correlation_data: None,
            response_topic: None,
            message_expiry_secs: None,
            payload_is_utf8: None,
            client_cert_cn: None,
        }
    }

    /// A message whose payload is `value` serialized as JSON.
    pub fn json(topic: impl Into<String>, value: &serde_json::Value) -> Self {
        TestMessage::new(topic, value.to_string())
    }

    /// Sets the QoS.
    pub fn qos(mut self, qos: u8) -> Self {
        self.qos = qos;
        self
    }

    /// Sets the retain flag.
    pub fn retain(mut self, retain: bool) -> Self {
        self.retain = retain;
        self
    }

    /// Sets the publisher's client id.
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = client_id.into();
        self
    }

    /// Sets the broker node.
    pub fn broker_node(mut self, broker_node: impl Into<String>) -> Self {
        self.broker_node = broker_node.into();
        self
    }

    /// Sets the timestamp in epoch milliseconds.
    pub fn timestamp_ms(mut self, timestamp_ms: i64) -> Self {
        self.timestamp_ms = timestamp_ms;
        self
    }

    /// Appends one user property.
    pub fn user_property(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.user_properties.push((key.into(), value.into()));
        self
    }

    /// Sets the MQTT 5 content type.
    pub fn content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = Some(content_type.into());
        self
    }

    /// Sets the MQTT 5 correlation data.
    pub fn correlation_data(mut self, data: impl AsRef<[u8]>) -> Self {
        self.correlation_data = Some(data.as_ref().to_vec());
        self
    }

    /// Sets the MQTT 5 response topic.
    pub fn response_topic(mut self, topic: impl Into<String>) -> Self {
        self.response_topic = Some(topic.into());
        self
    }

    /// Sets the MQTT 5 message expiry interval.
    pub fn message_expiry_secs(mut self, secs: u32) -> Self {
        self.message_expiry_secs = Some(secs);
        self
    }

    /// Sets the MQTT 5 payload format indicator.
    pub fn payload_is_utf8(mut self, utf8: bool) -> Self {
        self.payload_is_utf8 = Some(utf8);
        self
    }

    /// Sets the client certificate's common name.
    pub fn client_cert_cn(mut self, cn: impl Into<String>) -> Self {
        self.client_cert_cn = Some(cn.into());
        self
    }

    /// Lends this one message to `f` as an [`abi::Message`].
    pub fn with_abi<R>(&self, f: impl FnOnce(&abi::Message<'_>) -> R) -> R {
        let batch = Batch::new(std::slice::from_ref(self));
        f(&batch.messages()[0])
    }

    fn to_abi<'a>(&'a self, user_properties: &'a [UserProperty<'a>]) -> abi::Message<'a> {
        abi::Message {
            topic: RStr::from_str(&self.topic),
            payload: RSlice::from_slice(&self.payload),
            qos: self.qos,
            retain: self.retain,
            client_id: RStr::from_str(&self.client_id),
            broker_node: RStr::from_str(&self.broker_node),
            timestamp_ms: self.timestamp_ms,
            user_properties: RSlice::from_slice(user_properties),
            content_type: text(self.content_type.as_deref()),
            correlation_data: self.correlation_data.as_deref().map(RSlice::from_slice).into(),
            response_topic: text(self.response_topic.as_deref()),
            message_expiry_secs: self.message_expiry_secs.into(),
            payload_is_utf8: self.payload_is_utf8.into(),
            client_cert_cn: text(self.client_cert_cn.as_deref()),
        }
    }
}

impl Default for TestMessage {
    /// A message on `test/topic` with the payload `test`.
    fn default() -> Self {
        TestMessage::new("test/topic", "test")
    }
}

/// Borrows a slice of [`TestMessage`] and hands out the matching [`abi::Message`] values.
///
/// It holds the user-property arrays the messages point into, so keep it alive while the
/// messages are used: `driver.process(&batch.messages(), deadline)`.
#[derive(Debug)]
pub struct Batch<'m> {
    messages: &'m [TestMessage],
    user_properties: Vec<Vec<UserProperty<'m>>>,
}

impl<'m> Batch<'m> {
    /// Prepares `messages` for lending.
    pub fn new(messages: &'m [TestMessage]) -> Self {
        let user_properties = messages
            .iter()
            .map(|m| {
                m.user_properties
                    .iter()
                    .map(|(k, v)| UserProperty { key: RStr::from_str(k), value: RStr::from_str(v) })
                    .collect()
            })
            .collect();
        Batch { messages, user_properties }
    }

    /// The messages as the boundary type, in order.
    pub fn messages(&self) -> Vec<abi::Message<'_>> {
        self.messages.iter().zip(&self.user_properties).map(|(m, props)| m.to_abi(props)).collect()
    }

    /// How many messages the batch holds.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// Whether the batch holds no message.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }
}

fn text(value: Option<&str>) -> ROption<RStr<'_>> {
    value.map(RStr::from_str).into()
}
