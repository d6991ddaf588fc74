//! The queue forwarder: what an integration's topic holds after real clients publish.

use std::{sync::Arc, time::Duration};

use prost::Message as _;
use rumqttc::v5::mqttbytes::v5::PublishProperties;
use rumqttc::v5::mqttbytes::QoS as Q5;
use trib_queue::{
    queue::{embedded::EmbeddedQueue, ConsumerEvent, Queue, TopicPartition},
    topics::TopicNames,
    wire::PublishIntegrationMsgProto,
};
use uuid::Uuid;

use super::support::{start_with, C5};
use crate::{forward::QueueForwarder, BrokerHooks};

fn read_all(queue: &dyn Queue, topic: &str, n: usize) -> Vec<(Vec<u8>, PublishIntegrationMsgProto)> {
    let mut c = queue.assign("test", "test", &TopicPartition::new(topic, 0)).expect("assign");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut out = Vec::new();
    while out.len() < n {
        assert!(std::time::Instant::now() < deadline, "only {} of {n} records", out.len());
        for e in c.poll(Duration::from_millis(100), 100).expect("poll") {
            if let ConsumerEvent::Records(rs) = e {
                for r in rs {
                    let key = r.key.map(|k| k.to_vec()).unwrap_or_default();
                    out.push((key, PublishIntegrationMsgProto::decode(r.value).expect("decode")));
                }
            }
        }
    }
    out
}

#[tokio::test]
async fn matching_messages_land_on_the_integration_topic_in_order_with_properties() {
    let queue: Arc<dyn Queue> = Arc::new(EmbeddedQueue::new());
    let topics = TopicNames::default();
    let forwarder = QueueForwarder::new(queue.clone(), topics.clone(), "broker-1".into());
    let hooks = BrokerHooks { integration_sink: Some(forwarder.clone()), ..Default::default() };
    let broker = start_with(|_| {}, hooks).await;
    let id = Uuid::new_v4();
    broker.router().add_integration_subscriptions(&id.to_string(), &["sensors/#".to_string()]).expect("filters");
    let (mut client, _) = C5::connect(broker.tcp_addr().expect("tcp"), "dev-1", |_| {}).await;
    let props = PublishProperties {
        user_properties: vec![("site".into(), "A".into())],
        content_type: Some("application/json".into()),
        ..Default::default()
    };
    client.publish_props("sensors/1", Q5::AtLeastOnce, false, b"{\"t\":1}", props).await;
    for i in 2..=20 {
        client.publish(&format!("sensors/{i}"), Q5::AtLeastOnce, false, format!("m{i}").as_bytes()).await;
    }
    client.publish("elsewhere", Q5::AtLeastOnce, false, b"x").await;
    let records = tokio::task::spawn_blocking({
        let (queue, topic) = (queue.clone(), topics.msg(id));
        move || read_all(queue.as_ref(), &topic, 20)
    })
    .await
    .expect("join");
    let first = &records[0];
    assert_eq!(first.0, b"sensors/1", "the record key is the MQTT topic");
    assert_eq!(first.1.tbmq_node, "broker-1");
    let p = first.1.publish_msg_proto.as_ref().expect("message");
    assert_eq!(
        (p.client_id.as_str(), p.topic_name.as_str(), &p.payload[..], p.qos),
        ("dev-1", "sensors/1", &b"{\"t\":1}"[..], 1)
    );
    assert_eq!(p.user_properties[0].key, "site");
    assert_eq!(p.mqtt_properties.as_ref().and_then(|m| m.content_type.as_deref()), Some("application/json"));
    let payloads: Vec<String> = records[1..]
        .iter()
        .map(|(_, m)| String::from_utf8_lossy(&m.publish_msg_proto.as_ref().expect("msg").payload).into_owned())
        .collect();
    assert_eq!(payloads, (2..=20).map(|i| format!("m{i}")).collect::<Vec<_>>());
    let stats = forwarder.stats();
    assert_eq!(stats.dropped.load(std::sync::atomic::Ordering::Relaxed), 0);
}

#[tokio::test]
async fn a_deleted_topic_is_recreated_and_nothing_is_dropped() {
    let queue: Arc<dyn Queue> = Arc::new(EmbeddedQueue::new());
    let topics = TopicNames::default();
    let forwarder = QueueForwarder::new(queue.clone(), topics.clone(), "broker-1".into());
    let hooks = BrokerHooks { integration_sink: Some(forwarder.clone()), ..Default::default() };
    let broker = start_with(|_| {}, hooks).await;
    let id = Uuid::new_v4();
    broker.router().add_integration_subscriptions(&id.to_string(), &["a/#".to_string()]).expect("filters");
    let (mut client, _) = C5::connect(broker.tcp_addr().expect("tcp"), "dev-2", |_| {}).await;
    client.publish("a/1", Q5::AtLeastOnce, false, b"one").await;
    let topic = topics.msg(id);
    let (q, t) = (queue.clone(), topic.clone());
    tokio::task::spawn_blocking(move || read_all(q.as_ref(), &t, 1)).await.expect("join");
    queue.delete_topic(&topic).expect("delete");
    client.publish("a/2", Q5::AtLeastOnce, false, b"two").await;
    let (q, t) = (queue.clone(), topic.clone());
    let records = tokio::task::spawn_blocking(move || read_all(q.as_ref(), &t, 1)).await.expect("join");
    assert_eq!(&records[0].1.publish_msg_proto.as_ref().expect("msg").payload[..], b"two");
    assert_eq!(forwarder.stats().dropped.load(std::sync::atomic::Ordering::Relaxed), 0);
}
