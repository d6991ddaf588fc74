//! What goes on the wire: bodies in envelope and payload-only modes, Content-Type, configured
//! headers and basic auth, methods with and without a body, and the URL encoding.

use serde_json::{json, Value};
use trib_plugin_api::driver::Outcome;

use super::{config, deliver, rejected_reason, single};
use crate::test_server::{Recorded, TestServer};

const ENVELOPE_TAIL: &str = r#""topicName":"sensors/1/temp","clientId":"device-1","eventType":"PUBLISH_MSG","qos":1,"retain":false,"tbmqIeNode":"tbmq-ie1","tbmqNode":"tbmq1","ts":1717000000000,"props":{},"metadata":{"integrationName":"My HTTP","site":"A"}}"#;

/// Sends `payload` with the extra config fields and returns what the server received.
fn received(extra: Value, payload: &[u8]) -> Recorded {
    let server = TestServer::status(200);
    let outcomes = deliver(&config(&server.url("/ingest"), extra), &[payload]);
    assert_eq!(outcomes, vec![Outcome::Delivered]);
    single(&server.requests()).clone()
}

/// Checks the body bytes and the Content-Type of what `payload` becomes.
fn check(extra: Value, payload: &[u8], body: &[u8], content_type: &str) {
    let request = received(extra, payload);
    assert_eq!(request.method, "POST");
    assert_eq!(request.target, "/ingest");
    assert_eq!(String::from_utf8_lossy(&request.body), String::from_utf8_lossy(body));
    assert_eq!(request.body, body);
    assert_eq!(request.header_values("content-type"), vec![content_type]);
}

