//! `statusCodes`: statuses mapped to outcomes through a real server, the lookup rules as a pure
//! table, and the validation of the field as data.

use serde_json::{json, Value};
use trib_plugin_api::driver::{Driver, Host, Outcome};

use super::{config, deliver, single};
use crate::{
    config::{
        status_codes::{StatusCodes, Treatment},
        HttpConfig,
    },
    driver::HttpDriver,
    retry::{classify, Exchange},
    test_server::TestServer,
};

const URL: &str = "http://example.com/ingest";

/// Delivers one message to a server answering `status`, with `status_codes` configured.
fn deliver_to(status: u16, status_codes: Value) -> (Outcome, String) {
    let server = TestServer::status(status);
    let url = server.url("/ingest");
    let outcomes = deliver(&config(&url, json!({ "statusCodes": status_codes })), &[b"x"]);
    assert_eq!(single(&server.requests()).method, "POST", "the request was sent");
    (outcomes.into_iter().next().expect("one outcome"), url)
}

#[test]
fn a_404_configured_as_delivered_is_delivered() {
    let (outcome, _) = deliver_to(404, json!({"delivered": ["404"]}));
    assert_eq!(outcome, Outcome::Delivered);
}

#[test]
fn a_503_configured_as_reject_is_rejected_not_retried() {
    let (outcome, url) = deliver_to(503, json!({"reject": ["503"]}));
    assert_eq!(outcome, Outcome::Rejected(format!("503 Service Unavailable from POST {url}")));
}

#[test]
fn a_class_configured_as_retry_retries_a_4xx() {
    let (outcome, url) = deliver_to(409, json!({"retry": ["4xx"]}));
    assert_eq!(outcome, Outcome::Retry(format!("409 Conflict from POST {url}")));
}

#[test]
fn unlisted_statuses_keep_the_default_with_a_mapping() {
    let (outcome, url) = deliver_to(500, json!({"delivered": ["404"]}));
    assert_eq!(outcome, Outcome::Retry(format!("500 Internal Server Error from POST {url}")));
}

/// The outcome of a response with `status` under `status_codes`, without a server.
fn check(status_codes: Value, status: u16, expected: &str) {
    let text = json!({ "restEndpointUrl": URL, "statusCodes": status_codes }).to_string();
    let codes = HttpConfig::parse(&text).expect("valid").status_codes;
    let exchange = Exchange::Response { status, location: None, body_excerpt: String::new() };
    let got = match classify("POST", URL, &exchange, &codes) {
        Outcome::Delivered => "delivered",
        Outcome::Retry(_) => "retry",
        Outcome::Rejected(_) => "rejected",
        Outcome::Timeout(_) => "timeout",
    };
    assert_eq!(got, expected, "status {status} under {status_codes}");
}

#[test]
fn an_exact_code_wins_over_its_class() {
    let codes = json!({"retry": ["5xx", "429", "408"], "reject": ["4xx"], "delivered": ["2xx", "404"]});
    check(codes.clone(), 404, "delivered");
    check(codes.clone(), 400, "rejected");
    check(codes.clone(), 429, "retry");
    check(codes.clone(), 503, "retry");
    check(codes, 201, "delivered");
    check(json!({"reject": ["5xx"], "retry": ["503"]}), 503, "retry");
    check(json!({"reject": ["5xx"], "retry": ["503"]}), 502, "rejected");
}

#[test]
fn codes_may_be_numbers_and_classes_any_case() {
    check(json!({"delivered": [404]}), 404, "delivered");
    check(json!({"retry": ["4XX"]}), 404, "retry");
    check(json!({"reject": [" 503 "]}), 503, "rejected");
}

#[test]
fn without_a_mapping_the_classification_is_the_default() {
    for (status, expected) in [(200, "delivered"), (404, "rejected"), (408, "retry"), (429, "retry"), (503, "retry")] {
        check(json!({}), status, expected);
        check(Value::Null, status, expected);
    }
    check(json!({"retry": ["3xx"]}), 302, "retry");
    check(json!({}), 302, "rejected");
}

