//! Tests of the Kafka backend: the conformance checks of `queue/tests.rs` on rdkafka's mock
//! cluster (always) and on a real broker named by `TRIB_TEST_KAFKA_BOOTSTRAP` (CI: Tansu), plus
//! Kafka-specific checks. Every test uses fresh topic and group names, so runs never collide.
//!
//! librdkafka's mock broker implements no admin API (CreateTopics, DeleteTopics, DeleteGroups):
//! [`MockQueue`] creates topics through the mock cluster's own API instead, and the admin checks
//! run on the real broker only.

use std::{
    sync::{mpsc, Arc},
    time::{Duration, Instant},
};

use parking_lot::Mutex;
use rdkafka::{
    config::ClientConfig,
    producer::{BaseProducer, Producer as _},
};

use super::{KafkaConfig, KafkaQueue};
use crate::queue::{
    tests as conformance, wait_delivery, Consumer, ConsumerEvent, Partitioning, Producer, Queue, QueueError,
    QueueResult, Record, TopicPartition, TopicSpec,
};

/// The env var naming a real broker for the second test tier.
const REAL_BOOTSTRAP_ENV: &str = "TRIB_TEST_KAFKA_BOOTSTRAP";

/// A safety bound against a hanging test, not a timing assertion.
const WAIT: Duration = Duration::from_secs(20);

/// The mock coordinator's wait for more members before the first assignment of a group (a real
/// broker's `group.initial.rebalance.delay.ms`; the mock's default is 3 s).
const FIRST_JOIN_DELAY_MS: i32 = 300;

/// TBMQ's defaults, with faster group liveness and metadata refresh so that tests are quick.
fn test_config(bootstrap: &str) -> KafkaConfig {
    let mut config = KafkaConfig::new(bootstrap);
    config.client_id = "trib-test".into();
    config.extra_consumer_properties = super::config::pairs(&[
        ("heartbeat.interval.ms", "500"),
        ("session.timeout.ms", "6000"),
        ("topic.metadata.refresh.interval.ms", "1000"),
    ]);
    config.admin_timeout = Duration::from_secs(10);
    // TRIB_TEST_KAFKA_DEBUG=cgrp (any librdkafka `debug` value) with RUST_LOG=debug logs the
    // group protocol to the test output.
    trib_test_support::logs::init();
    if let Some(debug) = std::env::var("TRIB_TEST_KAFKA_DEBUG").ok().filter(|d| !d.is_empty()) {
        config.extra_consumer_properties.push(("debug".into(), debug));
    }
    config
}

fn unique(label: &str) -> String {
    trib_test_support::unique(&format!("trib-{label}"))
}

/// The real broker's queue, or `None` on a bare machine (the test then checks nothing).
fn real() -> Option<KafkaQueue> {
    let servers = std::env::var(REAL_BOOTSTRAP_ENV).ok().filter(|s| !s.trim().is_empty())?;
    Some(KafkaQueue::new(test_config(servers.trim())).expect("kafka queue"))
}

/// A [`KafkaQueue`] on a fresh mock cluster. The mock cluster is not `Send`, so it lives on its
/// own thread, which creates topics on request and drops the cluster once this queue is gone.
struct MockQueue {
    kafka: KafkaQueue,
    bootstrap: String,
    create: Mutex<mpsc::Sender<(TopicSpec, mpsc::Sender<QueueResult<()>>)>>,
}

impl MockQueue {
    fn new() -> Self {
        // The mock coordinator waits `session.timeout.ms` - 1 s for members to rejoin before it
        // completes a rebalance (a real one completes once all have rejoined); 4 s keeps the
        // cooperative two-round rebalances short. A member waiting in its first JoinGroup sends no
        // heartbeat: the first-join delay (FIRST_JOIN_DELAY_MS) must stay well below 4 s, or a
        // stalled mock thread expires the member it is about to assign to (with the mock's default
        // 3 s delay only 1 s was left, and a loaded CI machine saw "no assignment arrived").
        // Real brokers refuse less than 6 s by default.
        Self::with(|c| c.extra_consumer_properties.extend(super::config::pairs(&[("session.timeout.ms", "4000")])))
    }

