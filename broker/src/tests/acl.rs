//! Topic ACLs end to end: refused PUBLISH (v5 reason 0x87 in PUBACK and PUBREC, QoS 0 dropped,
//! v3.1.1 acknowledged and dropped), refused SUBSCRIBE (0x87 in v5, 0x80 in v3.1.1), refused will.

use rumqttc::v5::mqttbytes::v5::{PubAckReason, PubRecReason, SubscribeReasonCode as Sub5};
use rumqttc::v5::mqttbytes::QoS as Q5;
use rumqttc::v5::{Event, Incoming};
use rumqttc::QoS as Q4;

use super::support::{start, C4, C5};
use crate::auth::{hash_password, Credential};

const RULES: &str = "
user alice
topic readwrite alice/#
topic read public/#
user watcher
topic read #
pattern write clients/%c/status
";

async fn broker() -> crate::BrokerHandle {
    let alice = hash_password("a").expect("hash");
    let watcher = hash_password("w").expect("hash");
    start(|c| {
        c.security.credentials = vec![
            Credential { username: "alice".to_owned(), password_hash: alice },
            Credential { username: "watcher".to_owned(), password_hash: watcher },
        ];
        c.security.acl = RULES.to_owned();
    })
    .await
}

#[tokio::test]
async fn v5_refusals_carry_not_authorized_and_nothing_is_routed() {
    let broker = broker().await;
    let addr = broker.tcp_addr().expect("tcp");
    let (mut watcher, _) = C4::connect(addr, "watcher", |o| {
        o.set_credentials("watcher", "w");
    })
    .await;
    assert_eq!(
        watcher.subscribe("#", Q4::AtLeastOnce).await.return_codes,
        [rumqttc::SubscribeReasonCode::Success(Q4::AtLeastOnce)]
    );
    let (mut alice, _) = C5::connect(addr, "alice-5", |o| {
        o.set_credentials("alice", "a");
    })
    .await;

    let sub = alice.subscribe("public/#", Q5::AtLeastOnce).await;
    assert_eq!(sub.return_codes, [Sub5::Success(Q5::AtLeastOnce)]);
    let sub = alice.subscribe("secret/#", Q5::AtLeastOnce).await;
    assert_eq!(sub.return_codes, [Sub5::NotAuthorized]);
    // A filter wider than the allowed one is refused too.
    assert_eq!(alice.subscribe("#", Q5::AtMostOnce).await.return_codes, [Sub5::NotAuthorized]);

    alice.client.publish("public/news", Q5::AtLeastOnce, false, "no").await.expect("queued");
    let ack = alice
        .wait_for("puback", |ev| match ev {
            Event::Incoming(Incoming::PubAck(a)) => Some(a.clone()),
            _ => None,
        })
        .await;
    assert_eq!(ack.reason, PubAckReason::NotAuthorized);
    alice.client.publish("public/news", Q5::ExactlyOnce, true, "no").await.expect("queued");
    let rec = alice
        .wait_for("pubrec", |ev| match ev {
            Event::Incoming(Incoming::PubRec(r)) => Some(r.clone()),
            _ => None,
        })
        .await;
    assert_eq!(rec.reason, PubRecReason::NotAuthorized);
    alice.publish("public/news", Q5::AtMostOnce, false, b"no").await;
    // The pattern names the client id.
    alice.publish("clients/alice-5/status", Q5::AtLeastOnce, false, b"up").await;
    alice.publish("alice/x", Q5::AtLeastOnce, false, b"sentinel").await;
    let first = watcher.message().await;
    assert_eq!((first.topic.as_str(), &first.payload[..]), ("clients/alice-5/status", &b"up"[..]));
    let second = watcher.message().await;
    assert_eq!((second.topic.as_str(), &second.payload[..]), ("alice/x", &b"sentinel"[..]));

    // The refused retained message was not stored.
    let (mut late, _) = C4::connect(addr, "late", |o| {
        o.set_credentials("watcher", "w");
    })
    .await;
    late.subscribe("#", Q4::AtLeastOnce).await;
    let (mut alice4, _) = C4::connect(addr, "alice-4", |o| {
        o.set_credentials("alice", "a");
    })
    .await;
    alice4.publish("alice/y", Q4::AtLeastOnce, false, b"v4 ok").await;
    assert_eq!(late.message().await.topic, "alice/y", "a retained public/news would come first");
}

