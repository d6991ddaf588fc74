//! Protocol tests as data: fixed headers, CONNECT detection, and PUBLISH encoding checked against
//! rumqttc's decoders.

use bytes::{Bytes, BytesMut};

use super::*;
use crate::message::PublishedMessage;

fn check_frame(bytes: &[u8], max: usize, expected: Result<Option<(PacketKind, usize)>, Error>) {
    let got = peek_frame(bytes, max).map(|f| f.map(|f| (f.kind, f.len())));
    assert_eq!(got, expected, "{bytes:02x?}");
}

#[test]
fn frame_pingreq() {
    check_frame(&[0xC0, 0x00], 100, Ok(Some((PacketKind::PingReq, 2))));
}

#[test]
fn frame_needs_more_bytes() {
    check_frame(&[0x30], 100, Ok(None));
    check_frame(&[0x30, 0x80], 100, Ok(None));
    check_frame(&[0x30, 0x03, 0x00], 100, Ok(None));
}

#[test]
fn frame_two_byte_remaining_length() {
    // 0x80 0x01 = 128.
    let mut packet = vec![0x30, 0x80, 0x01];
    packet.resize(3 + 128, 0);
    check_frame(&packet, 1000, Ok(Some((PacketKind::Publish, 131))));
}

#[test]
fn frame_remaining_length_over_four_bytes() {
    check_frame(&[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01], 100, Err(Error::MalformedRemainingLength));
    check_frame(&[0x30, 0xFF, 0xFF, 0xFF, 0xFF], 100, Err(Error::MalformedRemainingLength));
}

#[test]
fn frame_too_large_is_refused_before_the_body_arrives() {
    check_frame(&[0x30, 0xE8, 0x07], 100, Err(Error::PacketTooLarge { size: 1003, max: 100 }));
}

#[test]
fn frame_reserved_flags() {
    check_frame(&[0x82, 0x00], 100, Ok(Some((PacketKind::Subscribe, 2))));
    check_frame(&[0x80, 0x00], 100, Err(Error::ReservedFlags(8)));
    check_frame(&[0x62, 0x00], 100, Ok(Some((PacketKind::PubRel, 2))));
    check_frame(&[0x60, 0x00], 100, Err(Error::ReservedFlags(6)));
    check_frame(&[0xE1, 0x00], 100, Err(Error::ReservedFlags(14)));
}

#[test]
fn frame_qos_3_and_type_0() {
    check_frame(&[0x36, 0x00], 100, Err(Error::InvalidQos));
    check_frame(&[0x00, 0x00], 100, Err(Error::UnexpectedPacketType(0)));
}

/// Decodes `bytes` with an established connection's codec and keeps only the error, if any.
fn check_decode_error(version: ProtocolVersion, bytes: &[u8], expected: Option<Error>) {
    let mut buf = BytesMut::from(bytes);
    let got = Codec::new(version, 1000).decode(&mut buf).err();
    assert_eq!(got, expected, "{version:?} {bytes:02x?}");
}

#[test]
fn subscribe_and_unsubscribe_need_a_packet_id() {
    let zero = |kind| Some(Error::PacketIdZero(kind));
    // SUBSCRIBE: packet id 0 (then 1), filter "a", QoS 0.
    check_decode_error(ProtocolVersion::V311, &[0x82, 0x06, 0x00, 0x00, 0x00, 0x01, b'a', 0x00], zero("SUBSCRIBE"));
    check_decode_error(ProtocolVersion::V311, &[0x82, 0x06, 0x00, 0x01, 0x00, 0x01, b'a', 0x00], None);
    // MQTT 5: packet id 0, property length 0, filter "a", options 0.
    check_decode_error(ProtocolVersion::V5, &[0x82, 0x07, 0x00, 0x00, 0x00, 0x00, 0x01, b'a', 0x00], zero("SUBSCRIBE"));
    // UNSUBSCRIBE: packet id 0 (then 1), filter "a".
    check_decode_error(ProtocolVersion::V311, &[0xA2, 0x05, 0x00, 0x00, 0x00, 0x01, b'a'], zero("UNSUBSCRIBE"));
    check_decode_error(ProtocolVersion::V311, &[0xA2, 0x05, 0x00, 0x01, 0x00, 0x01, b'a'], None);
    // MQTT 5: packet id 0, property length 0, filter "a".
    check_decode_error(ProtocolVersion::V5, &[0xA2, 0x06, 0x00, 0x00, 0x00, 0x00, 0x01, b'a'], zero("UNSUBSCRIBE"));
    assert_eq!(Error::PacketIdZero("SUBSCRIBE").reason_code(), reason::PROTOCOL_ERROR);
}

