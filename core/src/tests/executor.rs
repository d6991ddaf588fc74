//! The executor end to end on the embedded queue with the scripted driver plugin: lifecycle,
//! restore after restart, two executors in one group, ack strategies with exact counters, pack
//! timeout, re-init of a FAILED integration, validation requests and driver panics.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use prost::Message as _;
use uuid::Uuid;

use super::support::{install, plugin_file};
use crate::{
    config::{AckStrategy, ExecutorConfig},
    executor::Executor,
    loader::{load_dir, LoadReport},
    queue::{
        embedded::EmbeddedQueue,
        kafka::{KafkaConfig, KafkaQueue},
        wait_delivery, Consumer, ConsumerEvent, Partitioning, Queue, TopicPartition,
    },
    topics::TopicNames,
    wire::{
        uuid_to_bits, ComponentLifecycleEvent as Lc, DeadLetterProto, DownlinkIntegrationMsgProto, IntegrationMsgProto,
        IntegrationProto, IntegrationValidationRequestProto, PublishIntegrationMsgProto, PublishMsgProto,
        UplinkIntegrationMsgProto, UplinkIntegrationNotificationMsgProto, WIRE_VERSION,
    },
};

const WAIT: Duration = Duration::from_secs(20);

/// Plays the broker's part against an executor: downlink messages, integration messages, uplink.
pub struct Harness {
    pub queue: Arc<dyn Queue>,
    pub topics: TopicNames,
    pub dir: tempfile::TempDir,
    pub report: LoadReport,
    uplink: Box<dyn Consumer>,
    pub events: Vec<UplinkIntegrationMsgProto>,
}

impl Harness {
    /// On the embedded queue, or on Kafka when `TRIB_TEST_KAFKA_BOOTSTRAP` names a broker
    /// (with a unique topic prefix per test, so runs never share state).
    pub fn new() -> Self {
        let mut topics = TopicNames::default();
        let queue: Arc<dyn Queue> = match std::env::var("TRIB_TEST_KAFKA_BOOTSTRAP") {
            Ok(bootstrap) if !bootstrap.trim().is_empty() => {
                let mut config = KafkaConfig::new(bootstrap.trim());
                config.extra_consumer_properties = vec![
                    ("heartbeat.interval.ms".into(), "500".into()),
                    ("session.timeout.ms".into(), "6000".into()),
                    ("topic.metadata.refresh.interval.ms".into(), "1000".into()),
                ];
                config.admin_timeout = Duration::from_secs(10);
                topics.prefix = format!("t{}.", Uuid::new_v4().simple());
                Arc::new(KafkaQueue::new(config).unwrap())
            }
            _ => Arc::new(EmbeddedQueue::new()),
        };
        Self::on(queue, topics)
    }

    /// On the embedded queue, whatever the environment names (for what only it can do).
    pub fn embedded() -> Self {
        Self::on(Arc::new(EmbeddedQueue::new()), TopicNames::default())
    }

