use serde_json::{json, Value};

use super::{mask, unmask, MASK};

/// The shapes first-party drivers use: a secret inside one alternative of `oneOf`, secret names
/// among free-form properties, secret header names by pattern, and arrays of objects.
fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "url": {"type": "string"},
            "credentials": {"oneOf": [
                {"properties": {"type": {"const": "anonymous"}}},
                {"properties": {"type": {"const": "basic"}, "username": {"type": "string"}, "password": {"type": "string", "writeOnly": true, "x-secret": true}}}
            ]},
            "other": {
                "additionalProperties": {"type": "string"},
                "properties": {"sasl.password": {"type": "string", "x-secret": true}}
            },
            "headers": {
                "additionalProperties": {"type": "string"},
                "patternProperties": {"^[Xx]-[Aa][Pp][Ii]-[Kk][Ee][Yy]$": {"type": "string", "x-secret": true}}
            },
            "targets": {"items": {"properties": {"token": {"type": "string", "writeOnly": true}}}}
        }
    })
}

fn config() -> Value {
    json!({
        "url": "http://x",
        "credentials": {"type": "basic", "username": "u", "password": "p4ss"},
        "other": {"sasl.password": "kafka-secret", "acks": "all"},
        "headers": {"X-Api-Key": "k3y", "Accept": "text/plain"},
        "targets": [{"token": "t1", "name": "a"}, {"token": "", "name": "b"}],
        "unknown": {"password": "not declared"}
    })
}

#[test]
fn declared_secrets_are_masked_and_nothing_else() {
    let mut c = config();
    mask(&mut c, &schema());
    assert_eq!(
        c,
        json!({
            "url": "http://x",
            "credentials": {"type": "basic", "username": "u", "password": MASK},
            "other": {"sasl.password": MASK, "acks": "all"},
            "headers": {"X-Api-Key": MASK, "Accept": "text/plain"},
            "targets": [{"token": MASK, "name": "a"}, {"token": "", "name": "b"}],
            "unknown": {"password": "not declared"}
        })
    );
}

#[test]
fn a_masked_configuration_sent_back_keeps_the_stored_secrets() {
    let stored = config();
    let mut read = stored.clone();
    mask(&mut read, &schema());
    let mut sent = read.clone();
    sent["url"] = json!("http://y");
    unmask(&mut sent, &stored, &schema());
    let mut expected = stored.clone();
    expected["url"] = json!("http://y");
    assert_eq!(sent, expected);

    // A new secret replaces the stored one; a mask where nothing was stored stays a mask; a
    // mask in a field that is not secret is a value like any other.
    let mut sent = read;
    sent["credentials"]["password"] = json!("new");
    sent["other"]["sasl.username"] = json!(MASK);
    sent["headers"]["Accept"] = json!(MASK);
    unmask(&mut sent, &stored, &schema());
    assert_eq!(sent["credentials"]["password"], "new");
    assert_eq!(sent["other"]["sasl.username"], MASK);
    assert_eq!(sent["headers"]["Accept"], MASK);
    assert_eq!(sent["headers"]["X-Api-Key"], "k3y");
}

#[test]
fn without_a_schema_nothing_is_masked() {
    let mut c = config();
    mask(&mut c, &json!({}));
    assert_eq!(c, config());
}
