//! Sessions: persistent sessions with offline queueing (bounded), MQTT 5 session expiry,
//! re-delivery of unacknowledged messages, and last wills (with MQTT 5 will delay).

use std::time::Duration;

use rumqttc::v5::mqttbytes::v5::{LastWillProperties, Packet};
use rumqttc::v5::mqttbytes::QoS as Q5;
use rumqttc::QoS as Q4;

use super::raw::{connect_props, encode_v5, subscribe_v5, Raw};
use super::support::{eventually, start, C4, C5};
use crate::protocol::packets;

/// Memory bounds against clients that never read (resident memory measured in a child process).
mod memory;

#[tokio::test]
async fn v4_persistent_session_queues_offline_messages_up_to_the_limit() {
    let broker = start(|c| c.mqtt.max_queued_messages = 2).await;
    let addr = broker.tcp_addr().expect("tcp");
    let (mut sub, ack) = C4::connect(addr, "p4", |o| {
        o.set_clean_session(false);
    })
    .await;
    assert!(!ack.session_present);
    sub.subscribe("p/t", Q4::AtLeastOnce).await;
    sub.client.disconnect().await.expect("queued");
    sub.closed().await;
    drop(sub);
    let (mut publisher, _) = C4::connect(addr, "pub", |_| {}).await;
    for payload in ["1", "2", "3"] {
        publisher.publish("p/t", Q4::AtLeastOnce, false, payload.as_bytes()).await;
    }
    publisher.publish("p/t", Q4::AtMostOnce, false, b"qos0-offline").await;
    let (mut sub, ack) = C4::connect(addr, "p4", |o| {
        o.set_clean_session(false);
    })
    .await;
    assert!(ack.session_present);
    // The bound keeps the newest messages: the oldest ("1") was dropped for "3".
    assert_eq!(&sub.message().await.payload[..], b"2");
    assert_eq!(&sub.message().await.payload[..], b"3");
    publisher.publish("p/t", Q4::AtLeastOnce, false, b"live").await;
    assert_eq!(&sub.message().await.payload[..], b"live");
}

#[tokio::test]
async fn v5_session_expiry_zero_ends_the_session_and_non_zero_keeps_it() {
    let broker = start(|_| {}).await;
    let addr = broker.tcp_addr().expect("tcp");
    for (expiry, present) in [(0, false), (60, true)] {
        let id = format!("exp{expiry}");
        let (c, _) = C5::connect(addr, &id, |o| {
            o.set_session_expiry_interval(Some(expiry));
        })
        .await;
        drop(c);
        let mut again = C5::spawn(addr, &id, |o| {
            o.set_clean_start(false);
            o.set_session_expiry_interval(Some(expiry));
        });
        let ack = again
            .wait_for("connack", |ev| match ev {
                rumqttc::v5::Event::Incoming(Packet::ConnAck(a)) => Some(a.clone()),
                _ => None,
            })
            .await;
        assert_eq!(ack.session_present, present, "expiry {expiry}");
    }
}

#[tokio::test]
async fn v5_session_ends_after_its_expiry_interval() {
    let broker = start(|_| {}).await;
    let addr = broker.tcp_addr().expect("tcp");
    let (c, _) = C5::connect(addr, "short", |o| {
        o.set_session_expiry_interval(Some(1));
    })
    .await;
    assert_eq!(broker.session_count(), 1);
    drop(c);
    eventually("session expiry", || broker.session_count() == 0).await;
}

#[tokio::test]
async fn unacknowledged_message_is_resent_with_dup_on_resume() {
    let broker = start(|_| {}).await;
    let addr = broker.tcp_addr().expect("tcp");
    let mut props = connect_props();
    props.session_expiry_interval = Some(60);
    let connect = |clean_start| {
        encode_v5(&Packet::Connect(
            packets::Connect {
                keep_alive: 60,
                client_id: "resend".to_owned(),
                clean_start,
                properties: Some(props.clone()),
            },
            None,
            None,
        ))
    };
    let mut raw = Raw::connect(addr).await;
    raw.send(&connect(true)).await;
    raw.read().await.expect("connack");
    raw.send(&subscribe_v5(1, "r/t", 1)).await;
    assert_eq!(raw.read().await.expect("suback").kind(), 9);
    let (mut publisher, _) = C5::connect(addr, "pub", |_| {}).await;
    publisher.publish("r/t", Q5::AtLeastOnce, false, b"once").await;
    let first = raw.read().await.expect("publish");
    assert_eq!(first.byte1, 0x32);
    drop(raw);
    let mut raw = Raw::connect(addr).await;
    raw.send(&connect(false)).await;
    let connack = raw.read().await.expect("connack");
    assert_eq!(connack.body[0], 1, "session present");
    let again = raw.read().await.expect("re-sent publish");
    assert_eq!(again.byte1, 0x3A, "dup flag set");
    assert_eq!(again.body, first.body, "same packet id, topic and payload");
}

