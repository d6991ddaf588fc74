//! MQTT -> Kafka: a Kafka integration of the all-in-one process produces to rdkafka's mock
//! cluster, which lives in this test process (the child connects to its loopback bootstrap
//! address), and also to the cluster named by `TRIB_TEST_KAFKA_BOOTSTRAP` (Tansu in CI). Reading
//! the topic back shows every message once, in order, with the templated key and the payload
//! (or TBMQ's envelope).

use std::time::Duration;

use base64::{engine::general_purpose::STANDARD, Engine};
use rdkafka::{
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
    mocking::MockCluster,
    ClientConfig,
};
use serde_json::json;
use trib_test_support::block_on;

use crate::{
    devices::publish_all,
    node::{unique, Mode, Node, PATIENCE},
    rest::Rest,
};

const COUNT: usize = 20;

#[test]
fn delivers_to_every_cluster() {
    let mock = MockCluster::new(1).expect("mock cluster");
    let topics = [unique("raw"), unique("env")];
    for topic in &topics {
        mock.create_topic(topic, 1, 1).expect("create the topic");
    }
    deliver(&mock.bootstrap_servers(), &topics);
    match std::env::var("TRIB_TEST_KAFKA_BOOTSTRAP").ok().filter(|b| !b.trim().is_empty()) {
        Some(bootstrap) => {
            let topics = [unique("raw"), unique("env")];
            create_topics(&bootstrap, &topics);
            deliver(&bootstrap, &topics);
        }
        None => {
            crate::report("TRIB_TEST_KAFKA_BOOTSTRAP is not set: Kafka integrations tested on the mock cluster only.")
        }
    }
}

/// Creates single-partition topics through the admin API.
pub fn create_topics(bootstrap: &str, names: &[String]) {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", bootstrap).create().expect("admin client");
    let topics: Vec<NewTopic<'_>> = names.iter().map(|n| NewTopic::new(n, 1, TopicReplication::Fixed(1))).collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(20)));
    for result in block_on(admin.create_topics(&topics, &options)).expect("create_topics") {
        result.expect("topic created");
    }
}

/// A payload-only integration with a `${clientId}` key to `topics[0]` and an envelope one to
/// `topics[1]`; both must receive every message in order.
fn deliver(bootstrap: &str, topics: &[String; 2]) {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = Node::start(Mode::AllInOne, dir.path(), &[]);
    let rest = Rest::login(&node.api());
    rest.wait_executors(&["KAFKA"], 1);
    let source = unique("plant");
    let env_name = unique("env");
    for (name, topic, only_payload) in [(unique("raw"), &topics[0], true), (env_name.clone(), &topics[1], false)] {
        let id = rest.create_integration(&json!({
            "name": name, "type": "KAFKA", "enabled": true,
            "configuration": {
                "clientConfiguration": {
                    "bootstrapServers": bootstrap, "topic": topic, "key": "dev-${clientId}",
                    "acks": "-1", "compression": "none", "sendOnlyMsgPayload": only_payload
                },
                "topicFilters": [format!("{source}/#")],
                "metadata": {}
            }
        }));
        rest.wait_state(&id, "Active");
    }
    let device = unique("device");
    // A first message, consumed below, shows the whole path runs before the ordered burst.
    publish_all(node.mqtt_port, &device, &[(format!("{source}/warm"), b"warm".to_vec())]);
    for topic in topics {
        consume(bootstrap, topic, 1);
    }
    let messages: Vec<(String, Vec<u8>)> =
        (0..COUNT).map(|i| (format!("{source}/line/{}", i % 2), format!("reading-{i}").into_bytes())).collect();
    publish_all(node.mqtt_port, &device, &messages);

    let raw = consume(bootstrap, &topics[0], COUNT + 1);
    let key = format!("dev-{device}").into_bytes();
    for (i, ((k, value), (_, payload))) in raw[1..].iter().zip(&messages).enumerate() {
        assert_eq!(k.as_ref(), Some(&key), "record {i}: the templated key");
        assert_eq!(value, payload, "record {i}: the payload alone, in order");
    }
    let env = consume(bootstrap, &topics[1], COUNT + 1);
    for (i, ((k, value), (topic, payload))) in env[1..].iter().zip(&messages).enumerate() {
        assert_eq!(k.as_ref(), Some(&key));
        let body: serde_json::Value = serde_json::from_slice(value).expect("a JSON envelope");
        let decoded = STANDARD.decode(body["payload"].as_str().expect("base64 payload")).expect("base64");
        assert_eq!(&decoded, payload, "record {i} in order");
        assert_eq!(body["topicName"], topic.as_str());
        assert_eq!(body["clientId"], device.as_str());
        assert_eq!(body["metadata"], json!({"integrationName": env_name}));
    }
}

/// Reads partition 0 of `topic` from the beginning until `count` records arrived; more than
/// `count` fails (a duplicate or a stray record). Keys and values.
pub fn consume(bootstrap: &str, topic: &str, count: usize) -> Vec<(Option<Vec<u8>>, Vec<u8>)> {
    trib_test_support::kafka::consume(bootstrap, topic, count, PATIENCE).into_iter().map(|r| (r.key, r.value)).collect()
}
