//! CONNECT / CONNACK: reason codes, MQTT 3.1, authentication, the connection limit, session
//! takeover, keep alive and shutdown.

use rumqttc::v5::mqttbytes::v5::{ConnectReturnCode as R5, DisconnectReasonCode as D5};
use rumqttc::v5::mqttbytes::QoS as Q5;
use rumqttc::QoS as Q4;

use super::raw::{connect_v4, connect_v5, connected_v4, connected_v5, Raw, RawPacket};
use super::support::{start, within, C4, C5};
use crate::auth::hash_password;
use crate::Credential;

#[tokio::test]
async fn connack_success_v4_and_v5_with_broker_properties() {
    let broker = start(|c| c.mqtt.topic_alias_max = 7).await;
    let addr = broker.tcp_addr().expect("tcp");
    let (_c4, ack) = C4::connect(addr, "a", |_| {}).await;
    assert_eq!((ack.code, ack.session_present), (rumqttc::ConnectReturnCode::Success, false));
    let (_c5, ack) = C5::connect(addr, "b", |_| {}).await;
    assert_eq!(ack.code, R5::Success);
    let props = ack.properties.expect("v5 connack properties");
    assert_eq!(props.topic_alias_max, Some(7));
    assert_eq!(props.receive_max, Some(1000));
    assert_eq!(props.max_packet_size, Some(65536));
}

#[tokio::test]
async fn v5_empty_client_id_gets_an_assigned_identifier() {
    let broker = start(|_| {}).await;
    let (_c, ack) = C5::connect(broker.tcp_addr().expect("tcp"), "", |_| {}).await;
    let assigned = ack.properties.and_then(|p| p.assigned_client_identifier);
    assert!(assigned.is_some_and(|id| !id.is_empty()));
}

#[tokio::test]
async fn v4_empty_client_id_without_clean_session_is_refused_with_code_2() {
    let broker = start(|_| {}).await;
    let mut raw = Raw::connect(broker.tcp_addr().expect("tcp")).await;
    let mut connect = connect_v4("", 60);
    connect[9] = 0x00; // connect flags: clean session off
    raw.send(&connect).await;
    assert_eq!(raw.until_closed().await, [RawPacket { byte1: 0x20, body: vec![0, 2] }]);
}

#[tokio::test]
async fn client_id_with_nul_is_refused_as_not_valid() {
    let broker = start(|_| {}).await;
    let addr = broker.tcp_addr().expect("tcp");
    let mut raw = Raw::connect(addr).await;
    raw.send(&connect_v4("a\0b", 60)).await;
    // 3.1.1 return code 2, identifier rejected.
    assert_eq!(raw.until_closed().await, [RawPacket { byte1: 0x20, body: vec![0, 2] }]);
    let mut raw = Raw::connect(addr).await;
    raw.send(&connect_v5("\0", 60, None)).await;
    // MQTT 5 reason 0x85 Client Identifier not valid, no properties.
    assert_eq!(raw.until_closed().await, [RawPacket { byte1: 0x20, body: vec![0, 0x85, 0] }]);
    C4::connect(addr, "a-b", |_| {}).await;
}

#[tokio::test]
async fn mqtt_3_1_mqisdp_clients_are_served() {
    let broker = start(|_| {}).await;
    let addr = broker.tcp_addr().expect("tcp");
    let (mut sub, _) = C4::connect(addr, "sub", |_| {}).await;
    sub.subscribe("legacy", Q4::AtMostOnce).await;
    let mut raw = Raw::connect(addr).await;
    let connect: &[u8] = &[
        0x10, 18, // CONNECT, remaining length
        0, 6, b'M', b'Q', b'I', b's', b'd', b'p', // protocol name
        3,    // level 3
        0x02, // clean session
        0, 60, // keep alive
        0, 4, b'o', b'l', b'd', b'1', // client id
    ];
    raw.send(connect).await;
    assert_eq!(raw.read().await, Some(RawPacket { byte1: 0x20, body: vec![0, 0] }));
    raw.send(&[0x30, 9, 0, 6, b'l', b'e', b'g', b'a', b'c', b'y', b'!']).await;
    assert_eq!(&sub.message().await.payload[..], b"!");
}

#[tokio::test]
async fn unknown_protocol_level_is_refused_with_return_code_1() {
    let broker = start(|_| {}).await;
    let mut raw = Raw::connect(broker.tcp_addr().expect("tcp")).await;
    let mut connect = connect_v4("x", 60);
    connect[8] = 6; // protocol level 6
    raw.send(&connect).await;
    assert_eq!(raw.until_closed().await, [RawPacket { byte1: 0x20, body: vec![0, 1] }]);
}

