//! `validate` and the parsed configuration: every field's checks and messages, as a table of
//! configurations and the field errors they must produce, plus names and JSON paths.

use std::time::Duration;

use serde_json::{json, Value};
use trib_plugin_api::driver::Driver;

use super::{config, driver};
use crate::config::{JsonPath, PostgresqlConfig, Source, SslMode, Step, TableName, WriteMode};

/// `validate(text)` must return exactly `expected` as (field, message) pairs.
fn check_text(text: &str, expected: &[(&str, &str)]) {
    let errors: Vec<(String, String)> =
        driver().validate(text).iter().map(|e| (e.field.to_string(), e.message.to_string())).collect();
    let expected: Vec<(String, String)> = expected.iter().map(|(f, m)| (f.to_string(), m.to_string())).collect();
    assert_eq!(errors, expected, "for {text}");
}

/// [`check_text`] for the minimal valid configuration with `extra` merged in.
fn check(extra: Value, expected: &[(&str, &str)]) {
    check_text(&config(extra).to_string(), expected);
}

fn parsed(extra: Value) -> PostgresqlConfig {
    PostgresqlConfig::parse(&config(extra).to_string()).expect("valid")
}

const SOURCES: &str = "topic, clientId, ts, qos, retain, payloadJson, payloadText, payloadBytes, jsonPath, \
metadata, userProperty, constant, messageKey";

#[test]
fn the_minimal_configuration_is_valid() {
    check(json!({}), &[]);
}

#[test]
fn not_an_object_is_one_error() {
    check_text("[]", &[("", "clientConfiguration must be a JSON object")]);
    check_text("null", &[("", "clientConfiguration must be a JSON object")]);
}

#[test]
fn an_empty_object_names_every_required_field() {
    check_text(
        "{}",
        &[
            ("host", "Host is required"),
            ("database", "Database is required"),
            ("username", "Username is required"),
            ("table", "Table is required"),
            ("columns", "At least one column mapping is required"),
        ],
    );
}

#[test]
fn null_and_blank_are_absent() {
    check(json!({"port": null, "sslMode": null, "password": null, "writeMode": "", "idempotencyKeyColumn": ""}), &[]);
    check(json!({"host": "  "}), &[("host", "Host is required")]);
    check(json!({"database": null}), &[("database", "Database is required")]);
}

#[test]
fn host() {
    check(json!({"host": "db.example.com"}), &[]);
    check(json!({"host": "db example"}), &[("host", "Host must not contain spaces or control characters")]);
    check(json!({"host": ["x"]}), &[("host", "must be a string")]);
    check(json!({"host": "/var/run/postgresql", "sslMode": "disable"}), &[]);
    check(
        json!({"host": "/var/run/postgresql"}),
        &[("sslMode", "A Unix socket (host starting with /) needs sslMode disable")],
    );
}

#[test]
fn port() {
    check(json!({"port": 1}), &[]);
    check(json!({"port": "5433"}), &[]);
    check(json!({"port": 65535}), &[]);
    check(json!({"port": 0}), &[("port", "Port must be between 1 and 65535")]);
    check(json!({"port": 65536}), &[("port", "Port must be between 1 and 65535")]);
    check(json!({"port": "x"}), &[("port", "must be an integer")]);
    assert_eq!(parsed(json!({})).port, 5432);
    assert_eq!(parsed(json!({"port": "5433"})).port, 5433);
}

#[test]
fn ssl_mode() {
    for (text, mode) in [
        ("disable", SslMode::Disable),
        ("prefer", SslMode::Prefer),
        ("require", SslMode::Require),
        ("verify-ca", SslMode::VerifyCa),
        ("verify-full", SslMode::VerifyFull),
    ] {
        assert_eq!(parsed(json!({"sslMode": text})).ssl_mode, mode);
    }
    assert_eq!(parsed(json!({})).ssl_mode, SslMode::Prefer);
    let message = "Invalid SSL mode. Allowed values: disable, prefer, require, verify-ca, verify-full";
    check(json!({"sslMode": "REQUIRE"}), &[("sslMode", message)]);
    check(json!({"sslMode": "allow"}), &[("sslMode", message)]);
}

#[test]
fn ca_certificate() {
    check(json!({"caCertificate": ""}), &[]);
    check(
        json!({"caCertificate": "not a certificate"}),
        &[("caCertificate", "CA certificate: no PEM certificate found (-----BEGIN CERTIFICATE----- ...)")],
    );
    let broken = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    let errors = driver().validate(&config(json!({"caCertificate": broken})).to_string());
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].field.as_str(), "caCertificate");
    assert!(errors[0].message.starts_with("CA certificate: certificate 1 cannot be a trust anchor"), "{errors:?}");
}

