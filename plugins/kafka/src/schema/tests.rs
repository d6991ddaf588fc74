//! The declared schema held against the driver (`trib_plugin_testkit::schema`): the
//! conventions and `validate`, the fields the configuration reader reads, the README's field
//! table; and which fields are secret.

use serde_json::Value;
use trib_plugin_api::{
    driver::{Driver, FieldError, Host},
    support::schema,
};

use super::SCHEMA;
use crate::driver::KafkaDriver;

fn parsed() -> Value {
    schema::parse(SCHEMA).expect("schema.json is an object schema")
}

fn validate(config: &str) -> Vec<FieldError> {
    KafkaDriver::create(Host::detached()).expect("create").validate(config)
}

#[test]
fn the_driver_declares_this_schema() {
    assert_eq!(KafkaDriver::config_schema(), Some(SCHEMA));
}

#[test]
fn the_schema_agrees_with_validate_the_reader_and_the_readme() {
    trib_plugin_testkit::schema::assert_agrees::<KafkaDriver>(Some(include_str!("../../README.md")));
}

#[test]
fn the_secrets_are_the_known_secret_properties_of_other_properties() {
    let secrets = trib_plugin_testkit::schema::secrets::<KafkaDriver>();
    let names = [
        "sasl.password",
        "sasl.jaas.config",
        "ssl.key.pem",
        "ssl.keystore.key",
        "ssl.keystore.password",
        "ssl.key.password",
    ];
    let mut expected: Vec<String> = names.iter().map(|n| format!("otherProperties.{n}")).collect();
    expected.sort();
    assert_eq!(secrets, expected);
}

#[test]
fn every_declared_secret_property_is_a_name_the_driver_knows() {
    let schema = parsed();
    let declared = schema["properties"]["otherProperties"]["properties"].as_object().expect("declared keys");
    let jaas = r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="p";"#;
    for name in declared.keys() {
        let value = if name == "sasl.jaas.config" { jaas } else { "x" };
        let other = serde_json::json!({"security.protocol": "SASL_SSL", name.as_str(): value});
        let config = serde_json::json!({"bootstrapServers": "localhost:9092", "topic": "t", "otherProperties": other});
        // A value may still be refused (an unreadable key); an unknown name may not.
        let errors = validate(&config.to_string());
        let unknown: Vec<&FieldError> =
            errors.iter().filter(|e| e.message.contains("No such configuration property")).collect();
        assert!(unknown.is_empty(), "{name}: {unknown:?}");
        assert!(!errors.iter().any(|e| e.message.contains("not supported")), "{name}: {errors:?}");
    }
}
