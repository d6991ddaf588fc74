//! The kit's building blocks: message conversion, the recording host, the loopback targets and
//! the validation corpus.

use std::{
    io::{ErrorKind, Read, Write},
    net::TcpStream,
    time::Duration,
};

use serde_json::json;
use trib_plugin_api::{
    abi::log_level,
    abi_stable::std_types::{ROption, RStr},
};

use crate::{
    conformance::{corpus, Scenario},
    host::{CounterAdd, FakeHost, LogLine},
    message::{Batch, TestMessage},
    target::{closed_port, BlackHole},
};

#[test]
fn every_field_reaches_the_abi_message() {
    let full = TestMessage::new("a/b", [0u8, 255])
        .qos(2)
        .retain(true)
        .client_id("dev-1")
        .broker_node("node-7")
        .timestamp_ms(42)
        .user_property("k", "v1")
        .user_property("k", "v2")
        .content_type("application/json")
        .correlation_data("corr")
        .response_topic("reply/to")
        .message_expiry_secs(60)
        .payload_is_utf8(false)
        .client_cert_cn("CN1");
    full.with_abi(|m| {
        assert_eq!((m.topic(), m.payload(), m.qos, m.retain), ("a/b", &[0u8, 255][..], 2, true));
        assert_eq!((m.client_id(), m.broker_node.as_str(), m.timestamp_ms), ("dev-1", "node-7", 42));
        assert_eq!(m.user_properties().collect::<Vec<_>>(), [("k", "v1"), ("k", "v2")]);
        assert_eq!(m.content_type, ROption::RSome(RStr::from_str("application/json")));
        assert_eq!(m.correlation_data.map(|d| d.as_slice()), ROption::RSome(&b"corr"[..]));
        assert_eq!(m.response_topic, ROption::RSome(RStr::from_str("reply/to")));
        assert_eq!((m.message_expiry_secs, m.payload_is_utf8), (ROption::RSome(60), ROption::RSome(false)));
        assert_eq!(m.client_cert_cn, ROption::RSome(RStr::from_str("CN1")));
    });
}

#[test]
fn defaults_leave_mqtt5_fields_empty() {
    TestMessage::default().with_abi(|m| {
        assert_eq!((m.topic(), m.payload(), m.qos, m.client_id()), ("test/topic", &b"test"[..], 1, "test-client"));
        assert!(m.content_type.is_none() && m.correlation_data.is_none() && m.response_topic.is_none());
        assert!(m.message_expiry_secs.is_none() && m.payload_is_utf8.is_none() && m.client_cert_cn.is_none());
        assert_eq!(m.user_properties().count(), 0);
    });
}

