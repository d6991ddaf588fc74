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

pub use crate::message::QoS;

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
    /// A SUBSCRIBE or UNSUBSCRIBE (named here) with packet id 0, which MQTT forbids (2.2.1).
    #[error("packet id is zero in {0}")]
    PacketIdZero(&'static str),
    /// The codec rejected the packet body; the text is the codec's message.
    #[error("malformed packet: {0}")]
    Malformed(String),
}

impl Error {
    /// The MQTT 5 DISCONNECT reason code for this error.
    pub fn reason_code(&self) -> u8 {
        match self {
            Error::PacketTooLarge { .. } => reason::PACKET_TOO_LARGE,
            Error::SecondConnect | Error::UnexpectedPacketType(_) | Error::PacketIdZero(_) => reason::PROTOCOL_ERROR,
            Error::MalformedRemainingLength
            | Error::ReservedFlags(_)
            | Error::InvalidQos
            | Error::TopicNotUtf8
            | Error::Malformed(_) => reason::MALFORMED_PACKET,
        }
    }
}

/// MQTT 5 reason codes the broker sends itself, in DISCONNECT and CONNACK (MQTT 5.0, 2.4), by
/// their names in the specification. Acknowledgement reasons (PUBACK, PUBREC, SUBACK...) use
/// rumqttc's enums instead; these are the ones written as raw bytes.
pub mod reason {
    /// 0x00 Success / Normal disconnection.
    pub const SUCCESS: u8 = 0x00;
    /// 0x04 Disconnect with Will Message.
    pub const DISCONNECT_WITH_WILL: u8 = 0x04;
    /// 0x80 Unspecified error.
    pub const UNSPECIFIED_ERROR: u8 = 0x80;
    /// 0x81 Malformed Packet.
    pub const MALFORMED_PACKET: u8 = 0x81;
    /// 0x82 Protocol Error.
    pub const PROTOCOL_ERROR: u8 = 0x82;
    /// 0x83 Implementation specific error.
    pub const IMPLEMENTATION_SPECIFIC_ERROR: u8 = 0x83;
    /// 0x8B Server shutting down.
    pub const SERVER_SHUTTING_DOWN: u8 = 0x8B;
    /// 0x8D Keep Alive timeout.
    pub const KEEP_ALIVE_TIMEOUT: u8 = 0x8D;
    /// 0x8E Session taken over.
    pub const SESSION_TAKEN_OVER: u8 = 0x8E;
    /// 0x90 Topic Name invalid.
    pub const TOPIC_NAME_INVALID: u8 = 0x90;
    /// 0x93 Receive Maximum exceeded.
    pub const RECEIVE_MAXIMUM_EXCEEDED: u8 = 0x93;
    /// 0x94 Topic Alias invalid.
    pub const TOPIC_ALIAS_INVALID: u8 = 0x94;
    /// 0x95 Packet too large.
    pub const PACKET_TOO_LARGE: u8 = 0x95;
    /// 0x96 Message rate too high.
    pub const MESSAGE_RATE_TOO_HIGH: u8 = 0x96;
    /// 0x9A Retain not supported.
    pub const RETAIN_NOT_SUPPORTED: u8 = 0x9A;

    /// First byte of a DISCONNECT packet (type 14, no flags).
    pub const DISCONNECT_HEADER: u8 = 0xE0;
    /// First byte of a CONNACK packet (type 2, no flags).
    pub const CONNACK_HEADER: u8 = 0x20;
    /// MQTT 3.1.1 CONNACK return code 1: unacceptable protocol version.
    pub const V3_UNACCEPTABLE_PROTOCOL_VERSION: u8 = 0x01;
}