    /// On `queue`, with these topic names.
    pub fn on(queue: Arc<dyn Queue>, topics: TopicNames) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let plugins = dir.path().join("plugins");
        std::fs::create_dir(&plugins).unwrap();
        install(&plugin_file("trib_fixture_scripted"), &plugins, "libscripted.so");
        let report = load_dir(&plugins);
        queue.create_topic(&topics.uplink_spec().unwrap()).unwrap();
        let uplink = queue.subscribe(&topics.uplink_group(), "test-broker", &[topics.uplink()]).unwrap();
        Harness { queue, topics, dir, report, uplink, events: Vec::new() }
    }

    pub fn config(&self, service_id: &str, ack: AckStrategy) -> ExecutorConfig {
        ExecutorConfig {
            service_id: service_id.into(),
            ack_strategy: ack,
            downlink_poll_interval: Duration::from_millis(50),
            msg_poll_interval: Duration::from_millis(50),
            pack_processing_timeout: Duration::from_secs(5),
            reinit_frequency: Duration::from_millis(200),
            stats_enabled: false,
            topics: self.topics.clone(),
            ..ExecutorConfig::default()
        }
    }

    pub fn start(&self, service_id: &str, ack: AckStrategy) -> Executor {
        Executor::start(self.config(service_id, ack), self.queue.clone(), &self.report).unwrap()
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Saves an integration as the broker does: a lifecycle record on the downlink topic.
    pub fn save(&self, id: Uuid, event: Lc, enabled: bool, client_configuration: serde_json::Value) {
        let configuration =
            serde_json::json!({"clientConfiguration": client_configuration, "topicFilters": ["#"], "metadata": {}});
        self.save_configuration(id, event, enabled, &configuration);
    }

    /// As [`Harness::save`], with the whole `configuration` object.
    pub fn save_configuration(&self, id: Uuid, event: Lc, enabled: bool, configuration: &serde_json::Value) {
        self.queue.create_topic(&self.topics.downlink_spec("SCRIPTED").unwrap()).unwrap();
        self.queue.create_topic(&self.topics.msg_spec(id).unwrap()).unwrap();
        let (msb, lsb) = uuid_to_bits(id);
        let msg = DownlinkIntegrationMsgProto {
            integration_msg: Some(IntegrationMsgProto {
                integration_id_msb: msb,
                integration_id_lsb: lsb,
                r#type: "SCRIPTED".into(),
                name: Some(format!("it-{id}")),
                enabled: Some(enabled),
                configuration: Some(configuration.to_string()),
                event: event as i32,
            }),
            validation_request_msg: None,
            wire_version: WIRE_VERSION,
        };
        self.downlink(id.to_string().as_bytes(), &msg);
    }

    pub fn delete(&self, id: Uuid) {
        let (msb, lsb) = uuid_to_bits(id);
        let msg = DownlinkIntegrationMsgProto {
            integration_msg: Some(IntegrationMsgProto {
                integration_id_msb: msb,
                integration_id_lsb: lsb,
                r#type: "SCRIPTED".into(),
                event: Lc::Deleted as i32,
                ..Default::default()
            }),
            ..Default::default()
        };
        self.downlink(id.to_string().as_bytes(), &msg);
    }

    fn downlink(&self, key: &[u8], msg: &DownlinkIntegrationMsgProto) {
        let topic = self.topics.downlink("SCRIPTED");
        wait_delivery(self.queue.producer().send(&topic, Partitioning::ByKey, Some(key), &msg.encode_to_vec()))
            .unwrap();
    }

    /// Publishes messages for an integration as the broker does.
    pub fn publish(&self, id: Uuid, payloads: &[&str]) {
        self.publish_at(id, payloads, crate::now_ms());
    }

    /// As [`Harness::publish`], as if the broker had queued them at `timestamp` (ms).
    pub fn publish_at(&self, id: Uuid, payloads: &[&str], timestamp: i64) {
        for p in payloads {
            let msg = PublishIntegrationMsgProto {
                publish_msg_proto: Some(PublishMsgProto {
                    client_id: "dev".into(),
                    payload: bytes::Bytes::copy_from_slice(p.as_bytes()),
                    qos: 1,
                    topic_name: "t/1".into(),
                    ..Default::default()
                }),
                tbmq_node: "broker1".into(),
                timestamp,
                wire_version: WIRE_VERSION,
            };
            let d = self.queue.producer().send(
                &self.topics.msg(id),
                Partitioning::Fixed(0),
                Some(b"t/1"),
                &msg.encode_to_vec(),
            );
            wait_delivery(d).unwrap();
        }
    }

    /// Reads uplink events for `window` (all are kept in `events`).
    pub fn collect_events(&mut self, window: Duration) {
        let until = Instant::now() + window;
        while Instant::now() < until {
            for e in self.uplink.poll(Duration::from_millis(100), 100).unwrap() {
                if let ConsumerEvent::Records(rs) = e {
                    self.events.extend(rs.into_iter().map(|r| UplinkIntegrationMsgProto::decode(r.value).unwrap()));
                }
            }
        }
    }

    /// Reads uplink events until `pred` holds for one of them (all are kept in `events`).
    pub fn wait_event(&mut self, what: &str, pred: impl Fn(&UplinkIntegrationMsgProto) -> bool) {
        let deadline = Instant::now() + WAIT;
        if self.events.iter().any(&pred) {
            return;
        }
        loop {
            assert!(Instant::now() < deadline, "no uplink event: {what}; got {:?}", self.events);
            let mut hit = false;
            for e in self.uplink.poll(Duration::from_millis(100), 100).unwrap() {
                if let ConsumerEvent::Records(rs) = e {
                    for r in rs {
                        let m = UplinkIntegrationMsgProto::decode(r.value).unwrap();
                        hit |= pred(&m);
                        self.events.push(m);
                    }
                }
            }
            if hit {
                return;
            }
        }
    }

    /// Creates an enabled integration whose scripted driver records what it delivers to a file,
    /// and waits until it started; returns its id and the file.
    pub fn recording_integration(&mut self) -> (Uuid, PathBuf) {
        let id = Uuid::new_v4();
        let out = self.file("out");
        self.save(id, Lc::Created, true, serde_json::json!({"recordTo": out}));
        self.wait_lifecycle(id, Lc::Started, true);
        (id, out)
    }

    pub fn wait_lifecycle(&mut self, id: Uuid, event: Lc, success: bool) {
        let (msb, lsb) = uuid_to_bits(id);
        self.wait_event(&format!("{} {success} for {id}", event.name()), |m| {
            m.event_proto.as_ref().is_some_and(|e| {
                e.event_source_id_msb == msb
                    && e.event_source_id_lsb == lsb
                    && e.lifecycle.as_ref().is_some_and(|l| l.lc_event_type == event.name() && l.success == success)
            })
        });
    }

    pub fn lifecycle_count(&self, id: Uuid, event: Lc) -> usize {
        let (msb, lsb) = uuid_to_bits(id);
        self.events
            .iter()
            .filter_map(|m| m.event_proto.as_ref())
            .filter(|e| e.event_source_id_msb == msb && e.event_source_id_lsb == lsb)
            .filter(|e| e.lifecycle.as_ref().is_some_and(|l| l.lc_event_type == event.name()))
            .count()
    }
}