    /// A mock cluster whose queue uses the test config changed by `adjust`.
    fn with(adjust: impl FnOnce(&mut KafkaConfig)) -> Self {
        let (create, requests) = mpsc::channel::<(TopicSpec, mpsc::Sender<QueueResult<()>>)>();
        let (bootstrap_tx, bootstrap_rx) = mpsc::channel();
        std::thread::spawn(move || {
            // A client whose own mock cluster this is (`test.mock.num.brokers`): its handle gives
            // the raw cluster, whose first-join delay rdkafka's `MockCluster` does not expose.
            let owner: BaseProducer =
                ClientConfig::new().set("test.mock.num.brokers", "3").create().expect("mock cluster");
            // SAFETY: the pointer is the cluster `owner` holds, alive for this whole closure.
            unsafe {
                let raw = rdkafka::bindings::rd_kafka_handle_mock_cluster(owner.client().native_ptr());
                assert!(!raw.is_null(), "the client has a mock cluster");
                rdkafka::bindings::rd_kafka_mock_group_initial_rebalance_delay_ms(raw, FIRST_JOIN_DELAY_MS);
            }
            let cluster = owner.client().mock_cluster().expect("mock cluster");
            bootstrap_tx.send(cluster.bootstrap_servers()).expect("test waits for the mock");
            for (spec, reply) in requests {
                let result = match cluster.create_topic(&spec.name, spec.partitions, 1) {
                    Ok(()) => Ok(()),
                    Err(e) if e.to_string().contains("already exists") => Ok(()),
                    Err(e) => Err(QueueError::Backend(e.to_string())),
                };
                let _ = reply.send(result);
            }
        });
        let bootstrap = bootstrap_rx.recv().expect("mock cluster started");
        let mut config = test_config(&bootstrap);
        adjust(&mut config);
        MockQueue { kafka: KafkaQueue::new(config).expect("kafka queue"), bootstrap, create: Mutex::new(create) }
    }
}

impl Queue for MockQueue {
    fn producer(&self) -> Arc<dyn Producer> {
        self.kafka.producer()
    }

    fn create_topic(&self, spec: &TopicSpec) -> QueueResult<()> {
        let (reply, result) = mpsc::channel();
        self.create.lock().send((spec.clone(), reply)).expect("mock thread runs");
        result.recv().expect("mock thread replies")
    }

    fn delete_topic(&self, name: &str) -> QueueResult<()> {
        self.kafka.delete_topic(name)
    }

    fn topic_exists(&self, name: &str) -> QueueResult<bool> {
        self.kafka.topic_exists(name)
    }

    fn delete_group(&self, group: &str) -> QueueResult<()> {
        self.kafka.delete_group(group)
    }

    fn subscribe(&self, group: &str, client_id: &str, topics: &[String]) -> QueueResult<Box<dyn Consumer>> {
        self.kafka.subscribe(group, client_id, topics)
    }

    fn assign(&self, group: &str, client_id: &str, tp: &TopicPartition) -> QueueResult<Box<dyn Consumer>> {
        self.kafka.assign(group, client_id, tp)
    }
}

/// Runs a check on the mock cluster and, when configured, on the real broker.
fn on_both(check: fn(&dyn Queue, &str)) {
    check(&MockQueue::new(), &unique("mock"));
    if let Some(q) = real() {
        check(&q, &unique("real"));
    }
}

#[test]
fn keyed_records_keep_order() {
    on_both(conformance::keyed_records_keep_order);
}

#[test]
fn compacted_topic_keeps_latest_per_key() {
    on_both(conformance::compacted_topic_keeps_latest_per_key);
}

#[test]
fn committed_offsets_are_resumed() {
    on_both(conformance::committed_offsets_are_resumed);
}

#[test]
fn group_members_split_and_take_over() {
    on_both(conformance::group_members_split_and_take_over);
}

#[test]
fn deleted_topics_are_gone() {
    // Not on the mock: it implements neither CreateTopics, DeleteTopics nor DeleteGroups.
    if let Some(q) = real() {
        conformance::deleted_topics_are_gone(&q, &unique("real"));
    }
}

#[test]
fn seek_rereads_and_unassigned_partitions_are_refused() {
    on_both(seek_rereads_and_unassigned_partitions_are_refused_on);
}

#[test]
fn same_key_same_partition() {
    on_both(same_key_same_partition_on);
}

#[test]
fn missing_topics_and_partitions_are_errors() {
    on_both(missing_topics_and_partitions_are_errors_on);
}

#[test]
fn topic_exists_reads_metadata() {
    let q = MockQueue::new();
    let topic = unique("exists");
    assert!(!q.topic_exists(&topic).unwrap());
    q.create_topic(&spec(&topic, 2)).unwrap();
    assert!(q.topic_exists(&topic).unwrap());
    // Looking a topic up does not create it (allow.auto.create.topics=false).
    assert!(!q.topic_exists(&format!("{topic}.other")).unwrap());
    assert!(!q.topic_exists(&format!("{topic}.other")).unwrap());
}

