//! Router tests as data: topic validation and matching, and the trie's merge rules.

use std::sync::Arc;

use bytes::Bytes;

use super::topic::{matches, parse_filter, validate_topic_name, ParsedFilter, TopicError};
use super::*;
use crate::message::{PublishedMessage, RoutedMessage};

fn check_match(filter: &str, topic: &str, expected: bool) {
    assert_eq!(matches(filter, topic), expected, "{filter} vs {topic}");
}

#[test]
fn matching() {
    for (filter, topic, expected) in [
        ("a/b", "a/b", true),
        ("a/b", "a/c", false),
        ("a/+", "a/b", true),
        ("a/+", "a/b/c", false),
        ("a/#", "a", true),
        ("a/#", "a/b/c", true),
        ("#", "a/b", true),
        ("+/+", "/x", true),
        ("+", "", true),
        ("#", "$SYS/x", false),
        ("+/x", "$SYS/x", false),
        ("$SYS/#", "$SYS/x", true),
        ("a/+/c", "a//c", true),
    ] {
        check_match(filter, topic, expected);
    }
}

#[test]
fn filter_validation() {
    let ok = |f: &'static str, group: Option<&'static str>, filter: &'static str| {
        assert_eq!(parse_filter(f), Ok(ParsedFilter { share_group: group, filter }), "{f}");
    };
    ok("a/#", None, "a/#");
    ok("+/+/#", None, "+/+/#");
    ok("$share/g/a/+", Some("g"), "a/+");
    let bad = |f: &str, e: TopicError| assert_eq!(parse_filter(f), Err(e), "{f}");
    bad("", TopicError::Empty);
    bad("a/#/b", TopicError::MisplacedWildcard);
    bad("a#", TopicError::MisplacedWildcard);
    bad("a/b+", TopicError::MisplacedWildcard);
    bad("$share/g", TopicError::InvalidShare);
    bad("$share//a", TopicError::InvalidShare);
    bad("$share/g+/a", TopicError::InvalidShare);
    bad("a\0b", TopicError::Nul);
}

#[test]
fn topic_name_validation() {
    assert_eq!(validate_topic_name("a/b"), Ok(()));
    assert_eq!(validate_topic_name(""), Err(TopicError::Empty));
    assert_eq!(validate_topic_name("a/+"), Err(TopicError::WildcardInName));
    assert_eq!(validate_topic_name("a/#"), Err(TopicError::WildcardInName));
}

fn routed(topic: &str, qos: QoS, retain: bool, from: &str) -> Arc<RoutedMessage> {
    RoutedMessage::new(PublishedMessage {
        topic: topic.to_owned(),
        payload: Bytes::from_static(b"p"),
        qos,
        retain,
        client_id: from.into(),
        user_properties: Vec::new(),
        content_type: None,
        correlation_data: None,
        response_topic: None,
        message_expiry_interval: None,
        payload_format_indicator: None,
        received_at_ms: 0,
    })
}

fn opts(qos: QoS, sub_id: Option<usize>) -> SubOptions {
    SubOptions {
        qos,
        no_local: false,
        retain_as_published: false,
        retain_handling: RetainHandling::OnEverySubscribe,
        sub_id,
    }
}

fn connected(id: &str) -> Arc<Session> {
    let s = Session::new(id.into(), 100);
    s.state.lock().conn_id = Some(1);
    s
}

fn subscribe(router: &Router, session: &Arc<Session>, filter: &str, o: SubOptions) {
    let parsed = parse_filter(filter).expect("valid filter");
    router.subscribe(&parsed, session, o);
}

#[test]
fn overlapping_subscriptions_of_one_client_merge_into_one_delivery() {
    let router = Router::new(None);
    let s = connected("c");
    subscribe(&router, &s, "a/#", opts(QoS::AtMostOnce, Some(1)));
    subscribe(&router, &s, "a/+", opts(QoS::ExactlyOnce, Some(2)));
    assert_eq!(router.publish(&routed("a/b", QoS::AtLeastOnce, false, "x")), 1);
    let st = s.state.lock();
    assert_eq!(st.queue.len(), 1);
    let d = &st.queue[0];
    assert_eq!(d.qos, QoS::AtLeastOnce);
    let mut ids = d.sub_ids.clone();
    ids.sort_unstable();
    assert_eq!(ids, [1, 2]);
}

#[test]
fn offline_sessions_queue_qos_1_but_not_qos_0() {
    let router = Router::new(None);
    let s = Session::new("off".into(), 100);
    subscribe(&router, &s, "t", opts(QoS::AtLeastOnce, None));
    assert_eq!(router.publish(&routed("t", QoS::AtMostOnce, false, "x")), 0);
    assert_eq!(router.publish(&routed("t", QoS::AtLeastOnce, false, "x")), 1);
}

#[test]
fn removed_session_leaves_no_subscriptions() {
    let router = Router::new(None);
    let s = connected("gone");
    subscribe(&router, &s, "t/#", opts(QoS::AtLeastOnce, None));
    s.state.lock().subscriptions.insert("t/#".to_owned(), opts(QoS::AtLeastOnce, None));
    router.remove_session(&s);
    assert_eq!(router.publish(&routed("t/x", QoS::AtLeastOnce, false, "x")), 0);
    subscribe(&router, &s, "t/#", opts(QoS::AtLeastOnce, None));
    assert_eq!(router.publish(&routed("t/x", QoS::AtLeastOnce, false, "x")), 0);
}

#[test]
fn shared_group_prefers_connected_members() {
    let router = Router::new(None);
    let online = connected("on");
    let offline = Session::new("off".into(), 100);
    subscribe(&router, &online, "$share/g/t", opts(QoS::AtLeastOnce, None));
    subscribe(&router, &offline, "$share/g/t", opts(QoS::AtLeastOnce, None));
    for _ in 0..4 {
        router.publish(&routed("t", QoS::AtLeastOnce, false, "x"));
    }
    assert_eq!(online.state.lock().queue.len(), 4);
    assert_eq!(offline.state.lock().queue.len(), 0);
}

#[test]
fn retained_store_replaces_and_clears() {
    let router = Router::new(None);
    router.retain(&routed("r", QoS::AtLeastOnce, true, "x"));
    router.retain(&routed("r", QoS::ExactlyOnce, true, "x"));
    let found = router.retained_matching("#");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].msg.qos, QoS::ExactlyOnce);
    let mut empty = routed("r", QoS::AtLeastOnce, true, "x");
    Arc::get_mut(&mut empty).expect("unique").msg.payload = Bytes::new();
    router.retain(&empty);
    assert_eq!(router.retained_count(), 0);
}

#[test]
fn integration_filters_are_listed_as_held() {
    let router = Router::new(None);
    assert!(router.integration_filters("i1").is_empty());
    router.add_integration_subscriptions("i1", &["b/#".into(), "a/+".into(), "b/#".into()]).expect("valid filters");
    assert_eq!(router.integration_filters("i1"), ["a/+", "b/#"]);
    assert!(router.add_integration_subscriptions("i1", &["$share/g/x".into()]).is_err());
    router.remove_integration_subscriptions("i1", &["a/+".into()]);
    assert_eq!(router.integration_filters("i1"), ["b/#"]);
    router.remove_integration("i1");
    assert!(router.integration_filters("i1").is_empty());
}
