//! `request::build` as a table: message + configuration in, PUBLISH (or refusal) out.

use serde_json::json;
use trib_plugin_api::{
    abi::UserProperty, abi_stable::std_types::RStr, driver::Outcome, support::envelope::EnvelopeContext,
};

use super::support::{merge, message, Extras, METADATA, SERVICE_ID};
use crate::{
    config,
    request::{self, Properties, Publish},
};

fn check(patch: serde_json::Value, msg: &trib_plugin_api::abi::Message<'_>, expected: Result<Publish, Outcome>) {
    let mut cfg = json!({"host": "h", "clientId": "c", "topicName": "out/static"});
    merge(&mut cfg, patch);
    let cfg = config::parse(&cfg.to_string()).expect("valid config");
    let envelope = EnvelopeContext::new(SERVICE_ID, METADATA);
    assert_eq!(request::build(&cfg, &envelope, msg), expected);
}

fn publish(topic: &str, qos: u8, retain: bool, payload: &[u8]) -> Publish {
    Publish { topic: topic.to_string(), qos, retain, payload: payload.to_vec(), properties: None }
}

#[test]
fn static_topic_and_configured_qos_retain() {
    let m = message("in/a", b"\x00\xff", 0, false, Extras::default());
    let cfg = json!({"sendOnlyMsgPayload": true, "qos": 2, "retained": true});
    check(cfg, &m, Ok(publish("out/static", 2, true, b"\x00\xff")));
}

#[test]
fn source_topic_qos_and_retain() {
    let m = message("in/a", b"x", 2, true, Extras::default());
    let cfg =
        json!({"sendOnlyMsgPayload": true, "useMsgTopicName": true, "useMsgQoS": true, "useMsgRetain": true, "qos": 0});
    check(cfg, &m, Ok(publish("in/a", 2, true, b"x")));
}

#[test]
fn template_topic() {
    let m = message("in/a", b"x", 1, false, Extras::default());
    let cfg = json!({"sendOnlyMsgPayload": true, "topicName": "bridge/${topic}/by/${clientId}"});
    check(cfg, &m, Ok(publish("bridge/in/a/by/device-1", 1, false, b"x")));
}

#[test]
fn envelope_payload_is_the_tbmq_envelope() {
    let m = message("in/a", br#"{"t":25}"#, 1, false, Extras::default());
    let envelope = br#"{"payload":"eyJ0IjoyNX0=","topicName":"in/a","clientId":"device-1","eventType":"PUBLISH_MSG","qos":1,"retain":false,"tbmqIeNode":"tbmq-ie-test","tbmqNode":"tbmq1","ts":1717000000000,"props":{},"metadata":{"integrationName":"MQTT test","site":"A"}}"#;
    check(json!({}), &m, Ok(publish("out/static", 1, false, envelope)));
}

#[test]
fn mqtt5_payload_only_passes_every_property() {
    let props = [UserProperty { key: RStr::from_str("k"), value: RStr::from_str("v") }];
    let extras = Extras {
        props: &props,
        content_type: Some("text/plain"),
        correlation: Some(b"c1"),
        response_topic: Some("reply/1"),
        expiry: Some(60),
        utf8: Some(true),
    };
    let m = message("in/a", b"x", 1, false, extras);
    let mut expected = publish("out/static", 1, false, b"x");
    expected.properties = Some(Properties {
        user: vec![("k".into(), "v".into())],
        content_type: Some("text/plain".into()),
        correlation_data: Some(b"c1".to_vec()),
        response_topic: Some("reply/1".into()),
        message_expiry_secs: Some(60),
        payload_format: Some(1),
    });
    check(json!({"mqttVersion": 5, "sendOnlyMsgPayload": true}), &m, Ok(expected));
}

#[test]
fn mqtt5_envelope_drops_content_type_and_payload_format() {
    let extras =
        Extras { content_type: Some("text/plain"), utf8: Some(false), response_topic: Some("r"), ..Default::default() };
    let m = message("in/a", b"x", 1, false, extras);
    let built = {
        let cfg = config::parse(r#"{"host":"h","clientId":"c","topicName":"o","mqttVersion":5}"#).expect("valid");
        request::build(&cfg, &EnvelopeContext::new(SERVICE_ID, METADATA), &m).expect("built")
    };
    let props = built.properties.expect("MQTT 5 properties");
    assert_eq!((props.content_type, props.payload_format, props.response_topic), (None, None, Some("r".to_string())));
}

#[test]
fn mqtt311_has_no_properties() {
    let extras = Extras { content_type: Some("text/plain"), ..Default::default() };
    let m = message("in/a", b"x", 1, false, extras);
    check(json!({"sendOnlyMsgPayload": true}), &m, Ok(publish("out/static", 1, false, b"x")));
}

#[test]
fn client_id_with_wildcard_makes_an_invalid_topic() {
    let mut m = message("in/a", b"x", 1, false, Extras::default());
    m.client_id = RStr::from_str("dev+1");
    let cfg = json!({"sendOnlyMsgPayload": true, "topicName": "by/${clientId}"});
    check(cfg, &m, Err(Outcome::Rejected("target topic 'by/dev+1' contains a wildcard character".to_string())));
}

#[test]
fn empty_source_topic_is_rejected() {
    let m = message("", b"x", 1, false, Extras::default());
    check(json!({"useMsgTopicName": true}), &m, Err(Outcome::Rejected("target topic '' is empty".to_string())));
}

#[test]
fn invalid_message_qos_is_rejected() {
    let m = message("in/a", b"x", 7, false, Extras::default());
    check(json!({"useMsgQoS": true}), &m, Err(Outcome::Rejected("invalid QoS 7".to_string())));
}