fn connect_bytes(name: &[u8], level: u8) -> Vec<u8> {
    let mut body = vec![0, name.len() as u8];
    body.extend_from_slice(name);
    body.extend_from_slice(&[level, 0x02, 0, 60]); // level, clean session, keep alive 60
    if level == 5 {
        body.push(0); // no properties
    }
    body.extend_from_slice(&[0, 1, b'c']); // client id "c"
    let mut packet = vec![0x10, body.len() as u8];
    packet.extend_from_slice(&body);
    packet
}

fn check_connect(bytes: &[u8], expected: Result<Option<ProtocolVersion>, HandshakeError>) {
    let mut buf = BytesMut::from(bytes);
    let got = decode_connect(&mut buf, 1000).map(|r| r.map(|r| r.version));
    assert_eq!(got, expected, "{bytes:02x?}");
}

#[test]
fn connect_levels() {
    check_connect(&connect_bytes(b"MQTT", 4), Ok(Some(ProtocolVersion::V311)));
    check_connect(&connect_bytes(b"MQTT", 5), Ok(Some(ProtocolVersion::V5)));
    check_connect(&connect_bytes(b"MQIsdp", 3), Ok(Some(ProtocolVersion::V31)));
}

#[test]
fn connect_unsupported_protocols() {
    let unsupported = |name: &str, level| Err(HandshakeError::UnsupportedProtocol { name: name.to_owned(), level });
    check_connect(&connect_bytes(b"MQTT", 3), unsupported("MQTT", 3));
    check_connect(&connect_bytes(b"MQTT", 6), unsupported("MQTT", 6));
    check_connect(&connect_bytes(b"HTTP", 4), unsupported("HTTP", 4));
}

#[test]
fn connect_partial_and_wrong_first_packet() {
    let full = connect_bytes(b"MQTT", 4);
    check_connect(&full[..full.len() - 1], Ok(None));
    check_connect(&[0xC0, 0x00], Err(HandshakeError::NotConnect));
}

#[test]
fn connect_reserved_flag() {
    let mut bytes = connect_bytes(b"MQTT", 4);
    bytes[9] |= 1;
    check_connect(
        &bytes,
        Err(HandshakeError::Malformed {
            version: ProtocolVersion::V311,
            reason: "reserved connect flag set".to_owned(),
        }),
    );
}

#[test]
fn mqtt_3_1_connect_keeps_client_id_and_flags() {
    let mut buf = BytesMut::from(&connect_bytes(b"MQIsdp", 3)[..]);
    let req = decode_connect(&mut buf, 1000).expect("valid").expect("whole");
    assert_eq!((req.connect.client_id.as_str(), req.connect.keep_alive, req.connect.clean_start), ("c", 60, true));
    assert!(buf.is_empty());
}

fn message() -> PublishedMessage {
    PublishedMessage {
        topic: "a/b".to_owned(),
        payload: Bytes::from_static(b"payload"),
        qos: QoS::ExactlyOnce,
        retain: true,
        client_id: "c".into(),
        user_properties: vec![("k".to_owned(), "v".to_owned())],
        content_type: Some("text/plain".to_owned()),
        correlation_data: Some(Bytes::from_static(b"id")),
        response_topic: Some("r".to_owned()),
        message_expiry_interval: Some(10),
        payload_format_indicator: Some(1),
        received_at_ms: 0,
    }
}

fn outgoing(msg: &PublishedMessage, qos: QoS) -> OutgoingPublish<'_> {
    OutgoingPublish {
        msg,
        qos,
        retain: true,
        dup: true,
        pkid: 7,
        subscription_ids: &[3, 300],
        message_expiry: Some(9),
        topic_alias: None,
        with_topic: true,
    }
}

