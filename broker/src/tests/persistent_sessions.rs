//! Persistent sessions survive a killed broker on the embedded queue (`cluster`'s session log):
//! a session whose client is away keeps its subscriptions and the QoS 1 and 2 messages queued
//! for it across a SIGKILL and a restart on the same queue directory, and what was delivered after
//! the restart does not come again after the next one.
//!
//! The kill is emulated in-process as in `tests::retained`: the broker's runtime is dropped
//! without any shutdown, and the queue directory is opened again once its handles are gone.

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use rumqttc::v5::mqttbytes::QoS as Q5;
use trib_queue::{queue::Queue, topics::TopicNames};

use super::support::{self, within, C5};
use crate::{
    cluster::{AliveNodes, ClusterLink},
    BrokerHandle, BrokerHooks, Router,
};

/// A bound against a hanging test, not a timing assertion.
const WAIT: Duration = Duration::from_secs(20);
/// How often the nodes of these tests write their liveness records.
const ALIVE_INTERVAL: Duration = Duration::from_millis(100);

/// A broker "process" with its session log on the queue.
struct Process {
    runtime: tokio::runtime::Runtime,
    broker: BrokerHandle,
    router: Arc<Router>,
    stop: Arc<AtomicBool>,
    readers: Vec<JoinHandle<()>>,
}

impl Process {
    fn start(queue: Arc<dyn Queue>) -> Process {
        Process::start_node(queue, "node-1")
    }

    fn start_node(queue: Arc<dyn Queue>, id: &str) -> Process {
        Process::start_watching(queue, id, None)
    }

    /// A node that learns which nodes are alive from `alive`.
    fn start_watching(queue: Arc<dyn Queue>, id: &str, alive: Option<AliveNodes>) -> Process {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("rt");
        let stop = Arc::new(AtomicBool::new(false));
        let router = Arc::new(Router::new(None));
        let (broker, readers) = runtime.block_on({
            let (stop, router) = (stop.clone(), router.clone());
            async move {
                let link = ClusterLink::open(queue, &TopicNames::default(), id, &router, Duration::from_millis(20))
                    .await
                    .expect("cluster topics open");
                link.set_alive_interval(ALIVE_INTERVAL);
                link.catch_up().await.expect("catch-up");
                if let Some(alive) = alive {
                    link.set_alive_nodes(alive);
                }
                let hooks = BrokerHooks { router: Some(router), ..Default::default() };
                let broker = support::start_with(|_| {}, hooks).await;
                let readers = link.follow_broker(&broker, stop).expect("readers start");
                (broker, readers)
            }
        });
        Process { runtime, broker, router, stop, readers }
    }

    fn addr(&self) -> SocketAddr {
        self.broker.tcp_addr().expect("tcp listener")
    }

    /// Drops everything at once, as a SIGKILL would, and waits until the queue is let go. The
    /// runtime stops (its tasks are dropped where they stand, none runs again) before the
    /// broker's handle goes, so no connection sees a shutdown and closes cleanly.
    fn kill(self) {
        self.runtime.shutdown_timeout(Duration::from_secs(5));
        drop(self.broker);
        self.stop.store(true, Ordering::Relaxed);
        for reader in self.readers {
            reader.join().expect("reader thread");
        }
    }
}

fn persistent(o: &mut rumqttc::v5::MqttOptions) {
    o.set_clean_start(false);
    o.set_session_expiry_interval(Some(300));
}

fn text(m: &rumqttc::v5::mqttbytes::v5::Publish) -> (String, String) {
    (String::from_utf8_lossy(&m.topic).into_owned(), String::from_utf8_lossy(&m.payload).into_owned())
}

