//! Configuration validation as tables: TBMQ's KafkaConfigValidatorTest cases, our defaults for
//! `acks` and `compression`, types, charsets, key templates and what librdkafka refuses.

use trib_plugin_api::driver::{Driver, Host};

use crate::driver::KafkaDriver;

/// TBMQ's `testValidConfig`: retries 3, batch 16384, linger 1, buffer 32 MiB, acks all, gzip.
const VALID: &str = r#""bootstrapServers":"localhost:9092","topic":"test-topic","retries":3,"batchSize":16384,"linger":1,"bufferMemory":33554432,"acks":"all","compression":"gzip","otherProperties":{},"kafkaHeaders":{},"kafkaHeadersCharset":"UTF-8","sendOnlyMsgPayload":false"#;

fn errors(json: &str) -> Vec<(String, String)> {
    let driver = KafkaDriver::create(Host::detached()).expect("create");
    driver.validate(json).into_iter().map(|e| (e.field.to_string(), e.message.to_string())).collect()
}

/// `VALID` with `overrides` (`"k":v,...`, later keys win) must give exactly `expected`.
fn check(overrides: &str, expected: &[(&str, &str)]) {
    let json = if overrides.is_empty() { format!("{{{VALID}}}") } else { format!("{{{VALID},{overrides}}}") };
    let expected: Vec<(String, String)> = expected.iter().map(|(f, m)| (f.to_string(), m.to_string())).collect();
    assert_eq!(errors(&json), expected, "{overrides}");
}

/// `VALID` with `overrides` must give one error on `field` whose message contains `fragment`.
fn check_contains(overrides: &str, field: &str, fragment: &str) {
    let found = errors(&format!("{{{VALID},{overrides}}}"));
    assert!(matches!(&found[..], [(f, m)] if f == field && m.contains(fragment)), "{overrides}: {found:?}");
}

#[test]
fn tbmq_valid_config() {
    check("", &[]);
}

