//! Configuration validation as a table: TBMQ's `MqttConfigValidatorTest` cases (with its exact
//! messages) plus this driver's own rules. Each case patches a valid configuration.

use serde_json::{json, Value};
use trib_plugin_api::driver::{Driver, Host};

use super::support::merge;
use crate::{
    config::{self, MqttVersion},
    driver::MqttDriver,
    topic::{TargetTopic, TopicPart},
};

/// TBMQ's `createValidConfig()`, except `mqttVersion` 4: this driver cannot speak MQTT 3.1.
fn valid() -> Value {
    json!({
        "host": "mqtt.example.com", "port": 1883, "topicName": "test/topic", "clientId": "client-123",
        "connectTimeoutSec": 10, "reconnectPeriodSec": 5, "mqttVersion": 4, "qos": 1, "keepAliveSec": 30
    })
}

/// Validates `valid()` patched with `patch` through the driver and compares (field, message) pairs.
fn check(patch: Value, expected: &[(&str, &str)]) {
    let mut config = valid();
    merge(&mut config, patch);
    check_text(&config.to_string(), expected);
}

fn check_text(text: &str, expected: &[(&str, &str)]) {
    let driver = MqttDriver::create(Host::detached()).expect("create");
    let got: Vec<(String, String)> =
        driver.validate(text).into_iter().map(|e| (e.field.to_string(), e.message.to_string())).collect();
    let expected: Vec<(String, String)> = expected.iter().map(|(f, m)| (f.to_string(), m.to_string())).collect();
    assert_eq!(got, expected, "config {text}");
}

const WILDCARD: &str = "Topic name cannot contain wildcard characters";
const REQUIRED_TOPIC: &str = "Topic name is required when useMsgTopicName is disabled!";

// TBMQ's MqttConfigValidatorTest, case by case.
#[test]
fn tbmq_valid_config() {
    check(json!({}), &[]);
}
#[test]
fn tbmq_empty_host() {
    check(json!({"host": ""}), &[("host", "Host cannot be empty")]);
}
#[test]
fn tbmq_invalid_port() {
    check(json!({"port": 70000}), &[("port", "Port must be between 1 and 65535")]);
}
#[test]
fn tbmq_empty_topic_with_static_topic() {
    check(json!({"topicName": "", "useMsgTopicName": false}), &[("topicName", REQUIRED_TOPIC)]);
}
#[test]
fn tbmq_empty_topic_with_dynamic_topic_is_ok() {
    check(json!({"topicName": "", "useMsgTopicName": true}), &[]);
}
#[test]
fn tbmq_wildcard_topic_with_dynamic_topic_is_ok() {
    check(json!({"topicName": "abc/+", "useMsgTopicName": true}), &[]);
}
#[test]
fn tbmq_single_level_wildcard_in_static_topic() {
    check(json!({"topicName": "abc/+"}), &[("topicName", WILDCARD)]);
}
#[test]
fn tbmq_multi_level_wildcard_in_static_topic() {
    check(json!({"topicName": "abc/#"}), &[("topicName", WILDCARD)]);
}
#[test]
fn tbmq_dollar_topic() {
    check(json!({"topicName": "$abc/abc"}), &[("topicName", "Topic name cannot start with $ character")]);
}
#[test]
fn tbmq_empty_client_id() {
    check(json!({"clientId": ""}), &[("clientId", "Client ID is required")]);
}
#[test]
fn tbmq_zero_connect_timeout() {
    check(
        json!({"connectTimeoutSec": 0}),
        &[("connectTimeoutSec", "Connection timeout (seconds) must be greater than 0")],
    );
}
#[test]
fn tbmq_negative_reconnect_period() {
    check(
        json!({"reconnectPeriodSec": -1}),
        &[("reconnectPeriodSec", "Reconnect period (seconds) must not be less than 0")],
    );
}
#[test]
fn tbmq_invalid_mqtt_version() {
    check(
        json!({"mqttVersion": 6}),
        &[("mqttVersion", "Invalid MQTT version. Allowed values: 3 (MQTT_3_1), 4 (MQTT_3_1_1), 5 (MQTT_5)")],
    );
}
#[test]
fn tbmq_invalid_qos() {
    check(
        json!({"qos": 3}),
        &[(
            "qos",
            "Invalid MQTT Quality of Service (QoS). Allowed values: 0 (AT_MOST_ONCE), 1 (AT_LEAST_ONCE), 2 (EXACTLY_ONCE)",
        )],
    );
}
#[test]
fn tbmq_negative_keep_alive() {
    check(json!({"keepAliveSec": -1}), &[("keepAliveSec", "Keep Alive (seconds) must not be less than 0")]);
}

