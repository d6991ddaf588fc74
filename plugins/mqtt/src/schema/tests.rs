//! The declared schema held against the driver (`trib_plugin_testkit::schema`): the
//! conventions and `validate`, the fields the configuration reader reads, the README's field
//! table; and which fields are secret.

use serde_json::Value;
use trib_plugin_api::{
    driver::{Driver, FieldError, Host},
    support::schema,
};

use super::SCHEMA;
use crate::driver::MqttDriver;

fn parsed() -> Value {
    schema::parse(SCHEMA).expect("schema.json is an object schema")
}

fn validate(config: &str) -> Vec<FieldError> {
    MqttDriver::create(Host::detached()).expect("create").validate(config)
}

#[test]
fn the_driver_declares_this_schema() {
    assert_eq!(MqttDriver::config_schema(), Some(SCHEMA));
}

#[test]
fn the_schema_agrees_with_validate_the_reader_and_the_readme() {
    trib_plugin_testkit::schema::assert_agrees::<MqttDriver>(Some(include_str!("../../README.md")));
}

#[test]
fn the_secrets_are_the_credential_password_and_key() {
    let secrets: Vec<String> = schema::secret_paths(&parsed()).iter().map(|p| p.join(".")).collect();
    assert_eq!(secrets, ["credentials.password", "credentials.privateKey", "credentials.privateKeyPassword"]);
}

#[test]
fn a_missing_topic_name_is_refused_unless_the_message_topic_is_used() {
    // A condition between fields that the schema states in words, not in `required`.
    let mut config = schema::example(&parsed());
    config.remove("topicName");
    let errors = validate(&Value::Object(config.clone()).to_string());
    assert_eq!(errors.iter().map(|e| e.field.as_str()).collect::<Vec<_>>(), ["topicName"]);
    config.insert("useMsgTopicName".into(), Value::Bool(true));
    assert_eq!(validate(&Value::Object(config).to_string()), Vec::new());
}
