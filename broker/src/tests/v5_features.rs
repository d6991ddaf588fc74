//! MQTT 5 features: topic aliases, subscription identifiers and options, properties passed
//! through, maximum packet size both ways, receive maximum both ways, and the publish rate limit.

use bytes::Bytes;
use rumqttc::v5::mqttbytes::v5::{Filter, PublishProperties, RetainForwardRule, SubscribeProperties};
use rumqttc::v5::mqttbytes::QoS as Q5;
use rumqttc::QoS as Q4;

use super::raw::{connect_props, connected_v4, connected_v5, encode_v5, publish_v5, subscribe_v5, Raw, RawPacket};
use super::support::{start, C4, C5};
use crate::protocol::packets;

fn alias(n: u16) -> Option<PublishProperties> {
    Some(PublishProperties { topic_alias: Some(n), ..Default::default() })
}

#[tokio::test]
async fn topic_alias_from_client_is_resolved_and_invalid_alias_disconnects() {
    let broker = start(|c| c.mqtt.topic_alias_max = 10).await;
    let addr = broker.tcp_addr().expect("tcp");
    let (mut sub, _) = C5::connect(addr, "sub", |_| {}).await;
    sub.subscribe("alias/t", Q5::AtLeastOnce).await;
    let mut raw = connected_v5(addr, "aliaser", None).await;
    raw.send(&publish_v5("alias/t", 0, 0, b"set", alias(3))).await;
    raw.send(&publish_v5("", 0, 0, b"use", alias(3))).await;
    for expected in [&b"set"[..], b"use"] {
        let m = sub.message().await;
        assert_eq!((&m.topic[..], &m.payload[..]), (&b"alias/t"[..], expected));
    }
    raw.send(&publish_v5("alias/t", 0, 0, b"x", alias(11))).await;
    assert_eq!(raw.until_closed().await, [RawPacket { byte1: 0xE0, body: vec![0x94, 0] }]);
}

#[tokio::test]
async fn subscription_identifiers_and_properties_are_passed_through() {
    let broker = start(|_| {}).await;
    let addr = broker.tcp_addr().expect("tcp");
    let (mut sub, _) = C5::connect(addr, "sub", |_| {}).await;
    let id = SubscribeProperties { id: Some(42), user_properties: Vec::new() };
    sub.subscribe_filter(Filter::new("props/#", Q5::AtLeastOnce), Some(id)).await;
    let (mut publisher, _) = C5::connect(addr, "pub", |_| {}).await;
    let props = PublishProperties {
        payload_format_indicator: Some(1),
        message_expiry_interval: Some(3600),
        topic_alias: None,
        response_topic: Some("reply/here".to_owned()),
        correlation_data: Some(Bytes::from_static(b"corr")),
        user_properties: vec![("k".to_owned(), "v".to_owned()), ("k".to_owned(), "w".to_owned())],
        subscription_identifiers: Vec::new(),
        content_type: Some("text/plain".to_owned()),
    };
    publisher.publish_props("props/a", Q5::AtLeastOnce, false, b"hello", props.clone()).await;
    let got = sub.message().await.properties.expect("properties");
    assert_eq!(got.subscription_identifiers, [42]);
    assert_eq!(got.user_properties, props.user_properties);
    assert_eq!(got.content_type, props.content_type);
    assert_eq!(got.correlation_data, props.correlation_data);
    assert_eq!(got.response_topic, props.response_topic);
    assert_eq!(got.payload_format_indicator, Some(1));
    assert!(got.message_expiry_interval.is_some_and(|e| e <= 3600 && e > 3000));
}

