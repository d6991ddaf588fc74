use std::collections::BTreeMap;

use super::{Settings, SettingsError};

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn check(yaml: &str, environment: &[(&str, &str)], name: &str, expected: Option<&str>) {
    let s = Settings::parse(yaml, env(environment)).unwrap();
    assert_eq!(s.lookup(name).as_deref(), expected, "{yaml}");
}

#[test]
fn default_from_the_file() {
    check("a:\n  b: \"${A_B:1883}\"\n", &[], "A_B", Some("1883"));
}

#[test]
fn environment_wins() {
    check("a:\n  b: \"${A_B:1883}\"\n", &[("A_B", "1884")], "A_B", Some("1884"));
}

#[test]
fn empty_default_and_colons_in_defaults() {
    check("x: \"${X:}\"\n", &[], "X", Some(""));
    check("x: \"${X:key:value;k2:v2}\"\n", &[], "X", Some("key:value;k2:v2"));
}

#[test]
fn unknown_variable_is_none() {
    check("x: \"${X:1}\"\n", &[], "Y", None);
}

#[test]
fn plain_leaves_have_no_variable() {
    let s = Settings::parse("a: 5\nb: true\n", BTreeMap::new()).unwrap();
    assert!(s.settings().iter().all(|s| s.env.is_none()));
    assert_eq!(s.settings()[0].key, "a");
}

#[test]
fn malformed_placeholders_are_refused() {
    assert!(matches!(Settings::parse("a: \"${lower:1}\"\n", BTreeMap::new()), Err(SettingsError::Placeholder { .. })));
    assert!(matches!(Settings::parse("a: \"${A:1\"\n", BTreeMap::new()), Err(SettingsError::Placeholder { .. })));
    assert!(matches!(Settings::parse("a: [\n", BTreeMap::new()), Err(SettingsError::Yaml(_))));
}

#[test]
fn conflicting_defaults_are_refused() {
    let err = Settings::parse("a: \"${A:1}\"\nb: \"${A:2}\"\n", BTreeMap::new()).unwrap_err();
    assert!(matches!(err, SettingsError::Conflict { .. }));
}

#[test]
fn effective_rendering_masks_secrets() {
    let s = Settings::parse("p: \"${ADMIN_PASSWORD:x}\"\nq: \"${Q:1}\"\n", env(&[("Q", "2")])).unwrap();
    let text = s.render_effective();
    assert!(text.contains("p = \"******\"  # ADMIN_PASSWORD, default"), "{text}");
    assert!(text.contains("q = \"2\"  # Q, from the environment"), "{text}");
}

/// What `render_effective` shows for `name` set to `value` in the environment.
fn check_shown(name: &str, value: &str, expected: &str) {
    let s = Settings::parse(&format!("k: \"${{{name}:}}\"\n"), env(&[(name, value)])).unwrap();
    assert_eq!(s.render_effective(), format!("k = {expected:?}  # {name}, from the environment\n"), "{value}");
}

#[test]
fn secret_variables_are_masked_whole() {
    check_shown("TB_ADMIN_PASSWORD", "hunter2", "******");
    check_shown("SPRING_DATASOURCE_PASSWORD", "hunter2", "******");
    check_shown("JWT_TOKEN_SIGNING_KEY", "c2lnbmluZy1rZXk=", "******");
    check_shown("SOME_CLIENT_SECRET", "s", "******");
    check_shown("TB_ADMIN_PASSWORD", "", "");
    check_shown("TB_ADMIN_USERNAME", "sysadmin@thingsboard.org", "sysadmin@thingsboard.org");
}

#[test]
fn url_passwords_are_masked() {
    check_shown("SPRING_DATASOURCE_URL", "postgres://tb:s3cret@db:5432/tbmq", "postgres://tb:******@db:5432/tbmq");
    check_shown("SPRING_DATASOURCE_URL", "postgres://tb:p@ss@db/tbmq", "postgres://tb:******@db/tbmq");
    check_shown("SPRING_DATASOURCE_URL", "postgres://tb@db/tbmq", "postgres://tb@db/tbmq");
    check_shown(
        "SPRING_DATASOURCE_URL",
        "postgres://db/tbmq?user=tb&password=s3cret&sslmode=require",
        "postgres://db/tbmq?user=tb&password=******&sslmode=require",
    );
    check_shown("SPRING_DATASOURCE_URL", "sqlite://data/tributary.db?mode=rwc", "sqlite://data/tributary.db?mode=rwc");
    check_shown("ANY_URL", "http://u:p@proxy:3128/", "http://u:******@proxy:3128/");
    check_shown("TB_KAFKA_SERVERS", "kafka-1:9092,kafka-2:9092", "kafka-1:9092,kafka-2:9092");
}

#[test]
fn kafka_property_secrets_are_masked() {
    check_shown(
        "TB_KAFKA_DEFAULT_PRODUCER_CONSUMER_CONFIG",
        "security.protocol:SASL_SSL;sasl.mechanism:PLAIN;sasl.username:tb;sasl.password:s3cret",
        "security.protocol:SASL_SSL;sasl.mechanism:PLAIN;sasl.username:tb;sasl.password:******",
    );
    // A JAAS value may hold ';' and ':' inside quotes, and ends with ';'.
    check_shown(
        "TB_KAFKA_ADMIN_CONFIG",
        "sasl.jaas.config:org.apache.kafka.common.security.plain.PlainLoginModule required username=\"tb\" password=\"a;b:c\";acks:all",
        "sasl.jaas.config:******;acks:all",
    );
    check_shown(
        "TB_KAFKA_DEFAULT_CONSUMER_CONFIG",
        "ssl.key.password:k;ssl.keystore.password:k;ssl.key.pem:-----BEGIN;ssl.truststore.location:/ca.jks",
        "ssl.key.password:******;ssl.keystore.password:******;ssl.key.pem:******;ssl.truststore.location:/ca.jks",
    );
    check_shown("TB_KAFKA_DEFAULT_PRODUCER_CONFIG", "SASL.PASSWORD : s3cret", "SASL.PASSWORD :******");
    // A part that is no `key:value` cannot be told apart from a broken secret: masked.
    check_shown(
        "TB_KAFKA_IE_MSG_ADDITIONAL_CONSUMER_CONFIG",
        "max.poll.records:500;oops",
        "max.poll.records:500;******",
    );
    check_shown("TB_KAFKA_DEFAULT_PRODUCER_CONFIG", "acks:all;", "acks:all;");
}
