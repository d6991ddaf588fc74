//! Encoding PUBLISH packets to subscribers, for every protocol level.
//!
//! Written by hand rather than through rumqttc's `Publish` so that each subscriber's packet is built
//! straight from the shared `PublishedMessage` without cloning its topic or properties.
//! Incoming PUBLISH packets are decoded by the codec, not here.

use bytes::{BufMut, BytesMut};

use super::{ProtocolVersion, QoS};
use crate::message::PublishedMessage;

/// One PUBLISH to one subscriber.
#[derive(Debug, Clone, Copy)]
pub struct OutgoingPublish<'a> {
    /// The message.
    pub msg: &'a PublishedMessage,
    /// The QoS of this delivery (the minimum of the message's and the subscription's).
    pub qos: QoS,
    /// The RETAIN flag of this delivery.
    pub retain: bool,
    /// Whether this is a re-delivery.
    pub dup: bool,
    /// The packet id (ignored for QoS 0).
    pub pkid: u16,
    /// Subscription identifiers of the matching subscriptions (MQTT 5).
    pub subscription_ids: &'a [usize],
    /// The message expiry interval left (MQTT 5).
    pub message_expiry: Option<u32>,
    /// A topic alias for this topic (MQTT 5, broker to client).
    pub topic_alias: Option<u16>,
    /// Whether the topic name is written; false only with a `topic_alias` the client already knows.
    pub with_topic: bool,
}

/// The size in bytes of the encoded packet, fixed header included.
pub fn publish_size(version: ProtocolVersion, p: &OutgoingPublish<'_>) -> usize {
    let remaining = remaining_len(version, p);
    1 + var_int_len(remaining) + remaining
}

/// Appends the encoded packet to `buf`.
pub fn encode_publish(version: ProtocolVersion, p: &OutgoingPublish<'_>, buf: &mut BytesMut) {
    let remaining = remaining_len(version, p);
    buf.reserve(1 + var_int_len(remaining) + remaining);
    let byte1 = 0x30 | (u8::from(p.dup) << 3) | ((p.qos as u8) << 1) | u8::from(p.retain);
    buf.put_u8(byte1);
    put_var_int(buf, remaining);
    put_str(buf, topic(p));
    if p.qos != QoS::AtMostOnce {
        buf.put_u16(p.pkid);
    }
    if version.is_v5() {
        put_var_int(buf, properties_len(p));
        put_properties(buf, p);
    }
    buf.put_slice(&p.msg.payload);
}

fn remaining_len(version: ProtocolVersion, p: &OutgoingPublish<'_>) -> usize {
    let mut len = 2 + topic(p).len() + p.msg.payload.len();
    if p.qos != QoS::AtMostOnce {
        len += 2;
    }
    if version.is_v5() {
        let props = properties_len(p);
        len += var_int_len(props) + props;
    }
    len
}

fn topic<'a>(p: &OutgoingPublish<'a>) -> &'a [u8] {
    if p.with_topic {
        p.msg.topic.as_bytes()
    } else {
        &[]
    }
}

fn properties_len(p: &OutgoingPublish<'_>) -> usize {
    let m = p.msg;
    let mut len = 0;
    if p.topic_alias.is_some() {
        len += 3;
    }
    if m.payload_format_indicator.is_some() {
        len += 2;
    }
    if p.message_expiry.is_some() {
        len += 5;
    }
    if let Some(ct) = &m.content_type {
        len += 3 + ct.len();
    }
    if let Some(rt) = &m.response_topic {
        len += 3 + rt.len();
    }
    if let Some(cd) = &m.correlation_data {
        len += 3 + cd.len();
    }
    for id in p.subscription_ids {
        len += 1 + var_int_len(*id);
    }
    for (k, v) in &m.user_properties {
        len += 5 + k.len() + v.len();
    }
    len
}

fn put_properties(buf: &mut BytesMut, p: &OutgoingPublish<'_>) {
    let m = p.msg;
    if let Some(pfi) = m.payload_format_indicator {
        buf.put_u8(0x01);
        buf.put_u8(pfi);
    }
    if let Some(expiry) = p.message_expiry {
        buf.put_u8(0x02);
        buf.put_u32(expiry);
    }
    if let Some(ct) = &m.content_type {
        buf.put_u8(0x03);
        put_str(buf, ct.as_bytes());
    }
    if let Some(alias) = p.topic_alias {
        buf.put_u8(0x23);
        buf.put_u16(alias);
    }
    if let Some(rt) = &m.response_topic {
        buf.put_u8(0x08);
        put_str(buf, rt.as_bytes());
    }
    if let Some(cd) = &m.correlation_data {
        buf.put_u8(0x09);
        put_str(buf, cd);
    }
    for id in p.subscription_ids {
        buf.put_u8(0x0B);
        put_var_int(buf, *id);
    }
    for (k, v) in &m.user_properties {
        buf.put_u8(0x26);
        put_str(buf, k.as_bytes());
        put_str(buf, v.as_bytes());
    }
}

/// Writes a two-byte length and the bytes. Lengths over 65535 cannot come from a decoded packet.
fn put_str(buf: &mut BytesMut, s: &[u8]) {
    buf.put_u16(u16::try_from(s.len()).unwrap_or(u16::MAX));
    buf.put_slice(&s[..s.len().min(usize::from(u16::MAX))]);
}

fn var_int_len(value: usize) -> usize {
    match value {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

fn put_var_int(buf: &mut BytesMut, mut value: usize) {
    loop {
        let mut byte = (value % 128) as u8;
        value /= 128;
        if value > 0 {
            byte |= 0x80;
        }
        buf.put_u8(byte);
        if value == 0 {
            break;
        }
    }
}