#[test]
fn the_lookup_prefers_the_exact_code() {
    let text = json!({"restEndpointUrl": URL, "statusCodes": {"reject": ["4xx"], "delivered": ["404"]}}).to_string();
    let codes = HttpConfig::parse(&text).expect("valid").status_codes;
    assert_eq!(codes.treatment(404), Some(Treatment::Delivered));
    assert_eq!(codes.treatment(418), Some(Treatment::Reject));
    assert_eq!(codes.treatment(500), None, "not listed");
    assert_eq!(StatusCodes::default().treatment(200), None);
}

/// Validates `{"restEndpointUrl": URL, "statusCodes": status_codes}` through the driver.
fn check_errors(status_codes: Value, expected: &[(&str, &str)]) {
    let driver = HttpDriver::create(Host::detached()).expect("create");
    let text = json!({ "restEndpointUrl": URL, "statusCodes": status_codes }).to_string();
    let errors: Vec<(String, String)> =
        driver.validate(&text).into_iter().map(|e| (e.field.to_string(), e.message.to_string())).collect();
    let expected: Vec<(String, String)> = expected.iter().map(|(f, m)| (f.to_string(), m.to_string())).collect();
    assert_eq!(errors, expected, "statusCodes: {status_codes}");
}

#[test]
fn the_example_mapping_is_valid() {
    check_errors(json!({"retry": ["5xx", "429", "408"], "reject": ["4xx"], "delivered": ["2xx", "404"]}), &[]);
    check_errors(json!({"retry": [], "reject": null}), &[]);
}

#[test]
fn codes_outside_100_to_599_are_refused() {
    check_errors(
        json!({"retry": ["600", 99, "6xx", "0xx", "40", "4x4", true, 404.5]}),
        &[
            ("statusCodes.retry[0]", "\"600\" is not a status code from 100 to 599 or a class from 1xx to 5xx"),
            ("statusCodes.retry[1]", "99 is not a status code from 100 to 599 or a class from 1xx to 5xx"),
            ("statusCodes.retry[2]", "\"6xx\" is not a status code from 100 to 599 or a class from 1xx to 5xx"),
            ("statusCodes.retry[3]", "\"0xx\" is not a status code from 100 to 599 or a class from 1xx to 5xx"),
            ("statusCodes.retry[4]", "\"40\" is not a status code from 100 to 599 or a class from 1xx to 5xx"),
            ("statusCodes.retry[5]", "\"4x4\" is not a status code from 100 to 599 or a class from 1xx to 5xx"),
            ("statusCodes.retry[6]", "true is not a status code from 100 to 599 or a class from 1xx to 5xx"),
            ("statusCodes.retry[7]", "404.5 is not a status code from 100 to 599 or a class from 1xx to 5xx"),
        ],
    );
}

#[test]
fn a_code_in_two_lists_is_refused() {
    check_errors(
        json!({"retry": ["503"], "reject": [503], "delivered": ["404"]}),
        &[("statusCodes.reject[0]", "\"503\" is also listed in statusCodes.retry")],
    );
}

#[test]
fn a_class_in_two_lists_is_refused() {
    check_errors(
        json!({"reject": ["4xx"], "delivered": ["2xx", "4XX"]}),
        &[("statusCodes.delivered[1]", "\"4xx\" is also listed in statusCodes.reject")],
    );
}

#[test]
fn a_code_twice_in_one_list_is_harmless() {
    check_errors(json!({"retry": ["503", 503]}), &[]);
}

#[test]
fn wrong_shapes_are_named() {
    check_errors(json!(["5xx"]), &[("statusCodes", "must be an object with retry, reject and delivered lists")]);
    check_errors(
        json!({"retry": "5xx", "redo": ["5xx"]}),
        &[
            ("statusCodes.redo", "unknown list; use retry, reject or delivered"),
            ("statusCodes.retry", "must be an array of status codes (\"404\") or classes (\"4xx\")"),
        ],
    );
}