#[test]
fn admin_calls_time_out_on_the_mock() {
    // FIXME: the mock broker has no CreateTopics/DeleteTopics, so these calls time out instead of
    // failing at once; the admin timeout bounds them. On a real broker they succeed (see
    // `deleted_topics_are_gone`). `delete_group` is not called here: librdkafka 2.12 aborts the
    // process (double free of a reply queue) when a broker lacks DeleteGroups, as the mock does.
    let q = MockQueue::with(|c| c.admin_timeout = Duration::from_secs(1));
    let topic = unique("admin");
    assert!(matches!(q.kafka.create_topic(&spec(&topic, 1)), Err(QueueError::Backend(_))));
    assert!(matches!(q.kafka.delete_topic(&topic), Err(QueueError::Backend(_))));
}

fn seek_rereads_and_unassigned_partitions_are_refused_on(q: &dyn Queue, prefix: &str) {
    let topic = format!("{prefix}.seek");
    let tp = TopicPartition::new(&topic, 0);
    q.create_topic(&spec(&topic, 2)).unwrap();
    for i in 0..5 {
        send(q, &topic, Partitioning::Fixed(0), &format!("m{i}")).unwrap();
    }
    let mut c = q.assign(&format!("{prefix}.g"), "c1", &tp).unwrap();
    let first = poll_records(c.as_mut(), 5);
    c.seek(&tp, first[2].offset).unwrap();
    let again = poll_records(c.as_mut(), 3);
    assert_eq!(values(&again), vec!["m2", "m3", "m4"]);
    let other = TopicPartition::new(&topic, 1);
    assert_eq!(c.seek(&other, 0), Err(QueueError::NotAssigned(topic.clone(), 1)));
    assert_eq!(c.commit(&other, 0), Err(QueueError::NotAssigned(topic.clone(), 1)));
    assert_eq!(c.watermarks(&tp).unwrap(), (first[0].offset, first[4].offset + 1));
}

fn same_key_same_partition_on(q: &dyn Queue, prefix: &str) {
    let topic = format!("{prefix}.bykey");
    q.create_topic(&spec(&topic, 4)).unwrap();
    let p = q.producer();
    let sends = |key: &str| wait_delivery(p.send(&topic, Partitioning::ByKey, Some(key.as_bytes()), b"v")).unwrap();
    let (first, _) = sends("device-1");
    for _ in 0..5 {
        assert_eq!(sends("device-1").0, first);
    }
    // Without a key, ByKey means partition 0, as on the embedded backend.
    assert_eq!(wait_delivery(p.send(&topic, Partitioning::ByKey, None, b"v")).unwrap().0, 0);
}

fn missing_topics_and_partitions_are_errors_on(q: &dyn Queue, prefix: &str) {
    let topic = format!("{prefix}.missing");
    q.create_topic(&spec(&topic, 1)).unwrap();
    send(q, &topic, Partitioning::Fixed(0), "ok").unwrap();
    assert_eq!(send(q, &topic, Partitioning::Fixed(7), "x"), Err(QueueError::UnknownPartition(topic.clone(), 7)));
}

fn spec(name: &str, partitions: i32) -> TopicSpec {
    TopicSpec::from_properties(name, &format!("partitions:{partitions}")).unwrap()
}

fn send(q: &dyn Queue, topic: &str, partitioning: Partitioning, value: &str) -> QueueResult<(i32, i64)> {
    wait_delivery(q.producer().send(topic, partitioning, Some(b"k"), value.as_bytes()))
}

fn poll_records(c: &mut dyn Consumer, n: usize) -> Vec<Record> {
    let deadline = Instant::now() + WAIT;
    let mut records = Vec::new();
    while records.len() < n {
        assert!(Instant::now() < deadline, "only {} of {n} records arrived", records.len());
        for e in c.poll(Duration::from_millis(200), 100).unwrap() {
            if let ConsumerEvent::Records(r) = e {
                records.extend(r);
            }
        }
    }
    records
}

fn values(records: &[Record]) -> Vec<String> {
    records.iter().map(|r| String::from_utf8_lossy(&r.value).into_owned()).collect()
}

