//! Reading rules and checking addresses against policies, as data.

use std::net::{SocketAddr, TcpListener};

use super::*;

/// `policy` on `addr`: `None` when allowed, else the text of the rule that denied it.
fn verdict(policy: &TargetPolicy, addr: &str) -> Option<String> {
    let addr: SocketAddr = addr.parse().expect("test address");
    policy.check(addr).err().map(|refused| refused.rule)
}

fn policy(deny: &str, allow: &str) -> TargetPolicy {
    let mut policy = TargetPolicy::allow_all();
    for rule in parse_list(deny).expect("deny list") {
        policy.deny(rule);
    }
    for rule in parse_list(allow).expect("allow list") {
        policy.allow(rule);
    }
    policy
}

fn parses_as(text: &str, canonical: &str) {
    assert_eq!(Rule::parse(text).map(|r| r.to_string()), Ok(canonical.to_string()), "{text}");
}

fn refused_with(text: &str, why: &str) {
    match Rule::parse(text) {
        Ok(rule) => panic!("'{text}' parsed as {rule}"),
        Err(e) => assert!(e.contains(why) && e.contains(text.trim()), "'{text}': {e}"),
    }
}

#[test]
fn rules_read_in_every_form() {
    parses_as("169.254.0.0/16", "169.254.0.0/16");
    parses_as(" 10.1.2.3 ", "10.1.2.3/32");
    parses_as("10.1.2.3/8", "10.0.0.0/8");
    parses_as("10.0.0.0/8:8083", "10.0.0.0/8:8083");
    parses_as("10.0.0.0/8:8000-8099", "10.0.0.0/8:8000-8099");
    parses_as("fe80::/10", "fe80::/10");
    parses_as("::1", "::1/128");
    parses_as("[::1]:8083", "[::1/128]:8083");
    parses_as("[fd00::/8]:1-1024", "[fd00::/8]:1-1024");
    parses_as("local:8083", "local:8083");
    parses_as("0.0.0.0/0", "0.0.0.0/0");
    // IPv4-mapped IPv6 networks are the IPv4 networks they cover.
    parses_as("::ffff:169.254.0.0/112", "169.254.0.0/16");
    parses_as("[::ffff:10.0.0.1]:80", "10.0.0.1/32:80");
}

#[test]
fn bad_rules_say_what_is_wrong() {
    refused_with("169.254.0.0/33", "at most 32");
    refused_with("fe80::/129", "at most 128");
    refused_with("example.com", "not an IP address");
    refused_with("10.0.0.0/x", "not a prefix length");
    refused_with("10.0.0.0/8:http", "not a port");
    refused_with("10.0.0.0/8:70000", "not a port");
    refused_with("10.0.0.0/8:90-80", "is empty");
    refused_with("[::1:80", "missing ']'");
    refused_with("[::1]80", "expected ':'");
    refused_with("local", "needs ports");
    refused_with("", "not an IP address");
}

#[test]
fn lists_skip_blanks_and_name_the_bad_entry() {
    assert_eq!(parse_list("").map(|l| l.len()), Ok(0));
    assert_eq!(parse_list(" , 10.0.0.0/8 ,, local:1883,").map(|l| l.len()), Ok(2));
    let error = parse_list("10.0.0.0/8,10.0.0.300").expect_err("bad entry");
    assert!(error.contains("'10.0.0.300'"), "{error}");
}

