//! Several broker nodes on one queue and one database: integration filters reach every node's
//! trie through `tbmq.client.subscriptions`, a node that starts late reads them before it
//! starts, every node hears every executor, and `GET /api/cluster/nodes` lists nodes and
//! executors. Plus the pieces: the record codec, the subscriptions state, the cluster view.

use std::{collections::HashSet, sync::Arc, time::Duration};

use prost::Message as _;
use reqwest::StatusCode;
use serde_json::{json, Value};
use trib_queue::{
    queue::{embedded::EmbeddedQueue, Queue},
    topics::TopicNames,
    wire::{ClientSubscriptionsProto, ServiceInfo, SubscriptionsSourceProto, TopicSubscriptionProto},
};
use uuid::Uuid;

use super::support::{on_both_backends, stop_executor, Backend, Env, RecordingSink};
use crate::{
    cluster::Cluster,
    executors::Executors,
    subscriptions::{
        topic::{decode, encode, Change, MARKER_KEY_PREFIX},
        Subscriptions,
    },
    SubscriptionSink,
};

on_both_backends!(
    a_save_on_one_node_reaches_the_other,
    a_late_node_has_the_filters_when_it_starts,
    every_node_hears_every_executor_and_node,
    a_lost_topic_is_written_again_from_the_database,
    listeners_are_announced_without_waiting_for_the_next_heartbeat,
);

const POLL: Duration = Duration::from_millis(20);

fn filters(saved: &Value) -> Vec<String> {
    let mut f: Vec<String> = saved["configuration"]["topicFilters"]
        .as_array()
        .expect("topicFilters")
        .iter()
        .map(|f| f.as_str().expect("string").to_string())
        .collect();
    f.sort();
    f
}

async fn a_save_on_one_node_reaches_the_other(backend: Backend) {
    let a = Env::start(backend).await;
    let b = a.join().await;
    let executor = a.start_executor("ie-cluster-1").await;
    let saved = a.create("via-a", true, json!({"k": 1})).await;
    let id: Uuid = saved["id"].as_str().expect("id").parse().expect("uuid");
    assert_eq!(a.sink.filters(id), Some(filters(&saved)), "the saving node's trie has them when the save answers");
    b.wait_until("node B has the filters", || async { b.sink.filters(id) == Some(filters(&saved)) }).await;

    // An update through B reaches A; B's own trie has it when B answers.
    let mut body = saved.clone();
    body["configuration"]["topicFilters"] = json!(["only/this"]);
    let (code, updated) = b.post("/api/integration", body).await;
    assert_eq!(code, StatusCode::OK, "{updated}");
    assert_eq!(b.sink.filters(id), Some(vec!["only/this".to_string()]));
    a.wait_until("node A has the update", || async { a.sink.filters(id) == Some(vec!["only/this".to_string()]) }).await;
    let (_, on_a) = a.get(&format!("/api/subscription/integration?integrationId={id}")).await;
    assert_eq!(on_a, json!(["only/this"]));

    // Disabled integrations keep their subscriptions (TBMQ); a delete through B clears A.
    let (code, _) = a.post_empty(&format!("/api/integration/{id}/disable")).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(b.sink.filters(id), Some(vec!["only/this".to_string()]));
    let (code, _) = b.delete(&format!("/api/integration/{id}")).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(b.sink.filters(id), None);
    a.wait_until("node A lost the filters", || async { a.sink.filters(id).is_none() }).await;
    assert!(a.sink.calls.lock().iter().any(|c| c == &format!("remove {id}")), "{:?}", a.sink.calls.lock());
    stop_executor(executor);
    b.stop().await;
    a.stop().await;
}

async fn a_late_node_has_the_filters_when_it_starts(backend: Backend) {
    let a = Env::start(backend).await;
    let executor = a.start_executor("ie-cluster-2").await;
    let saved = a.create("before-b", true, json!({"k": 1})).await;
    let id: Uuid = saved["id"].as_str().expect("id").parse().expect("uuid");
    let gone = a.create("deleted-before-b", true, json!({"k": 2})).await;
    let (code, _) = a.delete(&format!("/api/integration/{}", gone["id"].as_str().expect("id"))).await;
    assert_eq!(code, StatusCode::OK);
    // Management::start returns (and the broker opens its listeners) only after the catch-up.
    let b = a.join().await;
    assert_eq!(b.sink.filters(id), Some(filters(&saved)));
    assert_eq!(b.sink.current.lock().len(), 1, "{:?}", b.sink.current.lock());
    stop_executor(executor);
    b.stop().await;
    a.stop().await;
}

