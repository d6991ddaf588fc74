//! What actually arrives on the topic: value per mode, key, headers and charsets, settings
//! variants, and the dead-broker and missing-topic cases. Each test runs on every peer.

use std::time::{Duration, Instant};

use trib_plugin_api::driver::{Driver, ErrorKind, Host, Outcome};

use super::support::{config, consume, deliver, message, message_from, peers, start_config, started, Received};
use crate::driver::KafkaDriver;

const ENVELOPE: &str = r#"{"payload":"eyJ0IjoyNX0=","topicName":"sensors/1/temp","clientId":"device-1","eventType":"PUBLISH_MSG","qos":1,"retain":false,"tbmqIeNode":"tbmq-ie1","tbmqNode":"tbmq1","ts":1717000000000,"props":{"k1":"v1"},"metadata":{"integrationName":"Kafka int"}}"#;

/// Delivers one message with `extra` config fields and returns what the consumer read.
fn round_trip(label: &str, extra: &str, payload: &'static [u8]) {
    for peer in peers() {
        let topic = peer.topic(label);
        let outcomes = deliver(&config(&peer.bootstrap(), &topic, extra), &[message(payload)]);
        assert_eq!(outcomes, vec![Outcome::Delivered], "{} peer", peer.name());
        let _ = consume(&peer.bootstrap(), &topic, 1);
    }
}

