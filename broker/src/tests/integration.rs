//! The integration hook: integration subscriptions in the trie and one copy per PUBLISH to the sink.

use std::sync::Arc;

use parking_lot::Mutex;
use rumqttc::v5::mqttbytes::v5::PublishProperties;
use rumqttc::v5::mqttbytes::QoS as Q5;
use rumqttc::QoS as Q4;

use super::support::{eventually, start_with, C4, C5};
use crate::router::topic::TopicError;
use crate::{BrokerHooks, Handover, IntegrationSink, PublishedMessage, QoS, RouterError};

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
struct Holding(Mutex<Vec<tokio::sync::oneshot::Sender<Result<(), String>>>>);

impl IntegrationSink for Holding {
    fn send(&self, _integration_id: &str, msg: &PublishedMessage) -> Handover {
        if msg.topic.starts_with("refused/") {
            return Handover::Failed("queue refused it".to_owned());
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
    fn settle_first(&self, result: Result<(), String>) {
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
    sink.settle_first(Err("broker down".to_owned()));
    assert_eq!(next_puback(&mut publisher).await.1, PubAckReason::UnspecifiedError);
    publisher.client.publish("refused/4", Q5::AtLeastOnce, false, b"4".to_vec()).await.expect("queued");
    assert_eq!(next_puback(&mut publisher).await.1, PubAckReason::UnspecifiedError);
}