async fn every_node_hears_every_executor_and_node(backend: Backend) {
    let a = Env::start_with(backend, |c| c.node_heartbeat_interval = Duration::from_millis(200)).await;
    let b = a.join().await;
    let first = a.start_executor("ie-cluster-a").await;
    let second = b.start_executor("ie-cluster-b").await;
    let mut nodes = vec![a.config.service_id.clone(), b.config.service_id.clone()];
    nodes.sort();
    for env in [&a, &b] {
        env.wait_until("both executors and both nodes listed", || async {
            let (code, view) = env.get("/api/cluster/nodes").await;
            assert_eq!(code, StatusCode::OK, "{view}");
            let ids = |key: &str| -> Vec<String> {
                view[key].as_array().expect(key).iter().map(|n| n["serviceId"].as_str().expect("id").into()).collect()
            };
            let all = view["nodes"].as_array().expect("nodes");
            let alive = all.iter().all(|n| n["alive"] == true);
            // The first heartbeat goes out before the HTTP port is bound; the next names it.
            let announced = all.iter().any(|n| n["thisNode"] == true && n["listeners"] == json!([env.base]));
            ids("nodes") == nodes && ids("executors") == ["ie-cluster-a", "ie-cluster-b"] && alive && announced
        })
        .await;
        let (_, view) = env.get("/api/cluster/nodes").await;
        assert_eq!(view["serviceId"], env.config.service_id);
        let me: Vec<&Value> =
            view["nodes"].as_array().expect("nodes").iter().filter(|n| n["thisNode"] == true).collect();
        assert_eq!(me.len(), 1, "{view}");
        assert_eq!(me[0]["serviceId"], env.config.service_id);
        for e in view["executors"].as_array().expect("executors") {
            let types = e["integrationTypes"].as_array().expect("types");
            assert!(types.iter().any(|t| t.as_str().is_some_and(|t| t.starts_with("SCRIPTED@"))), "{view}");
        }
        let (_, executors) = env.get("/api/executors").await;
        assert_eq!(executors.as_array().map(Vec::len), Some(2), "{executors}");
    }
    // Without a token, like the rest of the API.
    let r = a.client.get(a.url("/api/cluster/nodes")).send().await.expect("request");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // A node that stops removes itself.
    let b_id = b.config.service_id.clone();
    b.stop().await;
    a.wait_until("node B gone", || async {
        let (_, view) = a.get("/api/cluster/nodes").await;
        view["nodes"].as_array().is_some_and(|n| n.iter().all(|n| n["serviceId"] != b_id.as_str()))
    })
    .await;
    stop_executor(first);
    stop_executor(second);
    a.stop().await;
}

async fn a_lost_topic_is_written_again_from_the_database(backend: Backend) {
    let mut a = Env::start(backend).await;
    let executor = a.start_executor("ie-cluster-3").await;
    let saved = a.create("kept", true, json!({"k": 1})).await;
    let id: Uuid = saved["id"].as_str().expect("id").parse().expect("uuid");
    stop_executor(executor);
    let config = a.config.clone();
    if let Some(handle) = a.handle.take() {
        handle.shutdown().await;
    }
    // The same database on a queue that lost everything (the memory-only queue after a restart).
    let queue: Arc<dyn Queue> = Arc::new(EmbeddedQueue::new());
    let sink = Arc::new(RecordingSink::default());
    let handle = crate::Management::start(config.clone(), queue.clone(), sink.clone()).await.expect("starts");
    assert_eq!(sink.filters(id), Some(filters(&saved)));
    // Another node reading the topic finds the record the restarted node wrote.
    let other = Arc::new(RecordingSink::default());
    let reader = open(queue.clone(), &config.topics, "other", other.clone()).await;
    reader.catch_up().await.expect("catch-up");
    assert_eq!(other.filters(id), Some(filters(&saved)));
    handle.shutdown().await;
    a.stop().await;
}

async fn open(queue: Arc<dyn Queue>, names: &TopicNames, node: &str, sink: Arc<dyn SubscriptionSink>) -> Subscriptions {
    Subscriptions::open(queue, names, node, sink, POLL).await.expect("open")
}

