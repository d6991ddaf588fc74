//! Tables for the pure parts: header charsets, key templates, payload-only values, outcome
//! classification and the librdkafka properties built from a configuration.

use rdkafka::types::RDKafkaErrorCode as Code;
use trib_plugin_api::driver::Outcome;

use super::support::{message_from, start_config};
use crate::{
    charset::Charset,
    config::KafkaConfig,
    properties::{producer_properties, Property},
    request::{payload_value, KeyTemplate},
    retry::classify,
};

fn check_charset(name: &str, text: &str, expected: &[u8]) {
    let charset = Charset::from_name(name).unwrap_or_else(|| panic!("{name} is supported"));
    assert_eq!(charset.encode(text), expected, "{name} {text:?}");
}

#[test]
fn charsets_encode_like_java() {
    check_charset("UTF-8", "é€", "é€".as_bytes());
    check_charset("utf8", "a", b"a");
    check_charset("US-ASCII", "aé€😀", b"a???");
    check_charset("ISO-8859-1", "aé€", &[b'a', 0xE9, b'?']);
    check_charset("latin1", "é", &[0xE9]);
    check_charset("UTF-16", "a", &[0xFE, 0xFF, 0x00, b'a']);
    check_charset("UTF-16", "", &[]);
    check_charset("UTF-16BE", "😀", &[0xD8, 0x3D, 0xDE, 0x00]);
    check_charset("utf-16le", "a€", &[b'a', 0x00, 0xAC, 0x20]);
    assert_eq!(Charset::from_name("EBCDIC"), None);
}

fn check_key(template: &str, topic: &'static str, client: &'static str, expected: Option<&str>) {
    let key = KeyTemplate::parse(template).expect("valid template");
    assert_eq!(key.render(&message_from(topic, client, b"")).as_deref(), expected, "{template}");
}

#[test]
fn key_templates_render_per_message() {
    check_key("static", "a/b", "dev", Some("static"));
    check_key("${topic}", "a/b", "dev", Some("a/b"));
    check_key("${topicName}", "a/b", "dev", Some("a/b"));
    check_key("${ clientId }", "a/b", "dev", Some("dev"));
    check_key("k-${clientId}-${topic}-z", "a/b", "dev", Some("k-dev-a/b-z"));
    check_key("dev-${clientId}", "a/b", "", None);
    check_key("$ {x} {y} $", "a/b", "dev", Some("$ {x} {y} $"));
}

#[test]
fn bad_key_templates_are_refused() {
    let check = |t: &str, e: &str| assert_eq!(KeyTemplate::parse(t).unwrap_err(), e, "{t}");
    check("${clientID}", "unknown placeholder '${clientID}'. Allowed: ${clientId}, ${topic}, ${topicName}");
    check("a-${topic", "unclosed placeholder in 'a-${topic'");
    check("${}", "empty placeholder '${}'");
}

#[test]
fn payload_only_values() {
    assert_eq!(payload_value(b"plain"), b"plain");
    assert_eq!(payload_value("ünïcode".as_bytes()), "ünïcode".as_bytes());
    assert_eq!(payload_value(b""), b"");
    assert_eq!(payload_value(&[0xC3]), b"ww==");
    assert_eq!(payload_value(&[0, 1, 2, 0xFF]), b"AAEC/w==");
}

fn check_outcome(code: Code, expected: &str) {
    let kind = match classify(Err(code)) {
        Outcome::Delivered => "delivered",
        Outcome::Timeout(_) => "timeout",
        Outcome::Retry(_) => "retry",
        Outcome::Rejected(_) => "rejected",
    };
    assert_eq!(kind, expected, "{code:?}");
}

#[test]
fn delivery_errors_are_classified() {
    assert_eq!(classify(Ok(())), Outcome::Delivered);
    for code in [Code::MessageSizeTooLarge, Code::InvalidRecord, Code::TopicAuthorizationFailed, Code::InvalidTopic] {
        check_outcome(code, "rejected");
    }
    for code in [Code::UnsupportedCompressionType, Code::BadMessage, Code::InvalidRequiredAcks, Code::PolicyViolation] {
        check_outcome(code, "rejected");
    }
    for code in [Code::MessageTimedOut, Code::PurgeQueue, Code::PurgeInflight, Code::RequestTimedOut] {
        check_outcome(code, "timeout");
    }
    for code in [Code::QueueFull, Code::AllBrokersDown, Code::BrokerTransportFailure, Code::NotLeaderForPartition] {
        check_outcome(code, "retry");
    }
    for code in [Code::NotEnoughReplicas, Code::UnknownTopicOrPartition, Code::Authentication, Code::Fatal, Code::SSL] {
        check_outcome(code, "retry");
    }
}