/// Lines of a record file, waiting until there are at least `n`.
pub fn wait_lines(path: &Path, n: usize) -> Vec<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let lines: Vec<String> =
            std::fs::read_to_string(path).unwrap_or_default().lines().map(str::to_string).collect();
        if lines.len() >= n {
            return lines;
        }
        assert!(Instant::now() < deadline, "only {} of {n} deliveries: {lines:?}", lines.len());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn numbered(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{prefix}{i}")).collect()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

pub(super) fn retry_all(retries: u32) -> AckStrategy {
    AckStrategy::RetryAll { retries, pause: Duration::from_millis(10), max_pause: Duration::from_millis(10) }
}

pub(super) fn counters(executor: &Executor, id: Uuid) -> Vec<(&'static str, u64)> {
    executor.stats().processor(id).snapshot().into_iter().filter(|(_, v)| *v > 0).collect()
}

/// Waits until the processor counters of `id` equal `expected` (non-zero entries, sorted by name).
pub(super) fn wait_counters(executor: &Executor, id: Uuid, expected: &[(&'static str, u64)]) {
    let mut expected = expected.to_vec();
    expected.sort();
    let deadline = Instant::now() + WAIT;
    loop {
        let got = counters(executor, id);
        if got == expected {
            return;
        }
        assert!(Instant::now() < deadline, "counters {got:?}, expected {expected:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_counters_where(
    executor: &Executor,
    id: Uuid,
    pred: impl Fn(&std::collections::BTreeMap<&'static str, u64>) -> bool,
) {
    let deadline = Instant::now() + WAIT;
    loop {
        let c = executor.stats().processor(id).snapshot();
        if pred(&c) {
            return;
        }
        assert!(Instant::now() < deadline, "counters {c:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn created_integration_starts_and_delivers_in_order() {
    let mut h = Harness::new();
    let ex = h.start("ie1", AckStrategy::SkipAll);
    let (id, out) = h.recording_integration();
    let msgs = numbered("m", 0..200);
    h.publish(id, &strs(&msgs));
    assert_eq!(wait_lines(&out, 200), msgs);
    // Packs are cut by what has arrived (at most `max.poll.records`), so only the message counts are exact.
    let c = ex.stats().processor(id).snapshot();
    wait_counters_where(&ex, id, |c| c["successfulMsgs"] == 200);
    assert_eq!((c["totalMsgs"] >= 1, c["failedMsgs"], c["timeoutMsgs"], c["failedIterations"]), (true, 0, 0, 0));
    assert_eq!(ex.status().integrations, 1);
    ex.shutdown();
    h.wait_lifecycle(id, Lc::Stopped, true);
}

#[test]
fn messages_queued_before_the_first_start_are_skipped_like_tbmq() {
    let mut h = Harness::new();
    let id = Uuid::new_v4();
    let out = h.file("out");
    h.save(id, Lc::Created, true, serde_json::json!({"recordTo": out}));
    h.publish(id, &["early"]);
    let ex = h.start("ie1", AckStrategy::SkipAll);
    h.wait_lifecycle(id, Lc::Started, true);
    h.publish(id, &["late"]);
    assert_eq!(wait_lines(&out, 1), vec!["late"]);
    ex.shutdown();
}

#[test]
fn restart_restores_from_the_compacted_topic_and_delivers_the_backlog_in_order() {
    let mut h = Harness::new();
    let id = Uuid::new_v4();
    let out = h.file("out");
    let ex = h.start("ie1", retry_all(0));
    h.save(id, Lc::Created, true, serde_json::json!({"recordTo": "/nonexistent/dir/x"}));
    h.save(id, Lc::Updated, true, serde_json::json!({"recordTo": out}));
    h.wait_lifecycle(id, Lc::Started, true);
    let first = numbered("a", 0..50);
    h.publish(id, &strs(&first));
    wait_lines(&out, 50);
    ex.shutdown();
    // Produced while no executor runs: nothing may be lost or reordered.
    let backlog = numbered("b", 0..300);
    h.publish(id, &strs(&backlog));
    let ex = h.start("ie1", retry_all(0));
    let all = wait_lines(&out, 350);
    assert_eq!(all, first.iter().chain(&backlog).cloned().collect::<Vec<_>>());
    ex.shutdown();
}

#[test]
fn two_executors_split_integrations_and_take_over_when_one_stops() {
    let mut h = Harness::new();
    let a = h.start("ie-a", AckStrategy::SkipAll);
    let b = h.start("ie-b", AckStrategy::SkipAll);
    let ids: Vec<Uuid> = (0..12).map(|_| Uuid::new_v4()).collect();
    for (i, id) in ids.iter().enumerate() {
        h.save(*id, Lc::Created, true, serde_json::json!({"recordTo": h.file(&format!("out{i}"))}));
    }
    for id in &ids {
        h.wait_lifecycle(*id, Lc::Started, true);
    }
    let deadline = Instant::now() + WAIT;
    while a.status().integrations + b.status().integrations != ids.len() {
        assert!(Instant::now() < deadline, "integrations not all running");
        std::thread::sleep(Duration::from_millis(20));
    }
    let on_b = b.status().integrations;
    assert!(a.status().integrations > 0 && on_b > 0, "a={} b={on_b}", a.status().integrations);
    b.shutdown();
    let deadline = Instant::now() + WAIT;
    while a.status().integrations != ids.len() {
        assert!(Instant::now() < deadline, "a did not take over: {}", a.status().integrations);
        std::thread::sleep(Duration::from_millis(20));
    }
    for (i, id) in ids.iter().enumerate() {
        h.publish(*id, &["after"]);
        assert_eq!(wait_lines(&h.file(&format!("out{i}")), 1), vec!["after"]);
    }
    a.shutdown();
}

#[test]
fn a_slow_target_does_not_delay_other_integrations() {
    let mut h = Harness::new();
    let mut config = h.config("ie1", AckStrategy::SkipAll);
    config.pack_processing_timeout = Duration::from_secs(30);
    let ex = Executor::start(config, h.queue.clone(), &h.report).unwrap();
    let (slow, fast) = (Uuid::new_v4(), Uuid::new_v4());
    let (slow_out, fast_out) = (h.file("slow"), h.file("fast"));
    h.save(slow, Lc::Created, true, serde_json::json!({"recordTo": slow_out}));
    h.save(fast, Lc::Created, true, serde_json::json!({"recordTo": fast_out}));
    h.wait_lifecycle(slow, Lc::Started, true);
    h.wait_lifecycle(fast, Lc::Started, true);
    // The slow integration's target takes 8 s per message; the fast one must not wait for it.
    h.publish(slow, &["sleep:8000"]);
    h.publish(fast, &numbered("f", 0..20).iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(wait_lines(&fast_out, 20), numbered("f", 0..20));
    assert!(std::fs::read_to_string(&slow_out).unwrap_or_default().is_empty(), "the slow target is still busy");
    assert_eq!(wait_lines(&slow_out, 1), vec!["sleep:8000"]);
    ex.shutdown();
}

#[test]
fn skip_all_drops_failures_after_one_attempt() {
    let mut h = Harness::new();
    let ex = h.start("ie1", AckStrategy::SkipAll);
    let (id, out) = h.recording_integration();
    h.publish(id, &["retry"]);
    wait_counters(&ex, id, &[("totalMsgs", 1), ("failedMsgs", 1), ("failedIterations", 1)]);
    h.publish(id, &["ok"]);
    assert_eq!(wait_lines(&out, 1), vec!["ok"]);
    ex.shutdown();
}

#[test]
fn retry_all_retries_then_gives_up_with_exact_counters() {
    let mut h = Harness::new();
    let ex = h.start("ie1", retry_all(2));
    let (id, _) = h.recording_integration();
    h.publish(id, &["retry"]);
    // Three attempts (1 + 2 retries): two temporary failures, then the final one.
    wait_counters(&ex, id, &[("totalMsgs", 1), ("tmpFailed", 2), ("failedMsgs", 1), ("failedIterations", 3)]);
    ex.shutdown();
}

#[test]
fn rejected_messages_are_not_retried() {
    let mut h = Harness::new();
    let ex = h.start("ie1", retry_all(0));
    let (id, out) = h.recording_integration();
    h.publish(id, &["reject", "fine"]);
    assert_eq!(wait_lines(&out, 1), vec!["fine"]);
    wait_counters_where(&ex, id, |c| c["successfulMsgs"] == 1 && c["failedMsgs"] == 1);
    let c = ex.stats().processor(id).snapshot();
    assert_eq!((c["totalMsgs"], c["tmpFailed"], c["failedIterations"]), (2, 0, 1), "{c:?}");
    ex.shutdown();
}

/// Reads the integration's dead-letter topic until `n` letters arrived.
pub(super) fn dead_letters(h: &Harness, id: Uuid, n: usize) -> Vec<(Option<bytes::Bytes>, DeadLetterProto)> {
    let tp = TopicPartition::new(h.topics.dlq(id), 0);
    let deadline = Instant::now() + WAIT;
    let mut letters = Vec::new();
    while letters.len() < n {
        assert!(Instant::now() < deadline, "only {} of {n} dead letters", letters.len());
        if !h.queue.topic_exists(&tp.topic).unwrap() {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        let mut c = h.queue.assign(&format!("reader-{}", Uuid::new_v4()), "reader", &tp).unwrap();
        c.seek(&tp, 0).unwrap();
        letters.clear();
        let until = Instant::now() + Duration::from_millis(500);
        while Instant::now() < until && letters.len() < n {
            for e in c.poll(Duration::from_millis(100), 100).unwrap() {
                if let ConsumerEvent::Records(rs) = e {
                    letters.extend(rs.into_iter().map(|r| (r.key, DeadLetterProto::decode(r.value).unwrap())));
                }
            }
        }
    }
    letters
}

#[test]
fn given_up_messages_become_dead_letters_with_their_reason() {
    let mut h = Harness::new();
    let ex = h.start("ie1", retry_all(1));
    let (id, out) = h.recording_integration();
    h.publish(id, &["reject", "retry", "fine"]);
    // And a record that does not decode.
    wait_delivery(h.queue.producer().send(&h.topics.msg(id), Partitioning::Fixed(0), Some(b"t/1"), b"\xff\xff"))
        .unwrap();
    h.publish(id, &["after"]);
    assert_eq!(wait_lines(&out, 2), vec!["fine", "after"]);
    let letters = dead_letters(&h, id, 3);
    let summary: Vec<(i64, &str, u32)> =
        letters.iter().map(|(_, l)| (l.offset, l.reason.as_str(), l.attempts)).collect();
    assert_eq!(
        summary,
        [(0, "rejected: scripted reject", 1), (1, "retry: scripted retry", 2), (3, "undecodable record", 0)],
        "offsets, reasons and attempts"
    );
    let (key, first) = &letters[0];
    assert_eq!(key.as_deref(), Some(&b"t/1"[..]), "keyed by the MQTT topic");
    let original = PublishIntegrationMsgProto::decode(first.record.as_slice()).unwrap();
    assert_eq!(original.publish_msg_proto.unwrap().payload.as_ref(), b"reject");
    assert_eq!(letters[2].1.record, b"\xff\xff");
    assert!(letters.iter().all(|(_, l)| l.service_id == "ie1" && l.failed_at > 0 && l.wire_version == WIRE_VERSION));
    ex.shutdown();
}

#[test]
fn dead_letters_can_be_switched_off() {
    let mut h = Harness::new();
    let mut config = h.config("ie1", AckStrategy::SkipAll);
    config.dead_letters_enabled = false;
    let ex = Executor::start(config, h.queue.clone(), &h.report).unwrap();
    let (id, out) = h.recording_integration();
    h.publish(id, &["reject", "fine"]);
    assert_eq!(wait_lines(&out, 1), vec!["fine"]);
    wait_counters_where(&ex, id, |c| c["failedMsgs"] == 1);
    assert!(!h.queue.topic_exists(&h.topics.dlq(id)).unwrap(), "no dead-letter topic");
    ex.shutdown();
}

#[test]
fn pack_timeout_counts_timeouts() {
    let mut h = Harness::new();
    let mut config = h.config("ie1", AckStrategy::SkipAll);
    config.pack_processing_timeout = Duration::from_millis(100);
    let ex = Executor::start(config, h.queue.clone(), &h.report).unwrap();
    let id = Uuid::new_v4();
    h.save(id, Lc::Created, true, serde_json::json!({}));
    h.wait_lifecycle(id, Lc::Started, true);
    h.publish(id, &["sleep:5000"]);
    wait_counters(&ex, id, &[("totalMsgs", 1), ("timeoutMsgs", 1), ("failedIterations", 1)]);
    ex.shutdown();
}

#[test]
fn a_failed_integration_is_reinitialised_when_its_target_comes_back() {
    let mut h = Harness::new();
    let ex = h.start("ie1", AckStrategy::SkipAll);
    let id = Uuid::new_v4();
    let marker = h.file("target-up");
    let out = h.file("out");
    h.save(id, Lc::Created, true, serde_json::json!({"failStartUnless": marker, "recordTo": out}));
    h.wait_lifecycle(id, Lc::Failed, false);
    std::fs::write(&marker, "up").unwrap();
    h.wait_lifecycle(id, Lc::Started, true);
    assert!(h.lifecycle_count(id, Lc::Reinit) >= 1);
    h.publish(id, &["x"]);
    assert_eq!(wait_lines(&out, 1), vec!["x"]);
    ex.shutdown();
}

#[test]
fn disable_stops_and_enable_delivers_the_backlog() {
    let mut h = Harness::new();
    let ex = h.start("ie1", retry_all(0));
    let (id, out) = h.recording_integration();
    h.save(id, Lc::Updated, false, serde_json::json!({"recordTo": out}));
    h.wait_lifecycle(id, Lc::Stopped, true);
    h.publish(id, &["while-disabled"]);
    h.save(id, Lc::Updated, true, serde_json::json!({"recordTo": out}));
    assert_eq!(wait_lines(&out, 1), vec!["while-disabled"]);
    h.delete(id);
    let deadline = Instant::now() + WAIT;
    while ex.status().integrations != 0 {
        assert!(Instant::now() < deadline, "deleted integration still runs");
        std::thread::sleep(Duration::from_millis(20));
    }
    ex.shutdown();
}

#[test]
fn a_driver_panic_recreates_the_instance_and_loses_nothing() {
    let mut h = Harness::new();
    let ex = h.start("ie1", retry_all(0));
    let (id, out) = h.recording_integration();
    let once = format!("panic-once:{}", h.file("panicked").display());
    h.publish(id, &["before", &once, "after"]);
    let lines = wait_lines(&out, 3);
    assert!(lines.ends_with(&[once.clone(), "after".to_string()]), "{lines:?}");
    assert!(lines.contains(&"before".to_string()));
    ex.shutdown();
}

fn validation_request(h: &Harness, kind: &str, client: serde_json::Value) -> UplinkIntegrationNotificationMsgProto {
    validation_request_for(h, kind, &serde_json::json!({ "clientConfiguration": client }))
}

/// Asks the executor to validate (or check) an integration with this whole `configuration`.
pub(super) fn validation_request_for(
    h: &Harness,
    kind: &str,
    configuration: &serde_json::Value,
) -> UplinkIntegrationNotificationMsgProto {
    let broker = format!("broker-{}", Uuid::new_v4().simple());
    h.queue.create_topic(&h.topics.notifications_spec(&broker).unwrap()).unwrap();
    h.queue.create_topic(&h.topics.downlink_spec("SCRIPTED").unwrap()).unwrap();
    let mut answers = h.queue.assign("test", "test", &TopicPartition::new(h.topics.notifications(&broker), 0)).unwrap();
    // Requests that arrive while the executor still restores its downlink partitions are stale
    // by design (TBMQ skips them too), and on Kafka the first assignment takes a few seconds:
    // ask again, with a new request id, until an answer comes.
    let deadline = Instant::now() + WAIT;
    loop {
        assert!(Instant::now() < deadline, "no answer to the validation request");
        let (msb, lsb) = uuid_to_bits(Uuid::new_v4());
        let request = IntegrationValidationRequestProto {
            id_msb: msb,
            id_lsb: lsb,
            service_id: broker.clone(),
            configuration: Some(IntegrationProto {
                r#type: "SCRIPTED".into(),
                name: "v".into(),
                enabled: true,
                configuration: configuration.to_string(),
                ..Default::default()
            }),
            r#type: kind.into(),
            timestamp: crate::now_ms(),
            deadline: crate::now_ms() + 20_000,
        };
        let msg = DownlinkIntegrationMsgProto { validation_request_msg: Some(request), ..Default::default() };
        h.downlink(format!("validation:{msb}:{lsb}").as_bytes(), &msg);
        let ask_again = Instant::now() + Duration::from_secs(3);
        while Instant::now() < ask_again {
            for e in answers.poll(Duration::from_millis(100), 10).unwrap() {
                if let ConsumerEvent::Records(rs) = e {
                    let answer = UplinkIntegrationNotificationMsgProto::decode(rs[0].value.clone()).unwrap();
                    let r = answer.integration_validation_response_msg.as_ref().unwrap();
                    if (r.id_msb, r.id_lsb) == (msb, lsb) {
                        return answer;
                    }
                }
            }
        }
    }
}

#[test]
fn validation_requests_are_answered_with_field_errors() {
    let h = Harness::new();
    let ex = h.start("ie1", AckStrategy::SkipAll);
    let ok = validation_request(&h, "VALIDATE", serde_json::json!({}));
    let ok = ok.integration_validation_response_msg.unwrap();
    assert_eq!((ok.error, ok.field_errors.len(), ok.executor_service_id.as_str()), (None, 0, "ie1"));
    let bad = validation_request(&h, "VALIDATE", serde_json::json!({"invalid": true}));
    let bad = bad.integration_validation_response_msg.unwrap();
    assert_eq!(bad.error.as_deref(), Some("invalid: is set"));
    assert_eq!(bad.field_errors[0].field, "invalid");
    let missing = validation_request(&h, "VALIDATE", serde_json::Value::Null);
    assert_eq!(
        missing.integration_validation_response_msg.unwrap().error.as_deref(),
        Some("clientConfiguration field is missing!")
    );
    let check = validation_request(&h, "CHECK_CONNECTION", serde_json::json!({}));
    assert_eq!(check.integration_validation_response_msg.unwrap().error, None);
    ex.shutdown();
}

/// The integration status of `id` in the newest service info seen so far.
fn announced(h: &Harness, id: Uuid) -> Option<crate::wire::IntegrationStatusProto> {
    let (msb, lsb) = uuid_to_bits(id);
    let newest = h.events.iter().rev().find_map(|m| m.service_info_proto.as_ref())?;
    newest.integrations.iter().find(|s| s.integration_id_msb == msb && s.integration_id_lsb == lsb).cloned()
}

/// The service info lists the integrations the executor runs with how their deliveries go,
/// soon after a change; `/metrics` has one series set per running integration, gone with it.
#[test]
fn deliveries_are_announced_and_series_leave_with_the_integration() {
    let mut h = Harness::new();
    let mut config = h.config("ie1", AckStrategy::SkipAll);
    config.service_info_interval = Duration::from_millis(300);
    let ex = Executor::start(config, h.queue.clone(), &h.report).unwrap();
    let (id, out) = h.recording_integration();
    h.publish(id, &["reject", "a", "b"]);
    assert_eq!(wait_lines(&out, 2), ["a", "b"]);
    h.wait_event("announced with 2 delivered and 1 failed", |m| {
        m.service_info_proto.as_ref().is_some_and(|i| {
            i.integrations.iter().any(|s| s.delivered_msgs == 2 && s.failed_msgs == 1 && s.backlog == Some(0))
        })
    });
    let s = announced(&h, id).expect("announced");
    assert!(s.started && s.last_delivered_ts > 0 && s.last_error_ts > 0, "{s:?}");
    assert_eq!((s.total_msgs, s.dead_lettered_msgs, s.last_error.as_deref()), (3, 1, Some("scripted reject")));
    // Deliveries after the reject: no run of failures.
    assert_eq!((s.consecutive_failures, s.failing_since_ts), (0, 0));

    // A call that delivers nothing starts a run of failures.
    h.events.clear();
    h.publish(id, &["retry"]);
    h.wait_event("failing", |m| {
        m.service_info_proto.as_ref().is_some_and(|i| i.integrations.iter().any(|s| s.consecutive_failures == 1))
    });
    assert!(announced(&h, id).expect("announced").failing_since_ts > 0);

    let mut text = String::new();
    ex.stats().render_prometheus(&mut text);
    let series = format!("ie_processor_msgs_total{{integration_id=\"{id}\",counter=\"successfulMsgs\"}} 2");
    assert!(text.contains(&series), "{text}");
    assert!(text.contains(&format!("ie_integration_backlog{{integration_id=\"{id}\"}}")), "{text}");
    assert!(trib_ops::render_metrics().contains(&series), "the executor's collector is registered");

    h.events.clear();
    h.delete(id);
    h.wait_event("no longer announced", |m| m.service_info_proto.as_ref().is_some_and(|i| i.integrations.is_empty()));
    let mut text = String::new();
    ex.stats().render_prometheus(&mut text);
    assert!(!text.contains(&id.to_string()), "{text}");
    ex.shutdown();
}
