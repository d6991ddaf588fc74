//! The declared schema held against the driver (`trib_plugin_testkit::schema`): the conventions
//! and `validate`, the fields the configuration reader reads and the README's field table; plus
//! which fields are secret and that the schema names every column source.

use serde_json::Value;
use trib_plugin_api::{driver::Driver, support::schema};

use crate::{config::columns::SOURCES, driver::PostgresqlDriver, schema::SCHEMA};

#[test]
fn the_driver_declares_this_schema() {
    assert_eq!(PostgresqlDriver::config_schema(), Some(SCHEMA));
}

#[test]
fn the_schema_agrees_with_the_driver_and_the_readme() {
    trib_plugin_testkit::schema::assert_agrees::<PostgresqlDriver>(Some(include_str!("../../README.md")));
}

#[test]
fn the_only_secret_is_the_password() {
    assert_eq!(trib_plugin_testkit::schema::secrets::<PostgresqlDriver>(), ["password"]);
}

#[test]
fn the_schema_names_every_source() {
    let parsed = schema::parse(SCHEMA).expect("schema.json is an object schema");
    let sources = &parsed["properties"]["columns"]["additionalProperties"]["properties"]["source"]["enum"];
    let names: Vec<&str> = sources.as_array().expect("enum").iter().filter_map(Value::as_str).collect();
    assert_eq!(names, SOURCES);
}