#[test]
fn a_persistent_session_and_its_queued_messages_survive_a_killed_broker() {
    trib_test_support::logs::init();
    let dir = tempfile::tempdir().expect("tempdir");
    let clients = tokio::runtime::Runtime::new().expect("rt");

    let first = Process::start(support::open_queue(dir.path()));
    let addr = first.addr();
    clients.block_on(within("a session left with queued messages", async {
        let (mut keeper, _) = C5::connect(addr, "keeper", persistent).await;
        keeper.subscribe("p/#", Q5::AtLeastOnce).await;
        keeper.subscribe("q2/#", Q5::ExactlyOnce).await;
        drop(keeper);
        support::eventually("the keeper's connection gone", || first.broker.connection_count() == 0).await;
        let (mut publisher, _) = C5::connect(addr, "publisher", |_| {}).await;
        publisher.publish("p/0", Q5::AtMostOnce, false, b"qos 0: not kept for an absent client").await;
        publisher.publish("p/1", Q5::AtLeastOnce, false, b"one").await;
        publisher.publish("q2/2", Q5::ExactlyOnce, false, b"two").await;
        publisher.publish("p/3", Q5::AtLeastOnce, false, b"three").await;
    }));
    first.kill();

    let second = Process::start(support::open_queue(dir.path()));
    let addr = second.addr();
    clients.block_on(within("the session after the restart", async {
        let (mut keeper, ack) = C5::connect(addr, "keeper", persistent).await;
        assert!(ack.session_present, "the session survived the kill");
        let expected =
            [("p/1", "one", Q5::AtLeastOnce), ("q2/2", "two", Q5::ExactlyOnce), ("p/3", "three", Q5::AtLeastOnce)];
        for (topic, payload, qos) in expected {
            let m = keeper.message().await;
            assert_eq!(text(&m), (topic.to_owned(), payload.to_owned()));
            assert_eq!(m.qos, qos);
        }
        // The subscriptions survived too.
        let (mut publisher, _) = C5::connect(addr, "publisher", |_| {}).await;
        publisher.publish("p/4", Q5::AtLeastOnce, false, b"after the restart").await;
        assert_eq!(text(&keeper.message().await), ("p/4".to_owned(), "after the restart".to_owned()));
        // Everything was acknowledged (the client acknowledges each message as it comes); a
        // published sentinel makes sure the last acknowledgement was read.
        publisher.publish("p/sync", Q5::AtLeastOnce, false, b"sync").await;
        assert_eq!(text(&keeper.message().await).0, "p/sync");
        support::eventually("the kept messages cleared", || second.broker.queued_bytes() == 0).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }));
    second.kill();

    // Delivered once: after another kill, the session is there with nothing old in it.
    let third = Process::start(support::open_queue(dir.path()));
    let addr = third.addr();
    clients.block_on(within("the session after the second restart", async {
        let (mut keeper, ack) = C5::connect(addr, "keeper", persistent).await;
        assert!(ack.session_present);
        let (mut publisher, _) = C5::connect(addr, "publisher", |_| {}).await;
        publisher.publish("p/sentinel", Q5::AtLeastOnce, false, b"first").await;
        assert_eq!(text(&keeper.message().await), ("p/sentinel".to_owned(), "first".to_owned()));
    }));
    third.kill();
}

/// A restarted node counts a restored session's expiry from its client's disconnection, not
/// from the restart: a session whose interval ran out while the node was down is gone, one with
/// time left is there.
#[test]
fn a_session_that_expired_while_the_broker_was_down_is_not_restored() {
    expiry_across_a_kill(true);
}

/// A session whose client was still connected when its node was killed counts its expiry from
/// the node's death (one liveness interval after its last liveness record), not from the
/// restart. Without the liveness record the 2 s session was restored with 2 s to live.
#[test]
fn a_session_whose_client_was_connected_when_the_broker_died_expires_from_then() {
    expiry_across_a_kill(false);
}