#[tokio::test]
async fn v4_refused_subscribe_gets_0x80_and_refused_publish_is_acked_and_dropped() {
    let broker = broker().await;
    let addr = broker.tcp_addr().expect("tcp");
    let (mut watcher, _) = C4::connect(addr, "watcher", |o| {
        o.set_credentials("watcher", "w");
    })
    .await;
    watcher.subscribe("#", Q4::AtLeastOnce).await;
    let (mut alice, _) = C4::connect(addr, "alice", |o| {
        o.set_credentials("alice", "a");
    })
    .await;
    let ack = alice.subscribe("secret/+", Q4::AtLeastOnce).await;
    assert_eq!(ack.return_codes, [rumqttc::SubscribeReasonCode::Failure]);
    let ack = alice.subscribe("alice/+/x", Q4::ExactlyOnce).await;
    assert_eq!(ack.return_codes, [rumqttc::SubscribeReasonCode::Success(Q4::ExactlyOnce)]);
    // MQTT 3.1.1 acknowledgements have no reason code: the PUBACK and PUBCOMP come, the message is
    // not routed.
    alice.publish("secret/a", Q4::AtLeastOnce, false, b"no").await;
    alice.publish("secret/b", Q4::ExactlyOnce, false, b"no").await;
    alice.publish("secret/c", Q4::AtMostOnce, false, b"no").await;
    alice.publish("alice/1/x", Q4::AtLeastOnce, false, b"yes").await;
    let got = watcher.message().await;
    assert_eq!((got.topic.as_str(), &got.payload[..]), ("alice/1/x", &b"yes"[..]));
    assert_eq!(&alice.message().await.payload[..], b"yes");
}

#[tokio::test]
async fn will_on_a_refused_topic_refuses_the_connection_and_anonymous_gets_only_patterns() {
    let broker = start(|c| c.security.acl = "pattern readwrite clients/%c/#".to_owned()).await;
    let addr = broker.tcp_addr().expect("tcp");
    let mut c = C5::spawn(addr, "w", |o| {
        o.set_last_will(rumqttc::v5::mqttbytes::v5::LastWill::new("elsewhere", "bye", Q5::AtLeastOnce, false, None));
    });
    match c.closed().await {
        rumqttc::v5::ConnectionError::ConnectionRefused(code) => {
            assert_eq!(code, rumqttc::v5::mqttbytes::v5::ConnectReturnCode::NotAuthorized)
        }
        other => panic!("expected CONNACK 0x87, got {other:?}"),
    }
    let (mut ok, _) = C5::connect(addr, "w", |o| {
        o.set_last_will(rumqttc::v5::mqttbytes::v5::LastWill::new(
            "clients/w/gone",
            "bye",
            Q5::AtLeastOnce,
            false,
            None,
        ));
    })
    .await;
    assert_eq!(ok.subscribe("clients/w/#", Q5::AtLeastOnce).await.return_codes, [Sub5::Success(Q5::AtLeastOnce)]);
    assert_eq!(ok.subscribe("clients/x/#", Q5::AtLeastOnce).await.return_codes, [Sub5::NotAuthorized]);
}

