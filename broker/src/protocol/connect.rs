//! The first packet of a connection: protocol-level detection and CONNECT decoding.
//!
//! The protocol name and level are read from the raw bytes to choose the codec. MQTT 3.1
//! (`MQIsdp`, level 3) differs from 3.1.1 only in the CONNECT variable header, so its CONNECT is
//! rewritten to the 3.1.1 form and handled by the v4 codec; every later packet is identical.
//! What the broker answers to each outcome is decided by the caller (`link::handshake`).

use bytes::{BufMut, BytesMut};
use rumqttc::mqttbytes::v4;

use super::{frame, packets, Error, PacketKind, ProtocolVersion};

/// A decoded CONNECT, in the internal (MQTT 5) shape whatever the protocol level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectRequest {
    /// The protocol level the client speaks.
    pub version: ProtocolVersion,
    /// Keep alive, client id, clean start and (MQTT 5) properties.
    pub connect: packets::Connect,
    /// The last will, if any.
    pub will: Option<packets::LastWill>,
    /// User name and password, if any.
    pub login: Option<packets::Login>,
}

/// Why a connection's first bytes are not an acceptable CONNECT.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HandshakeError {
    /// The first packet is not a CONNECT; the connection is closed without a reply.
    #[error("first packet is not connect")]
    NotConnect,
    /// An unknown protocol name or level; answered with CONNACK return code 1.
    #[error("unsupported protocol {name:?} level {level}")]
    UnsupportedProtocol {
        /// The protocol name the client sent (lossy UTF-8).
        name: String,
        /// The protocol level the client sent.
        level: u8,
    },
    /// A CONNECT of a known level that the codec rejects.
    #[error("malformed connect: {reason}")]
    Malformed {
        /// The level read from the variable header.
        version: ProtocolVersion,
        /// What is wrong.
        reason: String,
    },
    /// The fixed header is bad (size, remaining length).
    #[error(transparent)]
    Frame(Error),
}

/// Decodes the CONNECT at the start of `buf`, consuming it.
///
/// Returns `Ok(None)` while more bytes are needed. Cancel-safe: nothing is consumed until the whole
/// packet is buffered.
pub fn decode_connect(buf: &mut BytesMut, max_size: usize) -> Result<Option<ConnectRequest>, HandshakeError> {
    if let Some(&byte1) = buf.first() {
        if byte1 >> 4 != 1 {
            return Err(HandshakeError::NotConnect);
        }
    }
    let Some(frame) = frame::peek_frame(buf, max_size).map_err(HandshakeError::Frame)? else {
        return Ok(None);
    };
    if frame.kind != PacketKind::Connect {
        return Err(HandshakeError::NotConnect);
    }
    let mut bytes = buf.split_to(frame.len());
    let (name, level) = protocol_of(&bytes[frame.header_len..]).ok_or(HandshakeError::Malformed {
        version: ProtocolVersion::V311,
        reason: "truncated variable header".to_owned(),
    })?;
    let version = match (name.as_slice(), level) {
        (b"MQTT", 4) => ProtocolVersion::V311,
        (b"MQTT", 5) => ProtocolVersion::V5,
        (b"MQIsdp", 3) => ProtocolVersion::V31,
        _ => {
            return Err(HandshakeError::UnsupportedProtocol {
                name: String::from_utf8_lossy(&name).into_owned(),
                level,
            })
        }
    };
    let flags_at = frame.header_len + 2 + name.len() + 1;
    let malformed = |reason: String| HandshakeError::Malformed { version, reason };
    match bytes.get(flags_at) {
        Some(flags) if flags & 1 != 0 => return Err(malformed("reserved connect flag set".to_owned())),
        Some(_) => {}
        None => return Err(malformed("truncated variable header".to_owned())),
    }
    if version == ProtocolVersion::V31 {
        bytes = rewrite_v31(&bytes, frame.header_len, frame.remaining_len);
    }
    if version.is_v5() {
        match packets::Packet::read(&mut bytes, None) {
            Ok(packets::Packet::Connect(connect, will, login)) => {
                Ok(Some(ConnectRequest { version, connect, will, login }))
            }
            Ok(other) => Err(malformed(format!("unexpected packet {other:?}"))),
            Err(e) => Err(malformed(e.to_string())),
        }
    } else {
        match v4::Packet::read(&mut bytes, usize::MAX) {
            Ok(v4::Packet::Connect(connect)) => Ok(Some(from_v4(version, connect))),
            Ok(other) => Err(malformed(format!("unexpected packet {other:?}"))),
            Err(e) => Err(malformed(e.to_string())),
        }
    }
}

/// Reads the protocol name and level at the start of the variable header.
fn protocol_of(var_header: &[u8]) -> Option<(Vec<u8>, u8)> {
    let len = u16::from_be_bytes([*var_header.first()?, *var_header.get(1)?]) as usize;
    let name = var_header.get(2..2 + len)?.to_vec();
    let level = *var_header.get(2 + len)?;
    Some((name, level))
}

/// Turns an MQTT 3.1 CONNECT (`MQIsdp`, level 3) into the 3.1.1 form (`MQTT`, level 4).
fn rewrite_v31(packet: &[u8], header_len: usize, remaining_len: usize) -> BytesMut {
    // "MQIsdp" is two bytes longer than "MQTT"; everything after the level byte is unchanged.
    let rest = &packet[header_len + 2 + 6 + 1..];
    let new_len = remaining_len - 2;
    let mut out = BytesMut::with_capacity(packet.len());
    out.put_u8(packet[0]);
    let mut x = new_len;
    loop {
        let mut byte = (x % 128) as u8;
        x /= 128;
        if x > 0 {
            byte |= 0x80;
        }
        out.put_u8(byte);
        if x == 0 {
            break;
        }
    }
    out.put_slice(&[0, 4, b'M', b'Q', b'T', b'T', 4]);
    out.put_slice(rest);
    out
}

fn from_v4(version: ProtocolVersion, c: v4::Connect) -> ConnectRequest {
    let will = c.last_will.map(|w| packets::LastWill {
        topic: bytes::Bytes::from(w.topic),
        message: w.message,
        qos: super::QoS::from_v4(w.qos).to_v5(),
        retain: w.retain,
        properties: None,
    });
    let login = c.login.map(|l| packets::Login { username: l.username, password: l.password });
    ConnectRequest {
        version,
        connect: packets::Connect {
            keep_alive: c.keep_alive,
            client_id: c.client_id,
            clean_start: c.clean_session,
            properties: None,
        },
        will,
        login,
    }
}
