//! Publish and subscribe for MQTT 3.1.1 and 5.0: QoS 0/1/2 both ways, wildcards, `$` topics,
//! shared subscriptions, retained messages and unsubscribe.

use rumqttc::v5::mqttbytes::QoS as Q5;
use rumqttc::QoS as Q4;

use super::support::{start, C4, C5};

/// The broker's Prometheus series after traffic.
mod metrics;

#[tokio::test]
async fn v4_qos_0_1_2_both_directions_with_downgrade() {
    let broker = start(|_| {}).await;
    let addr = broker.tcp_addr().expect("tcp");
    let (mut sub, _) = C4::connect(addr, "sub", |_| {}).await;
    let (mut publisher, _) = C4::connect(addr, "pub", |_| {}).await;
    sub.subscribe("q/2", Q4::ExactlyOnce).await;
    sub.subscribe("q/1", Q4::AtLeastOnce).await;
    for (topic, qos, expected) in [
        ("q/2", Q4::AtMostOnce, Q4::AtMostOnce),
        ("q/2", Q4::AtLeastOnce, Q4::AtLeastOnce),
        ("q/2", Q4::ExactlyOnce, Q4::ExactlyOnce),
        ("q/1", Q4::ExactlyOnce, Q4::AtLeastOnce),
    ] {
        publisher.publish(topic, qos, false, b"m").await;
        let m = sub.message().await;
        assert_eq!((m.topic.as_str(), m.qos, m.retain), (topic, expected, false));
        assert_eq!(&m.payload[..], b"m");
    }
}

#[tokio::test]
async fn v5_qos_0_1_2_both_directions_with_downgrade() {
    let broker = start(|_| {}).await;
    let addr = broker.tcp_addr().expect("tcp");
    let (mut sub, _) = C5::connect(addr, "sub", |_| {}).await;
    let (mut publisher, _) = C5::connect(addr, "pub", |_| {}).await;
    sub.subscribe("q/2", Q5::ExactlyOnce).await;
    sub.subscribe("q/0", Q5::AtMostOnce).await;
    for (topic, qos, expected) in [
        ("q/2", Q5::AtMostOnce, Q5::AtMostOnce),
        ("q/2", Q5::AtLeastOnce, Q5::AtLeastOnce),
        ("q/2", Q5::ExactlyOnce, Q5::ExactlyOnce),
        ("q/0", Q5::ExactlyOnce, Q5::AtMostOnce),
    ] {
        publisher.publish(topic, qos, false, b"m").await;
        let m = sub.message().await;
        assert_eq!((&m.topic[..], m.qos), (topic.as_bytes(), expected));
    }
}

#[tokio::test]
async fn wildcards_match_and_dollar_topics_are_not_matched_by_first_level_wildcards() {
    let broker = start(|_| {}).await;
    let addr = broker.tcp_addr().expect("tcp");
    let (mut hash, _) = C4::connect(addr, "hash", |_| {}).await;
    let (mut plus, _) = C5::connect(addr, "plus", |_| {}).await;
    let (mut publisher, _) = C4::connect(addr, "pub", |_| {}).await;
    hash.subscribe("#", Q4::AtLeastOnce).await;
    plus.subscribe("+/b/+", Q5::AtLeastOnce).await;
    publisher.publish("$SYS/b/c", Q4::AtLeastOnce, false, b"dollar").await;
    publisher.publish("a/x/c", Q4::AtLeastOnce, false, b"no-plus").await;
    publisher.publish("a/b/c", Q4::AtLeastOnce, false, b"both").await;
    assert_eq!(&hash.message().await.payload[..], b"no-plus");
    assert_eq!(&hash.message().await.payload[..], b"both");
    assert_eq!(&plus.message().await.payload[..], b"both");
}

#[tokio::test]
async fn shared_subscription_delivers_each_message_to_one_member_round_robin() {
    let broker = start(|_| {}).await;
    let addr = broker.tcp_addr().expect("tcp");
    let (mut a, _) = C5::connect(addr, "a", |_| {}).await;
    let (mut b, _) = C4::connect(addr, "b", |_| {}).await;
    let (mut publisher, _) = C4::connect(addr, "pub", |_| {}).await;
    a.subscribe("$share/g/jobs/+", Q5::AtLeastOnce).await;
    b.subscribe("$share/g/jobs/+", Q4::AtLeastOnce).await;
    for i in 0..4 {
        publisher.publish("jobs/x", Q4::AtLeastOnce, false, format!("{i}").as_bytes()).await;
    }
    let mut got: Vec<String> = Vec::new();
    for _ in 0..2 {
        got.push(String::from_utf8_lossy(&a.message().await.payload).into_owned());
        got.push(String::from_utf8_lossy(&b.message().await.payload).into_owned());
    }
    got.sort();
    assert_eq!(got, ["0", "1", "2", "3"]);
}

#[tokio::test]
async fn retained_message_is_stored_delivered_on_subscribe_and_cleared_by_empty_payload() {
    let broker = start(|_| {}).await;
    let addr = broker.tcp_addr().expect("tcp");
    let (mut publisher, _) = C4::connect(addr, "pub", |_| {}).await;
    publisher.publish("r/1", Q4::AtLeastOnce, true, b"kept").await;
    publisher.publish("r/2", Q4::AtLeastOnce, true, b"gone").await;
    publisher.publish("r/2", Q4::AtLeastOnce, true, b"").await;
    assert_eq!(broker.router().retained_count(), 1);

    let (mut v4, _) = C4::connect(addr, "v4", |_| {}).await;
    v4.subscribe("r/+", Q4::AtLeastOnce).await;
    let m = v4.message().await;
    assert_eq!((m.topic.as_str(), &m.payload[..], m.retain), ("r/1", &b"kept"[..], true));

    let (mut v5, _) = C5::connect(addr, "v5", |_| {}).await;
    v5.subscribe("r/#", Q5::AtLeastOnce).await;
    let m = v5.message().await;
    assert_eq!((&m.topic[..], &m.payload[..], m.retain), (&b"r/1"[..], &b"kept"[..], true));

    // A live message on an established subscription has RETAIN cleared (no retain-as-published).
    publisher.publish("r/1", Q4::AtLeastOnce, true, b"live").await;
    let m = v4.message().await;
    assert_eq!((&m.payload[..], m.retain), (&b"live"[..], false));
}

#[tokio::test]
async fn unsubscribe_stops_delivery() {
    let broker = start(|_| {}).await;
    let addr = broker.tcp_addr().expect("tcp");
    let (mut sub, _) = C4::connect(addr, "sub", |_| {}).await;
    let (mut publisher, _) = C4::connect(addr, "pub", |_| {}).await;
    sub.subscribe("u/a", Q4::AtLeastOnce).await;
    sub.subscribe("u/b", Q4::AtLeastOnce).await;
    sub.client.unsubscribe("u/a").await.expect("queued");
    sub.wait_for("unsuback", |ev| matches!(ev, rumqttc::Event::Incoming(rumqttc::Packet::UnsubAck(_))).then_some(()))
        .await;
    publisher.publish("u/a", Q4::AtLeastOnce, false, b"dropped").await;
    publisher.publish("u/b", Q4::AtLeastOnce, false, b"sentinel").await;
    assert_eq!(&sub.message().await.payload[..], b"sentinel");
}