// This driver's own rules.
#[test]
fn mqtt_3_1_is_refused_clearly() {
    check(
        json!({"mqttVersion": 3}),
        &[(
            "mqttVersion",
            "MQTT 3.1 (mqttVersion 3) is not supported by this driver: use 4 (MQTT_3_1_1) or 5 (MQTT_5)",
        )],
    );
}
#[test]
fn mqtt_5_is_valid() {
    check(json!({"mqttVersion": 5}), &[]);
}
#[test]
fn port_zero() {
    check(json!({"port": 0}), &[("port", "Port must be between 1 and 65535")]);
}
#[test]
fn port_as_numeric_string_is_accepted() {
    check(json!({"port": "1883"}), &[]);
}
#[test]
fn port_of_wrong_type() {
    check(json!({"port": "abc"}), &[("port", "must be an integer")]);
}
#[test]
fn flag_of_wrong_type() {
    check(json!({"ssl": 3}), &[("ssl", "must be a boolean")]);
}
#[test]
fn keep_alive_above_what_connect_can_carry() {
    check(json!({"keepAliveSec": 65536}), &[("keepAliveSec", "Keep Alive (seconds) must not be greater than 65535")]);
}
#[test]
fn keep_alive_zero_is_valid() {
    check(json!({"keepAliveSec": 0}), &[]);
}
#[test]
fn reconnect_period_zero_is_valid() {
    check(json!({"reconnectPeriodSec": 0}), &[]);
}
#[test]
fn topic_template_is_valid() {
    check(json!({"topicName": "bridge/${topic}/from/${clientId}"}), &[]);
}
#[test]
fn topic_template_may_start_with_placeholder() {
    check(json!({"topicName": "${topic}/copy"}), &[]);
}
#[test]
fn topic_template_with_unknown_placeholder() {
    check(
        json!({"topicName": "bridge/${foo}"}),
        &[("topicName", "Topic name contains an unknown placeholder ${foo}: allowed are ${topic} and ${clientId}")],
    );
}
#[test]
fn topic_template_with_wildcard_text() {
    check(json!({"topicName": "${topic}/+"}), &[("topicName", WILDCARD)]);
}
#[test]
fn basic_credentials_need_a_username() {
    check(json!({"credentials": {"type": "basic", "password": "p"}}), &[("credentials.username", "must not be empty")]);
}
#[test]
fn unknown_credentials_type() {
    let got = MqttDriver::create(Host::detached()).expect("create").validate(
        &json!({"host": "h", "clientId": "c", "topicName": "t", "credentials": {"type": "oauth"}}).to_string(),
    );
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].field.as_str(), "credentials");
    assert!(got[0].message.as_str().starts_with("is invalid: "), "{}", got[0].message);
}
#[test]
fn cert_pem_with_unreadable_certificate() {
    check(
        json!({"credentials": {"type": "cert.PEM", "caCert": "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n"}}),
        &[("credentials.caCert", "cannot read the certificate: base64 decode error: InvalidCharacter(33)")],
    );
}
#[test]
fn unknown_fields_are_ignored() {
    check(json!({"caCertFileName": "ca.pem", "somethingNew": {"a": 1}}), &[]);
}
#[test]
fn invalid_json() {
    check_text("{", &[("", "invalid JSON: EOF while parsing an object at line 1 column 1")]);
}
#[test]
fn not_an_object() {
    check_text("[1]", &[("", "clientConfiguration must be a JSON object")]);
}
#[test]
fn empty_object_lists_every_required_field() {
    check_text(
        "{}",
        &[("host", "Host cannot be empty"), ("topicName", REQUIRED_TOPIC), ("clientId", "Client ID is required")],
    );
}

#[test]
fn missing_fields_take_the_ui_defaults() {
    let c = config::parse(r#"{"host":" h ","clientId":"c","topicName":"t/${topic}"}"#).expect("valid");
    assert_eq!(c.host, "h");
    assert_eq!(c.port, 1883);
    assert_eq!(c.connect_timeout.as_secs(), 10);
    assert_eq!(c.reconnect_period.map(|d| d.as_secs()), Some(5));
    assert_eq!(c.version, MqttVersion::V311);
    assert_eq!((c.qos, c.use_msg_qos, c.retained, c.use_msg_retain), (1, false, false, false));
    assert_eq!(c.keep_alive_sec, 60);
    assert!(!c.tls && !c.send_only_msg_payload);
    assert_eq!(c.topic, TargetTopic::Template(vec![TopicPart::Text("t/".into()), TopicPart::Topic]));
}

#[test]
fn cert_pem_credentials_imply_tls_and_zero_reconnect_means_never() {
    let c = config::parse(
        r#"{"host":"h","clientId":"c","useMsgTopicName":true,"reconnectPeriodSec":0,"credentials":{"type":"cert.PEM"}}"#,
    )
    .expect("valid");
    assert!(c.tls);
    assert_eq!(c.reconnect_period, None);
    assert_eq!(c.topic, TargetTopic::Source);
}