/// A late node reads what is on the topic before it follows, in the topic's order; every
/// node's sink gets the filters sorted and without duplicates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_catch_up_then_follow() {
    let queue: Arc<dyn Queue> = Arc::new(EmbeddedQueue::new());
    let names = TopicNames::default();
    let (first, second) = (Arc::new(RecordingSink::default()), Arc::new(RecordingSink::default()));
    let a = open(queue.clone(), &names, "a", first.clone()).await;
    assert_eq!(a.catch_up().await.expect("catch-up"), 0);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let thread = a.follow(stop.clone()).expect("follow");
    let (x, y, z) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    a.set(x, &["z/#".into(), "a/+".into(), "z/#".into()]).await.expect("set");
    assert_eq!(first.filters(x), Some(vec!["a/+".into(), "z/#".into()]));
    a.set(y, &["b".into()]).await.expect("set");
    a.set(y, &[]).await.expect("empty filters remove");
    assert_eq!(first.filters(y), None);
    a.set(z, &["c".into()]).await.expect("set");
    a.remove(z).await.expect("remove");
    assert_eq!(a.get(x), ["a/+", "z/#"]);
    assert!(a.get(y).is_empty() && a.get(z).is_empty());
    assert_eq!(
        *first.calls.lock(),
        [
            format!("set {x} [\"a/+\", \"z/#\"]"),
            format!("set {y} [\"b\"]"),
            format!("remove {y}"),
            format!("set {z} [\"c\"]"),
            format!("remove {z}")
        ]
    );

    let b = open(queue.clone(), &names, "b", second.clone()).await;
    assert_eq!(b.catch_up().await.expect("catch-up"), 1);
    assert_eq!(*second.calls.lock(), [format!("set {x} [\"a/+\", \"z/#\"]")], "only the final state is left");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    thread.join().expect("thread");
}

/// The subscriptions endpoint answers from what the sink's trie holds when the sink can tell.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_of_an_authoritative_sink() {
    /// A sink whose trie refused one filter.
    struct Trie;
    impl SubscriptionSink for Trie {
        fn set_integration_subscriptions(&self, _: Uuid, _: &[String]) {}
        fn remove_integration_subscriptions(&self, _: Uuid) {}
        fn integration_subscriptions(&self, _: Uuid) -> Option<Vec<String>> {
            Some(vec!["s/2".into(), "s/1".into()])
        }
    }
    let queue: Arc<dyn Queue> = Arc::new(EmbeddedQueue::new());
    let trie = open(queue, &TopicNames::default(), "t", Arc::new(Trie)).await;
    trie.catch_up().await.expect("catch-up");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let thread = trie.follow(stop.clone()).expect("follow");
    let a = Uuid::new_v4();
    trie.set(a, &["s/1".into(), "s/2".into(), "refused/#".into()]).await.expect("set");
    assert_eq!(trie.get(a), ["s/1", "s/2"]);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    thread.join().expect("thread");
}

fn check_decode(key: &str, value: &[u8], expected: Option<Change>) {
    assert_eq!(decode(Some(key.as_bytes()), value), expected, "{key}");
}

#[test]
fn subscription_records() {
    let id = Uuid::new_v4();
    let key = id.to_string();
    let record = encode(&["a/#".into(), "b".into()]);
    check_decode(&key, &record, Some(Change::Set(id, vec!["a/#".into(), "b".into()])));
    let proto = ClientSubscriptionsProto::decode(record.as_slice()).expect("proto");
    assert_eq!(proto.source, Some(SubscriptionsSourceProto::Integration as i32));
    assert!(proto.subscriptions.iter().all(|s| s.qos == 1 && s.share_name.is_none()));
    assert!(encode(&[]).is_empty(), "no filters: a tombstone");
    check_decode(&key, &[], Some(Change::Remove(id)));
    // TBMQ clears a key with an empty set instead of a tombstone.
    let cleared = ClientSubscriptionsProto { source: Some(0), ..Default::default() }.encode_to_vec();
    check_decode(&key, &cleared, Some(Change::Remove(id)));
    // An MQTT client's record, a marker, a key that is no integration id, garbage: not ours.
    let client = ClientSubscriptionsProto {
        subscriptions: vec![TopicSubscriptionProto { topic: "t".into(), qos: 0, ..Default::default() }],
        source: Some(SubscriptionsSourceProto::MqttClient as i32),
        wire_version: 1,
        ..Default::default()
    }
    .encode_to_vec();
    check_decode(&key, &client, None);
    check_decode(&format!("{MARKER_KEY_PREFIX}{id}"), &client, None);
    check_decode("client-7", &record, None);
    check_decode(&key, &[0xff, 0xff, 0xff], None);
    assert_eq!(decode(None, &record), None);
}