#[tokio::test]
async fn authentication_with_hashed_credentials_and_anonymous_off() {
    let hash = hash_password("s3cret").expect("hash");
    let broker = start(|c| {
        c.security.allow_anonymous = false;
        c.security.credentials = vec![Credential { username: "alice".to_owned(), password_hash: hash }];
    })
    .await;
    let addr = broker.tcp_addr().expect("tcp");
    C4::connect(addr, "ok4", |o| {
        o.set_credentials("alice", "s3cret");
    })
    .await;
    C5::connect(addr, "ok5", |o| {
        o.set_credentials("alice", "s3cret");
    })
    .await;
    let cases4 = [
        (None, rumqttc::ConnectReturnCode::NotAuthorized),
        (Some("wrong"), rumqttc::ConnectReturnCode::BadUserNamePassword),
    ];
    for (password, code) in cases4 {
        let mut c = C4::spawn(addr, "bad4", |o| {
            if let Some(p) = password {
                o.set_credentials("alice", p);
            }
        });
        match c.closed().await {
            rumqttc::ConnectionError::ConnectionRefused(got) => assert_eq!(got, code),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
    let cases5 = [(None, R5::NotAuthorized), (Some("wrong"), R5::BadUserNamePassword)];
    for (password, code) in cases5 {
        let mut c = C5::spawn(addr, "bad5", |o| {
            if let Some(p) = password {
                o.set_credentials("alice", p);
            }
        });
        match c.closed().await {
            rumqttc::v5::ConnectionError::ConnectionRefused(got) => assert_eq!(got, code),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn connection_limit_refuses_extra_clients_and_keeps_the_first() {
    let broker = start(|c| c.mqtt.max_connections = 1).await;
    let addr = broker.tcp_addr().expect("tcp");
    let (mut first, _) = C4::connect(addr, "first", |_| {}).await;
    let mut raw = Raw::connect(addr).await;
    raw.send(&connect_v4("second", 60)).await;
    assert_eq!(raw.until_closed().await, [RawPacket { byte1: 0x20, body: vec![0, 3] }]);
    let mut v5 = C5::spawn(addr, "third", |_| {});
    match v5.closed().await {
        rumqttc::v5::ConnectionError::ConnectionRefused(code) => {
            assert_eq!(code, R5::QuotaExceeded)
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    first.subscribe("still/here", Q4::AtMostOnce).await;
}

#[tokio::test]
async fn session_takeover_disconnects_the_old_connection() {
    let broker = start(|_| {}).await;
    let addr = broker.tcp_addr().expect("tcp");
    let (mut old5, _) = C5::connect(addr, "same5", |_| {}).await;
    let (_new5, _) = C5::connect(addr, "same5", |_| {}).await;
    assert_eq!(old5.disconnect_reason().await, D5::SessionTakenOver);

    let mut old4 = super::raw::connected_v4(addr, "same4").await;
    let (_new4, _) = C4::connect(addr, "same4", |_| {}).await;
    assert_eq!(old4.until_closed().await, []);
}

#[tokio::test]
async fn keep_alive_is_enforced() {
    let broker = start(|_| {}).await;
    let addr = broker.tcp_addr().expect("tcp");
    let mut v5 = Raw::connect(addr).await;
    v5.send(&connect_v5("idle5", 1, None)).await;
    let packets = v5.until_closed().await;
    assert_eq!(packets.len(), 2, "connack then disconnect: {packets:?}");
    assert_eq!(packets[1], RawPacket { byte1: 0xE0, body: vec![0x8D, 0] });
    let mut v4 = Raw::connect(addr).await;
    v4.send(&connect_v4("idle4", 1)).await;
    assert_eq!(v4.until_closed().await, [RawPacket { byte1: 0x20, body: vec![0, 0] }]);
}

#[tokio::test]
async fn v5_keep_alive_over_the_maximum_is_replaced_by_server_keep_alive() {
    let broker = start(|c| c.mqtt.max_keep_alive_sec = 20).await;
    let (_c, ack) = C5::connect(broker.tcp_addr().expect("tcp"), "ka", |o| {
        o.set_keep_alive(std::time::Duration::from_secs(100));
    })
    .await;
    assert_eq!(ack.properties.and_then(|p| p.server_keep_alive), Some(20));
}

#[tokio::test]
async fn v5_server_keep_alive_is_sent_exactly_when_the_broker_changes_the_keep_alive() {
    let broker = start(|c| c.mqtt.max_keep_alive_sec = 20).await;
    let addr = broker.tcp_addr().expect("tcp");
    for (requested, expected) in [(0, Some(20)), (100, Some(20)), (21, Some(20)), (20, None), (5, None)] {
        let mut raw = Raw::connect(addr).await;
        raw.send(&connect_v5(&format!("ka-{requested}"), requested, None)).await;
        let packet = super::v5_features::decode_v5(&raw.read().await.expect("connack"));
        let rumqttc::v5::mqttbytes::v5::Packet::ConnAck(ack) = packet else {
            panic!("expected a CONNACK, got {packet:?}");
        };
        assert_eq!(ack.properties.and_then(|p| p.server_keep_alive), expected, "keep alive {requested}");
    }
}

#[tokio::test]
async fn shutdown_disconnects_clients_with_server_shutting_down() {
    let broker = start(|_| {}).await;
    let (mut c, _) = C5::connect(broker.tcp_addr().expect("tcp"), "c", |_| {}).await;
    c.subscribe("x", Q5::AtMostOnce).await;
    within("shutdown", broker.shutdown()).await;
    assert_eq!(c.disconnect_reason().await, D5::ServerShuttingDown);
}

/// A client gone before its CONNACK is written (its connect timed out, or it was stopped) and
/// then back with the same client id, again and again: every later connection is still served.
/// rumqttd 0.20 poisons its listener on exactly this (bytebeamio/rumqtt#1062), which is why the
/// drivers' tests no longer run against it.
#[tokio::test]
async fn a_client_id_reset_before_its_connack_and_back_is_served() {
    let broker = start(|_| {}).await;
    let addr = broker.tcp_addr().expect("tcp");
    for _ in 0..30 {
        let mut raw = Raw::connect(addr).await;
        raw.send(&connect_v4("flapper", 60)).await;
        raw.reset();
        let mut raw = Raw::connect(addr).await;
        raw.send(&connect_v5("flapper", 60, None)).await;
        raw.reset();
    }
    let _back = connected_v4(addr, "flapper").await;
    let _other = connected_v5(addr, "someone-else", None).await;
}
