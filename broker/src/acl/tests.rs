//! ACL parsing, per-client rule selection, pattern substitution and filter covering.

use super::*;

const RULES: &str = "
# anonymous
topic read public/#
user alice
topic readwrite alice/#
topic write sensors/+/temp
cert device-1
topic write devices/device-1/#
pattern write clients/%c/out
pattern read users/%u/#
";

#[test]
fn sections_give_each_principal_its_rules_plus_patterns() {
    let acl = Acl::parse(RULES).expect("parses");
    let alice = acl.for_client(Principal::User("alice"), "c1");
    assert!(alice.can_publish("alice/x") && alice.can_subscribe("alice/#"));
    assert!(alice.can_publish("sensors/1/temp") && !alice.can_subscribe("sensors/1/temp"));
    assert!(!alice.can_publish("public/x") && !alice.can_subscribe("public/#"));
    assert!(alice.can_publish("clients/c1/out") && !alice.can_publish("clients/c2/out"));
    assert!(alice.can_subscribe("users/alice/inbox") && !alice.can_subscribe("users/bob/inbox"));

    let anon = acl.for_client(Principal::Anonymous, "c2");
    assert!(anon.can_subscribe("public/news") && !anon.can_publish("public/news"));
    assert!(anon.can_publish("clients/c2/out"));
    assert!(!anon.can_subscribe("users//#"), "%u patterns do not apply without a name");

    let device = acl.for_client(Principal::Certificate("device-1"), "d");
    assert!(device.can_publish("devices/device-1/t") && !device.can_publish("devices/device-2/t"));
    let stranger = acl.for_client(Principal::User("mallory"), "m");
    assert!(!stranger.can_publish("alice/x") && stranger.can_publish("clients/m/out"));
}

#[test]
fn semicolons_separate_rules_for_one_line_environment_values() {
    let acl = Acl::parse("user bob; topic write a/b ;topic read c/#").expect("parses");
    let bob = acl.for_client(Principal::User("bob"), "x");
    assert!(bob.can_publish("a/b") && bob.can_subscribe("c/d") && !bob.can_subscribe("a/b"));
}

#[test]
fn identifiers_with_wildcards_or_separators_do_not_widen_patterns() {
    let acl = Acl::parse("pattern readwrite clients/%c/#").expect("parses");
    assert!(acl.for_client(Principal::Anonymous, "ok").can_publish("clients/ok/x"));
    for id in ["+", "#", "a/b"] {
        let c = acl.for_client(Principal::Anonymous, id);
        assert!(!c.can_publish("clients/a/b/x") && !c.can_subscribe("clients/#"), "{id}");
    }
}

#[test]
fn bad_rules_name_their_line() {
    for (text, line) in [
        ("topic read a/#\nfoo bar", 2),
        ("user", 1),
        ("topic read", 1),
        ("topic deny a", 1),
        ("topic a/#/b", 1),
        ("\n\ntopic $share/g/a", 3),
    ] {
        assert_eq!(Acl::parse(text).map_err(|e| e.line), Err(line), "{text:?}");
    }
    assert_eq!(Acl::parse("# only a comment\n\n"), Ok(Acl::default()));
}

#[test]
fn covering() {
    for (allowed, filter) in [
        ("#", "a/b"),
        ("a/#", "a"),
        ("a/#", "a/+/c"),
        ("a/#", "a/#"),
        ("a/+", "a/b"),
        ("a/+", "a/+"),
        ("+/+", "x/y"),
        ("a/b", "a/b"),
        ("$SYS/#", "$SYS/x"),
    ] {
        assert!(covers(allowed, filter), "{allowed} should cover {filter}");
    }
    for (allowed, filter) in [
        ("a/+", "a/#"),
        ("a/b", "a/+"),
        ("a/b", "a/b/c"),
        ("a/b/c", "a/b"),
        ("#", "$SYS/x"),
        ("+/x", "$SYS/x"),
        ("a/+", "a"),
    ] {
        assert!(!covers(allowed, filter), "{allowed} should not cover {filter}");
    }
    let acl = Acl::parse("topic read a/#").expect("parses");
    let c = acl.for_client(Principal::Anonymous, "x");
    assert!(c.can_subscribe("$share/g/a/b") && !c.can_subscribe("$share/g/b"));
}

/// Whether a client connecting as `principal` may publish to `topic`, with `rules` (`None`: no
/// ACL configured).
fn check_publish(principal: Principal<'_>, rules: Option<&str>, topic: &str, allowed: bool) {
    let acl = rules.map(|r| Acl::parse(r).expect("parses"));
    let authz = Authorization::new(principal, "c", acl.as_ref());
    assert_eq!(authz.can_publish(topic), allowed, "{principal:?} {rules:?} {topic}");
}

#[test]
fn anonymous_clients_never_publish_to_sys() {
    check_publish(Principal::Anonymous, None, "$SYS/broker/uptime", false);
    check_publish(Principal::Anonymous, None, "$SYS", false);
    check_publish(Principal::Anonymous, Some("topic write $SYS/#\ntopic write #"), "$SYS/x", false);
    check_publish(Principal::Anonymous, Some("pattern write $SYS/%c"), "$SYS/c", false);
    check_publish(Principal::Anonymous, None, "$SYSTEM/x", true);
    check_publish(Principal::Anonymous, None, "a/$SYS/x", true);
    check_publish(Principal::Anonymous, None, "sensors/1", true);
}

#[test]
fn authenticated_clients_publish_to_sys_as_the_rules_say() {
    check_publish(Principal::User("alice"), None, "$SYS/x", true);
    check_publish(Principal::Certificate("dev"), None, "$SYS/x", true);
    check_publish(Principal::User("alice"), Some("user alice\ntopic write $SYS/alice/#"), "$SYS/alice/up", true);
    check_publish(Principal::User("alice"), Some("user alice\ntopic write $SYS/alice/#"), "$SYS/other", false);
    check_publish(Principal::User("alice"), Some("user alice\ntopic write #"), "$SYS/x", false);
}

#[test]
fn subscribing_to_sys_is_left_to_the_rules() {
    let authz = Authorization::new(Principal::Anonymous, "c", None);
    assert!(authz.can_subscribe("$SYS/#"));
    let rules = Acl::parse("topic read public/#").expect("parses");
    let authz = Authorization::new(Principal::Anonymous, "c", Some(&rules));
    assert!(authz.can_subscribe("public/a") && !authz.can_subscribe("$SYS/#"));
}