/// Two persistent sessions, with expiry intervals of 2 s and 300 s, whose clients disconnect
/// before the node is killed (`disconnect_first`) or are still connected then; restarted 2.5 s
/// later, the node has the 300 s one and not the 2 s one.
fn expiry_across_a_kill(disconnect_first: bool) {
    trib_test_support::logs::init();
    let dir = tempfile::tempdir().expect("tempdir");
    let clients = tokio::runtime::Runtime::new().expect("rt");
    let short = |o: &mut rumqttc::v5::MqttOptions| {
        o.set_clean_start(false);
        o.set_session_expiry_interval(Some(2));
    };

    let first = Process::start(support::open_queue(dir.path()));
    let addr = first.addr();
    let connected = clients.block_on(within("two sessions", async {
        let (mut brief, _) = C5::connect(addr, "brief", short).await;
        brief.subscribe("b/#", Q5::AtLeastOnce).await;
        let (mut lasting, _) = C5::connect(addr, "lasting", persistent).await;
        lasting.subscribe("l/#", Q5::AtLeastOnce).await;
        if disconnect_first {
            drop((brief, lasting));
            support::eventually("both connections gone", || first.broker.connection_count() == 0).await;
            return None;
        }
        // A liveness record after the connections, as a running node writes them.
        tokio::time::sleep(ALIVE_INTERVAL * 3).await;
        Some((brief, lasting))
    }));
    first.kill();
    drop(connected);
    // Longer than the brief session's 2 s: it expires while no broker runs.
    std::thread::sleep(Duration::from_millis(2_500));

    let second = Process::start(support::open_queue(dir.path()));
    let addr = second.addr();
    clients.block_on(within("the sessions after the restart", async {
        let (_lasting, ack) = C5::connect(addr, "lasting", persistent).await;
        assert!(ack.session_present, "300 s have not passed (disconnected first: {disconnect_first})");
        let (_brief, ack) = C5::connect(addr, "brief", short).await;
        assert!(!ack.session_present, "2 s passed while the broker was down (disconnected first: {disconnect_first})");
    }));
    second.kill();
}

/// Connects "keeper" (persistent, acknowledging nothing) subscribed to `p/#`, and publishes
/// `p/1`..`p/3` with `payload` at QoS 1 (acknowledged to the publisher: the broker answers for
/// them from here); returns the keeper once it received all three.
async fn three_unacknowledged(addr: SocketAddr, payload: &[u8]) -> C5 {
    let (mut keeper, _) = C5::connect(addr, "keeper", |o| {
        persistent(o);
        o.set_manual_acks(true);
    })
    .await;
    keeper.subscribe("p/#", Q5::AtLeastOnce).await;
    let (mut publisher, _) = C5::connect(addr, "publisher", |_| {}).await;
    for i in 1..=3 {
        publisher.publish(&format!("p/{i}"), Q5::AtLeastOnce, false, payload).await;
    }
    for i in 1..=3 {
        assert_eq!(text(&keeper.message().await).0, format!("p/{i}"), "sent, never acknowledged");
    }
    keeper
}

#[test]
fn messages_in_flight_to_a_connected_persistent_session_survive_a_killed_broker_and_are_then_let_go() {
    trib_test_support::logs::init();
    let dir = tempfile::tempdir().expect("tempdir");
    let clients = tokio::runtime::Runtime::new().expect("rt");

    let first = Process::start(support::open_queue(dir.path()));
    let addr = first.addr();
    clients.block_on(within("messages sent to a connected client that does not acknowledge", async {
        // The client is still connected when the broker dies.
        std::mem::forget(three_unacknowledged(addr, b"in flight").await);
    }));
    first.kill();

    let queue = support::open_queue(dir.path());
    let second = Process::start(queue.clone());
    let addr = second.addr();
    clients.block_on(within("the messages after the restart", async {
        let (mut keeper, ack) = C5::connect(addr, "keeper", persistent).await;
        assert!(ack.session_present, "the session survived the kill");
        for i in 1..=3 {
            assert_eq!(text(&keeper.message().await), (format!("p/{i}"), "in flight".to_owned()));
        }
        let (mut publisher, _) = C5::connect(addr, "publisher", |_| {}).await;
        publisher.publish("p/sync", Q5::AtLeastOnce, false, b"sync").await;
        assert_eq!(text(&keeper.message().await).0, "p/sync");
        support::eventually("the kept messages cleared", || second.broker.queued_bytes() == 0).await;
    }));
    // Once everything kept was delivered, nothing on the persisted messages topic is needed:
    // its reader commits up to the end (the queue deletes what lies before).
    let names = TopicNames::default();
    let tp = trib_queue::queue::TopicPartition::new(names.persisted_msg("node-1"), 0);
    let mut probe = queue.assign(&names.persisted_msg_group("node-1"), "probe", &tp).expect("probe");
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, end) = probe.watermarks(&tp).expect("watermarks");
        let committed = probe.committed(&tp).expect("committed");
        if end > 0 && committed == Some(end) {
            break;
        }
        assert!(Instant::now() < deadline, "committed {committed:?}, end {end}");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(probe);
    drop(queue);
    second.kill();
}