#[test]
fn default_denies_link_local_and_metadata_only() {
    let policy = TargetPolicy::default();
    assert_eq!(verdict(&policy, "169.254.169.254:80").as_deref(), Some("169.254.0.0/16"));
    assert_eq!(verdict(&policy, "169.254.1.2:8080").as_deref(), Some("169.254.0.0/16"));
    assert_eq!(verdict(&policy, "[fe80::1]:80").as_deref(), Some("fe80::/10"));
    assert_eq!(verdict(&policy, "[fd00:ec2::254]:80").as_deref(), Some("fd00:ec2::254/128"));
    assert_eq!(verdict(&policy, "100.100.100.200:80").as_deref(), Some("100.100.100.200/32"));
    // IPv4-mapped IPv6 is checked as the IPv4 address it carries.
    assert_eq!(verdict(&policy, "[::ffff:169.254.169.254]:80").as_deref(), Some("169.254.0.0/16"));
    // Loopback and ordinary addresses stay allowed.
    assert_eq!(verdict(&policy, "127.0.0.1:8083"), None);
    assert_eq!(verdict(&policy, "[::1]:8083"), None);
    assert_eq!(verdict(&policy, "10.0.0.5:443"), None);
    assert_eq!(verdict(&policy, "169.255.0.1:80"), None);
    assert_eq!(verdict(&policy, "[fec0::1]:80"), None);
}

#[test]
fn ports_narrow_a_rule() {
    let policy = policy("10.0.0.0/8:8000-8099,[::1]:8083", "");
    assert_eq!(verdict(&policy, "10.9.9.9:8000").as_deref(), Some("10.0.0.0/8:8000-8099"));
    assert_eq!(verdict(&policy, "10.9.9.9:8099").as_deref(), Some("10.0.0.0/8:8000-8099"));
    assert_eq!(verdict(&policy, "10.9.9.9:8100"), None);
    assert_eq!(verdict(&policy, "10.9.9.9:7999"), None);
    assert_eq!(verdict(&policy, "[::1]:8083").as_deref(), Some("[::1/128]:8083"));
    assert_eq!(verdict(&policy, "[::1]:8084"), None);
    // An IPv4 rule never matches an IPv6 address that is not IPv4-mapped.
    assert_eq!(verdict(&policy, "[::a09:909]:8000"), None);
    assert_eq!(verdict(&policy, "[::ffff:10.9.9.9]:8000").as_deref(), Some("10.0.0.0/8:8000-8099"));
}

#[test]
fn allow_wins_over_deny() {
    let mut policy = TargetPolicy::default();
    policy.deny(Rule::parse("10.0.0.0/8").unwrap()).allow(Rule::parse("10.1.0.0/16:443").unwrap());
    assert_eq!(verdict(&policy, "10.1.2.3:443"), None);
    assert_eq!(verdict(&policy, "10.1.2.3:80").as_deref(), Some("10.0.0.0/8"));
    assert_eq!(verdict(&policy, "10.2.0.1:443").as_deref(), Some("10.0.0.0/8"));
    // A default can be opened too.
    policy.allow(Rule::parse("169.254.169.254").unwrap());
    assert_eq!(verdict(&policy, "169.254.169.254:80"), None);
    assert_eq!(verdict(&policy, "169.254.169.253:80").as_deref(), Some("169.254.0.0/16"));
}

#[test]
fn local_rules_match_every_address_of_this_machine() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut policy = TargetPolicy::allow_all();
    policy.deny(Rule::listener(SocketAddr::from(([0, 0, 0, 0], port))).with_source("own listener: test"));
    for addr in
        [format!("127.0.0.1:{port}"), format!("127.9.9.9:{port}"), format!("0.0.0.0:{port}"), format!("[::1]:{port}")]
    {
        assert_eq!(verdict(&policy, &addr), Some(format!("local:{port}")), "{addr}");
    }
    // Another port, and an address of no interface here (TEST-NET-1), are not matched.
    assert_eq!(verdict(&policy, &format!("127.0.0.1:{}", port.wrapping_add(1))), None);
    assert_eq!(verdict(&policy, &format!("192.0.2.1:{port}")), None);
    // A listener bound to one address covers that address only.
    let mut policy = TargetPolicy::allow_all();
    policy.deny(Rule::listener(SocketAddr::from(([127, 0, 0, 1], port))));
    assert_eq!(verdict(&policy, &format!("127.0.0.1:{port}")), Some(format!("127.0.0.1/32:{port}")));
    assert_eq!(verdict(&policy, &format!("127.0.0.2:{port}")), None);
}