#[tokio::test]
async fn no_local_retain_as_published_and_retain_handling() {
    let broker = start(|_| {}).await;
    let addr = broker.tcp_addr().expect("tcp");
    let (mut me, _) = C5::connect(addr, "me", |_| {}).await;
    let mut no_local = Filter::new("nl", Q5::AtLeastOnce);
    no_local.nolocal = true;
    me.subscribe_filter(no_local, None).await;
    me.publish("nl", Q5::AtLeastOnce, false, b"mine").await;
    let (mut other, _) = C5::connect(addr, "other", |_| {}).await;
    other.publish("nl", Q5::AtLeastOnce, false, b"theirs").await;
    assert_eq!(&me.message().await.payload[..], b"theirs");

    other.publish("rt", Q5::AtLeastOnce, true, b"retained").await;
    let mut never = Filter::new("rt", Q5::AtLeastOnce);
    never.retain_forward_rule = RetainForwardRule::Never;
    never.preserve_retain = true;
    me.subscribe_filter(never, None).await;
    other.publish("rt", Q5::AtLeastOnce, true, b"live-retained").await;
    let m = me.message().await;
    assert_eq!((&m.payload[..], m.retain), (&b"live-retained"[..], true));

    let (mut fresh, _) = C5::connect(addr, "fresh", |_| {}).await;
    let mut on_new = Filter::new("rt", Q5::AtLeastOnce);
    on_new.retain_forward_rule = RetainForwardRule::OnNewSubscribe;
    fresh.subscribe_filter(on_new.clone(), None).await;
    assert_eq!(&fresh.message().await.payload[..], b"live-retained");
    fresh.subscribe_filter(on_new, None).await;
    other.publish("rt", Q5::AtLeastOnce, false, b"sentinel").await;
    assert_eq!(&fresh.message().await.payload[..], b"sentinel");
}

#[tokio::test]
async fn no_local_suppresses_only_the_publishers_own_copy() {
    // Request/response on one topic: each side subscribes with no local and publishes.
    let broker = start(|_| {}).await;
    let addr = broker.tcp_addr().expect("tcp");
    let (mut a, _) = C5::connect(addr, "requester", |_| {}).await;
    let (mut b, _) = C5::connect(addr, "responder", |_| {}).await;
    for client in [&mut a, &mut b] {
        let mut filter = Filter::new("rpc/chan", Q5::AtLeastOnce);
        filter.nolocal = true;
        client.subscribe_filter(filter, None).await;
    }
    // The publish helpers skip incoming messages while they wait for their acknowledgement, so
    // each side reads before it publishes. A copy of a client's own message would be queued
    // before the other's next message and be read first.
    a.publish("rpc/chan", Q5::AtLeastOnce, false, b"request").await;
    assert_eq!(&b.message().await.payload[..], b"request");
    b.publish("rpc/chan", Q5::AtLeastOnce, false, b"response").await;
    assert_eq!(&a.message().await.payload[..], b"response");
    a.publish("rpc/chan", Q5::ExactlyOnce, false, b"request 2").await;
    assert_eq!(&b.message().await.payload[..], b"request 2");
    b.publish("rpc/chan", Q5::AtMostOnce, false, b"response 2").await;
    assert_eq!(&a.message().await.payload[..], b"response 2");
    a.publish("rpc/chan", Q5::AtLeastOnce, false, b"sentinel").await;
    assert_eq!(&b.message().await.payload[..], b"sentinel");
}

#[tokio::test]
async fn packet_over_the_maximum_size_disconnects_the_sender_only() {
    let broker = start(|c| c.listener.tcp.max_payload_size = 1024).await;
    let addr = broker.tcp_addr().expect("tcp");
    let (mut watcher, _) = C4::connect(addr, "watcher", |_| {}).await;
    watcher.subscribe("big", Q4::AtMostOnce).await;
    let mut v5 = connected_v5(addr, "big5", None).await;
    v5.send(&publish_v5("big", 0, 0, &[0u8; 2000], None)).await;
    assert_eq!(v5.until_closed().await, [RawPacket { byte1: 0xE0, body: vec![0x95, 0] }]);
    let mut v4 = connected_v4(addr, "big4").await;
    v4.send(&[0x30, 0xD0, 0x0F, 0, 3, b'b', b'i', b'g']).await;
    assert_eq!(v4.until_closed().await, []);
    let (mut publisher, _) = C4::connect(addr, "pub", |_| {}).await;
    publisher.publish("big", Q4::AtLeastOnce, false, b"small").await;
    assert_eq!(&watcher.message().await.payload[..], b"small");
}

#[tokio::test]
async fn messages_over_the_clients_maximum_packet_size_are_not_sent_to_it() {
    let broker = start(|_| {}).await;
    let addr = broker.tcp_addr().expect("tcp");
    let (mut small, _) = C5::connect(addr, "small", |o| {
        o.set_max_packet_size(Some(200));
    })
    .await;
    small.subscribe("sz", Q5::AtLeastOnce).await;
    let (mut publisher, _) = C5::connect(addr, "pub", |_| {}).await;
    publisher.publish("sz", Q5::AtLeastOnce, false, &[7u8; 500]).await;
    publisher.publish("sz", Q5::AtLeastOnce, false, b"fits").await;
    assert_eq!(&small.message().await.payload[..], b"fits");
}

