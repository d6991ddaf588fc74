//! The MQTT wire protocol: framing, protocol-level detection and the bridge to rumqttc's codecs.
//!
//! rumqttc's `mqttbytes` codecs (v4 for MQTT 3.1.1, v5 for MQTT 5.0) parse and write the packets.
//! This module adds what a server needs on top of them: checks of the fixed header (reserved flag bits,
//! QoS 3, packet size) before any bytes reach the codec, detection of the protocol level from the
//! CONNECT bytes, MQTT 3.1 (`MQIsdp`) support, and one internal packet shape (rumqttc's v5 types) for
//! all protocol levels. Outgoing PUBLISH packets are encoded here by hand so that fan-out does not
//! clone properties per subscriber.
//! Sessions, routing and timers deliberately live elsewhere.

mod codec;
mod connect;
mod frame;
mod publish;

pub use codec::Codec;
pub use connect::{decode_connect, ConnectRequest, HandshakeError};
pub use frame::{peek_frame, Frame, PacketKind};
pub use publish::{encode_publish, publish_size, OutgoingPublish};

/// rumqttc's MQTT 5 packet types, used as the broker's internal packet shape for every protocol level.
pub use rumqttc::v5::mqttbytes::v5 as packets;

#[cfg(test)]
mod tests;

/// The MQTT protocol level a client speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProtocolVersion {
    /// MQTT 3.1 (protocol name `MQIsdp`, level 3).
    V31,
    /// MQTT 3.1.1 (level 4).
    V311,
    /// MQTT 5.0 (level 5).
    V5,
}

impl ProtocolVersion {
    /// Whether this level has reason codes, properties and a server DISCONNECT.
    pub fn is_v5(self) -> bool {
        self == ProtocolVersion::V5
    }
}

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

/// Why bytes from a client could not be turned into a packet.
///
/// Each variant maps to the MQTT 5 DISCONNECT reason code the broker sends before closing.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// The remaining length uses more than four bytes.
    #[error("malformed remaining length")]
    MalformedRemainingLength,
    /// Packet type 0, or a type the client may not send.
    #[error("packet type {0} is not allowed from a client")]
    UnexpectedPacketType(u8),
    /// Reserved bits of the fixed header are not as the specification requires.
    #[error("reserved flag bits set in packet type {0}")]
    ReservedFlags(u8),
    /// A PUBLISH with both QoS bits set.
    #[error("qos 3 is not a quality of service")]
    InvalidQos,
    /// A packet larger than the configured maximum.
    #[error("packet of {size} bytes exceeds the maximum of {max}")]
    PacketTooLarge {
        /// Size of the whole packet in bytes.
        size: usize,
        /// The maximum allowed.
        max: usize,
    },
    /// A second CONNECT on an established connection.
    #[error("second connect")]
    SecondConnect,
    /// A topic name that is not valid UTF-8.
    #[error("topic is not utf-8")]
    TopicNotUtf8,
    /// The codec rejected the packet body; the text is the codec's message.
    #[error("malformed packet: {0}")]
    Malformed(String),
}

impl Error {
    /// The MQTT 5 DISCONNECT reason code for this error.
    pub fn reason_code(&self) -> u8 {
        match self {
            Error::PacketTooLarge { .. } => 0x95,
            Error::SecondConnect | Error::UnexpectedPacketType(_) => 0x82,
            Error::MalformedRemainingLength
            | Error::ReservedFlags(_)
            | Error::InvalidQos
            | Error::TopicNotUtf8
            | Error::Malformed(_) => 0x81,
        }
    }
}
