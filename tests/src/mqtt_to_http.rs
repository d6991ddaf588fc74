//! MQTT -> HTTP on the all-in-one process: a device publishes at QoS 1, an HTTP integration posts
//! to the in-test target, and the target sees exactly the matching messages, once each, in
//! publish order, with TBMQ's envelope (or the payload alone). `maxParallelRequestsCount: 1`
//! makes the driver send one request at a time, so the arrival order is the delivery order.
//!
//! The first messages to a new integration go through the broker forwarder's topic-creation
//! path (`broker/src/forward.rs`); later ones may take the direct path only once nothing of that
//! integration is still waiting there, so both bursts must arrive complete and in order.

use serde_json::json;

use crate::{
    devices::publish_all,
    http_target::{bodies, HttpTarget},
    node::{unique, Mode, Node},
    rest::{http_integration, Rest},
};

const COUNT: usize = 30;

#[test]
fn envelope_mode_delivers_every_matching_message_once_in_order() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = Node::start(Mode::AllInOne, dir.path(), &[]);
    let rest = Rest::login(&node.api());
    rest.wait_executors(&["HTTP"], 1);
    let target = HttpTarget::start();
    let root = unique("sensors");
    let name = unique("to-http");
    let mut integration = http_integration(&name, &target.url("/ingest?src=e2e"), &format!("{root}/+/temp"));
    integration["configuration"]["clientConfiguration"]["headers"] = json!({"X-Test": "e2e"});
    integration["configuration"]["clientConfiguration"]["payloadContentType"] = json!("JSON");
    integration["configuration"]["metadata"] = json!({"site": "A", "floor": 3});
    let id = rest.create_integration(&integration);
    rest.wait_state(&id, "Active");

    // Humidity readings do not match the filter and must never arrive; the last message matches,
    // so once it arrived everything before it has been delivered or dropped.
    let mut messages = Vec::new();
    for i in 0..COUNT {
        if i % 4 == 1 {
            messages.push((format!("{root}/{i}/humidity"), format!("{{\"h\":{i}}}").into_bytes()));
        }
        messages.push((format!("{root}/{}/temp", i % 3), format!("{{\"n\":{i},\"text\":\"ü\"}}").into_bytes()));
    }
    let device = unique("dev");
    publish_all(node.mqtt_port, &device, &[(format!("{root}/0/temp"), b"{\"warm\":1}".to_vec())]);
    target.wait_delivered("the first message", |d| !d.is_empty());
    publish_all(node.mqtt_port, &device, &messages);
    let got = target.wait_delivered("the last message", |d| d.iter().any(|r| r.json()["payload"]["n"] == COUNT - 1));
    let got = got[1..].to_vec();

    assert_eq!(got.len(), COUNT, "exactly the matching messages, once each: {}", bodies(&got));
    assert_eq!(target.refused(), 0);
    for (i, request) in got.iter().enumerate() {
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/ingest?src=e2e");
        assert_eq!(request.header("X-Test"), Some("e2e"));
        assert_eq!(request.header("Content-Type"), Some("application/json"));
        let body = request.json();
        let keys: Vec<&str> = body.as_object().expect("an object").keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "payload",
                "topicName",
                "clientId",
                "eventType",
                "qos",
                "retain",
                "tbmqIeNode",
                "tbmqNode",
                "ts",
                "props",
                "metadata"
            ],
            "TBMQ's envelope fields in TBMQ's order"
        );
        assert_eq!(body["payload"], json!({"n": i, "text": "ü"}), "message {i} in publish order");
        assert_eq!(body["topicName"], format!("{root}/{}/temp", i % 3));
        assert_eq!(body["clientId"], device.as_str());
        assert_eq!(body["eventType"], "PUBLISH_MSG");
        assert_eq!(body["qos"], 1);
        assert_eq!(body["retain"], false);
        assert_eq!(body["tbmqIeNode"], node.service_id.as_str());
        assert_eq!(body["tbmqNode"], node.service_id.as_str());
        assert!(body["ts"].as_i64().is_some_and(|ts| ts > 1_600_000_000_000), "ts in ms: {}", body["ts"]);
        assert_eq!(body["props"], json!({}));
        // Metadata values are sent as text, after the integration's name.
        assert_eq!(body["metadata"], json!({"integrationName": name, "site": "A", "floor": "3"}));
    }
}

#[test]
fn payload_only_mode_sends_the_payload_alone() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = Node::start(Mode::AllInOne, dir.path(), &[]);
    let rest = Rest::login(&node.api());
    rest.wait_executors(&["HTTP"], 1);
    let (text_target, binary_target) = (HttpTarget::start(), HttpTarget::start());
    let root = unique("raw");
    let mut text = http_integration(&unique("text"), &text_target.url("/text"), &format!("{root}/text/#"));
    text["configuration"]["clientConfiguration"]["sendOnlyMsgPayload"] = json!(true);
    text["configuration"]["clientConfiguration"]["payloadContentType"] = json!("TEXT");
    let mut binary = http_integration(&unique("binary"), &binary_target.url("/bin"), &format!("{root}/bin/#"));
    binary["configuration"]["clientConfiguration"]["sendOnlyMsgPayload"] = json!(true);
    binary["configuration"]["clientConfiguration"]["payloadContentType"] = json!("BINARY");
    binary["configuration"]["clientConfiguration"]["requestMethod"] = json!("PUT");
    for body in [&text, &binary] {
        let id = rest.create_integration(body);
        rest.wait_state(&id, "Active");
    }

    let device = unique("dev");
    for burst in 0..2 {
        let texts: Vec<Vec<u8>> =
            (0..COUNT).map(|i| format!("burst {burst} reading {i}: 21.5 °C").into_bytes()).collect();
        let blobs: Vec<Vec<u8>> = (0..COUNT).map(|i| vec![0xff, 0x00, burst, i as u8, 0xfe]).collect();
        let mut messages = Vec::new();
        for i in 0..COUNT {
            messages.push((format!("{root}/text/{i}"), texts[i].clone()));
            messages.push((format!("{root}/bin/{i}"), blobs[i].clone()));
        }
        publish_all(node.mqtt_port, &device, &messages);
        let done = COUNT * (burst as usize + 1);
        let got = text_target.wait_delivered("every text message", |d| d.len() >= done);
        let received: Vec<Vec<u8>> = got[done - COUNT..].iter().map(|r| r.body.clone()).collect();
        check_burst(burst, received, texts);
        assert!(got.iter().all(|r| r.method == "POST" && r.header("Content-Type") == Some("text/plain;charset=UTF-8")));
        let got = binary_target.wait_delivered("every binary message", |d| d.len() >= done);
        let received: Vec<Vec<u8>> = got[done - COUNT..].iter().map(|r| r.body.clone()).collect();
        check_burst(burst, received, blobs);
        assert!(got.iter().all(|r| r.method == "PUT" && r.header("Content-Type") == Some("application/octet-stream")));
    }
}

/// Every burst must arrive complete, once each, in publish order.
fn check_burst(burst: u8, received: Vec<Vec<u8>>, sent: Vec<Vec<u8>>) {
    assert_eq!(received, sent, "burst {burst}: the payloads alone, once each, in order");
}