#[tokio::test]
async fn client_receive_maximum_limits_unacknowledged_deliveries() {
    let broker = start(|_| {}).await;
    let addr = broker.tcp_addr().expect("tcp");
    let mut props = connect_props();
    props.receive_maximum = Some(1);
    let mut raw = connected_v5(addr, "slow", Some(props)).await;
    raw.send(&subscribe_v5(1, "rm", 1)).await;
    assert_eq!(raw.read().await.expect("suback").kind(), 9);
    let (mut publisher, _) = C5::connect(addr, "pub", |_| {}).await;
    publisher.publish("rm", Q5::AtLeastOnce, false, b"1").await;
    publisher.publish("rm", Q5::AtLeastOnce, false, b"2").await;
    let first = raw.read().await.expect("first publish");
    assert_eq!((first.kind(), first.body.last()), (3, Some(&b'1')));
    raw.send(&[0xC0, 0x00]).await; // PINGREQ: answered before a second PUBLISH may go out
    assert_eq!(raw.read().await.expect("pingresp").kind(), 13);
    raw.send(&[0x40, 0x02, first.body[4], first.body[5]]).await; // PUBACK
    let second = raw.read().await.expect("second publish");
    assert_eq!((second.kind(), second.body.last()), (3, Some(&b'2')));
}

#[tokio::test]
async fn resumed_session_resends_within_the_clients_new_receive_maximum() {
    let broker = start(|_| {}).await;
    let addr = broker.tcp_addr().expect("tcp");
    let connect = |clean_start: bool, receive_maximum: u16| {
        let mut props = connect_props();
        props.session_expiry_interval = Some(300);
        props.receive_maximum = Some(receive_maximum);
        let c =
            packets::Connect { keep_alive: 60, client_id: "resumer".to_owned(), clean_start, properties: Some(props) };
        encode_v5(&packets::Packet::Connect(c, None, None))
    };
    let mut raw = Raw::connect(addr).await;
    raw.send(&connect(true, 3)).await;
    assert_eq!(raw.read().await.expect("connack").body[..2], [0, 0]);
    raw.send(&subscribe_v5(1, "rs", 1)).await;
    assert_eq!(raw.read().await.expect("suback").kind(), 9);
    let (mut publisher, _) = C5::connect(addr, "pub", |_| {}).await;
    for payload in [b"1", b"2", b"3"] {
        publisher.publish("rs", Q5::AtLeastOnce, false, payload).await;
    }
    for expected in [b'1', b'2', b'3'] {
        let p = raw.read().await.expect("publish");
        assert_eq!((p.byte1, p.body.last()), (0x32, Some(&expected)));
    }
    // Gone without acknowledging; back with a receive maximum of 1.
    drop(raw);
    let mut raw = Raw::connect(addr).await;
    raw.send(&connect(false, 1)).await;
    assert_eq!(raw.read().await.expect("connack").body[..2], [1, 0], "session present");
    for expected in [b'1', b'2', b'3'] {
        let p = raw.read().await.expect("re-sent publish");
        assert_eq!((p.byte1, p.body.last()), (0x3A, Some(&expected)), "PUBLISH QoS 1 with DUP");
        raw.send(&[0xC0, 0x00]).await; // PINGREQ: answered before another PUBLISH may go out
        assert_eq!(raw.read().await.expect("pingresp").kind(), 13);
        raw.send(&[0x40, 0x02, p.body[4], p.body[5]]).await; // PUBACK
    }
    publisher.publish("rs", Q5::AtLeastOnce, false, b"4").await;
    let p = raw.read().await.expect("new publish");
    assert_eq!((p.byte1, p.body.last()), (0x32, Some(&b'4')));
}

#[tokio::test]
async fn exceeding_the_brokers_receive_maximum_disconnects() {
    let broker = start(|c| c.mqtt.max_in_flight_msgs = 2).await;
    let mut raw = connected_v5(broker.tcp_addr().expect("tcp"), "flood", None).await;
    for pkid in 1..=3 {
        raw.send(&publish_v5("q2", 2, pkid, b"x", None)).await;
    }
    let packets = raw.until_closed().await;
    assert_eq!(packets.last(), Some(&RawPacket { byte1: 0xE0, body: vec![0x93, 0] }));
    assert_eq!(packets.iter().filter(|p| p.kind() == 5).count(), 2, "two PUBRECs: {packets:?}");
}