#[test]
fn table() {
    check(json!({"table": "public.readings"}), &[]);
    check(json!({"table": "\"my.schema\".\"Read\"\"ings\""}), &[]);
    check(json!({"table": "a.b.c"}), &[("table", "Table: at most schema.table; quote a name that holds a dot")]);
    check(json!({"table": "public."}), &[("table", "Table: a name must not be empty")]);
    check(json!({"table": "\"open"}), &[("table", "Table: unclosed double quote")]);
    check(json!({"table": "\"a\"b"}), &[("table", "Table: a quoted name must be followed by a dot or the end")]);
    check(json!({"table": "a\"b"}), &[("table", "Table: a double quote may only open a quoted name")]);
    let long = "t".repeat(64);
    check(json!({"table": long}), &[("table", &*format!("Table: \"{long}\" is longer than 63 bytes"))]);
}

#[test]
fn table_names_are_exact() {
    for (text, schema, name) in [
        ("readings", None, "readings"),
        ("Readings", None, "Readings"),
        (" public.Readings ", Some("public"), "Readings"),
        ("\"my.schema\".\"a \"\"b\"\"\"", Some("my.schema"), "a \"b\""),
    ] {
        let expected = TableName { schema: schema.map(str::to_string), name: name.to_string() };
        assert_eq!(TableName::parse(text), Ok(expected), "{text}");
    }
}

#[test]
fn columns_shape() {
    check(json!({"columns": []}), &[("columns", "must be an object of column names to mappings")]);
    check(json!({"columns": {}}), &[("columns", "At least one column mapping is required")]);
    check(
        json!({"columns": {"c": "topic"}}),
        &[("columns.c", "must be an object with a source, e.g. {\"source\": \"topic\"}")],
    );
    check(json!({"columns": {"": {"source": "topic"}}}), &[("columns.", "Column name: a name must not be empty")]);
    check(
        json!({"columns": {"c": {"source": "topic", "pth": "$.x"}}}),
        &[("columns.c.pth", "Unknown field; a column mapping has source, path, key and value")],
    );
}

#[test]
fn column_sources() {
    let required = format!("Source is required; one of {SOURCES}");
    let unknown = format!("Unknown source Topic; one of {SOURCES}");
    for (mapping, expected) in [
        (json!({"source": "topic"}), vec![]),
        (json!({"source": "messageKey"}), vec![]),
        (json!({"source": "jsonPath", "path": "$.t"}), vec![]),
        (json!({"source": "metadata", "key": "site"}), vec![]),
        (json!({"source": "userProperty", "key": "unit"}), vec![]),
        (json!({"source": "constant", "value": 42}), vec![]),
        (json!({"source": "constant", "value": {"a": [1]}}), vec![]),
        (json!({}), vec![("columns.c.source", required.as_str())]),
        (json!({"source": 7}), vec![("columns.c.source", "must be a string")]),
        (json!({"source": "Topic"}), vec![("columns.c.source", unknown.as_str())]),
        (
            json!({"source": "jsonPath"}),
            vec![("columns.c.path", "JSON path is required for source jsonPath, e.g. $.temperature")],
        ),
        (
            json!({"source": "jsonPath", "path": "temperature"}),
            vec![("columns.c.path", "Invalid JSON path: must start with $ or payload, e.g. $.temperature")],
        ),
        (json!({"source": "metadata"}), vec![("columns.c.key", "Key is required for source metadata")]),
        (
            json!({"source": "userProperty", "key": ""}),
            vec![("columns.c.key", "Key is required for source userProperty")],
        ),
        (
            json!({"source": "constant", "value": null}),
            vec![("columns.c.value", "Value is required for source constant (leave a column unmapped for NULL)")],
        ),
        (json!({"source": "topic", "path": "$.x"}), vec![("columns.c.path", "Not used by source topic")]),
        (
            json!({"source": "jsonPath", "path": "$.x", "key": "k"}),
            vec![("columns.c.key", "Not used by source jsonPath")],
        ),
        (json!({"source": "ts", "value": 1}), vec![("columns.c.value", "Not used by source ts")]),
    ] {
        check(json!({"columns": {"c": mapping}}), &expected);
    }
}

#[test]
fn columns_keep_their_order_and_sources() {
    let config = parsed(json!({"columns": {
        "z": {"source": "ts"},
        "a": {"source": "jsonPath", "path": "payload.v[1]"},
        "m": {"source": "metadata", "key": "site"},
        "k": {"source": "constant", "value": "x"}
    }}));
    let names: Vec<&str> = config.columns.iter().map(|c| c.column.as_str()).collect();
    assert_eq!(names, ["z", "a", "m", "k"]);
    let path = JsonPath { text: "payload.v[1]".into(), steps: vec![Step::Key("v".into()), Step::Index(1)] };
    assert_eq!(config.columns[1].source, Source::JsonPath(path));
    assert_eq!(config.columns[2].source, Source::Metadata("site".into()));
    assert_eq!(config.columns[3].source, Source::Constant(json!("x")));
}

