//! The integration hook: integration subscriptions in the trie and one copy per PUBLISH to the sink;
//! acknowledgements wait for the integrations' and persistent sessions' copies to be stored.

use std::sync::Arc;

use parking_lot::Mutex;
use rumqttc::v5::mqttbytes::v5::PublishProperties;
use rumqttc::v5::mqttbytes::QoS as Q5;
use rumqttc::QoS as Q4;

use super::support::{eventually, start_with, C4, C5};
use crate::router::topic::TopicError;
use crate::router::{ClientSubscription, SessionLog};
use crate::{BrokerHooks, Handover, IntegrationSink, NotStored, PublishedMessage, QoS, RouterError};

/// A sink that records what it is given.
#[derive(Default)]
struct Recorder(Mutex<Vec<(String, PublishedMessage)>>);

impl IntegrationSink for Recorder {
    fn send(&self, integration_id: &str, msg: &PublishedMessage) -> Handover {
        self.0.lock().push((integration_id.to_owned(), msg.clone()));
        Handover::Stored
    }
}

impl Recorder {
    fn taken(&self) -> Vec<(String, PublishedMessage)> {
        std::mem::take(&mut *self.0.lock())
    }
}

fn filters(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test]
async fn each_integration_gets_one_copy_per_publish_at_any_qos() {
    let sink = Arc::new(Recorder::default());
    let hooks = BrokerHooks { integration_sink: Some(sink.clone()), ..Default::default() };
    let broker = start_with(|_| {}, hooks).await;
    let router = broker.router();
    router
        .add_integration_subscriptions("i1", &filters(&["dev/#", "dev/+/temp", "dev/a/temp"]))
        .expect("valid filters");
    router.add_integration_subscriptions("i2", &filters(&["other/#"])).expect("valid filters");
    let (mut publisher, _) = C4::connect(broker.tcp_addr().expect("tcp"), "dev-a", |_| {}).await;
    for qos in [Q4::AtMostOnce, Q4::AtLeastOnce, Q4::ExactlyOnce] {
        publisher.publish("dev/a/temp", qos, false, b"21").await;
    }
    publisher.publish("other/x", Q4::AtLeastOnce, true, b"o").await;
    publisher.publish("unmatched", Q4::AtLeastOnce, false, b"u").await;
    eventually("four deliveries", || sink.0.lock().len() >= 4).await;
    let got = sink.taken();
    let summary: Vec<(&str, &str, QoS)> = got.iter().map(|(id, m)| (id.as_str(), m.topic.as_str(), m.qos)).collect();
    assert_eq!(
        summary,
        [
            ("i1", "dev/a/temp", QoS::AtMostOnce),
            ("i1", "dev/a/temp", QoS::AtLeastOnce),
            ("i1", "dev/a/temp", QoS::ExactlyOnce),
            ("i2", "other/x", QoS::AtLeastOnce),
        ]
    );
    assert_eq!(&*got[0].1.client_id, "dev-a");
    assert!(got[3].1.retain);
    assert!(got[0].1.received_at_ms > 0);
}

#[tokio::test]
async fn removed_subscriptions_stop_delivery_and_properties_are_carried() {
    let sink = Arc::new(Recorder::default());
    let broker = start_with(|_| {}, BrokerHooks::default()).await;
    let router = broker.router();
    router.set_integration_sink(Some(sink.clone()));
    router.add_integration_subscriptions("i1", &filters(&["a", "b"])).expect("valid filters");
    router.remove_integration_subscriptions("i1", &filters(&["a"]));
    assert_eq!(router.integration_filters("i1"), ["b"]);
    let (mut publisher, _) = C5::connect(broker.tcp_addr().expect("tcp"), "p", |_| {}).await;
    let props = PublishProperties {
        content_type: Some("application/json".to_owned()),
        user_properties: vec![("k".to_owned(), "v".to_owned())],
        correlation_data: Some(bytes::Bytes::from_static(b"c")),
        response_topic: Some("resp".to_owned()),
        message_expiry_interval: Some(60),
        payload_format_indicator: Some(1),
        ..Default::default()
    };
    publisher.publish("a", Q5::AtLeastOnce, false, b"ignored").await;
    publisher.publish_props("b", Q5::AtLeastOnce, false, b"{}", props).await;
    router.remove_integration("i1");
    assert!(router.integration_filters("i1").is_empty());
    publisher.publish("b", Q5::AtLeastOnce, false, b"after removal").await;
    let got = sink.taken();
    assert_eq!(got.len(), 1, "{got:?}");
    let m = &got[0].1;
    assert_eq!(m.topic, "b");
    assert_eq!(m.content_type.as_deref(), Some("application/json"));
    assert_eq!(m.user_properties, [("k".to_owned(), "v".to_owned())]);
    assert_eq!(m.correlation_data.as_deref(), Some(&b"c"[..]));
    assert_eq!(m.response_topic.as_deref(), Some("resp"));
    assert_eq!(m.message_expiry_interval, Some(60));
    assert_eq!(m.payload_format_indicator, Some(1));
}

