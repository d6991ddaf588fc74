//! Retained messages on the queue (`tbmq.msg.retained`): a broker killed and started again on the
//! same embedded queue directory still serves them (a cleared one stays cleared), and two broker
//! services on one queue serve each other's.
//!
//! The kill is emulated in-process: the first broker runs on a runtime of its own, which is
//! dropped without any shutdown (its connection tasks vanish, nothing is flushed), and the queue
//! directory is opened again once the process's last handle on it is gone.

use std::{
    net::SocketAddr,
    sync::{atomic::AtomicBool, Arc},
    time::{Duration, Instant},
};

use rumqttc::v5::mqttbytes::{v5::PublishProperties, QoS as Q5};
use trib_queue::{
    queue::{embedded::EmbeddedQueue, Queue},
    topics::TopicNames,
};

use super::support::{self, service_env, within, C5};
use crate::{retained_topic::RetainedTopic, service::BrokerService, BrokerHandle, BrokerHooks, Router};

/// A bound against a hanging test, not a timing assertion.
const WAIT: Duration = Duration::from_secs(20);

/// A broker "process": its runtime, and what holds the queue directory.
struct Process {
    runtime: tokio::runtime::Runtime,
    broker: BrokerHandle,
    topic: RetainedTopic,
    reader: std::thread::JoinHandle<()>,
}

impl Process {
    /// Starts a broker whose retained messages live on `queue`, as the broker service does.
    fn start(queue: Arc<dyn Queue>) -> Process {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("rt");
        let (broker, topic, reader) = runtime.block_on(async move {
            let router = Arc::new(Router::new(None));
            let names = TopicNames::default();
            let topic = RetainedTopic::open(queue, &names, "node-1", &router, Duration::from_millis(20))
                .await
                .expect("topic opens");
            topic.catch_up().await.expect("catch-up");
            let reader = topic.follow(Arc::new(AtomicBool::new(false))).expect("reader starts");
            let hooks = BrokerHooks { router: Some(router), ..Default::default() };
            (support::start_with(|_| {}, hooks).await, topic, reader)
        });
        Process { runtime, broker, topic, reader }
    }

    fn addr(&self) -> SocketAddr {
        self.broker.tcp_addr().expect("tcp listener")
    }

    /// Drops everything at once, as a SIGKILL would, and waits until the queue is let go.
    fn kill(self) {
        self.runtime.shutdown_background();
        drop(self.broker);
        drop(self.topic);
        // The reader ends once the router is gone.
        self.reader.join().expect("reader thread");
    }
}

fn properties() -> PublishProperties {
    PublishProperties {
        content_type: Some("text/plain".into()),
        user_properties: vec![("k".into(), "v".into())],
        ..Default::default()
    }
}

/// A new subscriber to `filter` gets exactly `expected` (topic, payload) retained messages,
/// checked against a sentinel published after them.
async fn retained_for_new_subscriber(addr: SocketAddr, filter: &str, expected: &[(&str, &str)]) {
    let (mut sub, _) = C5::connect(addr, "retained-reader", |_| {}).await;
    // The sentinel's subscription first: the retained messages come right after the filter's
    // SUBACK, and waiting for a later SUBACK would pass over them.
    sub.subscribe("sentinel", Q5::AtLeastOnce).await;
    sub.subscribe(filter, Q5::AtLeastOnce).await;
    let (mut publisher, _) = C5::connect(addr, "sentinel-writer", |_| {}).await;
    publisher.publish("sentinel", Q5::AtLeastOnce, false, b"end").await;
    let mut got = Vec::new();
    loop {
        let m = sub.message().await;
        if m.topic == "sentinel" {
            break;
        }
        assert!(m.retain, "a retained message arrives with the retain flag");
        let props = m.properties.clone().unwrap_or_default();
        assert_eq!(
            (props.content_type, props.user_properties),
            (properties().content_type, properties().user_properties)
        );
        got.push((String::from_utf8_lossy(&m.topic).into_owned(), String::from_utf8_lossy(&m.payload).into_owned()));
    }
    got.sort();
    let expected: Vec<(String, String)> = expected.iter().map(|(t, p)| ((*t).to_owned(), (*p).to_owned())).collect();
    assert_eq!(got, expected);
}

