//! The `restEndpointUrl` encoding table: input URL to what is requested (see `config::url`).

use crate::config::url;

/// One URL encoding case: `input` becomes `expected`.
fn check_url(input: &str, expected: Result<&str, &str>) {
    assert_eq!(url::encode(input), expected.map(str::to_string), "input: {input}");
}

#[test]
fn url_space_and_braces_are_encoded() {
    check_url("http://h/a b/{x}", Ok("http://h/a%20b/%7Bx%7D"));
}

#[test]
fn url_query_quotes_are_encoded_and_separators_kept() {
    check_url("http://h/p?a=\"1\"&b=x y&c=d/e?f", Ok("http://h/p?a=%221%22&b=x%20y&c=d/e?f"));
}

#[test]
fn url_existing_escapes_are_kept() {
    check_url("http://h/a%20b?q=%7B", Ok("http://h/a%20b?q=%7B"));
}

#[test]
fn url_lone_percent_is_encoded() {
    check_url("http://h/100%", Ok("http://h/100%25"));
}

#[test]
fn url_non_ascii_is_utf8_encoded() {
    check_url("https://h:8443/é", Ok("https://h:8443/%C3%A9"));
}

#[test]
fn url_fragment_is_dropped_and_whitespace_trimmed() {
    check_url("  http://h/p#frag ", Ok("http://h/p"));
}

#[test]
fn url_ipv6_host_is_kept() {
    check_url("http://[::1]:8080/x", Ok("http://[::1]:8080/x"));
}

#[test]
fn url_without_authority_is_invalid() {
    check_url("http:/h/p", Err(url::URL_INVALID));
}

/// The URL as logs and outcome reasons show it.
fn check_redacted(input: &str, expected: &str) {
    assert_eq!(url::redacted(input), expected, "input: {input}");
}

#[test]
fn url_user_info_is_redacted_for_logs_and_reasons() {
    check_redacted("http://user:s3cret@h:8080/p?q=1", "http://***@h:8080/p?q=1");
    check_redacted("https://token@h/p", "https://***@h/p");
    check_redacted("http://u:p@ss@h/p", "http://***@h/p");
    check_redacted("http://h/p?next=a@b", "http://h/p?next=a@b");
    check_redacted("http://h:8080/a@b", "http://h:8080/a@b");
    check_redacted("http://[::1]:8080/x", "http://[::1]:8080/x");
}

#[test]
fn outcome_reasons_and_check_errors_never_carry_url_credentials() {
    use serde_json::json;
    use trib_plugin_api::driver::{Driver, Host, Outcome};

    use super::{config, deliver, start_config};
    use crate::{driver::HttpDriver, test_server::TestServer};

    let server = TestServer::status(500);
    let plain = server.url("/ingest");
    let with_user = plain.replacen("http://", "http://user:s3cret@", 1);
    let shown = plain.replacen("http://", "http://***@", 1);
    let outcomes = deliver(&config(&with_user, json!({})), &[b"x"]);
    assert_eq!(outcomes, [Outcome::Retry(format!("500 Internal Server Error from POST {shown}"))]);
    let mut driver = HttpDriver::create(Host::detached()).expect("create");
    let text = config(&with_user, json!({})).to_string();
    let error = driver.check_connection(&start_config(&text)).expect_err("500 fails the check");
    assert!(!error.message.contains("s3cret") && error.message.contains(&shown), "{}", error.message);
}