#[test]
fn publish_v5_topic_alias_with_and_without_the_topic() {
    let msg = message();
    for with_topic in [true, false] {
        let p = OutgoingPublish { topic_alias: Some(4), with_topic, ..outgoing(&msg, QoS::AtMostOnce) };
        let mut buf = BytesMut::new();
        encode_publish(ProtocolVersion::V5, &p, &mut buf);
        assert_eq!(buf.len(), publish_size(ProtocolVersion::V5, &p));
        let Ok(packets::Packet::Publish(got)) = packets::Packet::read(&mut buf, None) else {
            panic!("decodes as publish");
        };
        let topic: &[u8] = if with_topic { b"a/b" } else { b"" };
        assert_eq!((&got.topic[..], &got.payload[..]), (topic, &b"payload"[..]));
        let props = got.properties.expect("properties");
        assert_eq!((props.topic_alias, props.subscription_identifiers), (Some(4), vec![3, 300]));
    }
}

#[test]
fn publish_v5_encoding_round_trips_through_rumqttc() {
    let msg = message();
    let p = outgoing(&msg, QoS::AtLeastOnce);
    let mut buf = BytesMut::new();
    encode_publish(ProtocolVersion::V5, &p, &mut buf);
    assert_eq!(buf.len(), publish_size(ProtocolVersion::V5, &p));
    let Ok(packets::Packet::Publish(got)) = packets::Packet::read(&mut buf, None) else {
        panic!("decodes as publish");
    };
    assert_eq!(
        (&got.topic[..], &got.payload[..], got.pkid, got.dup, got.retain),
        (&b"a/b"[..], &b"payload"[..], 7, true, true)
    );
    let props = got.properties.expect("properties");
    assert_eq!(props.subscription_identifiers, [3, 300]);
    assert_eq!(props.message_expiry_interval, Some(9));
    assert_eq!(props.user_properties, msg.user_properties);
    assert_eq!(props.content_type, msg.content_type);
    assert_eq!(props.correlation_data, msg.correlation_data);
    assert_eq!(props.response_topic, msg.response_topic);
    assert_eq!(props.payload_format_indicator, Some(1));
}

#[test]
fn publish_v4_encoding_round_trips_through_rumqttc() {
    let msg = message();
    for qos in [QoS::AtMostOnce, QoS::ExactlyOnce] {
        let p = outgoing(&msg, qos);
        let mut buf = BytesMut::new();
        encode_publish(ProtocolVersion::V311, &p, &mut buf);
        assert_eq!(buf.len(), publish_size(ProtocolVersion::V311, &p));
        let Ok(rumqttc::mqttbytes::v4::Packet::Publish(got)) =
            rumqttc::mqttbytes::v4::Packet::read(&mut buf, usize::MAX)
        else {
            panic!("decodes as publish");
        };
        let pkid = if qos == QoS::AtMostOnce { 0 } else { 7 };
        assert_eq!(
            (got.topic.as_str(), &got.payload[..], got.pkid, QoS::from_v4(got.qos)),
            ("a/b", &b"payload"[..], pkid, qos)
        );
    }
}

#[test]
fn v5_disconnect_without_body_or_with_reason_only() {
    let codec = Codec::new(ProtocolVersion::V5, 100);
    for (bytes, reason) in [
        (&[0xE0, 0x00][..], packets::DisconnectReasonCode::NormalDisconnection),
        (&[0xE0, 0x01, 0x04], packets::DisconnectReasonCode::DisconnectWithWillMessage),
    ] {
        let mut buf = BytesMut::from(bytes);
        let Ok(Some(packets::Packet::Disconnect(d))) = codec.decode(&mut buf) else {
            panic!("decodes as disconnect");
        };
        assert_eq!(d.reason_code, reason);
    }
}

#[test]
fn second_connect_and_server_only_packets_are_protocol_errors() {
    let codec = Codec::new(ProtocolVersion::V311, 100);
    for (bytes, err) in [
        (connect_bytes(b"MQTT", 4), Error::SecondConnect),
        (vec![0x90, 0x03, 0, 1, 0], Error::UnexpectedPacketType(9)),
        (vec![0xD0, 0x00], Error::UnexpectedPacketType(13)),
    ] {
        let mut buf = BytesMut::from(&bytes[..]);
        assert_eq!(codec.decode(&mut buf), Err(err.clone()));
        assert_eq!(err.reason_code(), 0x82);
    }
}