/// Two nodes on one queue directory, and a runtime for clients.
struct TwoNodes {
    _dir: tempfile::TempDir,
    clients: tokio::runtime::Runtime,
    queue: Arc<dyn Queue>,
    one: Process,
    two: Process,
}

fn two_nodes() -> TwoNodes {
    trib_test_support::logs::init();
    let dir = tempfile::tempdir().expect("tempdir");
    let clients = tokio::runtime::Runtime::new().expect("rt");
    // One queue for both nodes, as Kafka outlives a broker process.
    let queue = support::open_queue(dir.path());
    let one = Process::start_node(queue.clone(), "node-1");
    let two = Process::start_node(queue.clone(), "node-2");
    TwoNodes { _dir: dir, clients, queue, one, two }
}

#[test]
fn what_a_killed_node_kept_for_a_session_goes_to_the_node_its_client_resumed_on_when_it_restarts() {
    let TwoNodes { _dir, clients, queue, one, two } = two_nodes();
    let (one_addr, two_addr) = (one.addr(), two.addr());
    clients.block_on(within("messages in flight on node 1", async {
        let keeper = three_unacknowledged(one_addr, b"kept on node 1").await;
        support::eventually("node 2 knows the keeper", || {
            two.router.remote_client("keeper").is_some_and(|(node, subs)| node == "node-1" && subs.len() == 1)
        })
        .await;
        std::mem::forget(keeper);
    }));
    one.kill();

    let mut keeper = clients.block_on(within("the client resumed on node 2", async {
        let (mut keeper, ack) = C5::connect(two_addr, "keeper", persistent).await;
        assert!(ack.session_present, "node 2 resumed the session from node 1's record");
        let (mut publisher, _) = C5::connect(two_addr, "publisher-2", |_| {}).await;
        publisher.publish("p/4", Q5::AtLeastOnce, false, b"on node 2").await;
        assert_eq!(text(&keeper.message().await), ("p/4".to_owned(), "on node 2".to_owned()));
        keeper
    }));

    // Node 1 comes back: what it kept for the session goes to node 2, where the client is.
    let one = Process::start_node(queue.clone(), "node-1");
    clients.block_on(within("node 1's kept messages on node 2", async {
        for i in 1..=3 {
            assert_eq!(text(&keeper.message().await), (format!("p/{i}"), "kept on node 1".to_owned()));
        }
    }));
    drop(keeper);
    one.kill();
    two.kill();
}

/// Which nodes a test says are alive.
fn liveness(nodes: &[&str]) -> (Arc<parking_lot::Mutex<Vec<String>>>, AliveNodes) {
    let alive = Arc::new(parking_lot::Mutex::new(nodes.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>()));
    let reader = alive.clone();
    (alive, Arc::new(move || Some(reader.lock().iter().cloned().collect())))
}

/// Two nodes on one queue, node 2 told which are alive by `alive` (both at first); node 1
/// killed while its client "keeper" had three messages it never acknowledged.
struct KilledWithAKeeper {
    _dir: tempfile::TempDir,
    clients: tokio::runtime::Runtime,
    queue: Arc<dyn Queue>,
    alive: Arc<parking_lot::Mutex<Vec<String>>>,
    two: Process,
}

fn killed_with_a_keeper() -> KilledWithAKeeper {
    trib_test_support::logs::init();
    let dir = tempfile::tempdir().expect("tempdir");
    let clients = tokio::runtime::Runtime::new().expect("rt");
    let queue = support::open_queue(dir.path());
    let one = Process::start_node(queue.clone(), "node-1");
    let (alive, reader) = liveness(&["node-1", "node-2"]);
    let two = Process::start_watching(queue.clone(), "node-2", Some(reader));
    let one_addr = one.addr();
    clients.block_on(within("messages in flight on node 1", async {
        let keeper = three_unacknowledged(one_addr, b"kept on node 1").await;
        support::eventually("node 2 knows the keeper", || two.router.remote_client("keeper").is_some()).await;
        std::mem::forget(keeper);
    }));
    one.kill();
    KilledWithAKeeper { _dir: dir, clients, queue, alive, two }
}