/// Delivers `msgs` with `extra` config fields on every peer and compares what arrived.
fn check(extra: &str, msgs: &[trib_plugin_api::abi::Message<'static>], expected: &[Received]) {
    for peer in peers() {
        let topic = peer.topic("delivery");
        let outcomes = deliver(&config(&peer.bootstrap(), &topic, extra), msgs);
        assert!(outcomes.iter().all(|o| *o == Outcome::Delivered), "{} peer: {outcomes:?}", peer.name());
        assert_eq!(consume(&peer.bootstrap(), &topic, expected.len()), expected, "{} peer", peer.name());
    }
}

fn value(v: &[u8]) -> Received {
    Received { key: None, value: v.to_vec(), headers: Vec::new() }
}

fn keyed(key: &str, v: &[u8]) -> Received {
    Received { key: Some(key.as_bytes().to_vec()), ..value(v) }
}

fn with_header(name: &str, bytes: &[u8]) -> Received {
    Received { headers: vec![(name.to_string(), bytes.to_vec())], ..value(br#"{"t":25}"#) }
}

#[test]
fn envelope_is_the_default_value() {
    check("", &[message(br#"{"t":25}"#)], &[value(ENVELOPE.as_bytes())]);
}

#[test]
fn payload_only_sends_utf8_payload_as_is() {
    check(
        r#""sendOnlyMsgPayload":true"#,
        &[message("température 25°".as_bytes())],
        &[value("température 25°".as_bytes())],
    );
}

#[test]
fn payload_only_sends_binary_payload_as_base64() {
    check(r#""sendOnlyMsgPayload":true"#, &[message(&[0xff, 0x00, 0xfe])], &[value(b"/wD+")]);
}

#[test]
fn static_key_is_sent_on_every_record() {
    let msgs = [message_from("a/b", "dev-1", b"1"), message_from("c/d", "dev-2", b"2")];
    check(r#""sendOnlyMsgPayload":true,"key":"site-A""#, &msgs, &[keyed("site-A", b"1"), keyed("site-A", b"2")]);
}

#[test]
fn key_placeholders_derive_the_key_from_each_message() {
    let msgs = [message_from("a/b", "dev-1", b"1"), message_from("c/d", "dev-2", b"2")];
    let extra = r#""sendOnlyMsgPayload":true,"key":"${clientId}@${topic}""#;
    check(extra, &msgs, &[keyed("dev-1@a/b", b"1"), keyed("dev-2@c/d", b"2")]);
}

#[test]
fn empty_key_sends_no_key() {
    check(r#""sendOnlyMsgPayload":true,"key":"""#, &[message(b"1")], &[value(b"1")]);
}

#[test]
fn headers_are_utf8_by_default() {
    check(
        r#""sendOnlyMsgPayload":true,"kafkaHeaders":{"site":"Zürich"}"#,
        &[message(br#"{"t":25}"#)],
        &[with_header("site", "Zürich".as_bytes())],
    );
}

#[test]
fn headers_are_encoded_in_the_configured_charset() {
    let cases: [(&str, &[u8]); 5] = [
        ("UTF-16", &[0xFE, 0xFF, 0x00, b'Z', 0x00, 0xFC]),
        ("UTF-16BE", &[0x00, b'Z', 0x00, 0xFC]),
        ("UTF-16LE", &[b'Z', 0x00, 0xFC, 0x00]),
        ("ISO-8859-1", &[b'Z', 0xFC]),
        ("US-ASCII", b"Z?"),
    ];
    for (charset, bytes) in cases {
        let extra =
            format!(r#""sendOnlyMsgPayload":true,"kafkaHeaders":{{"h":"Zü"}},"kafkaHeadersCharset":"{charset}""#);
        check(&extra, &[message(br#"{"t":25}"#)], &[with_header("h", bytes)]);
    }
}

#[test]
fn batch_arrives_complete_and_in_order() {
    let msgs: Vec<_> = [b"m0", b"m1", b"m2", b"m3", b"m4", b"m5"].map(|p| message(p)).into();
    let expected: Vec<_> = msgs.iter().map(|m| value(m.payload())).collect();
    check(r#""sendOnlyMsgPayload":true"#, &msgs, &expected);
}

#[test]
fn every_acks_value_delivers() {
    for acks in ["0", "1", "-1", "all"] {
        round_trip("acks", &format!(r#""acks":"{acks}""#), b"x");
    }
}

#[test]
fn every_compression_delivers() {
    for compression in ["none", "gzip", "snappy", "lz4", "zstd"] {
        round_trip("compression", &format!(r#""compression":"{compression}""#), br#"{"t":25}"#);
    }
}

#[test]
fn retries_with_idempotence_and_tuning_fields_deliver() {
    round_trip("tuning", r#""retries":3,"acks":"all","batchSize":0,"linger":5,"bufferMemory":1048576"#, b"x");
    round_trip("in-flight-one", r#""retries":3,"acks":"1""#, b"x");
}

#[test]
fn dead_bootstrap_address_yields_a_timeout_by_the_deadline() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("port");
    let mut driver = started(&config(&format!("127.0.0.1:{port}"), "nowhere", ""));
    let outcomes = driver.process(&[message(b"1"), message(b"2")], Instant::now() + Duration::from_millis(1500));
    driver.stop();
    assert_eq!(outcomes.len(), 2);
    for outcome in outcomes {
        assert!(matches!(&outcome, Outcome::Timeout(_)), "{outcome:?}");
    }
}

#[test]
fn check_connection_accepts_an_existing_topic() {
    for peer in peers() {
        let topic = peer.topic("check");
        let mut driver = KafkaDriver::create(Host::detached()).expect("create");
        assert_eq!(driver.check_connection(&start_config(&config(&peer.bootstrap(), &topic, ""))), Ok(()));
    }
}

#[test]
fn check_connection_reports_a_missing_topic() {
    for peer in peers() {
        let mut driver = KafkaDriver::create(Host::detached()).expect("create");
        let missing = super::support::unique_name("missing");
        let error = driver.check_connection(&start_config(&config(&peer.bootstrap(), &missing, ""))).unwrap_err();
        assert_eq!(
            (error.kind, error.message.as_str()),
            (ErrorKind::Connection, "Configured topic is missing on the external brokers!")
        );
    }
}

#[test]
fn check_connection_refuses_an_invalid_config() {
    let mut driver = KafkaDriver::create(Host::detached()).expect("create");
    let error = driver.check_connection(&start_config(r#"{"bootstrapServers":"x","topic":"t"}"#)).unwrap_err();
    assert_eq!(
        (error.kind, error.message.as_str()),
        (ErrorKind::Config, "bootstrapServers: Invalid bootstrap server format: x")
    );
}