/// An empty value goes out as a null value, Kafka's tombstone on a compacted topic (how a node
/// removes an integration from `tbmq.client.subscriptions` or itself from
/// `tbmq.sys.service.info`), and reads back as an empty value.
#[test]
fn empty_values_are_tombstones() {
    use rdkafka::{
        consumer::{BaseConsumer, Consumer as _},
        ClientConfig, Message as _, Offset, TopicPartitionList,
    };

    let q = MockQueue::new();
    let topic = unique("tombstone");
    q.create_topic(&spec(&topic, 1).compacted()).unwrap();
    wait_delivery(q.producer().send(&topic, Partitioning::Fixed(0), Some(b"k"), b"")).unwrap();
    wait_delivery(q.producer().send(&topic, Partitioning::Fixed(0), Some(b"k"), b"v")).unwrap();
    let raw: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &q.bootstrap)
        .set("group.id", unique("raw"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, Offset::Beginning).unwrap();
    raw.assign(&tpl).unwrap();
    let deadline = Instant::now() + WAIT;
    let mut payloads = Vec::new();
    while payloads.len() < 2 {
        assert!(Instant::now() < deadline, "only {} of 2 records arrived", payloads.len());
        if let Some(m) = raw.poll(Duration::from_millis(200)) {
            payloads.push(m.unwrap().payload().map(<[u8]>::to_vec));
        }
    }
    assert_eq!(payloads, [None, Some(b"v".to_vec())], "a null value, then the value");
    let mut c = q.assign(&unique("g"), "c", &TopicPartition::new(&topic, 0)).unwrap();
    assert_eq!(values(&poll_records(c.as_mut(), 2)), ["", "v"]);
}

#[test]
fn deleted_groups_forget_offsets() {
    // Not on the mock: it has no DeleteGroups (see `admin_calls_time_out_on_the_mock`).
    let Some(q) = real() else { return };
    let prefix = unique("real");
    let (topic, group) = (format!("{prefix}.offsets"), format!("{prefix}.g"));
    let tp = TopicPartition::new(&topic, 0);
    q.create_topic(&spec(&topic, 1)).unwrap();
    send(&q, &topic, Partitioning::Fixed(0), "m0").unwrap();
    {
        let mut c = q.assign(&group, "c1", &tp).unwrap();
        c.commit(&tp, 1).unwrap();
        assert_eq!(c.committed(&tp).unwrap(), Some(1));
    }
    q.delete_group(&group).unwrap();
    let mut c = q.assign(&group, "c2", &tp).unwrap();
    assert_eq!(c.committed(&tp).unwrap(), None);
    assert_eq!(values(&poll_records(c.as_mut(), 1)), vec!["m0"]);
}

/// Turns [`group_member_child`] into a group member for [`killed_group_members_are_taken_over`]:
/// `bootstrap|group|topic`.
const CHILD_ENV: &str = "TRIB_TEST_KAFKA_GROUP_MEMBER";

/// Not a test of its own: run by [`killed_group_members_are_taken_over`] in a child process
/// (the test binary again), which it kills with SIGKILL. Does nothing otherwise.
#[test]
fn group_member_child() {
    use std::io::Write as _;
    let Ok(spec) = std::env::var(CHILD_ENV) else { return };
    let parts: Vec<&str> = spec.split('|').collect();
    let [bootstrap, group, topic] = parts[..] else { panic!("bad {CHILD_ENV}: {spec}") };
    let q = KafkaQueue::new(test_config(bootstrap)).expect("kafka queue");
    let mut c = q.subscribe(group, "child", &[topic.to_string()]).expect("subscribe");
    let mut owned = std::collections::BTreeSet::new();
    loop {
        for e in c.poll(Duration::from_millis(100), 10).expect("poll") {
            match e {
                ConsumerEvent::Assigned(tps) => owned.extend(tps.into_iter().map(|tp| tp.partition)),
                ConsumerEvent::Revoked(tps) => tps.iter().for_each(|tp| _ = owned.remove(&tp.partition)),
                ConsumerEvent::Records(_) => continue,
            }
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "member-owns {owned:?}");
            let _ = out.flush();
        }
    }
}

/// A group member in another process, killed with SIGKILL (no LeaveGroup).
struct ChildMember {
    child: std::process::Child,
    owned: mpsc::Receiver<Vec<i32>>,
}

