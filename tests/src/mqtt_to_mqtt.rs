//! MQTT -> MQTT: MQTT integrations of the all-in-one process republish to an external broker, an
//! in-test broker (our own) always and also the broker named by `TRIB_TEST_MQTT_BROKER` (Mosquitto in CI).
//! A subscriber there sees every message once, in order, on the rendered topic, at the configured
//! QoS, as the payload alone or as TBMQ's envelope (payload in base64).

use std::{sync::OnceLock, time::Duration};

use base64::{engine::general_purpose::STANDARD, Engine};
use serde_json::json;
use trib_broker::{Broker, BrokerConfig};

use crate::{
    devices::{publish_all, Subscriber},
    node::{unique, Mode, Node},
    rest::Rest,
};

const COUNT: usize = 20;

#[test]
fn forwards_to_every_target_broker() {
    let mut targets = vec![("trib-broker".to_string(), "127.0.0.1".to_string(), embedded_broker())];
    if let Ok(addr) = std::env::var("TRIB_TEST_MQTT_BROKER") {
        let (host, port) = addr.rsplit_once(':').expect("TRIB_TEST_MQTT_BROKER is host:port");
        targets.push((addr.clone(), host.to_string(), port.parse().expect("a port number")));
    } else {
        crate::report("TRIB_TEST_MQTT_BROKER is not set: MQTT integrations tested against the in-test broker only.");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let node = Node::start(Mode::AllInOne, dir.path(), &[]);
    let rest = Rest::login(&node.api());
    rest.wait_executors(&["MQTT"], 1);
    for (name, host, port) in &targets {
        forward_to(&node, &rest, name, host, *port);
    }
}

fn forward_to(node: &Node, rest: &Rest, target: &str, host: &str, port: u16) {
    let out = unique("bridge");
    let source = unique("dev");
    let subscriber = Subscriber::start(host, port, &unique("sub"), &format!("{out}/#"));
    let integration = |name: &str, topic: &str, only_payload: bool| {
        json!({
            "name": name, "type": "MQTT", "enabled": true,
            "configuration": {
                "clientConfiguration": {
                    "host": host, "port": port, "clientId": unique("bridge-client"),
                    "topicName": topic, "useMsgTopicName": false,
                    "qos": 1, "useMsgQoS": false, "retained": false,
                    "sendOnlyMsgPayload": only_payload
                },
                "topicFilters": [format!("{source}/#")],
                "metadata": {"target": target}
            }
        })
    };
    let raw_name = unique("raw");
    let env_name = unique("env");
    for body in [
        integration(&raw_name, &format!("{out}/raw/${{topic}}"), true),
        integration(&env_name, &format!("{out}/env"), false),
    ] {
        let id = rest.create_integration(&body);
        rest.wait_state(&id, "Active");
    }
    let device = unique("device");
    // A first message per integration shows the whole path runs before the ordered burst.
    publish_all(node.mqtt_port, &device, &[(format!("{source}/warm"), b"warm".to_vec())]);
    subscriber.take(2);

    let messages: Vec<(String, Vec<u8>)> =
        (0..COUNT).map(|i| (format!("{source}/{}/data", i % 4), format!("m-{i}").into_bytes())).collect();
    publish_all(node.mqtt_port, &device, &messages);
    let got = subscriber.take(2 * COUNT);
    let (raw, env): (Vec<_>, Vec<_>) = got.into_iter().partition(|m| m.topic.starts_with(&format!("{out}/raw/")));
    assert_eq!(raw.len(), COUNT, "{target}: every payload-only message once: {raw:?}");
    assert_eq!(env.len(), COUNT, "{target}: every envelope once: {env:?}");
    for (i, (m, (topic, payload))) in raw.iter().zip(&messages).enumerate() {
        assert_eq!(m.topic, format!("{out}/raw/{topic}"), "{target}: message {i}: topic rendered, in order");
        assert_eq!(&m.payload, payload, "{target}: message {i}: the payload alone");
        assert_eq!(m.qos, 1, "{target}: the configured QoS");
    }
    for (i, (m, (topic, payload))) in env.iter().zip(&messages).enumerate() {
        assert_eq!(m.topic, format!("{out}/env"), "{target}: static topic");
        assert_eq!(m.qos, 1);
        let body: serde_json::Value = serde_json::from_slice(&m.payload).expect("a JSON envelope");
        let decoded = STANDARD.decode(body["payload"].as_str().expect("payload in base64")).expect("base64");
        assert_eq!(&decoded, payload, "{target}: message {i} in order");
        assert_eq!(body["topicName"], topic.as_str());
        assert_eq!(body["clientId"], device.as_str());
        assert_eq!(body["eventType"], "PUBLISH_MSG");
        assert_eq!(body["qos"], 1);
        assert_eq!(body["tbmqIeNode"], node.service_id.as_str());
        assert_eq!(body["metadata"], json!({"integrationName": env_name, "target": target}));
    }
    assert!(subscriber.drain(Duration::from_millis(300)).is_empty(), "{target}: nothing more");
}

/// An in-test broker: our own `trib-broker` (MQTT 3.1.1 and 5) on a free port, on a runtime of
/// its own; it lives as long as the test binary. It was rumqttd until rumqttd 0.20's listener was
/// found to poison itself when a client id reconnects after a connection closed before its CONNACK
/// (bytebeamio/rumqtt#1062); see `trib-driver-mqtt`'s test support.
fn embedded_broker() -> u16 {
    static PORT: OnceLock<u16> = OnceLock::new();
    *PORT.get_or_init(|| {
        trib_test_support::serve_forever("test-broker", || async {
            let mut config = BrokerConfig::default();
            config.listener.tcp.bind_address = "127.0.0.1".to_string();
            config.listener.tcp.bind_port = 0;
            config.listener.tcp.max_payload_size = 1 << 20;
            let broker = Broker::start(config).await.expect("the test broker starts");
            (broker.tcp_addr().expect("the test broker listens on TCP").port(), broker)
        })
    })
}
