//! Decoding client packets and encoding control packets for one connection's protocol level.
//!
//! Incoming MQTT 3.x packets are converted to rumqttc's v5 types so the rest of the broker handles a
//! single shape. Outgoing control packets are written in the v5 shape and converted back for 3.x
//! clients. PUBLISH packets to clients go through `publish::encode_publish` instead.

use bytes::{Buf, Bytes, BytesMut};
use rumqttc::mqttbytes::v4;

use super::{frame, packets, Error, PacketKind, ProtocolVersion, QoS};

/// The codec of one established connection.
#[derive(Debug, Clone, Copy)]
pub struct Codec {
    version: ProtocolVersion,
    max_incoming: usize,
}

impl Codec {
    /// A codec for `version` that refuses incoming packets over `max_incoming` bytes.
    pub fn new(version: ProtocolVersion, max_incoming: usize) -> Codec {
        Codec { version, max_incoming }
    }

    /// The protocol level of this connection.
    pub fn version(&self) -> ProtocolVersion {
        self.version
    }

    /// Takes the next whole packet off `buf`; `Ok(None)` while more bytes are needed.
    ///
    /// Cancel-safe: nothing is consumed until a whole packet is buffered.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<packets::Packet>, Error> {
        let Some(frame) = frame::peek_frame(buf, self.max_incoming)? else {
            return Ok(None);
        };
        match frame.kind {
            PacketKind::Connect => return Err(Error::SecondConnect),
            PacketKind::ConnAck
            | PacketKind::SubAck
            | PacketKind::UnsubAck
            | PacketKind::PingResp
            | PacketKind::Auth => return Err(Error::UnexpectedPacketType(frame.byte1 >> 4)),
            _ => {}
        }
        let packet = if self.version.is_v5() { decode_v5(buf, frame)? } else { decode_v4(buf)? };
        check_packet_id(&packet)?;
        Ok(Some(packet))
    }

    /// Appends `packet` to `buf` in this connection's protocol level.
    ///
    /// A packet that does not exist in MQTT 3.x (a server DISCONNECT) writes nothing.
    pub fn encode(&self, packet: &packets::Packet, buf: &mut BytesMut) -> Result<(), Error> {
        let result = if self.version.is_v5() {
            packet.write(buf, None).map(|_| ()).map_err(|e| e.to_string())
        } else {
            match to_v4(packet) {
                Some(p) => p.write(buf, usize::MAX).map(|_| ()).map_err(|e| e.to_string()),
                None => Ok(()),
            }
        };
        result.map_err(Error::Malformed)
    }
}

/// rumqttc's decoders refuse packet id 0 in a QoS 1 or 2 PUBLISH but take it in SUBSCRIBE and
/// UNSUBSCRIBE, which MQTT forbids as well (2.2.1).
fn check_packet_id(packet: &packets::Packet) -> Result<(), Error> {
    match packet {
        packets::Packet::Subscribe(s) if s.pkid == 0 => Err(Error::PacketIdZero("SUBSCRIBE")),
        packets::Packet::Unsubscribe(u) if u.pkid == 0 => Err(Error::PacketIdZero("UNSUBSCRIBE")),
        _ => Ok(()),
    }
}

fn decode_v5(buf: &mut BytesMut, frame: frame::Frame) -> Result<packets::Packet, Error> {
    if frame.kind == PacketKind::Disconnect && frame.remaining_len < 2 {
        // MQTT 5 allows a DISCONNECT without a body (reason 0x00) or with only a reason code;
        // rumqttc refuses both.
        let code = buf.get(frame.header_len).copied().filter(|_| !frame.is_empty());
        buf.advance(frame.len());
        let reason = match code {
            None => packets::DisconnectReasonCode::NormalDisconnection,
            Some(c) => packets::DisconnectReasonCode::try_from(c)
                .map_err(|_| Error::Malformed(format!("disconnect reason code {c:#04x}")))?,
        };
        return Ok(packets::Packet::Disconnect(packets::Disconnect::new(reason)));
    }
    let packet = packets::Packet::read(buf, None).map_err(|e| match e {
        rumqttc::v5::mqttbytes::Error::TopicNotUtf8 => Error::TopicNotUtf8,
        other => Error::Malformed(other.to_string()),
    })?;
    if let packets::Packet::Publish(p) = &packet {
        if std::str::from_utf8(&p.topic).is_err() {
            return Err(Error::TopicNotUtf8);
        }
    }
    Ok(packet)
}