#[tokio::test]
async fn will_is_published_on_abnormal_close_and_not_on_normal_disconnect() {
    let broker = start(|_| {}).await;
    let addr = broker.tcp_addr().expect("tcp");
    let (mut sub, _) = C4::connect(addr, "sub", |_| {}).await;
    sub.subscribe("will/#", Q4::AtLeastOnce).await;

    let (polite, _) = C4::connect(addr, "polite", |o| {
        o.set_last_will(rumqttc::LastWill::new("will/polite", "no", Q4::AtLeastOnce, false));
    })
    .await;
    polite.client.disconnect().await.expect("queued");
    let (rude, _) = C4::connect(addr, "rude", |o| {
        o.set_last_will(rumqttc::LastWill::new("will/rude", "bye", Q4::AtLeastOnce, false));
    })
    .await;
    drop(polite);
    drop(rude);
    let m = sub.message().await;
    assert_eq!((m.topic.as_str(), &m.payload[..]), ("will/rude", &b"bye"[..]));

    let (rude5, _) = C5::connect(addr, "rude5", |o| {
        o.set_last_will(packets::LastWill::new("will/rude5", "bye5", Q5::AtLeastOnce, false, None));
    })
    .await;
    drop(rude5);
    assert_eq!(&sub.message().await.payload[..], b"bye5");
}

#[tokio::test]
async fn v5_disconnect_with_will_message_publishes_the_will() {
    let broker = start(|_| {}).await;
    let addr = broker.tcp_addr().expect("tcp");
    let (mut sub, _) = C5::connect(addr, "sub", |_| {}).await;
    sub.subscribe("w", Q5::AtLeastOnce).await;
    let will = packets::LastWill::new("w", "asked", Q5::AtLeastOnce, false, None);
    let connect =
        packets::Connect { keep_alive: 60, client_id: "willing".to_owned(), clean_start: true, properties: None };
    let mut raw = Raw::connect(addr).await;
    raw.send(&encode_v5(&Packet::Connect(connect, Some(will), None))).await;
    raw.read().await.expect("connack");
    raw.send(&[0xE0, 0x01, 0x04]).await;
    assert_eq!(raw.until_closed().await, []);
    assert_eq!(&sub.message().await.payload[..], b"asked");
}

fn delayed_will(topic: &str, payload: &str, delay: u32) -> packets::LastWill {
    let props = LastWillProperties {
        delay_interval: Some(delay),
        payload_format_indicator: None,
        message_expiry_interval: None,
        content_type: None,
        response_topic: None,
        correlation_data: None,
        user_properties: Vec::new(),
    };
    packets::LastWill::new(topic, payload, Q5::AtLeastOnce, false, Some(props))
}

#[tokio::test]
async fn v5_will_delay_publishes_later_and_a_reconnect_cancels_it() {
    let broker = start(|_| {}).await;
    let addr = broker.tcp_addr().expect("tcp");
    let (mut sub, _) = C5::connect(addr, "sub", |_| {}).await;
    sub.subscribe("delayed/#", Q5::AtLeastOnce).await;

    let (comes_back, _) = C5::connect(addr, "back", |o| {
        o.set_session_expiry_interval(Some(60));
        o.set_last_will(delayed_will("delayed/back", "cancelled", 1));
    })
    .await;
    drop(comes_back);
    let (_back, _) = C5::connect(addr, "back", |o| {
        o.set_clean_start(false);
        o.set_session_expiry_interval(Some(60));
    })
    .await;

    let (gone, _) = C5::connect(addr, "gone", |o| {
        o.set_session_expiry_interval(Some(60));
        o.set_last_will(delayed_will("delayed/gone", "late", 1));
    })
    .await;
    drop(gone);
    let m = sub.message().await;
    assert_eq!((&m.topic[..], &m.payload[..]), (&b"delayed/gone"[..], &b"late"[..]));
    // The cancelled will would have been due at the same time as the one above.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (mut publisher, _) = C5::connect(addr, "pub", |_| {}).await;
    publisher.publish("delayed/sentinel", Q5::AtLeastOnce, false, b"sentinel").await;
    assert_eq!(&sub.message().await.payload[..], b"sentinel");
}
