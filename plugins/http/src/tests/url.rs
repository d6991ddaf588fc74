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