#[test]
fn a_client_resuming_the_session_of_a_node_that_is_down_gets_what_it_kept_and_was_sent_and_only_once() {
    let KilledWithAKeeper { _dir, clients, queue, alive, two } = killed_with_a_keeper();
    let two_addr = two.addr();
    alive.lock().retain(|n| n != "node-1");

    let mut keeper = clients.block_on(within("node 1's kept messages on node 2", async {
        // Published on node 2 while the keeper is still node 1's: it goes to node 1's downlink.
        let (mut publisher, _) = C5::connect(two_addr, "publisher-2", |_| {}).await;
        publisher.publish("p/5", Q5::AtLeastOnce, false, b"sent to node 1").await;
        let (mut keeper, ack) = C5::connect(two_addr, "keeper", persistent).await;
        assert!(ack.session_present, "node 2 resumed the session from node 1's record");
        for i in 1..=3 {
            assert_eq!(text(&keeper.message().await), (format!("p/{i}"), "kept on node 1".to_owned()));
        }
        assert_eq!(text(&keeper.message().await), ("p/5".to_owned(), "sent to node 1".to_owned()));
        keeper
    }));

    // Node 1 starts again: it sends nothing more (node 2 marked the messages as moved).
    let one = Process::start_node(queue.clone(), "node-1");
    clients.block_on(within("only the sentinel after node 1's restart", async {
        let (mut publisher, _) = C5::connect(two_addr, "publisher-2", |_| {}).await;
        publisher.publish("p/sentinel", Q5::AtLeastOnce, false, b"next").await;
        assert_eq!(text(&keeper.message().await).0, "p/sentinel", "nothing came twice");
    }));
    drop(keeper);
    one.kill();
    two.kill();
}

#[test]
fn when_a_node_goes_down_the_node_holding_a_session_it_had_gets_what_it_kept() {
    let KilledWithAKeeper { _dir, clients, alive, two, .. } = killed_with_a_keeper();
    let two_addr = two.addr();
    // Node 1 still counts as alive when the client resumes on node 2: a hand-over is awaited.
    clients.block_on(within("node 1 declared down later", async {
        let (mut keeper, ack) = C5::connect(two_addr, "keeper", persistent).await;
        assert!(ack.session_present);
        let (mut publisher, _) = C5::connect(two_addr, "publisher-2", |_| {}).await;
        publisher.publish("p/4", Q5::AtLeastOnce, false, b"on node 2").await;
        assert_eq!(text(&keeper.message().await).0, "p/4");
        alive.lock().retain(|n| n != "node-1");
        for i in 1..=3 {
            assert_eq!(text(&keeper.message().await), (format!("p/{i}"), "kept on node 1".to_owned()));
        }
    }));
    two.kill();
}

/// A raw MQTT 5 client resuming (or starting) the persistent session of `client_id`; returns
/// it and whether the CONNACK says a session was present.
async fn raw_persistent(addr: SocketAddr, client_id: &str) -> (super::raw::Raw, bool) {
    use crate::protocol::packets;
    let mut props = super::raw::connect_props();
    props.session_expiry_interval = Some(300);
    let connect = packets::Connect {
        keep_alive: 60,
        client_id: client_id.to_owned(),
        clean_start: false,
        properties: Some(props),
    };
    let mut raw = super::raw::Raw::connect(addr).await;
    raw.send(&super::raw::encode_v5(&packets::Packet::Connect(connect, None, None))).await;
    let connack = raw.read().await.expect("connack");
    assert_eq!((connack.kind(), connack.body[1]), (2, 0), "a successful CONNACK: {connack:?}");
    (raw, connack.body[0] & 1 == 1)
}

/// A QoS 2 PUBLISH of `payload` on `q2/once` with packet id 7.
fn qos2_publish(payload: &[u8], dup: bool) -> Vec<u8> {
    use crate::protocol::packets;
    let mut p = packets::Publish::new("q2/once", Q5::ExactlyOnce, payload.to_vec(), None);
    p.pkid = 7;
    p.dup = dup;
    super::raw::encode_v5(&packets::Packet::Publish(p))
}