#[test]
fn tbmq_empty_bootstrap_servers() {
    check(r#""bootstrapServers":"""#, &[("bootstrapServers", "Bootstrap servers cannot be empty")]);
    check(r#""bootstrapServers":null"#, &[("bootstrapServers", "Bootstrap servers cannot be empty")]);
}

#[test]
fn bootstrap_server_formats() {
    let bad = |s: &str, shown: &str| {
        let message = format!("Invalid bootstrap server format: {shown}");
        check(&format!(r#""bootstrapServers":"{s}""#), &[("bootstrapServers", message.as_str())]);
    };
    bad("localhost", "localhost");
    bad("localhost:0", "localhost:0");
    bad("localhost:65536", "localhost:65536");
    bad("localhost:abc", "localhost:abc");
    bad(":9092", ":9092");
    bad("a:1, b", " b");
    bad("a:1,,b:2", "");
    bad("h:1:2", "h:1:2");
    bad("::1:9092", "::1:9092");
    for good in ["a:1,b:65535", " a:1 , b:2 ", "a:1,", "[::1]:9092", "10.0.0.1:9092"] {
        check(&format!(r#""bootstrapServers":"{good}""#), &[]);
    }
}

#[test]
fn tbmq_empty_topic() {
    check(r#""topic":"""#, &[("topic", "Topic is required")]);
    check(r#""topic":null"#, &[("topic", "Topic is required")]);
}

#[test]
fn tbmq_negative_numbers() {
    check(r#""retries":-1"#, &[("retries", "Retries must not be less than 0")]);
    check(r#""batchSize":-1"#, &[("batchSize", "Batch size must not be less than 0")]);
    check(r#""linger":-1"#, &[("linger", "Linger ms must not be less than 0")]);
    check(r#""bufferMemory":-1"#, &[("bufferMemory", "Buffer memory must not be less than 0")]);
}

#[test]
fn zero_batch_size_and_buffer_memory_mean_defaults() {
    check(r#""batchSize":0,"bufferMemory":0,"retries":0,"linger":0"#, &[]);
}

#[test]
fn tbmq_invalid_acks() {
    check(r#""acks":"invalid""#, &[("acks", "Invalid acks value")]);
    check(r#""acks":"ALL""#, &[("acks", "Invalid acks value")]);
    for acks in ["0", "1", "-1", "all"] {
        check(&format!(r#""acks":"{acks}""#), &[]);
    }
}

#[test]
fn tbmq_invalid_compression() {
    check(r#""compression":"invalid""#, &[("compression", "Invalid compression type")]);
    for compression in ["none", "gzip", "snappy", "lz4", "zstd"] {
        check(&format!(r#""compression":"{compression}""#), &[]);
    }
}

#[test]
fn absent_acks_and_compression_take_our_defaults() {
    check(r#""acks":null,"compression":null"#, &[]);
    assert_eq!(errors(r#"{"bootstrapServers":"h:9092","topic":"t"}"#), Vec::new());
}

#[test]
fn tbmq_ssl_property_without_security_protocol() {
    let message = "Detected SSL-related configurations, but 'security.protocol' is missing. The default protocol is \
                   'PLAINTEXT'. Please ensure 'security.protocol' is set correctly";
    check(r#""otherProperties":{"ssl.keystore.location":"/path/to/keystore"}"#, &[("otherProperties", message)]);
}

#[test]
fn several_errors_are_all_reported() {
    check(
        r#""bootstrapServers":"","topic":"","retries":-1,"acks":"x","compression":"y""#,
        &[
            ("bootstrapServers", "Bootstrap servers cannot be empty"),
            ("topic", "Topic is required"),
            ("retries", "Retries must not be less than 0"),
            ("acks", "Invalid acks value"),
            ("compression", "Invalid compression type"),
        ],
    );
}

#[test]
fn wrong_json_types() {
    check(r#""retries":"abc""#, &[("retries", "must be an integer")]);
    check(r#""retries":1.5"#, &[("retries", "must be an integer")]);
    check(r#""linger":3000000000"#, &[("linger", "Linger ms must not exceed 2147483647")]);
    check(r#""topic":{"a":1}"#, &[("topic", "must be a string")]);
    check(r#""bootstrapServers":[]"#, &[("bootstrapServers", "must be a string")]);
    check(r#""sendOnlyMsgPayload":"yes""#, &[("sendOnlyMsgPayload", "must be a boolean")]);
    check(r#""kafkaHeaders":["a"]"#, &[("kafkaHeaders", "must be an object of strings")]);
    check(r#""kafkaHeaders":{"a":null}"#, &[("kafkaHeaders.a", "must be a string")]);
}

#[test]
fn lenient_json_types_like_jackson() {
    check(r#""retries":"3","sendOnlyMsgPayload":"true","kafkaHeaders":{"n":5,"b":true}"#, &[]);
}

#[test]
fn bad_json_is_one_error_on_the_root() {
    assert!(matches!(&errors("{not json")[..], [(f, m)] if f.is_empty() && m.starts_with("invalid JSON")));
    assert!(matches!(&errors("[1]")[..], [(f, _)] if f.is_empty()));
    assert!(matches!(&errors("")[..], [(f, _)] if f.is_empty()));
}

#[test]
fn unknown_fields_and_serializers_are_ignored() {
    let extra = r#""caCertFileName":"ca.pem","keySerializer":"org.apache.kafka.common.serialization.StringSerializer","valueSerializer":"x","clientIdPrefix":"p""#;
    check(extra, &[]);
}

#[test]
fn header_charsets() {
    for charset in ["UTF-8", "US-ASCII", "ISO-8859-1", "UTF-16", "UTF-16BE", "UTF-16LE", "utf-16le", ""] {
        check(&format!(r#""kafkaHeadersCharset":"{charset}""#), &[]);
    }
    let message = "Unsupported charset: EBCDIC. Supported: UTF-8, US-ASCII, ISO-8859-1, UTF-16, UTF-16BE, UTF-16LE";
    check(r#""kafkaHeadersCharset":"EBCDIC""#, &[("kafkaHeadersCharset", message)]);
}

#[test]
fn key_templates() {
    check(r#""key":"${clientId}-${topic}""#, &[]);
    check(r#""key":"""#, &[]);
    let unknown = "Key: unknown placeholder '${clientID}'. Allowed: ${clientId}, ${topic}, ${topicName}";
    check(r#""key":"${clientID}""#, &[("key", unknown)]);
    check(r#""key":"${topic""#, &[("key", "Key: unclosed placeholder in '${topic'")]);
}

#[test]
fn librdkafka_refuses_unknown_properties() {
    check_contains(
        r#""otherProperties":{"no.such.property":"1"}"#,
        "otherProperties.no.such.property",
        "No such configuration property",
    );
    check_contains(
        r#""otherProperties":{"max.block.ms":"1"}"#,
        "otherProperties.max.block.ms",
        "No such configuration property",
    );
}

#[test]
fn librdkafka_refuses_bad_values() {
    check_contains(
        r#""otherProperties":{"socket.timeout.ms":"abc"}"#,
        "otherProperties.socket.timeout.ms",
        "socket.timeout.ms",
    );
    check_contains(r#""linger":1000000"#, "linger", "outside allowed range 0..900000");
    check_contains(
        r#""otherProperties":{"security.protocol":"TLS"}"#,
        "otherProperties.security.protocol",
        "security.protocol",
    );
}

#[test]
fn librdkafka_refuses_conflicting_settings() {
    check_contains(r#""acks":"1","otherProperties":{"enable.idempotence":"true"}"#, "otherProperties", "acks");
}

#[test]
fn librdkafka_refuses_unreadable_pem() {
    let extra = r#""otherProperties":{"security.protocol":"SSL","ssl.truststore.certificates":"not a certificate"}"#;
    check_contains(extra, "otherProperties", "ssl.ca.pem");
}

#[test]
fn java_store_types_and_jaas() {
    check(
        r#""otherProperties":{"security.protocol":"SSL","ssl.truststore.type":"PEM","ssl.keystore.type":"PKCS12"}"#,
        &[],
    );
    check_contains(
        r#""otherProperties":{"security.protocol":"SSL","ssl.keystore.type":"JKS"}"#,
        "otherProperties.ssl.keystore.type",
        "JKS",
    );
    let kerberos = r#""otherProperties":{"sasl.jaas.config":"com.sun.security.auth.module.Krb5LoginModule required;"}"#;
    check_contains(kerberos, "otherProperties.sasl.jaas.config", "PlainLoginModule");
}

#[test]
fn sasl_and_tls_settings_are_accepted() {
    let sasl = r#""otherProperties":{"security.protocol":"SASL_SSL","sasl.mechanism":"SCRAM-SHA-512","sasl.username":"u","sasl.password":"p","ssl.endpoint.identification.algorithm":"https"}"#;
    check(sasl, &[]);
    check(
        r#""otherProperties":{"security.protocol":"SASL_PLAINTEXT","sasl.mechanism":"PLAIN","sasl.username":"u","sasl.password":"p"}"#,
        &[],
    );
}