#[test]
fn no_report_by_the_deadline_is_a_typed_timeout() {
    let outcome = crate::retry::timed_out();
    assert_eq!(outcome, Outcome::Timeout("timeout: no acknowledgement from kafka before the deadline".into()));
}

/// The librdkafka properties of `extra` config fields, as `key=value` lines (client.id omitted).
fn props(extra: &str) -> Vec<String> {
    let json = format!(r#"{{"bootstrapServers":"h:9092","topic":"t"{extra}}}"#);
    let config = KafkaConfig::parse(&json).expect("valid");
    let props: Vec<Property> = producer_properties(&config, "cid").expect("props");
    props.into_iter().filter(|p| p.key != "client.id").map(|p| format!("{}={}", p.key, p.value)).collect()
}

#[test]
fn defaults_map_to_librdkafka_names() {
    let expected = [
        "bootstrap.servers=h:9092",
        "retries=0",
        "batch.size=16384",
        "linger.ms=0",
        "queue.buffering.max.kbytes=32768",
        "acks=-1",
        "compression.type=none",
        "message.timeout.ms=30000",
    ];
    assert_eq!(props(""), expected);
}

#[test]
fn ordering_settings_follow_retries_and_acks() {
    assert!(props(r#","retries":2,"acks":"all""#).contains(&"enable.idempotence=true".to_string()));
    assert!(props(r#","retries":2,"acks":"1""#).contains(&"max.in.flight.requests.per.connection=1".to_string()));
    let explicit = props(r#","retries":2,"acks":"all","otherProperties":{"max.in.flight":"3"}"#);
    assert!(explicit.iter().all(|p| !p.starts_with("enable.idempotence")), "{explicit:?}");
}

#[test]
fn other_properties_win_over_fields_and_aliases() {
    let p = props(r#","linger":5,"otherProperties":{"queue.buffering.max.ms":"7","delivery.timeout.ms":"9000"}"#);
    assert!(p.contains(&"queue.buffering.max.ms=7".to_string()) && !p.iter().any(|l| l.starts_with("linger.ms")));
    assert!(p.contains(&"delivery.timeout.ms=9000".to_string()) && !p.iter().any(|l| l.starts_with("message.timeout")));
}

#[test]
fn java_ssl_and_sasl_names_are_translated() {
    let p = props(
        r#","otherProperties":{"security.protocol":"SASL_SSL","ssl.truststore.type":"PEM",
        "ssl.truststore.certificates":"-----BEGIN CERTIFICATE-----\\nAAA\\n-----END CERTIFICATE-----",
        "ssl.keystore.certificate.chain":"C\\nD","ssl.keystore.key":"K\\nL","ssl.endpoint.identification.algorithm":"",
        "sasl.mechanism":"PLAIN",
        "sasl.jaas.config":"org.apache.kafka.common.security.plain.PlainLoginModule required username=\"alice\" password=\"s3cret\";"}"#,
    );
    for line in [
        "ssl.ca.pem=-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----",
        "ssl.certificate.pem=C\nD",
        "ssl.key.pem=K\nL",
        "ssl.endpoint.identification.algorithm=none",
        "sasl.username=alice",
        "sasl.password=s3cret",
        "sasl.mechanism=PLAIN",
    ] {
        assert!(p.contains(&line.to_string()), "{line} in {p:?}");
    }
    assert!(p.iter().all(|l| !l.starts_with("ssl.truststore") && !l.starts_with("sasl.jaas")), "{p:?}");
}

#[test]
fn client_id_is_prefix_integration_and_service() {
    let cfg = start_config("");
    let config = KafkaConfig::parse(r#"{"bootstrapServers":"h:1","topic":"t","clientIdPrefix":""}"#).expect("valid");
    let id = config.client_id(cfg.integration_id.as_str(), cfg.service_id.as_str());
    assert_eq!(id, "tbmq-ie-kafka-producer-6f2c3e1a-0000-4000-8000-000000000001-tbmq-ie1");
}
