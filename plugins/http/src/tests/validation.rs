//! Configuration validation as data: one `check(input, expected field errors)` helper and many
//! tiny cases, plus the defaults.

use serde_json::{json, Value};
use trib_plugin_api::driver::{Driver, Host};

use crate::{
    config::{url, HttpConfig, Method, PayloadContentType},
    driver::HttpDriver,
    test_server::pki::Ca,
};

const URL: &str = "http://example.com/ingest";

/// Validates `input` (a JSON text) through the driver and compares `(field, message)` pairs.
fn check_text(input: &str, expected: &[(&str, &str)]) {
    let driver = HttpDriver::create(Host::detached()).expect("create");
    let errors: Vec<(String, String)> =
        driver.validate(input).into_iter().map(|e| (e.field.to_string(), e.message.to_string())).collect();
    let expected: Vec<(String, String)> = expected.iter().map(|(f, m)| (f.to_string(), m.to_string())).collect();
    assert_eq!(errors, expected, "input: {input}");
}

/// As [`check_text`], for `{"restEndpointUrl": URL}` plus `extra`.
fn check(extra: Value, expected: &[(&str, &str)]) {
    check_text(&super::config(URL, extra).to_string(), expected);
}

#[test]
fn minimal_config_is_valid() {
    check(json!({}), &[]);
}

#[test]
fn ui_wizard_config_is_valid() {
    check_text(
        r#"{"sendOnlyMsgPayload":false,"restEndpointUrl":"https://example.com/ingest","requestMethod":"POST",
            "headers":{"Content-Type":"application/json"},"credentials":{"type":"anonymous"},"readTimeoutMs":0,
            "maxParallelRequestsCount":0,"maxInMemoryBufferSizeInKb":256,"payloadContentType":"BINARY",
            "sendBinaryOnParseFailure":true,"caCertFileName":"ignored"}"#,
        &[],
    );
}

#[test]
fn bad_json_is_one_error_without_field() {
    let driver = HttpDriver::create(Host::detached()).expect("create");
    let errors = driver.validate("{not json");
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].field.as_str(), "");
}

#[test]
fn non_object_is_refused() {
    check_text("[1]", &[("", "clientConfiguration must be a JSON object")]);
}

#[test]
fn missing_url_is_required() {
    check_text("{}", &[("restEndpointUrl", "REST endpoint URL is required")]);
}

#[test]
fn url_without_scheme_is_refused() {
    check(json!({"restEndpointUrl": "example.com/x"}), &[("restEndpointUrl", url::SCHEME_MISSING)]);
}

#[test]
fn url_without_host_is_refused() {
    check(json!({"restEndpointUrl": "http://"}), &[("restEndpointUrl", url::URL_INVALID)]);
}

#[test]
fn url_with_bad_port_is_refused() {
    check(json!({"restEndpointUrl": "http://host:port/x"}), &[("restEndpointUrl", url::URL_INVALID)]);
}

#[test]
fn url_with_other_scheme_is_refused() {
    check(json!({"restEndpointUrl": "ftp://host/x"}), &[("restEndpointUrl", url::SCHEME_UNSUPPORTED)]);
}

#[test]
fn patch_is_not_a_valid_method() {
    check(
        json!({"requestMethod": "PATCH"}),
        &[("requestMethod", "Invalid request method. Allowed values: POST, PUT, GET, DELETE")],
    );
}

#[test]
fn negative_read_timeout_is_refused() {
    check(json!({"readTimeoutMs": -1}), &[("readTimeoutMs", "Read timeout (milliseconds) must not be less than 0")]);
}

#[test]
fn negative_parallel_requests_are_refused() {
    check(
        json!({"maxParallelRequestsCount": -5}),
        &[("maxParallelRequestsCount", "Max number of parallel requests must not be less than 0")],
    );
}

#[test]
fn zero_buffer_size_is_refused() {
    check(
        json!({"maxInMemoryBufferSizeInKb": 0}),
        &[("maxInMemoryBufferSizeInKb", "Max response size (KB) must be greater than 0")],
    );
}

#[test]
fn buffer_size_above_the_system_limit_is_refused() {
    check(
        json!({"maxInMemoryBufferSizeInKb": 25001}),
        &[(
            "maxInMemoryBufferSizeInKb",
            "The configured maximum in-memory buffer size (in KB) exceeds the system limit for this parameter. \
             The system limit is 25000 KB.",
        )],
    );
}