impl ChildMember {
    fn start(bootstrap: &str, group: &str, topic: &str) -> Self {
        use std::io::BufRead as _;
        let mut child = std::process::Command::new(std::env::current_exe().expect("test binary"))
            .args(["--exact", "queue::kafka::tests::group_member_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, format!("{bootstrap}|{group}|{topic}"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start the child member");
        let stdout = child.stdout.take().expect("child stdout");
        let (tx, owned) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                // The first line follows libtest's "test <name> ... " (no newline).
                if let Some(set) = line.split_once("member-owns ").map(|(_, set)| set) {
                    let parts = set.trim_matches(|c| c == '{' || c == '}');
                    let owned: Vec<i32> = parts.split(',').filter_map(|p| p.trim().parse().ok()).collect();
                    if tx.send(owned).is_err() {
                        return;
                    }
                }
            }
        });
        ChildMember { child, owned }
    }

    /// Waits (polling `other` meanwhile, as a rebalance needs every member polled) until the
    /// child owns a non-empty set satisfying `done`.
    fn wait_owns(&self, mut other: Option<(&mut dyn Consumer, &mut Vec<i32>)>, done: impl Fn(&[i32]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut last = Vec::new();
        loop {
            while let Ok(owned) = self.owned.try_recv() {
                last = owned;
            }
            if !last.is_empty() && done(&last) {
                return;
            }
            assert!(Instant::now() < deadline, "the child member owns {last:?}");
            match other.as_mut() {
                Some((c, owned)) => track(&mut **c, owned, Duration::from_millis(100)),
                None => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChildMember {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `c` once and applies its rebalance events to `owned` (sorted partition numbers).
fn track(c: &mut dyn Consumer, owned: &mut Vec<i32>, timeout: Duration) {
    for e in c.poll(timeout, 10).unwrap() {
        match e {
            ConsumerEvent::Assigned(tps) => owned.extend(tps.iter().map(|tp| tp.partition)),
            ConsumerEvent::Revoked(tps) => owned.retain(|p| !tps.iter().any(|tp| tp.partition == *p)),
            ConsumerEvent::Records(_) => {}
        }
    }
    owned.sort_unstable();
    owned.dedup();
}

/// Polls `c` until it owns all of `partitions`; returns how long that took.
fn wait_owns_all(c: &mut dyn Consumer, owned: &mut Vec<i32>, partitions: i32, what: &str) -> Duration {
    let start = Instant::now();
    let all: Vec<i32> = (0..partitions).collect();
    while *owned != all {
        assert!(start.elapsed() < Duration::from_secs(60), "{what}: the survivor owns only {owned:?}");
        track(c, owned, Duration::from_millis(100));
    }
    start.elapsed()
}

/// A member in this process (the survivor, which joins first and so leads the group) and
/// members in child processes that join after it and are killed with SIGKILL (no LeaveGroup).
fn killed_group_members_are_taken_over_on(q: &dyn Queue, bootstrap: &str, prefix: &str) {
    let (topic, group) = (format!("{prefix}.crash"), format!("{prefix}.g"));
    q.create_topic(&spec(&topic, 6)).unwrap();
    let mut owned = Vec::new();
    let mut survivor = q.subscribe(&group, "survivor", std::slice::from_ref(&topic)).unwrap();
    wait_owns_all(survivor.as_mut(), &mut owned, 6, "alone in the group");
    kill_follower(bootstrap, &group, &topic, survivor.as_mut(), &mut owned, prefix);
    // And again: a member that comes back after a crash is served and can crash again.
    kill_follower(bootstrap, &group, &topic, survivor.as_mut(), &mut owned, prefix);
}

/// A child joins (the survivor leads), gets its share, and is killed: the survivor gets it back.
fn kill_follower(
    bootstrap: &str,
    group: &str,
    topic: &str,
    survivor: &mut dyn Consumer,
    owned: &mut Vec<i32>,
    prefix: &str,
) {
    let follower = ChildMember::start(bootstrap, group, topic);
    follower.wait_owns(Some((&mut *survivor, &mut *owned)), |o| o.len() < 6);
    while owned.len() == 6 {
        track(&mut *survivor, owned, Duration::from_millis(100));
    }
    follower.kill();
    let took = wait_owns_all(survivor, owned, 6, "after killing a follower");
    report(&format!("{prefix}: the survivor took over a killed follower's partitions in {took:?}"));
}

/// A line on stderr (shown with `--nocapture`).
fn report(line: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "{line}");
}

#[test]
fn killed_group_members_are_taken_over_on_a_real_broker() {
    // Only followers are killed: Tansu 0.6.0 (CI's broker) cannot re-form a group whose leader's
    // session expired (see `default_consumer_properties`). Not on the mock: FIXME, a child
    // process never got an assignment from the in-process mock cluster (not investigated).
    if let (Some(q), Ok(bootstrap)) = (real(), std::env::var(REAL_BOOTSTRAP_ENV)) {
        killed_group_members_are_taken_over_on(&q, bootstrap.trim(), &unique("real"));
    }
}