/// An announcement older than the liveness (read from the beginning of the uplink topic) does
/// not make an executor live.
#[test]
fn stale_announcements_are_skipped() {
    let executors = Executors::new(Duration::from_secs(30));
    let announce = |id: &str, sent: i64| {
        let info = ServiceInfo {
            service_id: id.into(),
            integration_types: vec!["HTTP@1.0.0".into()],
            timestamp: sent,
            ..Default::default()
        };
        executors.announce(&info, 100_000);
    };
    announce("old", 69_999);
    announce("recent", 70_000);
    let heard: Vec<String> = executors.all(100_000).into_iter().map(|e| e.service_id).collect();
    assert_eq!(heard, ["recent"]);
}

/// Heartbeats, tombstones and liveness in the cluster view.
#[test]
fn cluster_view() {
    let executors = Arc::new(Executors::new(Duration::from_secs(30)));
    let cluster = Cluster::new("me", Duration::from_secs(30), executors);
    cluster.set_listeners(vec!["mqtt://127.0.0.1:1".into()]);
    let mine = cluster.heartbeat(1_000);
    assert_eq!((mine.service_type.as_deref(), mine.timestamp), (Some("tbmq"), 1_000));
    assert_eq!(mine.listeners, ["mqtt://127.0.0.1:1"]);
    cluster.apply(Some(b"me"), &mine.encode_to_vec());
    let other = ServiceInfo { service_id: "other".into(), timestamp: 5_000, start_time: 4_000, ..Default::default() };
    cluster.apply(Some(b"other"), &other.encode_to_vec());
    // A record whose key is not its service id, garbage, a record without a key: skipped.
    cluster.apply(Some(b"third"), &other.encode_to_vec());
    cluster.apply(Some(b"fourth"), &[0xff, 0xff]);
    cluster.apply(None, &other.encode_to_vec());
    let view = |now| -> Vec<(String, bool, bool)> {
        cluster.nodes(now).into_iter().map(|n| (n.service_id, n.alive, n.this_node)).collect()
    };
    assert_eq!(view(31_000), [("me".into(), true, true), ("other".into(), true, false)]);
    assert_eq!(view(35_001), [("me".into(), false, true), ("other".into(), false, false)]);
    assert_eq!(cluster.nodes(0)[1].start_time, 4_000);
    cluster.apply(Some(b"other"), &[]);
    assert_eq!(view(31_000), [("me".into(), true, true)]);
}

#[test]
fn alive_nodes_are_known_once_this_node_ran_for_a_liveness_period() {
    let cluster = Cluster::new("me", Duration::from_secs(30), Arc::new(Executors::new(Duration::from_secs(30))));
    let start = cluster.heartbeat(0).start_time;
    let other = ServiceInfo { service_id: "other".into(), timestamp: start + 40_000, ..Default::default() };
    cluster.apply(Some(b"other"), &other.encode_to_vec());
    // A node not heard from yet may be alive: nothing is said before one liveness period.
    assert_eq!(cluster.alive_nodes(start + 10_000), None);
    assert_eq!(cluster.alive_nodes(start + 31_000), Some(HashSet::from(["other".to_owned()])));
    assert_eq!(cluster.alive_nodes(start + 70_001), Some(HashSet::new()), "40 s without a heartbeat");
}

async fn listeners_are_announced_without_waiting_for_the_next_heartbeat(backend: Backend) {
    // The first heartbeat goes out before the HTTP port is bound; with a minute between
    // heartbeats, only announcing the change at once lists the port within the wait.
    let env = Env::start_with(backend, |c| c.node_heartbeat_interval = Duration::from_secs(60)).await;
    env.wait_until("this node announces its HTTP listener", || async {
        let (_, view) = env.get("/api/cluster/nodes").await;
        view["nodes"]
            .as_array()
            .is_some_and(|nodes| nodes.iter().any(|n| n["thisNode"] == true && n["listeners"] == json!([env.base])))
    })
    .await;
    env.stop().await;
}