#[tokio::test]
async fn publish_rate_limit_disconnects_the_offender_and_spares_others() {
    let broker = start(|c| {
        c.mqtt.incoming_rate_limit.enabled = true;
        c.mqtt.incoming_rate_limit.config = "2:3600".to_owned();
    })
    .await;
    let addr = broker.tcp_addr().expect("tcp");
    let (mut watcher, _) = C4::connect(addr, "watcher", |_| {}).await;
    watcher.subscribe("rl", Q4::AtMostOnce).await;
    let mut fast = connected_v5(addr, "fast", None).await;
    for _ in 0..3 {
        fast.send(&publish_v5("rl", 0, 0, b"spam", None)).await;
    }
    let packets = fast.until_closed().await;
    assert_eq!(packets, [RawPacket { byte1: 0xE0, body: vec![0x96, 0] }]);
    let (mut polite, _) = C4::connect(addr, "polite", |_| {}).await;
    polite.publish("rl", Q4::AtLeastOnce, false, b"ok").await;
    let mut seen = Vec::new();
    loop {
        let m = watcher.message().await;
        seen.push(m.payload.clone());
        if &m.payload[..] == b"ok" {
            break;
        }
    }
    assert_eq!(seen.len(), 3, "two allowed spams and the polite message: {seen:?}");
}

/// A raw packet decoded by rumqttc's v5 reader.
pub(super) fn decode_v5(p: &RawPacket) -> rumqttc::v5::mqttbytes::v5::Packet {
    let mut buf = bytes::BytesMut::new();
    buf.extend_from_slice(&[p.byte1]);
    let mut len = p.body.len();
    loop {
        let byte = (len % 128) as u8;
        len /= 128;
        buf.extend_from_slice(&[if len > 0 { byte | 0x80 } else { byte }]);
        if len == 0 {
            break;
        }
    }
    buf.extend_from_slice(&p.body);
    rumqttc::v5::mqttbytes::v5::Packet::read(&mut buf, None).expect("decodes")
}

#[tokio::test]
async fn topic_aliases_to_the_client_within_its_maximum_for_long_topics() {
    let broker = start(|c| c.mqtt.min_length_for_alias_replacement = 10).await;
    let addr = broker.tcp_addr().expect("tcp");
    let props = rumqttc::v5::mqttbytes::v5::ConnectProperties { topic_alias_max: Some(2), ..connect_props() };
    let mut raw = connected_v5(addr, "aliased", Some(props)).await;
    raw.send(&subscribe_v5(1, "alias-out/#", 0)).await;
    assert_eq!(raw.read().await.expect("suback").kind(), 9);
    let (mut plain, _) = C5::connect(addr, "plain", |_| {}).await;
    plain.subscribe("alias-out/#", Q5::AtMostOnce).await;
    let (mut publisher, _) = C5::connect(addr, "pub", |_| {}).await;
    // (topic published, topic on the wire, alias on the wire)
    let expected: [(&str, &str, Option<u16>); 6] = [
        ("alias-out/one", "alias-out/one", Some(1)),
        ("alias-out/one", "", Some(1)),
        ("alias-out", "alias-out", None), // not longer than 10
        ("alias-out/two", "alias-out/two", Some(2)),
        ("alias-out/three", "alias-out/three", None), // the client allows two
        ("alias-out/two", "", Some(2)),
    ];
    for (i, (topic, _, _)) in expected.iter().enumerate() {
        publisher.publish(topic, Q5::AtMostOnce, false, format!("m{i}").as_bytes()).await;
    }
    for (i, (topic, wire_topic, wire_alias)) in expected.iter().enumerate() {
        let rumqttc::v5::mqttbytes::v5::Packet::Publish(p) = decode_v5(&raw.read().await.expect("publish")) else {
            panic!("expected a publish");
        };
        let alias = p.properties.and_then(|props| props.topic_alias);
        assert_eq!(
            (&p.topic[..], alias, &p.payload[..]),
            (wire_topic.as_bytes(), *wire_alias, format!("m{i}").as_bytes())
        );
        // A client that did not allow aliases gets full topics and none.
        let m = plain.message().await;
        assert_eq!((&m.topic[..], m.properties.and_then(|p| p.topic_alias)), (topic.as_bytes(), None));
    }
}
