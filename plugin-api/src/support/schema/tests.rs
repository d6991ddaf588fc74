//! Tests of the schema checks, as data: a schema (often a one-field variation of [`GOOD`]), the
//! reader it is checked against, and the problems expected.

use serde_json::{json, Value};

use super::{check, example, parse, secret_paths};
use crate::{
    driver::FieldError,
    support::fields::{object, Fields},
};

/// A schema that follows every convention and agrees with [`reader`].
fn good() -> Value {
    json!({
        "$schema": super::DIALECT,
        "title": "Test",
        "type": "object",
        "required": ["host"],
        "properties": {
            "host": {"type": "string", "title": "Host", "description": "Where to.", "examples": ["localhost"]},
            "port": {"type": "integer", "title": "Port", "description": "TCP port.", "default": 1883,
                     "minimum": 1, "maximum": 65535},
            "mode": {"type": "string", "title": "Mode", "description": "How.", "default": "a", "enum": ["a", "b"]},
            "credentials": {
                "type": "object", "title": "Credentials", "description": "Who.", "default": {"type": "anonymous"},
                "oneOf": [
                    {"title": "Anonymous", "type": "object", "required": ["type"], "properties": {
                        "type": {"type": "string", "title": "Type", "description": "Kind.", "const": "anonymous"}}},
                    {"title": "Basic", "type": "object", "required": ["type", "username"], "properties": {
                        "type": {"type": "string", "title": "Type", "description": "Kind.", "const": "basic"},
                        "username": {"type": "string", "title": "User", "description": "Login."},
                        "password": {"type": "string", "title": "Password", "description": "Secret.",
                                     "writeOnly": true, "x-secret": true}}}
                ]
            },
            "extra": {"type": "object", "title": "Extra", "description": "A map.", "default": {},
                      "additionalProperties": {"type": "string"},
                      "properties": {"token": {"type": "string", "title": "Token", "description": "A secret key.",
                                               "writeOnly": true, "x-secret": true}}}
        }
    })
}

/// A reader that agrees with [`good`]: `host` required, `port` 1..=65535, `mode` a or b,
/// `credentials` an object, `extra` a map of strings.
fn reader(config: &str) -> Vec<FieldError> {
    let obj = match object(config) {
        Ok(obj) => obj,
        Err(errors) => return errors,
    };
    let mut f = Fields::new(&obj);
    if f.strict_string("host").is_none() && !f.failed("host") {
        f.error("host", "is required");
    }
    let port = f.integer("port", 1883);
    if !(1..=65535).contains(&port) {
        f.error("port", "must be between 1 and 65535");
    }
    let mode = f.string("mode").unwrap_or_else(|| "a".into());
    if mode != "a" && mode != "b" {
        f.error("mode", "must be a or b");
    }
    if f.raw("credentials").is_some_and(|c| !c.is_object()) {
        f.error("credentials", "must be an object");
    }
    f.string_map("extra");
    f.finish(()).err().unwrap_or_default()
}

/// `good()` with the value at `pointer` replaced (or removed, for `Value::Null`).
fn good_with(pointer: &str, value: Value) -> Value {
    let mut schema = good();
    let (parent, key) = pointer.rsplit_once('/').expect("a pointer");
    let target = schema.pointer_mut(parent).and_then(Value::as_object_mut).expect("parent exists");
    if value.is_null() {
        target.remove(key);
    } else {
        target.insert(key.to_string(), value);
    }
    schema
}

fn check_problems(schema: Value, validate: fn(&str) -> Vec<FieldError>, expected: &[&str]) {
    assert_eq!(check(&schema, validate), expected, "{schema:#}");
}

#[test]
fn a_good_schema_has_no_problems() {
    check_problems(good(), reader, &[]);
}