#[test]
fn refusals_name_the_address_the_rule_and_its_source() {
    let refused = TargetPolicy::default().check("169.254.169.254:80".parse().unwrap()).unwrap_err();
    let text = refused.to_string();
    assert!(text.contains("169.254.169.254:80"), "{text}");
    assert!(text.contains("169.254.0.0/16"), "{text}");
    assert!(text.contains(DEFAULT_SOURCE), "{text}");
    let io = refused.clone().into_io();
    assert_eq!(io.kind(), std::io::ErrorKind::PermissionDenied);
    assert_eq!(Refused::in_io(&io), Some(&refused));
    assert_eq!(Refused::in_io(&std::io::Error::other("other")), None);
}

#[test]
fn allowed_keeps_the_allowed_addresses_or_gives_the_first_refusal() {
    let policy = TargetPolicy::default();
    let mixed: Vec<SocketAddr> = vec!["169.254.169.254:80".parse().unwrap(), "10.0.0.1:80".parse().unwrap()];
    assert_eq!(policy.allowed(mixed), Ok(vec!["10.0.0.1:80".parse().unwrap()]));
    let denied: Vec<SocketAddr> = vec!["169.254.169.254:80".parse().unwrap(), "[fe80::1]:80".parse().unwrap()];
    assert_eq!(policy.allowed(denied).map_err(|r| r.addr.to_string()), Err("169.254.169.254:80".to_string()));
}

#[test]
fn json_round_trips_and_bad_json_is_an_error() {
    let mut policy = TargetPolicy::default();
    policy.deny(Rule::local_port(8083).with_source("own listener: REST API"));
    policy.allow(Rule::parse("[fd00::/8]:443").unwrap().with_source("TB_IE_TARGET_ALLOW"));
    assert_eq!(TargetPolicy::from_json(&policy.to_json()), Ok(policy));
    assert_eq!(TargetPolicy::from_json(r#"{"deny":[{"rule":"10.0.0.0/8"}]}"#).map(|p| p.deny_rules().len()), Ok(1));
    for bad in ["", "null", r#"{"deny":"10.0.0.0/8"}"#, r#"{"deny":[{"rule":"nope"}]}"#, r#"{"other":[]}"#] {
        assert!(TargetPolicy::from_json(bad).is_err(), "{bad}");
    }
}

#[test]
fn resolve_filters_names_and_literals() {
    assert!(resolve("127.0.0.1", 80).is_ok_and(|a| a == vec![SocketAddr::from(([127, 0, 0, 1], 80))]));
    // Nothing installed in this test binary: the default is in force.
    let error = resolve("169.254.169.254", 80).expect_err("metadata address");
    assert!(Refused::in_io(&error).is_some_and(|r| r.rule == "169.254.0.0/16"), "{error}");
    let error = resolve("[::ffff:169.254.169.254]", 80).expect_err("mapped metadata address");
    assert!(Refused::in_io(&error).is_some(), "{error}");
}

#[test]
fn check_every_refuses_a_name_with_any_denied_address() {
    let policy = TargetPolicy::default();
    let mixed: Vec<SocketAddr> = vec!["10.0.0.1:80".parse().unwrap(), "169.254.169.254:80".parse().unwrap()];
    assert_eq!(policy.check_every(mixed).map_err(|r| r.addr.to_string()), Err("169.254.169.254:80".to_string()));
    assert_eq!(policy.check_every(vec!["10.0.0.1:80".parse().unwrap()]), Ok(()));
}

#[test]
fn exact_rules_match_one_address_and_port() {
    let mut policy = TargetPolicy::allow_all();
    policy.deny(Rule::exact("[::1]:8083".parse().unwrap()));
    assert_eq!(verdict(&policy, "[::1]:8083").as_deref(), Some("[::1/128]:8083"));
    assert_eq!(verdict(&policy, "[::1]:8084"), None);
    assert_eq!(verdict(&policy, "127.0.0.1:8083"), None);
}