#[test]
fn retained_messages_survive_a_killed_broker_on_the_embedded_queue() {
    trib_test_support::logs::init();
    let dir = tempfile::tempdir().expect("tempdir");
    let clients = tokio::runtime::Runtime::new().expect("rt");

    let first = Process::start(support::open_queue(dir.path()));
    clients.block_on(within("retained messages set on the first broker", async {
        let (mut c, _) = C5::connect(first.addr(), "setter", |_| {}).await;
        c.publish_props("keep/a", Q5::AtLeastOnce, true, b"kept", properties()).await;
        c.publish_props("gone/b", Q5::AtLeastOnce, true, b"soon cleared", properties()).await;
        c.publish_props("keep/c", Q5::ExactlyOnce, true, b"old", properties()).await;
        c.publish_props("keep/c", Q5::AtMostOnce, true, b"new", properties()).await;
        c.publish("gone/b", Q5::AtLeastOnce, true, b"").await;
        // The QoS 0 message above was read before this acknowledgement.
        c.publish("sync", Q5::AtLeastOnce, false, b"").await;
    }));
    first.kill();

    let second = Process::start(support::open_queue(dir.path()));
    let expected = [("keep/a", "kept"), ("keep/c", "new")];
    clients.block_on(within("retained messages on the restarted broker", async {
        retained_for_new_subscriber(second.addr(), "#", &expected).await;
    }));
    second.kill();
}

/// A broker service on the shared queue and database, as one node of a cluster.
async fn node(id: &str, db: &str, queue: Arc<dyn Queue>) -> BrokerService {
    let env = service_env(db, &[("TB_SERVICE_ID", id), ("TB_SERVICE_INFO_INTERVAL_MS", "200")]);
    let lookup = move |name: &str| env.get(name).cloned();
    BrokerService::start(&lookup, queue).await.expect("service starts")
}

/// The first message a new subscriber to `filter` on `addr` gets: a retained one, or else the
/// sentinel published after its SUBACK.
async fn first_message(addr: SocketAddr, filter: &str) -> (String, Vec<u8>) {
    let (mut sub, _) = C5::connect(addr, "probe", |_| {}).await;
    // The sentinel's subscription first: the retained messages come right after the filter's
    // SUBACK, and waiting for a later SUBACK would pass over them.
    sub.subscribe("sentinel", Q5::AtLeastOnce).await;
    sub.subscribe(filter, Q5::AtLeastOnce).await;
    let (mut publisher, _) = C5::connect(addr, "probe-sentinel", |_| {}).await;
    publisher.publish("sentinel", Q5::AtLeastOnce, false, b"end").await;
    let m = sub.message().await;
    (String::from_utf8_lossy(&m.topic).into_owned(), m.payload.to_vec())
}

/// Waits until a new subscriber to `filter` on `addr` first gets `expected`, for at most `bound`.
async fn served(addr: SocketAddr, filter: &str, expected: (&str, &[u8]), bound: Duration) {
    let started = Instant::now();
    let expected = (expected.0.to_owned(), expected.1.to_vec());
    loop {
        let got = first_message(addr, filter).await;
        if got == expected {
            return;
        }
        assert!(started.elapsed() < bound, "{filter}: {expected:?} not served within {bound:?}, got {got:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retained_message_set_on_one_node_is_served_by_the_other() {
    trib_test_support::logs::init();
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}?mode=rwc", dir.path().join("cluster.db").display());
    let queue: Arc<dyn Queue> = Arc::new(EmbeddedQueue::new());
    let a = node("node-a", &db, queue.clone()).await;
    let b = node("node-b", &db, queue.clone()).await;
    let (a_addr, b_addr) = (a.mqtt_addr().expect("mqtt"), b.mqtt_addr().expect("mqtt"));

    let (mut on_a, _) = C5::connect(a_addr, "setter-a", |_| {}).await;
    within("retained on node a", on_a.publish("cross/x", Q5::AtLeastOnce, true, b"from-a")).await;
    within("served by node b", served(b_addr, "cross/x", ("cross/x", b"from-a"), WAIT)).await;

    // The last writer wins on both nodes: node b replaces it, then node a clears it.
    let (mut on_b, _) = C5::connect(b_addr, "setter-b", |_| {}).await;
    within("retained on node b", on_b.publish("cross/x", Q5::AtLeastOnce, true, b"from-b")).await;
    within("served by node a", served(a_addr, "cross/x", ("cross/x", b"from-b"), WAIT)).await;
    within("cleared on node a", on_a.publish("cross/x", Q5::AtLeastOnce, true, b"")).await;
    within("cleared on node b", served(b_addr, "cross/#", ("sentinel", b"end"), WAIT)).await;

    b.shutdown().await;
    a.shutdown().await;
}
