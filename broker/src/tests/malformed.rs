//! Malformed input, one test per class: each bad packet is sent by an MQTT 3.1.1 and an MQTT 5
//! client. The 3.1.1 client is closed without a reply (3.1.1 has no server DISCONNECT), the 5.0
//! client gets DISCONNECT with the reason code, and a third client keeps being served.

use rumqttc::QoS as Q4;

use super::raw::{connect_v4, connected_v4, connected_v5, Raw, RawPacket};
use super::support::{start, C4};

/// DISCONNECT with a reason code and no properties.
fn disconnect(code: u8) -> RawPacket {
    RawPacket { byte1: 0xE0, body: vec![code, 0] }
}

/// Sends `bad` after a valid CONNECT at both protocol levels, then checks another client still
/// gets messages.
async fn check(bad: &[u8], v5_code: u8) {
    check_each(bad, bad, v5_code).await;
}

/// As `check`, for packets whose bytes differ between the levels (MQTT 5 adds properties).
async fn check_each(bad_v4: &[u8], bad_v5: &[u8], v5_code: u8) {
    let broker = start(|_| {}).await;
    let addr = broker.tcp_addr().expect("tcp");
    let (mut observer, _) = C4::connect(addr, "observer", |_| {}).await;
    observer.subscribe("alive", Q4::AtLeastOnce).await;

    let mut v4 = connected_v4(addr, "bad4").await;
    v4.send(bad_v4).await;
    assert_eq!(v4.until_closed().await, [], "3.1.1 client is closed without a reply");
    let mut v5 = connected_v5(addr, "bad5", None).await;
    v5.send(bad_v5).await;
    assert_eq!(v5.until_closed().await, [disconnect(v5_code)]);

    let (mut publisher, _) = C4::connect(addr, "publisher", |_| {}).await;
    publisher.publish("alive", Q4::AtLeastOnce, false, b"yes").await;
    assert_eq!(&observer.message().await.payload[..], b"yes");
}

#[tokio::test]
async fn remaining_length_over_four_bytes() {
    check(&[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01], 0x81).await;
}

#[tokio::test]
async fn topic_that_is_not_utf8() {
    // PUBLISH QoS 0, topic length 2, bytes C3 28 (invalid UTF-8), then 00 78: an empty property
    // list and payload "x" for MQTT 5, a two-byte payload for 3.1.1.
    check(&[0x30, 0x06, 0x00, 0x02, 0xC3, 0x28, 0x00, b'x'], 0x81).await;
}

#[tokio::test]
async fn topic_with_wildcard() {
    // As above with topic "a+".
    check(&[0x30, 0x06, 0x00, 0x02, b'a', b'+', 0x00, b'x'], 0x90).await;
}

#[tokio::test]
async fn second_connect() {
    check(&connect_v4("again", 60), 0x82).await;
}

#[tokio::test]
async fn reserved_flag_bits_in_subscribe() {
    // SUBSCRIBE must have flags 0010; here 0000. Packet id 1, filter "a", QoS 0.
    check(&[0x80, 0x06, 0x00, 0x01, 0x00, 0x01, b'a', 0x00], 0x81).await;
}

#[tokio::test]
async fn reserved_flag_bits_in_pingreq() {
    check(&[0xC1, 0x00], 0x81).await;
}

#[tokio::test]
async fn publish_with_qos_3() {
    check(&[0x36, 0x05, 0x00, 0x01, b'a', 0x00, 0x01], 0x81).await;
}

#[tokio::test]
async fn packet_id_zero_on_qos_1_publish() {
    check(&[0x32, 0x05, 0x00, 0x01, b'a', 0x00, 0x00], 0x81).await;
}

#[tokio::test]
async fn packet_id_zero_on_subscribe() {
    check_each(
        &[0x82, 0x06, 0x00, 0x00, 0x00, 0x01, b'a', 0x00], // packet id 0, filter "a", QoS 0
        &[0x82, 0x07, 0x00, 0x00, 0x00, 0x00, 0x01, b'a', 0x00], // packet id 0, no properties, "a", options 0
        0x82,
    )
    .await;
}

#[tokio::test]
async fn packet_id_zero_on_unsubscribe() {
    check_each(
        &[0xA2, 0x05, 0x00, 0x00, 0x00, 0x01, b'a'],       // packet id 0, filter "a"
        &[0xA2, 0x06, 0x00, 0x00, 0x00, 0x00, 0x01, b'a'], // packet id 0, no properties, filter "a"
        0x82,
    )
    .await;
}

#[tokio::test]
async fn packet_type_only_a_server_sends() {
    // CONNACK from a client.
    check(&[0x20, 0x02, 0x00, 0x00], 0x82).await;
}

#[tokio::test]
async fn packet_type_zero() {
    check(&[0x00, 0x00], 0x82).await;
}

#[tokio::test]
async fn first_packet_is_not_connect() {
    let broker = start(|_| {}).await;
    let addr = broker.tcp_addr().expect("tcp");
    let (mut observer, _) = C4::connect(addr, "observer", |_| {}).await;
    observer.subscribe("alive", Q4::AtLeastOnce).await;
    for bad in [&[0xC0, 0x00][..], &[0x30, 0x03, 0x00, 0x01, b'a'], &[0xFF, 0xFF, 0xFF]] {
        let mut raw = Raw::connect(addr).await;
        raw.send(bad).await;
        assert_eq!(raw.until_closed().await, [], "{bad:?}");
    }
    let (mut publisher, _) = C4::connect(addr, "publisher", |_| {}).await;
    publisher.publish("alive", Q4::AtLeastOnce, false, b"yes").await;
    assert_eq!(&observer.message().await.payload[..], b"yes");
}

#[tokio::test]
async fn truncated_connect_is_refused_without_crashing() {
    let broker = start(|_| {}).await;
    let addr = broker.tcp_addr().expect("tcp");
    let mut raw = Raw::connect(addr).await;
    // CONNECT whose client id length (0x00FF) runs past the end of the packet.
    raw.send(&[0x10, 0x0E, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3C, 0x00, 0xFF, b'a', b'b']).await;
    assert_eq!(raw.until_closed().await, []);
    let mut raw = Raw::connect(addr).await;
    // The same with level 5: MQTT 5 clients get CONNACK 0x81.
    raw.send(&[0x10, 0x0F, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x02, 0x00, 0x3C, 0x00, 0x00, 0xFF, b'a', b'b'])
        .await;
    assert_eq!(raw.until_closed().await, [RawPacket { byte1: 0x20, body: vec![0, 0x81, 0] }]);
    C4::connect(addr, "fine", |_| {}).await;
}