#[tokio::test]
async fn invalid_integration_filters_are_refused_whole() {
    let broker = start_with(|_| {}, BrokerHooks::default()).await;
    let router = broker.router();
    assert_eq!(
        router.add_integration_subscriptions("i", &filters(&["ok", "bad/#/x"])),
        Err(RouterError::InvalidFilter { filter: "bad/#/x".to_owned(), source: TopicError::MisplacedWildcard })
    );
    assert_eq!(
        router.add_integration_subscriptions("i", &filters(&["$share/g/t"])),
        Err(RouterError::SharedForIntegration("$share/g/t".to_owned()))
    );
    assert!(router.integration_filters("i").is_empty());
}

/// A sink that holds the copies of `held/...` messages until the test settles them, refuses
/// `refused/...` ones and stores everything else at once.
#[derive(Default)]
struct Holding(Mutex<Vec<Settle>>);

/// Tells a connection whether a copy it waits for was stored.
type Settle = tokio::sync::oneshot::Sender<Result<(), NotStored>>;

impl IntegrationSink for Holding {
    fn send(&self, _integration_id: &str, msg: &PublishedMessage) -> Handover {
        if msg.topic.starts_with("refused/") {
            return Handover::Failed(NotStored::new("queue refused it"));
        }
        if msg.topic.starts_with("full/") {
            return Handover::Failed(NotStored::quota("partition m[0] is full"));
        }
        if !msg.topic.starts_with("held/") {
            return Handover::Stored;
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.0.lock().push(tx);
        Handover::Pending(rx)
    }
}

impl Holding {
    fn settle_first(&self, result: Result<(), NotStored>) {
        let tx = self.0.lock().remove(0);
        tx.send(result).expect("the connection waits for it");
    }
}

/// The next PUBACK (packet id and reason); other events are skipped.
async fn next_puback(c: &mut C5) -> (u16, rumqttc::v5::mqttbytes::v5::PubAckReason) {
    c.wait_for("PUBACK", |ev| match ev {
        rumqttc::v5::Event::Incoming(rumqttc::v5::Incoming::PubAck(a)) => Some((a.pkid, a.reason)),
        _ => None,
    })
    .await
}

#[tokio::test]
async fn acknowledgements_wait_until_integration_copies_are_stored_and_keep_their_order() {
    use rumqttc::v5::mqttbytes::v5::PubAckReason;
    let sink = Arc::new(Holding::default());
    let hooks = BrokerHooks { integration_sink: Some(sink.clone()), ..Default::default() };
    let broker = start_with(|_| {}, hooks).await;
    broker.router().add_integration_subscriptions("i1", &filters(&["#"])).expect("valid filters");
    let mut publisher = C5::spawn(broker.tcp_addr().expect("tcp"), "p", |_| {});
    publisher
        .wait_for("CONNACK", |ev| {
            matches!(ev, rumqttc::v5::Event::Incoming(rumqttc::v5::Incoming::ConnAck(_))).then_some(())
        })
        .await;

    // A held copy holds back its own PUBACK and the one of the message after it.
    publisher.client.publish("held/1", Q5::AtLeastOnce, false, b"1".to_vec()).await.expect("queued");
    eventually("the held copy", || sink.0.lock().len() == 1).await;
    publisher.client.publish("free/2", Q5::AtLeastOnce, false, b"2".to_vec()).await.expect("queued");
    let early = tokio::time::timeout(std::time::Duration::from_millis(300), next_puback(&mut publisher)).await;
    assert!(early.is_err(), "a PUBACK came before the copy was stored: {early:?}");
    sink.settle_first(Ok(()));
    let first = next_puback(&mut publisher).await;
    let second = next_puback(&mut publisher).await;
    assert_eq!((first.1, second.1), (PubAckReason::Success, PubAckReason::Success));
    assert!(first.0 < second.0, "PUBACKs in PUBLISH order: {first:?} then {second:?}");

    // A copy the queue could not store, later or at once: the publisher is told (MQTT 5).
    publisher.client.publish("held/3", Q5::AtLeastOnce, false, b"3".to_vec()).await.expect("queued");
    eventually("the held copy", || sink.0.lock().len() == 1).await;
    sink.settle_first(Err(NotStored::new("broker down")));
    assert_eq!(next_puback(&mut publisher).await.1, PubAckReason::UnspecifiedError);
    publisher.client.publish("refused/4", Q5::AtLeastOnce, false, b"4".to_vec()).await.expect("queued");
    assert_eq!(next_puback(&mut publisher).await.1, PubAckReason::UnspecifiedError);

    // No room in the integration's backlog, at once or later: "quota exceeded", so the publisher
    // knows to slow down and send again.
    publisher.client.publish("full/5", Q5::AtLeastOnce, false, b"5".to_vec()).await.expect("queued");
    assert_eq!(next_puback(&mut publisher).await.1, PubAckReason::QuotaExceeded);
    publisher.client.publish("held/6", Q5::AtLeastOnce, false, b"6".to_vec()).await.expect("queued");
    eventually("the held copy", || sink.0.lock().len() == 1).await;
    sink.settle_first(Err(NotStored::quota("partition m[0] is full")));
    assert_eq!(next_puback(&mut publisher).await.1, PubAckReason::QuotaExceeded);
}

#[tokio::test]
async fn acknowledgements_waiting_for_the_queue_count_against_the_receive_maximum() {
    use super::raw::{connected_v4, connected_v5, publish_v5, RawPacket};
    let sink = Arc::new(Holding::default());
    let hooks = BrokerHooks { integration_sink: Some(sink.clone()), ..Default::default() };
    let broker = start_with(|c| c.mqtt.max_in_flight_msgs = 2, hooks).await;
    broker.router().add_integration_subscriptions("i1", &filters(&["#"])).expect("valid filters");
    let addr = broker.tcp_addr().expect("tcp");

    // MQTT 3.1.1 has no receive maximum: its waiting acknowledgements only pause reading.
    let mut v4 = connected_v4(addr, "v4").await;
    for pkid in 1..=3u8 {
        // PUBLISH QoS 1, topic "held/a", packet id, payload "x".
        v4.send(&[0x32, 0x0B, 0x00, 0x06, b'h', b'e', b'l', b'd', b'/', b'a', 0x00, pkid, b'x']).await;
    }
    eventually("three held copies", || sink.0.lock().len() == 3).await;
    for _ in 0..3 {
        sink.settle_first(Ok(()));
    }
    for pkid in 1..=3u8 {
        assert_eq!(v4.read().await, Some(RawPacket { byte1: 0x40, body: vec![0, pkid] }));
    }

    // MQTT 5: a QoS 1 message whose PUBACK waits and a QoS 2 message before its PUBCOMP are both
    // unacknowledged; a third one exceeds the broker's receive maximum of 2.
    let mut v5 = connected_v5(addr, "v5", None).await;
    v5.send(&publish_v5("held/1", 1, 1, b"x", None)).await;
    v5.send(&publish_v5("free/2", 2, 2, b"x", None)).await;
    v5.send(&publish_v5("free/3", 1, 3, b"x", None)).await;
    // The PUBREC of the QoS 2 message waits behind the first PUBACK, so nothing else comes.
    assert_eq!(v5.until_closed().await, [RawPacket { byte1: 0xE0, body: vec![0x93, 0] }]);
}

#[tokio::test]
async fn a_qos_2_packet_id_answered_with_an_error_pubrec_is_free_again() {
    use super::raw::{connected_v5, publish_v5};
    let sink = Arc::new(Holding::default());
    let hooks = BrokerHooks { integration_sink: Some(sink.clone()), ..Default::default() };
    let broker = start_with(|_| {}, hooks).await;
    broker.router().add_integration_subscriptions("i1", &filters(&["#"])).expect("valid filters");
    let addr = broker.tcp_addr().expect("tcp");
    let (mut sub, _) = C4::connect(addr, "sub", |_| {}).await;
    sub.subscribe("free/#", Q4::AtLeastOnce).await;
    let mut v5 = connected_v5(addr, "v5", None).await;
    v5.send(&publish_v5("refused/x", 2, 7, b"not stored", None)).await;
    let rec = v5.read().await.expect("pubrec");
    assert_eq!((rec.kind(), &rec.body[..3]), (5, &[0, 7, 0x80][..]), "PUBREC 0x80: the exchange ends");
    // The client may use packet id 7 for a new message at once: it is no re-send.
    v5.send(&publish_v5("free/y", 2, 7, b"new", None)).await;
    let rec = v5.read().await.expect("pubrec");
    assert_eq!((rec.kind(), &rec.body[..2]), (5, &[0, 7][..]));
    assert_eq!(&sub.message().await.payload[..], b"new");
}

/// A session log that holds the kept copies of persistent sessions' messages until the test
/// settles them, and records nothing else.
#[derive(Default)]
struct HoldingLog(Mutex<Vec<(String, Settle)>>);

impl SessionLog for HoldingLog {
    fn changed(&self, _: &str, _: u32, _: Vec<ClientSubscription>) {}
    fn connecting(&self, _: &str) {}
    fn connected(&self, _: &str, _: Option<(u32, Vec<ClientSubscription>)>, _: Option<&str>) {}
    fn ended(&self, _: &str) {}
    fn persist(&self, client_id: &str, _: &PublishedMessage, _: QoS) -> Handover {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.0.lock().push((client_id.to_owned(), tx));
        Handover::Pending(rx)
    }
    fn cleared(&self, _: &str) {}
}

/// A node that dies loses none of what it acknowledged: a message queued for a persistent
/// session is acknowledged to its publisher only once the session log stored its kept copy
/// (on Kafka that is a round trip; before, a SIGKILL in between lost it for that session).
#[tokio::test]
async fn acknowledgements_wait_until_persistent_sessions_kept_copies_are_stored() {
    use rumqttc::v5::mqttbytes::v5::PubAckReason;
    let broker = start_with(|_| {}, BrokerHooks::default()).await;
    let log = Arc::new(HoldingLog::default());
    broker.router().set_session_log(Some(log.clone()));
    let addr = broker.tcp_addr().expect("tcp");
    let mut keeper = C5::spawn(addr, "keeper", |o| {
        o.set_clean_start(false);
        o.set_session_expiry_interval(Some(300));
    });
    keeper.subscribe("kept/#", Q5::AtLeastOnce).await;
    let mut passer = C5::spawn(addr, "passer", |_| {});
    passer.subscribe("kept/#", Q5::AtLeastOnce).await;
    let mut publisher = C5::spawn(addr, "p", |_| {});
    publisher
        .wait_for("CONNACK", |ev| {
            matches!(ev, rumqttc::v5::Event::Incoming(rumqttc::v5::Incoming::ConnAck(_))).then_some(())
        })
        .await;

    publisher.client.publish("kept/1", Q5::AtLeastOnce, false, b"1".to_vec()).await.expect("queued");
    eventually("the kept copy", || log.0.lock().len() == 1).await;
    assert_eq!(log.0.lock()[0].0, "keeper", "only the persistent session's copy is kept");
    let early = tokio::time::timeout(std::time::Duration::from_millis(300), next_puback(&mut publisher)).await;
    assert!(early.is_err(), "a PUBACK came before the kept copy was stored: {early:?}");
    log.0.lock().remove(0).1.send(Ok(())).expect("the connection waits for it");
    assert_eq!(next_puback(&mut publisher).await.1, PubAckReason::Success);

    // A copy the log could not store: the publisher is told, and sends again.
    publisher.client.publish("kept/2", Q5::AtLeastOnce, false, b"2".to_vec()).await.expect("queued");
    eventually("the kept copy", || log.0.lock().len() == 1).await;
    log.0.lock().remove(0).1.send(Err(NotStored::new("queue down"))).expect("the connection waits for it");
    assert_eq!(next_puback(&mut publisher).await.1, PubAckReason::UnspecifiedError);
}