/// Sends packet id 7's QoS 2 PUBLISH (as a re-send) and its PUBREL on a resumed session and
/// returns the PUBREC's and the PUBCOMP's reason codes (0 when the packet omits it).
async fn finish_qos2(raw: &mut super::raw::Raw) -> (u8, u8) {
    use crate::protocol::packets;
    raw.send(&qos2_publish(b"exactly once", true)).await;
    let rec = raw.read().await.expect("pubrec");
    assert_eq!((rec.kind(), &rec.body[..2]), (5, &[0, 7][..]), "PUBREC for packet id 7");
    raw.send(&super::raw::encode_v5(&packets::Packet::PubRel(packets::PubRel::new(7, None)))).await;
    let comp = raw.read().await.expect("pubcomp");
    assert_eq!((comp.kind(), &comp.body[..2]), (7, &[0, 7][..]), "PUBCOMP for packet id 7");
    (rec.body.get(2).copied().unwrap_or(0), comp.body.get(2).copied().unwrap_or(0))
}

/// QoS 2 receive state outlives the connection, the node and the move to another node, as
/// TBMQ's does (it keeps it when the client disconnects): a client whose QoS 2 PUBLISH got its
/// PUBREC, and which left before sending PUBREL, resumes its session on the restarted node, and
/// another such client on the other node. The PUBLISH sent again (DUP, as MQTT 4.4 has the
/// client do) is acknowledged and not delivered a second time, and the PUBREL gets PUBCOMP
/// success. Without the kept state the re-sent PUBLISH was taken for a new message and reached
/// the subscriber a second time.
#[test]
fn qos2_packet_ids_awaiting_pubrel_survive_a_restart_and_a_move_to_another_node() {
    let TwoNodes { _dir, clients, queue, one, two } = two_nodes();
    let (one_addr, two_addr) = (one.addr(), two.addr());
    clients.block_on(within("two QoS 2 exchanges left halfway", async {
        let (mut watcher, _) = C5::connect(one_addr, "watcher", persistent).await;
        watcher.subscribe("q2/#", Q5::AtLeastOnce).await;
        drop(watcher);
        for client_id in ["stays", "moves"] {
            let (mut raw, _) = raw_persistent(one_addr, client_id).await;
            raw.send(&qos2_publish(client_id.as_bytes(), false)).await;
            let rec = raw.read().await.expect("pubrec");
            assert_eq!((rec.kind(), &rec.body[..2]), (5, &[0, 7][..]), "PUBREC for packet id 7");
            // Gone without PUBREL: the broker sees the connection close.
            drop(raw);
        }
        support::eventually("the connections gone", || one.broker.connection_count() == 0).await;
        support::eventually("node 2 knows the client that moves", || two.router.remote_client("moves").is_some()).await;
    }));

    // "moves" resumes on node 2 while node 1 runs.
    clients.block_on(within("the session resumed on node 2", async {
        let (mut raw, present) = raw_persistent(two_addr, "moves").await;
        assert!(present, "node 2 resumed the session from node 1's record");
        assert_eq!(finish_qos2(&mut raw).await, (0, 0), "PUBREC and PUBCOMP success on node 2");
    }));
    one.kill();
    // "stays" resumes on node 1 after its restart.
    let one = Process::start_node(queue.clone(), "node-1");
    clients.block_on(within("the session resumed on the restarted node", async {
        let (mut raw, present) = raw_persistent(one.addr(), "stays").await;
        assert!(present, "the restarted node restored the session");
        assert_eq!(finish_qos2(&mut raw).await, (0, 0), "PUBREC and PUBCOMP success after the restart");
        let (mut watcher, present) = C5::connect(one.addr(), "watcher", persistent).await;
        assert!(present.session_present);
        let mut got = vec![text(&watcher.message().await).1, text(&watcher.message().await).1];
        got.sort();
        assert_eq!(got, ["moves", "stays"], "each message once");
        // A second copy of either would have been queued before the first ones were sent.
        let extra = tokio::time::timeout(Duration::from_millis(500), watcher.message()).await;
        assert!(extra.is_err(), "a message was delivered twice: {:?}", extra.map(|m| text(&m)));
    }));
    one.kill();
    two.kill();
}
