//! The declared schema held against the driver (`trib_plugin_testkit::schema`): the
//! conventions and `validate`, the fields the configuration reader reads, the README's field
//! table; and which fields are secret.

use serde_json::Value;
use trib_plugin_api::{driver::Driver, support::schema};

use super::SCHEMA;
use crate::driver::HttpDriver;

fn parsed() -> Value {
    schema::parse(SCHEMA).expect("schema.json is an object schema")
}

#[test]
fn the_driver_declares_this_schema() {
    assert_eq!(HttpDriver::config_schema(), Some(SCHEMA));
}

#[test]
fn the_schema_agrees_with_validate_the_reader_and_the_readme() {
    trib_plugin_testkit::schema::assert_agrees::<HttpDriver>(Some(include_str!("../../README.md")));
}

#[test]
fn the_secrets_are_the_credential_password_and_key() {
    let secrets: Vec<String> = schema::secret_paths(&parsed()).iter().map(|p| p.join(".")).collect();
    assert_eq!(secrets, ["credentials.password", "credentials.privateKey", "credentials.privateKeyPassword"]);
}

/// Header values that carry credentials are secret by name, in any case; other headers are not.
#[test]
fn credential_headers_are_secret_by_pattern() {
    let schema = parsed();
    let patterns = schema["properties"]["headers"]["patternProperties"].as_object().expect("patternProperties");
    let secret = |name: &str| {
        patterns.iter().any(|(pattern, values)| {
            values["x-secret"] == true && regex::Regex::new(pattern).expect("a valid pattern").is_match(name)
        })
    };
    for name in [
        "Authorization",
        "authorization",
        "PROXY-AUTHORIZATION",
        "X-Api-Key",
        "x-api-key",
        "Api-Key",
        "ApiKey",
        "X-Auth-Token",
        "X-Access-Token",
        "Cookie",
    ] {
        assert!(secret(name), "{name} is secret");
    }
    for name in ["Accept", "Content-Type", "X-Request-Id", "Authorization2", "My-Cookie"] {
        assert!(!secret(name), "{name} is not secret");
    }
}
