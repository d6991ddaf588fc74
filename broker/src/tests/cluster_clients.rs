//! Client traffic across two broker services on one embedded queue (`cluster`): a subscriber on
//! one node gets what is published on the other at every QoS, exactly once; a shared group with
//! members on both nodes splits the messages between them; a persistent session moves to the
//! other node with its subscriptions and the messages queued for it; a connection to the other
//! node takes the session over. (The same on Kafka with processes: the distributed e2e.)

use std::{collections::BTreeSet, net::SocketAddr, sync::Arc};

use rumqttc::v5::mqttbytes::{v5::Publish, QoS as Q5};
use tokio::sync::mpsc;
use trib_queue::queue::{embedded::EmbeddedQueue, Queue};

use super::support::{eventually, service_env, within, C5};
use crate::service::BrokerService;

struct Cluster {
    a: BrokerService,
    b: BrokerService,
    _dir: tempfile::TempDir,
}

impl Cluster {
    async fn start() -> Cluster {
        trib_test_support::logs::init();
        let dir = tempfile::tempdir().expect("tempdir");
        let db = format!("sqlite://{}?mode=rwc", dir.path().join("cluster.db").display());
        let queue: Arc<dyn Queue> = Arc::new(EmbeddedQueue::new());
        let a = node("node-a", &db, queue.clone()).await;
        let b = node("node-b", &db, queue).await;
        Cluster { a, b, _dir: dir }
    }

    fn addrs(&self) -> (SocketAddr, SocketAddr) {
        (self.a.mqtt_addr().expect("mqtt"), self.b.mqtt_addr().expect("mqtt"))
    }

    async fn stop(self) {
        self.b.shutdown().await;
        self.a.shutdown().await;
    }
}

async fn node(id: &str, db: &str, queue: Arc<dyn Queue>) -> BrokerService {
    let env = service_env(db, &[("TB_SERVICE_ID", id)]);
    let lookup = move |name: &str| env.get(name).cloned();
    BrokerService::start(&lookup, queue).await.expect("service starts")
}

/// Waits until `on` knows `client_id` as a client of `node` with `subscriptions` filters.
async fn known(on: &BrokerService, client_id: &str, node: &str, subscriptions: usize) {
    let what = format!("{client_id} known at {node} with {subscriptions} subscriptions");
    eventually(&what, || {
        on.router().remote_client(client_id).is_some_and(|(n, subs)| n == node && subs.len() == subscriptions)
    })
    .await;
}

/// Hands a client's incoming messages to a channel from a task of its own.
fn collect(mut client: C5) -> mpsc::UnboundedReceiver<Publish> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let m = client.message().await;
            if tx.send(m).is_err() {
                return;
            }
        }
    });
    rx
}