#[test]
fn a_batch_keeps_order_and_each_message_its_own_properties() {
    let messages =
        [TestMessage::json("t/1", &json!({"n": 1})).user_property("only", "first"), TestMessage::new("t/2", "two")];
    let batch = Batch::new(&messages);
    assert_eq!((batch.len(), batch.is_empty()), (2, false));
    let abi = batch.messages();
    assert_eq!(abi.iter().map(|m| m.topic()).collect::<Vec<_>>(), ["t/1", "t/2"]);
    assert_eq!(abi[0].payload(), br#"{"n":1}"#);
    assert_eq!(abi[0].user_properties().collect::<Vec<_>>(), [("only", "first")]);
    assert_eq!(abi[1].user_properties().count(), 0);
}

#[test]
fn the_fake_host_records_lines_and_counters_in_order() {
    let fake = FakeHost::new();
    let host = fake.host();
    host.info("Started.");
    host.debug("detail");
    host.count("sent_total", 2);
    host.count("failed_total", 1);
    host.count("sent_total", 3);
    let info = LogLine { level: log_level::INFO, text: "Started.".into() };
    assert_eq!(fake.lines(), [info, LogLine { level: log_level::DEBUG, text: "detail".into() }]);
    assert!(fake.logged(log_level::INFO, "Start") && !fake.logged(log_level::WARN, "Start"));
    assert_eq!(fake.counter("sent_total"), 5);
    assert_eq!(fake.counter("never"), 0);
    assert_eq!(fake.counter_adds()[1], CounterAdd { name: "failed_total".into(), value: 1 });
    assert_eq!(fake.counters().into_iter().collect::<Vec<_>>(), [("failed_total".into(), 1), ("sent_total".into(), 5)]);
    fake.clear();
    assert!(fake.lines().is_empty() && fake.counter_adds().is_empty());
}

#[test]
fn the_fake_host_honours_its_level_and_copies_share_one_recording() {
    let fake = FakeHost::with_max_level(log_level::INFO);
    let copy = fake;
    copy.host().debug("hidden");
    copy.host().warn("shown");
    assert!(!fake.host().enabled(log_level::DEBUG) && fake.host().enabled(log_level::ERROR));
    assert_eq!(fake.lines_at(log_level::WARN), ["shown"]);
    assert_eq!(fake.lines().len(), 1);
    assert!(FakeHost::new().lines().is_empty(), "each new host has its own recording");
}

#[test]
fn a_closed_port_refuses() {
    let port = closed_port().expect("port");
    let error = TcpStream::connect(("127.0.0.1", port)).expect_err("nobody listens");
    assert_eq!(error.kind(), ErrorKind::ConnectionRefused);
}

#[test]
fn the_black_hole_accepts_and_never_answers() {
    let hole = BlackHole::start().expect("start");
    let mut stream = TcpStream::connect(hole.addr()).expect("accepts");
    stream.write_all(b"GET / HTTP/1.1\r\n\r\n").expect("write");
    stream.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
    let error = stream.read(&mut [0u8; 16]).expect_err("no answer");
    assert!(matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut), "{error}");
    let port = hole.port();
    drop(hole);
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "closed when dropped");
}

#[test]
fn configurations_can_be_json_values_or_text() {
    let scenario = Scenario::new(json!({"url": "http://127.0.0.1:{{closed_port}}/"})).black_hole(String::from("{}"));
    assert_eq!(scenario.valid_configuration, r#"{"url":"http://127.0.0.1:{{closed_port}}/"}"#);
    assert_eq!(scenario.black_hole_configuration.as_deref(), Some("{}"));
    assert_eq!(Scenario::default().valid_configuration, "{}");
}

#[test]
fn the_corpus_is_deterministic_per_seed() {
    let valid = r#"{"a": 1, "b": {"c": "x"}, "d": [true]}"#;
    assert_eq!(corpus::inputs(valid, 7, 50), corpus::inputs(valid, 7, 50));
    assert_ne!(corpus::inputs(valid, 7, 50), corpus::inputs(valid, 8, 50));
    assert_eq!(corpus::inputs(valid, 7, 50).len(), corpus::inputs(valid, 7, 0).len() + 50);
}

#[test]
fn the_corpus_replaces_and_removes_every_field() {
    let inputs = corpus::inputs(r#"{"a": 1, "b": {"c": "x"}, "d": [true]}"#, 1, 0);
    for expected in [
        r#"{"a":null,"b":{"c":"x"},"d":[true]}"#,
        r#"{"a":1,"b":{"c":[]},"d":[true]}"#,
        r#"{"a":1,"b":{"c":"x"},"d":[{}]}"#,
        r#"{"a":1,"b":"","d":[true]}"#,
        r#"{"b":{"c":"x"},"d":[true]}"#,
        r#"{"a":1,"b":{},"d":[true]}"#,
        r#"{"a":1,"b":{"c":"x"},"d":[]}"#,
    ] {
        assert!(inputs.iter().any(|i| i == expected), "missing {expected}");
    }
    assert!(inputs.iter().any(|i| i.starts_with("[[[[") && !i.ends_with(']')), "deep unterminated nesting");
    assert!(inputs.iter().any(|i| i.len() > 1_000_000), "a huge input");
    assert!(inputs.iter().any(|i| i.is_empty()), "the empty text");
}

#[test]
fn a_valid_configuration_that_is_not_json_still_gets_the_fixed_corpus() {
    let inputs = corpus::inputs("not json", 1, 10);
    assert!(inputs.len() > 40, "{}", inputs.len());
    assert!(inputs.iter().all(|i| !i.starts_with("not json")));
}