#[tokio::test]
async fn anonymous_clients_cannot_publish_to_sys_topics_and_authenticated_ones_follow_the_acl() {
    let alice = hash_password("a").expect("hash");
    // No ACL: authenticated clients may use every topic, `$SYS` included.
    let broker =
        start(|c| c.security.credentials = vec![Credential { username: "alice".to_owned(), password_hash: alice }])
            .await;
    let addr = broker.tcp_addr().expect("tcp");
    let (mut watcher, _) = C4::connect(addr, "watcher", |_| {}).await;
    watcher.subscribe("$SYS/#", Q4::AtLeastOnce).await;
    watcher.subscribe("$SYSTEM/#", Q4::AtLeastOnce).await;
    watcher.subscribe("sentinel", Q4::AtLeastOnce).await;

    let (mut anon5, _) = C5::connect(addr, "anon-5", |_| {}).await;
    anon5.client.publish("$SYS/broker/uptime", Q5::AtLeastOnce, false, "forged").await.expect("queued");
    let ack = anon5
        .wait_for("puback", |ev| match ev {
            Event::Incoming(Incoming::PubAck(a)) => Some(a.clone()),
            _ => None,
        })
        .await;
    assert_eq!(ack.reason, PubAckReason::NotAuthorized);
    anon5.client.publish("$SYS/broker/uptime", Q5::ExactlyOnce, true, "forged").await.expect("queued");
    let rec = anon5
        .wait_for("pubrec", |ev| match ev {
            Event::Incoming(Incoming::PubRec(r)) => Some(r.clone()),
            _ => None,
        })
        .await;
    assert_eq!(rec.reason, PubRecReason::NotAuthorized);
    anon5.publish("$SYS", Q5::AtMostOnce, false, b"forged").await;
    // MQTT 3.1.1: acknowledged as usual and dropped.
    let (mut anon4, _) = C4::connect(addr, "anon-4", |_| {}).await;
    anon4.publish("$SYS/broker/clients", Q4::AtLeastOnce, false, b"forged").await;
    anon4.publish("$SYS/broker/clients", Q4::ExactlyOnce, false, b"forged").await;
    // Other `$` topics are not `$SYS`.
    anon4.publish("$SYSTEM/x", Q4::AtLeastOnce, false, b"not sys").await;

    let (mut alice, _) = C5::connect(addr, "alice", |o| {
        o.set_credentials("alice", "a");
    })
    .await;
    alice.publish("$SYS/broker/uptime", Q5::AtLeastOnce, false, b"real").await;
    anon4.publish("sentinel", Q4::AtLeastOnce, false, b"end").await;
    let got = watcher.message().await;
    assert_eq!((got.topic.as_str(), &got.payload[..]), ("$SYSTEM/x", &b"not sys"[..]));
    let got = watcher.message().await;
    assert_eq!((got.topic.as_str(), &got.payload[..]), ("$SYS/broker/uptime", &b"real"[..]));
    let got = watcher.message().await;
    assert_eq!((got.topic.as_str(), &got.payload[..]), ("sentinel", &b"end"[..]));

    // A will on `$SYS` is a publish too: refused at CONNECT for an anonymous client.
    let mut will = C5::spawn(addr, "anon-will", |o| {
        o.set_last_will(rumqttc::v5::mqttbytes::v5::LastWill::new("$SYS/gone", "bye", Q5::AtLeastOnce, false, None));
    });
    match will.closed().await {
        rumqttc::v5::ConnectionError::ConnectionRefused(code) => {
            assert_eq!(code, rumqttc::v5::mqttbytes::v5::ConnectReturnCode::NotAuthorized)
        }
        other => panic!("expected CONNACK 0x87, got {other:?}"),
    }
}

#[tokio::test]
async fn authenticated_clients_publish_to_sys_topics_only_as_the_acl_allows() {
    let alice = hash_password("a").expect("hash");
    let broker = start(|c| {
        c.security.credentials = vec![Credential { username: "alice".to_owned(), password_hash: alice }];
        // Even a rule for anonymous clients does not open `$SYS` to them.
        c.security.acl = "topic readwrite #\ntopic readwrite $SYS/#\nuser alice\ntopic write $SYS/alice/#".to_owned();
    })
    .await;
    let addr = broker.tcp_addr().expect("tcp");
    let (mut watcher, _) = C4::connect(addr, "watcher", |_| {}).await;
    watcher.subscribe("#", Q4::AtLeastOnce).await;
    watcher.subscribe("$SYS/#", Q4::AtLeastOnce).await;
    let (mut anon, _) = C4::connect(addr, "anon", |_| {}).await;
    anon.publish("$SYS/x", Q4::AtLeastOnce, false, b"forged").await;
    let (mut alice, _) = C5::connect(addr, "alice", |o| {
        o.set_credentials("alice", "a");
    })
    .await;
    alice.client.publish("$SYS/other", Q5::AtLeastOnce, false, "no").await.expect("queued");
    let ack = alice
        .wait_for("puback", |ev| match ev {
            Event::Incoming(Incoming::PubAck(a)) => Some(a.clone()),
            _ => None,
        })
        .await;
    assert_eq!(ack.reason, PubAckReason::NotAuthorized);
    alice.publish("$SYS/alice/status", Q5::AtLeastOnce, false, b"up").await;
    anon.publish("plain", Q4::AtLeastOnce, false, b"end").await;
    let got = watcher.message().await;
    assert_eq!((got.topic.as_str(), &got.payload[..]), ("$SYS/alice/status", &b"up"[..]));
    let got = watcher.message().await;
    assert_eq!((got.topic.as_str(), &got.payload[..]), ("plain", &b"end"[..]));
}
