//! The fixed header: packet type, flag bits and remaining length, checked before the codec runs.
//!
//! The codecs do not check reserved flag bits, and check a size limit only against the remaining
//! length; this module does both for every packet, so that a bad header is refused as soon as its
//! first bytes arrive, before the rest of a (possibly huge) packet is buffered.

use super::Error;

/// The control packet types of MQTT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PacketKind {
    /// CONNECT (1).
    Connect,
    /// CONNACK (2).
    ConnAck,
    /// PUBLISH (3).
    Publish,
    /// PUBACK (4).
    PubAck,
    /// PUBREC (5).
    PubRec,
    /// PUBREL (6).
    PubRel,
    /// PUBCOMP (7).
    PubComp,
    /// SUBSCRIBE (8).
    Subscribe,
    /// SUBACK (9).
    SubAck,
    /// UNSUBSCRIBE (10).
    Unsubscribe,
    /// UNSUBACK (11).
    UnsubAck,
    /// PINGREQ (12).
    PingReq,
    /// PINGRESP (13).
    PingResp,
    /// DISCONNECT (14).
    Disconnect,
    /// AUTH (15, MQTT 5 only).
    Auth,
}

/// A fixed header whose whole packet is in the buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The packet type.
    pub kind: PacketKind,
    /// The first byte (type and flags).
    pub byte1: u8,
    /// Length of the fixed header (1 + length of the remaining-length field).
    pub header_len: usize,
    /// The remaining length.
    pub remaining_len: usize,
}

impl Frame {
    /// Size of the whole packet in bytes.
    pub fn len(&self) -> usize {
        self.header_len + self.remaining_len
    }

    /// Whether the packet has no variable header or payload.
    pub fn is_empty(&self) -> bool {
        self.remaining_len == 0
    }
}

/// Checks the fixed header at the start of `buf`.
///
/// Returns `Ok(None)` while more bytes are needed, and an error as soon as the header is known to be
/// bad: a remaining length over four bytes, reserved flag bits, QoS 3, or a packet over `max_size`
/// bytes (checked before its body arrives).
pub fn peek_frame(buf: &[u8], max_size: usize) -> Result<Option<Frame>, Error> {
    let Some(&byte1) = buf.first() else {
        return Ok(None);
    };
    let kind = kind_of(byte1)?;
    check_flags(kind, byte1)?;
    let Some((len_len, remaining_len)) = remaining_length(&buf[1..])? else {
        return Ok(None);
    };
    let header_len = 1 + len_len;
    let size = header_len + remaining_len;
    if size > max_size {
        return Err(Error::PacketTooLarge { size, max: max_size });
    }
    if buf.len() < size {
        return Ok(None);
    }
    Ok(Some(Frame { kind, byte1, header_len, remaining_len }))
}

fn kind_of(byte1: u8) -> Result<PacketKind, Error> {
    let kind = match byte1 >> 4 {
        1 => PacketKind::Connect,
        2 => PacketKind::ConnAck,
        3 => PacketKind::Publish,
        4 => PacketKind::PubAck,
        5 => PacketKind::PubRec,
        6 => PacketKind::PubRel,
        7 => PacketKind::PubComp,
        8 => PacketKind::Subscribe,
        9 => PacketKind::SubAck,
        10 => PacketKind::Unsubscribe,
        11 => PacketKind::UnsubAck,
        12 => PacketKind::PingReq,
        13 => PacketKind::PingResp,
        14 => PacketKind::Disconnect,
        15 => PacketKind::Auth,
        other => return Err(Error::UnexpectedPacketType(other)),
    };
    Ok(kind)
}

fn check_flags(kind: PacketKind, byte1: u8) -> Result<(), Error> {
    let flags = byte1 & 0x0F;
    let ok = match kind {
        PacketKind::Publish => {
            if (flags >> 1) & 0b11 == 0b11 {
                return Err(Error::InvalidQos);
            }
            true
        }
        PacketKind::PubRel | PacketKind::Subscribe | PacketKind::Unsubscribe => flags == 0b0010,
        _ => flags == 0,
    };
    if ok {
        Ok(())
    } else {
        Err(Error::ReservedFlags(byte1 >> 4))
    }
}

/// Decodes the variable byte integer after the first byte: `(bytes used, value)`.
fn remaining_length(buf: &[u8]) -> Result<Option<(usize, usize)>, Error> {
    let mut value = 0usize;
    for (i, byte) in buf.iter().enumerate() {
        if i == 4 {
            return Err(Error::MalformedRemainingLength);
        }
        value |= ((byte & 0x7F) as usize) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(Some((i + 1, value)));
        }
    }
    if buf.len() >= 4 {
        return Err(Error::MalformedRemainingLength);
    }
    Ok(None)
}
