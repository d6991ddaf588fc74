//! Router tests as data: topic validation and matching, and the trie's merge rules.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

use super::topic::{matches, parse_filter, validate_topic_name, ParsedFilter, TopicError};
use super::*;
use crate::message::{PublishedMessage, RoutedMessage};
use crate::session::queue::QueueLimits;

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
    RoutedMessage::new(PublishedMessage::plain(topic, Bytes::from_static(b"p"), qos, retain, from))
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
    let s = Session::new(id.into(), QueueLimits::new(100, usize::MAX, usize::MAX));
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
    assert_eq!(st.queued(), 1);
    let d = st.front_queued().unwrap();
    assert_eq!(d.qos, QoS::AtLeastOnce);
    let mut ids = d.sub_ids.clone();
    ids.sort_unstable();
    assert_eq!(ids, [1, 2]);
}

#[test]
fn offline_sessions_queue_qos_1_but_not_qos_0() {
    let router = Router::new(None);
    let s = Session::new("off".into(), QueueLimits::new(100, usize::MAX, usize::MAX));
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
    let offline = Session::new("off".into(), QueueLimits::new(100, usize::MAX, usize::MAX));
    subscribe(&router, &online, "$share/g/t", opts(QoS::AtLeastOnce, None));
    subscribe(&router, &offline, "$share/g/t", opts(QoS::AtLeastOnce, None));
    for _ in 0..4 {
        router.publish(&routed("t", QoS::AtLeastOnce, false, "x"));
    }
    assert_eq!(online.state.lock().queued(), 4);
    assert_eq!(offline.state.lock().queued(), 0);
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

/// Counts the copies each integration receives and remembers the routes it was handed.
#[derive(Default)]
struct Counting {
    copies: parking_lot::Mutex<HashMap<String, usize>>,
    destinations: parking_lot::Mutex<Vec<String>>,
    send_all_calls: std::sync::atomic::AtomicUsize,
}

impl IntegrationSink for Counting {
    fn route(&self, integration_id: &str) -> Result<Arc<str>, String> {
        if integration_id.starts_with("bad") {
            return Err("refused by the sink".into());
        }
        Ok(format!("queue.{integration_id}").into())
    }

    fn send(&self, integration_id: &str, _msg: &PublishedMessage) -> Handover {
        *self.copies.lock().entry(integration_id.to_owned()).or_default() += 1;
        Handover::Stored
    }

    fn send_all(&self, routes: &[&Arc<IntegrationRoute>], msg: &PublishedMessage, handovers: &mut Handovers) {
        self.send_all_calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.destinations.lock().extend(routes.iter().map(|r| r.destination.to_string()));
        for route in routes {
            handovers.push(self.send(&route.id, msg));
        }
    }
}

#[test]
fn integrations_get_their_precomputed_route_once_per_publish() {
    let sink = Arc::new(Counting::default());
    let router = Router::new(Some(sink.clone()));
    router.add_integration_subscriptions("i2", &["a/#".into()]).expect("valid");
    router.add_integration_subscriptions("i1", &["a/b".into(), "a/+".into()]).expect("valid");
    router.publish(&routed("a/b", QoS::AtLeastOnce, false, "c"));
    assert_eq!(sink.send_all_calls.load(std::sync::atomic::Ordering::Relaxed), 1, "one call per PUBLISH");
    assert_eq!(*sink.destinations.lock(), ["queue.i1", "queue.i2"], "each once, sorted by id");
    let refused = router.add_integration_subscriptions("bad-1", &["a/#".into()]);
    assert!(matches!(refused, Err(RouterError::Unroutable { .. })), "{refused:?}");
    assert!(router.integration_filters("bad-1").is_empty());
}

#[test]
fn set_integration_subscriptions_replaces_in_one_step() {
    let router = Router::new(None);
    router.set_integration_subscriptions("i", &["a/#".into(), "b/#".into()]).expect("valid");
    router.set_integration_subscriptions("i", &["b/#".into(), "c/#".into()]).expect("valid");
    assert_eq!(router.integration_filters("i"), ["b/#", "c/#"]);
    // A bad filter changes nothing.
    assert!(router.set_integration_subscriptions("i", &["d/#".into(), "$share/g/x".into()]).is_err());
    assert_eq!(router.integration_filters("i"), ["b/#", "c/#"]);
    router.set_integration_subscriptions("i", &[]).expect("valid");
    assert!(router.integration_filters("i").is_empty());
}

/// The window of a remove-then-add replacement: while one thread keeps replacing an
/// integration's filters with sets that all contain `keep/#`, every PUBLISH to `keep/x` must
/// reach the integration. With remove-then-add, publishes landing between the two steps were
/// skipped.
#[test]
fn a_publish_during_a_filter_replacement_is_never_skipped() {
    const PUBLISHES: usize = 20_000;
    let sink = Arc::new(Counting::default());
    let router = Arc::new(Router::new(Some(sink.clone())));
    router.set_integration_subscriptions("i", &["keep/#".into()]).expect("valid");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let replacer = {
        let (router, stop) = (router.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                let filters = ["keep/#".to_string(), format!("other/{n}")];
                router.set_integration_subscriptions("i", &filters).expect("valid");
            }
            n
        })
    };
    let msg = routed("keep/x", QoS::AtLeastOnce, false, "c");
    for _ in 0..PUBLISHES {
        router.publish(&msg);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let replacements = replacer.join().expect("replacer");
    assert!(replacements > 0, "the filters were replaced while publishing");
    assert_eq!(sink.copies.lock().get("i").copied(), Some(PUBLISHES), "after {replacements} replacements");
}