fn text(m: &Publish) -> (String, String) {
    (String::from_utf8_lossy(&m.topic).into_owned(), String::from_utf8_lossy(&m.payload).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_on_one_node_gets_what_is_published_on_the_other_at_every_qos() {
    let cluster = Cluster::start().await;
    let (a_addr, b_addr) = cluster.addrs();
    let (mut sub, _) = C5::connect(a_addr, "sub-a", |_| {}).await;
    sub.subscribe("x/+", Q5::ExactlyOnce).await;
    known(&cluster.b, "sub-a", "node-a", 1).await;

    let (mut publisher, _) = C5::connect(b_addr, "pub-b", |_| {}).await;
    let qos = [Q5::AtMostOnce, Q5::AtLeastOnce, Q5::ExactlyOnce];
    for (i, q) in qos.iter().enumerate() {
        publisher.publish(&format!("x/{i}"), *q, false, format!("m{i}").as_bytes()).await;
    }
    for (i, q) in qos.iter().enumerate() {
        let m = within("a message from node b", sub.message()).await;
        assert_eq!(text(&m), (format!("x/{i}"), format!("m{i}")));
        assert_eq!(m.qos, *q, "delivered at the QoS it was published with");
    }
    // Exactly once: the next message is a sentinel published after them (on node a itself).
    let (mut local, _) = C5::connect(a_addr, "pub-a", |_| {}).await;
    local.publish("x/end", Q5::AtLeastOnce, false, b"end").await;
    assert_eq!(text(&within("the sentinel", sub.message()).await), ("x/end".into(), "end".into()));
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_group_with_members_on_both_nodes_splits_the_messages() {
    let cluster = Cluster::start().await;
    let (a_addr, b_addr) = cluster.addrs();
    let mut members = Vec::new();
    for (addr, id, node) in [(a_addr, "member-a", &cluster.a), (b_addr, "member-b", &cluster.b)] {
        let (mut c, _) = C5::connect(addr, id, |_| {}).await;
        c.subscribe("$share/g/s/#", Q5::AtLeastOnce).await;
        c.subscribe("end", Q5::AtLeastOnce).await;
        let other = if std::ptr::eq(node, &cluster.a) { &cluster.b } else { &cluster.a };
        let node_id = if std::ptr::eq(node, &cluster.a) { "node-a" } else { "node-b" };
        known(other, id, node_id, 2).await;
        members.push(collect(c));
    }
    let (mut publisher, _) = C5::connect(b_addr, "pub-b", |_| {}).await;
    const N: usize = 20;
    for i in 0..N {
        publisher.publish(&format!("s/{i}"), Q5::AtLeastOnce, false, b"shared").await;
    }
    publisher.publish("end", Q5::AtLeastOnce, false, b"end").await;

    let mut all = Vec::new();
    let mut per_member = Vec::new();
    for rx in &mut members {
        let mut got = 0;
        loop {
            let m = within("a member's messages up to the sentinel", rx.recv()).await.expect("member running");
            let (topic, _) = text(&m);
            if topic == "end" {
                break;
            }
            all.push(topic);
            got += 1;
        }
        per_member.push(got);
    }
    let distinct: BTreeSet<&String> = all.iter().collect();
    assert_eq!((all.len(), distinct.len()), (N, N), "each message to exactly one member: {all:?}");
    assert!(per_member.iter().all(|n| *n > 0), "both nodes' members got messages: {per_member:?}");
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persistent_session_moves_to_the_other_node_with_what_was_queued() {
    let cluster = Cluster::start().await;
    let (a_addr, b_addr) = cluster.addrs();
    let persistent = |o: &mut rumqttc::v5::MqttOptions| {
        o.set_clean_start(false);
        o.set_session_expiry_interval(Some(300));
    };
    let (mut x, _) = C5::connect(a_addr, "mover", persistent).await;
    x.subscribe("q/#", Q5::AtLeastOnce).await;
    known(&cluster.b, "mover", "node-a", 1).await;
    drop(x);

    // Queued on node a while the client is away.
    let (mut publisher, _) = C5::connect(a_addr, "pub-a", |_| {}).await;
    for i in 1..=3 {
        publisher.publish(&format!("q/{i}"), Q5::AtLeastOnce, false, b"queued").await;
    }
    let (mut x, ack) = C5::connect(b_addr, "mover", persistent).await;
    assert!(ack.session_present, "node b resumed the session node a held");
    for i in 1..=3 {
        let m = within("a message queued on node a", x.message()).await;
        assert_eq!(text(&m), (format!("q/{i}"), "queued".into()));
    }
    // Node a dropped its copy and now sends the client's messages to node b.
    known(&cluster.a, "mover", "node-b", 1).await;
    publisher.publish("q/4", Q5::AtLeastOnce, false, b"after").await;
    assert_eq!(text(&within("a message published after the move", x.message()).await), ("q/4".into(), "after".into()));
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_to_the_other_node_takes_the_session_over() {
    let cluster = Cluster::start().await;
    let (a_addr, b_addr) = cluster.addrs();
    let (mut first, _) = C5::connect(a_addr, "twin", |_| {}).await;
    first.subscribe("t", Q5::AtLeastOnce).await;
    known(&cluster.b, "twin", "node-a", 1).await;
    let (_second, ack) = C5::connect(b_addr, "twin", |_| {}).await;
    assert!(!ack.session_present, "a clean start takes nothing over");
    let reason = within("node a's DISCONNECT", first.disconnect_reason()).await;
    assert_eq!(reason, rumqttc::v5::mqttbytes::v5::DisconnectReasonCode::SessionTakenOver);
    cluster.stop().await;
}