fn decode_v4(buf: &mut BytesMut) -> Result<packets::Packet, Error> {
    let packet = v4::Packet::read(buf, usize::MAX).map_err(|e| match e {
        rumqttc::mqttbytes::Error::TopicNotUtf8 => Error::TopicNotUtf8,
        other => Error::Malformed(other.to_string()),
    })?;
    let packet = match packet {
        v4::Packet::Publish(p) => packets::Packet::Publish(packets::Publish {
            dup: p.dup,
            qos: QoS::from_v4(p.qos).to_v5(),
            retain: p.retain,
            topic: Bytes::from(p.topic),
            pkid: p.pkid,
            payload: p.payload,
            properties: None,
        }),
        v4::Packet::PubAck(p) => packets::Packet::PubAck(packets::PubAck::new(p.pkid, None)),
        v4::Packet::PubRec(p) => packets::Packet::PubRec(packets::PubRec::new(p.pkid, None)),
        v4::Packet::PubRel(p) => packets::Packet::PubRel(packets::PubRel::new(p.pkid, None)),
        v4::Packet::PubComp(p) => packets::Packet::PubComp(packets::PubComp::new(p.pkid, None)),
        v4::Packet::Subscribe(s) => packets::Packet::Subscribe(packets::Subscribe {
            pkid: s.pkid,
            filters: s.filters.into_iter().map(|f| packets::Filter::new(f.path, QoS::from_v4(f.qos).to_v5())).collect(),
            properties: None,
        }),
        v4::Packet::Unsubscribe(u) => {
            packets::Packet::Unsubscribe(packets::Unsubscribe { pkid: u.pkid, filters: u.topics, properties: None })
        }
        v4::Packet::PingReq => packets::Packet::PingReq(packets::PingReq),
        v4::Packet::Disconnect => {
            packets::Packet::Disconnect(packets::Disconnect::new(packets::DisconnectReasonCode::NormalDisconnection))
        }
        other => return Err(Error::Malformed(format!("unexpected packet {other:?}"))),
    };
    Ok(packet)
}

fn to_v4(packet: &packets::Packet) -> Option<v4::Packet> {
    let p = match packet {
        packets::Packet::ConnAck(c) => {
            v4::Packet::ConnAck(v4::ConnAck::new(connack_code_v4(c.code), c.session_present))
        }
        packets::Packet::PubAck(p) => v4::Packet::PubAck(v4::PubAck::new(p.pkid)),
        packets::Packet::PubRec(p) => v4::Packet::PubRec(v4::PubRec::new(p.pkid)),
        packets::Packet::PubRel(p) => v4::Packet::PubRel(v4::PubRel::new(p.pkid)),
        packets::Packet::PubComp(p) => v4::Packet::PubComp(v4::PubComp::new(p.pkid)),
        packets::Packet::SubAck(s) => {
            v4::Packet::SubAck(v4::SubAck::new(s.pkid, s.return_codes.iter().map(|c| suback_code_v4(*c)).collect()))
        }
        packets::Packet::UnsubAck(u) => v4::Packet::UnsubAck(v4::UnsubAck::new(u.pkid)),
        packets::Packet::PingResp(_) => v4::Packet::PingResp,
        packets::Packet::Publish(p) => v4::Packet::Publish(v4::Publish {
            dup: p.dup,
            qos: QoS::from_v5(p.qos).to_v4(),
            retain: p.retain,
            topic: String::from_utf8_lossy(&p.topic).into_owned(),
            pkid: p.pkid,
            payload: p.payload.clone(),
        }),
        _ => return None,
    };
    Some(p)
}

/// Maps an MQTT 5 CONNACK reason to the nearest MQTT 3.1.1 return code.
pub(crate) fn connack_code_v4(code: packets::ConnectReturnCode) -> v4::ConnectReturnCode {
    use packets::ConnectReturnCode as C5;
    match code {
        C5::Success => v4::ConnectReturnCode::Success,
        C5::RefusedProtocolVersion | C5::UnsupportedProtocolVersion => v4::ConnectReturnCode::RefusedProtocolVersion,
        C5::BadClientId | C5::ClientIdentifierNotValid => v4::ConnectReturnCode::BadClientId,
        C5::BadUserNamePassword => v4::ConnectReturnCode::BadUserNamePassword,
        C5::NotAuthorized | C5::Banned | C5::BadAuthenticationMethod => v4::ConnectReturnCode::NotAuthorized,
        _ => v4::ConnectReturnCode::ServiceUnavailable,
    }
}

fn suback_code_v4(code: packets::SubscribeReasonCode) -> v4::SubscribeReasonCode {
    match code {
        packets::SubscribeReasonCode::Success(q) => v4::SubscribeReasonCode::Success(QoS::from_v5(q).to_v4()),
        _ => v4::SubscribeReasonCode::Failure,
    }
}