#[test]
fn json_paths() {
    let key = |k: &str| Step::Key(k.to_string());
    for (text, expected) in [
        ("$", Ok(vec![])),
        ("payload", Ok(vec![])),
        ("$.a.b", Ok(vec![key("a"), key("b")])),
        ("payload.a[0]", Ok(vec![key("a"), Step::Index(0)])),
        ("$['a b'][\"c.d\"]", Ok(vec![key("a b"), key("c.d")])),
        ("$['it\\'s']", Ok(vec![key("it's")])),
        ("$[2][10]", Ok(vec![Step::Index(2), Step::Index(10)])),
        ("$.température", Ok(vec![key("température")])),
        ("temperature", Err("must start with $ or payload, e.g. $.temperature")),
        ("payloads.a", Err("must start with $ or payload, e.g. $.temperature")),
        ("$a", Err("unexpected 'a' at position 1; expected . or [")),
        ("$..a", Err("empty name after '.' at position 1")),
        ("$.a.", Err("empty name after '.' at position 3")),
        ("$.*", Err("wildcards are not supported")),
        ("$[*]", Err("wildcards are not supported")),
        ("$[1", Err("unclosed [ at position 1")),
        ("$['a'", Err("unclosed [ at position 1")),
        ("$['a']x", Err("unexpected 'x' at position 6; expected . or [")),
        ("$[x]", Err("[x] at position 1 is neither an index nor a quoted name")),
        ("$[-1]", Err("[-1] at position 1 is neither an index nor a quoted name")),
    ] {
        let got = JsonPath::parse(text).map(|p| p.steps);
        assert_eq!(got, expected.map_err(str::to_string), "{text}");
    }
}

#[test]
fn write_mode_and_idempotency_key() {
    assert_eq!(parsed(json!({})).write_mode, WriteMode::Insert);
    assert_eq!(parsed(json!({"writeMode": "copy"})).write_mode, WriteMode::Copy);
    check(json!({"writeMode": "upsert"}), &[("writeMode", "Invalid write mode. Allowed values: insert, copy")]);
    let keyed = json!({"topic": {"source": "topic"}, "k": {"source": "messageKey"}});
    check(json!({"columns": keyed, "idempotencyKeyColumn": "k"}), &[]);
    assert_eq!(
        parsed(json!({"columns": keyed, "idempotencyKeyColumn": "k"})).idempotency_key_column.as_deref(),
        Some("k")
    );
    check(
        json!({"columns": keyed, "idempotencyKeyColumn": "k", "writeMode": "copy"}),
        &[(
            "idempotencyKeyColumn",
            "Cannot be used with writeMode copy: COPY has no ON CONFLICT; use writeMode insert",
        )],
    );
    check(
        json!({"idempotencyKeyColumn": "K"}),
        &[("idempotencyKeyColumn", "Must name one of the mapped columns; \"K\" is not mapped")],
    );
}

#[test]
fn timeouts() {
    let config = parsed(json!({}));
    assert_eq!((config.connect_timeout, config.statement_timeout), (Duration::from_secs(10), None));
    let config = parsed(json!({"connectTimeoutMs": 1, "statementTimeoutMs": 250}));
    assert_eq!(
        (config.connect_timeout, config.statement_timeout),
        (Duration::from_millis(1), Some(Duration::from_millis(250)))
    );
    check(json!({"connectTimeoutMs": 3_600_000, "statementTimeoutMs": 0}), &[]);
    check(
        json!({"connectTimeoutMs": 0}),
        &[("connectTimeoutMs", "Connect timeout (milliseconds) must not be less than 1")],
    );
    check(
        json!({"statementTimeoutMs": -1}),
        &[("statementTimeoutMs", "Statement timeout (milliseconds) must not be less than 0")],
    );
    check(
        json!({"statementTimeoutMs": 3_600_001}),
        &[("statementTimeoutMs", "Statement timeout (milliseconds) must not exceed 3600000")],
    );
    check(json!({"connectTimeoutMs": "soon"}), &[("connectTimeoutMs", "must be an integer")]);
}

#[test]
fn every_problem_is_reported_at_once() {
    check(
        json!({"port": 0, "sslMode": "x", "writeMode": "y", "columns": {"c": {"source": "q"}}}),
        &[
            ("port", "Port must be between 1 and 65535"),
            ("sslMode", "Invalid SSL mode. Allowed values: disable, prefer, require, verify-ca, verify-full"),
            ("columns.c.source", &*format!("Unknown source q; one of {SOURCES}")),
            ("writeMode", "Invalid write mode. Allowed values: insert, copy"),
        ],
    );
}

#[test]
fn the_password_is_never_shown() {
    let config = parsed(json!({"password": "hunter2"}));
    assert_eq!(config.password.0, "hunter2");
    assert!(!format!("{config:?}").contains("hunter2"));
}