fn envelope(payload_json: &str) -> Vec<u8> {
    format!(r#"{{"payload":{payload_json},{ENVELOPE_TAIL}"#).into_bytes()
}

#[test]
fn envelope_binary_payload_is_base64() {
    check(json!({}), br#"{"t":25}"#, &envelope(r#""eyJ0IjoyNX0=""#), "application/json");
}

#[test]
fn envelope_json_payload_is_embedded() {
    check(json!({"payloadContentType": "JSON"}), br#"{ "t" : 25 }"#, &envelope(r#"{"t":25}"#), "application/json");
}

#[test]
fn envelope_text_payload_is_a_string() {
    check(json!({"payloadContentType": "TEXT"}), br#"{"t":25}"#, &envelope(r#""{\"t\":25}""#), "application/json");
}

#[test]
fn envelope_json_parse_failure_falls_back_to_base64() {
    let extra = json!({"payloadContentType": "JSON", "sendBinaryOnParseFailure": true});
    check(extra, b"not json", &envelope(r#""bm90IGpzb24=""#), "application/json");
}

#[test]
fn payload_only_json_is_reserialized() {
    let extra = json!({"payloadContentType": "JSON", "sendOnlyMsgPayload": true});
    check(extra, b"{ \"b\" : [1, 2],\n \"a\" : null }", br#"{"b":[1,2],"a":null}"#, "application/json");
}

#[test]
fn payload_only_text_is_lossy_utf8() {
    let extra = json!({"payloadContentType": "TEXT", "sendOnlyMsgPayload": true});
    check(extra, b"caf\xe9 ok", "caf\u{FFFD} ok".as_bytes(), "text/plain;charset=UTF-8");
}

#[test]
fn payload_only_binary_is_raw() {
    let extra = json!({"sendOnlyMsgPayload": true});
    check(extra, &[0, 1, 2, 0xff, b'\n'], &[0, 1, 2, 0xff, b'\n'], "application/octet-stream");
}

#[test]
fn payload_only_json_parse_failure_sends_raw_bytes() {
    let extra = json!({"payloadContentType": "JSON", "sendOnlyMsgPayload": true, "sendBinaryOnParseFailure": true});
    check(extra, b"{broken", b"{broken", "application/octet-stream");
}

#[test]
fn json_parse_failure_without_fallback_is_rejected_and_not_sent() {
    for send_only in [false, true] {
        let server = TestServer::status(200);
        let extra = json!({"payloadContentType": "JSON", "sendOnlyMsgPayload": send_only});
        let outcomes = deliver(&config(&server.url("/ingest"), extra), &[b"{broken", br#"{"ok":1}"#]);
        assert!(rejected_reason(&outcomes[0]).starts_with("Failed to parse msg payload to JSON: "), "{outcomes:?}");
        assert_eq!(outcomes[1], Outcome::Delivered);
        assert!(single(&server.requests()).body_text().contains(r#""ok":1"#));
    }
}

#[test]
fn configured_headers_then_basic_auth() {
    let extra = json!({
        "headers": {"X-Api-Key": "k1", "Content-Type": "application/vnd.acme+json"},
        "credentials": {"type": "basic", "username": "user", "password": "pässword"}
    });
    let request = received(extra, b"x");
    assert_eq!(request.header_values("content-type"), vec!["application/vnd.acme+json"]);
    assert_eq!(request.header_values("x-api-key"), vec!["k1"]);
    // base64("user:pässword") in UTF-8.
    assert_eq!(request.header_values("authorization"), vec!["Basic dXNlcjpww6Rzc3dvcmQ="]);
    // The configured spelling of a header name reaches the wire.
    assert!(request.headers.iter().any(|(name, _)| name == "X-Api-Key"), "{:?}", request.headers);
}

#[test]
fn configured_content_type_matches_case_insensitively() {
    let request = received(json!({"headers": {"content-TYPE": "text/csv"}, "sendOnlyMsgPayload": true}), b"a,b");
    assert_eq!(request.header_values("content-type"), vec!["text/csv"]);
    assert_eq!(request.body, b"a,b");
}

#[test]
fn configured_authorization_is_kept_next_to_basic_auth() {
    let extra = json!({
        "headers": {"Authorization": "Bearer t"},
        "credentials": {"type": "basic", "username": "u", "password": "p"}
    });
    let request = received(extra, b"x");
    assert_eq!(request.header_values("authorization"), vec!["Bearer t", "Basic dTpw"]);
}

#[test]
fn put_sends_the_body() {
    let request = received(json!({"requestMethod": "PUT", "sendOnlyMsgPayload": true}), b"raw");
    assert_eq!((request.method.as_str(), request.body.as_slice()), ("PUT", &b"raw"[..]));
}

#[test]
fn get_and_delete_send_no_body() {
    for method in ["GET", "DELETE"] {
        let request = received(json!({"requestMethod": method, "headers": {"X-A": "1"}}), b"payload");
        assert_eq!(request.method, method);
        assert!(request.body.is_empty());
        assert_eq!(request.header("content-type"), None);
        assert_eq!(request.header("content-length").unwrap_or("0"), "0");
        assert_eq!(request.header("x-a"), Some("1"));
    }
}

#[test]
fn url_is_percent_encoded_like_tbmq() {
    let server = TestServer::status(200);
    let url = format!("{}/a b/{{id}}/%41?q=\"v\"&k=a b&u=ü#fragment", server.url(""));
    let outcomes = deliver(&config(&url, json!({})), &[b"x"]);
    assert_eq!(outcomes, vec![Outcome::Delivered]);
    assert_eq!(single(&server.requests()).target, "/a%20b/%7Bid%7D/%41?q=%22v%22&k=a%20b&u=%C3%BC");
}

#[test]
fn batch_outcomes_keep_message_order() {
    let server = TestServer::start(|_, request| {
        crate::test_server::Reply::Status(if request.body_text().contains("bad") { 400 } else { 200 })
    });
    let url = server.url("/ingest");
    let payloads: [&[u8]; 4] = [b"ok-0", b"bad-1", b"ok-2", b"bad-3"];
    let outcomes = deliver(&config(&url, json!({"sendOnlyMsgPayload": true})), &payloads);
    let expected_rejection = Outcome::Rejected(format!("400 Bad Request from POST {url}"));
    assert_eq!(outcomes, vec![Outcome::Delivered, expected_rejection.clone(), Outcome::Delivered, expected_rejection]);
    let mut bodies: Vec<String> = server.requests().iter().map(Recorded::body_text).collect();
    bodies.sort();
    assert_eq!(bodies, vec!["bad-1", "bad-3", "ok-0", "ok-2"]);
}