#[test]
fn buffer_size_at_the_limit_is_valid() {
    check(json!({"maxInMemoryBufferSizeInKb": 25000}), &[]);
}

#[test]
fn wrong_types_are_named() {
    check(
        json!({"readTimeoutMs": "10", "sendOnlyMsgPayload": "yes", "headers": ["a"], "connectTimeoutMs": 1.5}),
        &[
            ("headers", "must be an object of header names to values"),
            ("readTimeoutMs", "must be an integer"),
            ("connectTimeoutMs", "must be an integer"),
            ("sendOnlyMsgPayload", "must be true or false"),
        ],
    );
}

#[test]
fn unknown_payload_content_type_is_refused() {
    check(
        json!({"payloadContentType": "XML"}),
        &[("payloadContentType", "Invalid payload content type. Allowed values: JSON, TEXT, BINARY")],
    );
}

#[test]
fn invalid_header_name_and_value_are_refused() {
    check(
        json!({"headers": {"Bad Name": "v", "X-Ok": "line\nbreak", "X-Obj": {}}}),
        &[
            ("headers.Bad Name", "is not a valid HTTP header name"),
            ("headers.X-Ok", "is not a valid HTTP header value (control characters are not allowed)"),
            ("headers.X-Obj", "must be a string"),
        ],
    );
}

#[test]
fn basic_credentials_need_a_username() {
    check(json!({"credentials": {"type": "basic", "password": "p"}}), &[("credentials.username", "must not be empty")]);
}

#[test]
fn unknown_credentials_type_is_refused() {
    let driver = HttpDriver::create(Host::detached()).expect("create");
    let errors = driver.validate(&super::config(URL, json!({"credentials": {"type": "token"}})).to_string());
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].field.as_str(), "credentials");
}

#[test]
fn ca_cert_that_is_not_pem_is_refused() {
    check(
        json!({"credentials": {"type": "cert.PEM", "caCert": "garbage"}}),
        &[("credentials.caCert", "is not a PEM certificate")],
    );
}

#[test]
fn cert_without_key_is_refused() {
    let client = Ca::new("c").client();
    check(
        json!({"credentials": {"type": "cert.PEM", "cert": client.cert_pem}}),
        &[("credentials.privateKey", "cert and privateKey must be given together")],
    );
}

#[test]
fn key_of_another_certificate_is_refused() {
    let ca = Ca::new("c");
    let (a, b) = (ca.client(), ca.client());
    let driver = HttpDriver::create(Host::detached()).expect("create");
    let extra = json!({"credentials": {"type": "cert.PEM", "cert": a.cert_pem, "privateKey": b.key_pem}});
    let errors = driver.validate(&super::config(URL, extra).to_string());
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].field.as_str(), "credentials.privateKey");
    assert!(errors[0].message.starts_with("cannot be used with cert"), "{errors:?}");
}

#[test]
fn valid_pem_credentials_are_accepted() {
    let ca = Ca::new("c");
    let client = ca.client();
    let credentials =
        json!({"type": "cert.PEM", "caCert": ca.cert_pem(), "cert": client.cert_pem, "privateKey": client.key_pem});
    check(json!({ "credentials": credentials }), &[]);
}

#[test]
fn several_errors_are_reported_together() {
    check_text(
        r#"{"requestMethod":"HEAD","readTimeoutMs":-1}"#,
        &[
            ("restEndpointUrl", "REST endpoint URL is required"),
            ("requestMethod", "Invalid request method. Allowed values: POST, PUT, GET, DELETE"),
            ("readTimeoutMs", "Read timeout (milliseconds) must not be less than 0"),
        ],
    );
}

#[test]
fn defaults_follow_tbmq() {
    let config = HttpConfig::parse(&json!({"restEndpointUrl": URL, "requestMethod": "", "headers": null}).to_string())
        .expect("valid");
    assert_eq!(config.method, Method::Post);
    assert_eq!(config.body.payload_content_type, PayloadContentType::Binary);
    assert!(!config.body.send_only_msg_payload && !config.body.send_binary_on_parse_failure);
    assert!(config.headers.is_empty() && !config.tls.skip_verification);
    assert_eq!((config.read_timeout_ms, config.max_parallel_requests), (0, 0));
    assert_eq!((config.max_in_memory_buffer_kb, config.connect_timeout_ms), (256, 10_000));
    assert_eq!(config.workers(), 16);
}