#[test]
fn parse_wants_an_object_schema() {
    assert!(parse("{").unwrap_err().starts_with("configuration schema is not valid JSON: "));
    assert!(parse("[]").unwrap_err().contains(r#"no "type": "object""#));
    assert!(parse(r#"{"type": "string"}"#).unwrap_err().contains(r#"no "type": "object""#));
    assert!(parse(r#"{"type": "object"}"#).unwrap_err().contains(r#"no "properties" object"#));
    assert_eq!(parse(&good().to_string()), Ok(good()));
}

#[test]
fn the_example_takes_defaults_then_first_examples() {
    let mut schema = good_with("/properties/port/examples", json!([8883]));
    schema["properties"]["mode"].as_object_mut().expect("mode").remove("default");
    let expected = json!({"host": "localhost", "port": 1883, "credentials": {"type": "anonymous"}, "extra": {}});
    assert_eq!(Value::Object(example(&schema)), expected, "mode has neither, port keeps its default");
}

#[test]
fn secrets_are_found_in_branches_and_maps_in_order() {
    let paths = secret_paths(&good());
    assert_eq!(paths, [vec!["credentials", "password"], vec!["extra", "token"]]);
}

#[test]
fn an_unknown_keyword_is_a_problem() {
    check_problems(
        good_with("/properties/host/format", json!("hostname")),
        reader,
        &["host: keyword format is outside the subset"],
    );
}

#[test]
fn a_property_without_title_is_a_problem() {
    check_problems(
        good_with("/properties/credentials/oneOf/1/properties/username/title", Value::Null),
        reader,
        &["credentials (oneOf 1).username: needs a title and a description"],
    );
}

#[test]
fn a_secret_is_marked_both_ways() {
    check_problems(
        good_with("/properties/extra/properties/token/x-secret", Value::Null),
        reader,
        &["extra.token: a secret carries both \"writeOnly\": true and \"x-secret\": true"],
    );
}

#[test]
fn a_default_outside_enum_or_bounds_is_a_problem() {
    check_problems(
        good_with("/properties/mode/default", json!("c")),
        reader,
        &["mode: default value \"c\" is not in enum"],
    );
    check_problems(
        good_with("/properties/port/default", json!(0)),
        reader,
        &["port: default value 0 is below minimum"],
    );
    check_problems(
        good_with("/properties/port/default", json!("1883")),
        reader,
        &["port: default value \"1883\" is not of the declared type"],
    );
}

#[test]
fn a_required_name_must_exist_and_top_fields_need_a_default_or_examples() {
    check_problems(
        good_with("/required", json!(["host", "hots"])),
        reader,
        &["the root: required field hots is not among its properties"],
    );
    check_problems(
        good_with("/properties/host/examples", Value::Null),
        reader,
        &["host: a field without a default needs examples"],
    );
}

#[test]
fn a_branch_needs_a_title_and_a_const_type() {
    check_problems(
        good_with("/properties/credentials/oneOf/0/properties/type/const", Value::Null),
        reader,
        &["credentials (oneOf 0): needs a type property with a const"],
    );
    check_problems(
        good_with("/properties/credentials/oneOf/1/title", Value::Null),
        reader,
        &["credentials (oneOf 1): a oneOf branch needs a title"],
    );
}

#[test]
fn the_reader_must_accept_the_example() {
    fn needs_more(config: &str) -> Vec<FieldError> {
        let mut errors = reader(config);
        errors.push(FieldError::new("secret", "is required"));
        errors
    }
    check_problems(good(), needs_more, &["the example configuration is refused: secret: is required"]);
}

#[test]
fn enum_values_and_bounds_must_agree_with_the_reader() {
    check_problems(
        good_with("/properties/mode/enum", json!(["a", "b", "c"])),
        reader,
        &["mode: enum value \"c\" is refused: mode: must be a or b"],
    );
    check_problems(good_with("/properties/port/minimum", json!(2)), reader, &["port: below minimum, 1 is accepted"]);
    check_problems(
        good_with("/properties/port/maximum", json!(70000)),
        reader,
        &["port: maximum 70000 is refused: port: must be between 1 and 65535"],
    );
}

#[test]
fn a_field_the_reader_ignores_is_found_by_its_wrong_type() {
    let ghost = json!({"type": "boolean", "title": "Ghost", "description": "Never read.", "default": false});
    check_problems(good_with("/properties/ghost", ghost), reader, &["ghost: the wrong-typed value [] is accepted"]);
}

#[test]
fn a_required_field_must_be_required_by_the_reader() {
    check_problems(
        good_with("/required", json!(["host", "port"])),
        reader,
        &["port: required, yet a configuration without it is accepted"],
    );
}
