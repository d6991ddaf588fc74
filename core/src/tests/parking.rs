//! Idle integrations own no thread: their workers park until a record, a command or a periodic
//! duty wakes them (`manager/slot.rs`). On the embedded queue only, the one backend that calls
//! back on records (`Consumer::on_records`); on Kafka workers keep polling on their threads.

use std::{
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use uuid::Uuid;

use super::executor::{wait_lines, Harness};
use crate::{
    config::{AckStrategy, ExecutorConfig},
    executor::Executor,
    manager::Manager,
    queue::{
        embedded::EmbeddedQueue, Consumer, ConsumerEvent, Producer, Queue, QueueResult, TopicPartition, TopicSpec,
    },
    topics::TopicNames,
    wire::{uuid_to_bits, ComponentLifecycleEvent as Lc},
};

const WAIT: Duration = Duration::from_secs(30);

/// Threads of this process now.
fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").expect("/proc/self/task lists the threads").count()
}

/// Waits until `n` integrations of `ex` are parked.
fn wait_parked(ex: &Executor, n: usize) {
    let deadline = Instant::now() + WAIT;
    while ex.parked_integrations() != n {
        assert!(Instant::now() < deadline, "{} of {n} integrations parked", ex.parked_integrations());
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until the worker pool let the threads of a burst go (a thread that finds enough free
/// ones ends after its job); other tests of this process may keep a few busy.
fn wait_pool_settled() {
    let deadline = Instant::now() + WAIT;
    while Manager::worker_threads() > 24 {
        assert!(Instant::now() < deadline, "{} worker threads left", Manager::worker_threads());
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Reads uplink events until `id` had `n` `event` lifecycle events.
fn wait_lifecycles(h: &mut Harness, id: Uuid, event: Lc, n: usize) {
    let deadline = Instant::now() + WAIT;
    while h.lifecycle_count(id, event) < n {
        assert!(Instant::now() < deadline, "{} of {n} {} events", h.lifecycle_count(id, event), event.name());
        h.collect_events(Duration::from_millis(100));
    }
}

fn start(h: &Harness, config: ExecutorConfig) -> Executor {
    Executor::start(config, h.queue.clone(), &h.report).unwrap()
}

#[test]
fn two_hundred_idle_integrations_cost_few_threads_and_deliver_everything() {
    const N: usize = 200;
    let mut h = Harness::embedded();
    let ex = start(&h, h.config("ie-idle", AckStrategy::SkipAll));
    let before = threads();
    let integrations: Vec<(Uuid, PathBuf)> = (0..N)
        .map(|i| {
            let (id, out) = (Uuid::new_v4(), h.file(&format!("out-{i}")));
            h.save(id, Lc::Created, true, serde_json::json!({"recordTo": out}));
            (id, out)
        })
        .collect();
    for (id, _) in &integrations {
        h.wait_lifecycle(*id, Lc::Started, true);
    }
    wait_parked(&ex, N);
    wait_pool_settled();
    let idle = threads();
    // The count is the whole test process's: a test running beside this one may add threads of
    // its own meanwhile (a Kafka mock cluster about 30). Half of N proves the point: a worker
    // owning its thread added N.
    assert!(idle < before + N / 2, "{N} idle integrations added {} threads ({before} -> {idle})", idle - before);

    // Every 10th integration gets messages; each is woken by its records and delivers them all.
    let busy: Vec<&(Uuid, PathBuf)> = integrations.iter().step_by(10).collect();
    for (n, (id, _)) in busy.iter().enumerate() {
        h.publish(*id, &[&format!("{n}-a"), &format!("{n}-b"), &format!("{n}-c")]);
    }
    for (n, (_, out)) in busy.iter().enumerate() {
        assert_eq!(wait_lines(out, 3), [format!("{n}-a"), format!("{n}-b"), format!("{n}-c")]);
    }
    // Once delivered, they park again.
    wait_parked(&ex, N);
    wait_pool_settled();
    let after = threads();
    assert!(after < before + N / 2, "{N} integrations after delivery added {} threads", after - before);
    let delivered: u64 = busy.iter().map(|(id, _)| ex.stats().processor(*id).snapshot()["successfulMsgs"]).sum();
    assert_eq!(delivered, 3 * busy.len() as u64);
    ex.shutdown();
    for (id, _) in &integrations {
        h.wait_lifecycle(*id, Lc::Stopped, true);
    }
}

#[test]
fn a_parked_integration_is_disabled_enabled_updated_and_deleted() {
    let mut h = Harness::embedded();
    let ex = start(&h, h.config("ie-park", AckStrategy::SkipAll));
    let (id, out) = h.recording_integration();
    wait_parked(&ex, 1);
    h.publish(id, &["first"]);
    assert_eq!(wait_lines(&out, 1), ["first"]);
    wait_parked(&ex, 1);

    // Disabled while parked: it stops, and what is published meanwhile waits in its topic.
    h.save(id, Lc::Updated, false, serde_json::json!({"recordTo": out}));
    h.wait_lifecycle(id, Lc::Stopped, true);
    assert_eq!(ex.status().integrations, 0);
    h.publish(id, &["while-disabled"]);

    // Enabled again: it delivers the backlog, then parks.
    h.save(id, Lc::Updated, true, serde_json::json!({"recordTo": out}));
    assert_eq!(wait_lines(&out, 2), ["first", "while-disabled"]);
    wait_lifecycles(&mut h, id, Lc::Started, 2);
    wait_parked(&ex, 1);

    // Updated while parked, to a definition that fails to start: the failed worker parks too
    // (it is woken to re-initialise), and the next update starts it again.
    let (moved, missing) = (h.file("moved"), h.file("missing"));
    h.save(id, Lc::Updated, true, serde_json::json!({"recordTo": moved, "failStartUnless": missing}));
    h.wait_lifecycle(id, Lc::Failed, false);
    wait_parked(&ex, 1);
    h.save(id, Lc::Updated, true, serde_json::json!({"recordTo": moved}));
    wait_lifecycles(&mut h, id, Lc::Started, 3);
    h.publish(id, &["after-restart"]);
    assert_eq!(wait_lines(&moved, 1), ["after-restart"]);
    assert_eq!(wait_lines(&out, 2), ["first", "while-disabled"]);

    // Deleted while parked.
    wait_parked(&ex, 1);
    let stopped = h.lifecycle_count(id, Lc::Stopped);
    h.delete(id);
    wait_lifecycles(&mut h, id, Lc::Stopped, stopped + 1);
    assert_eq!((ex.status().integrations, ex.parked_integrations()), (0, 0));
    ex.shutdown();
}

#[test]
fn a_parked_integration_still_sends_its_statistics() {
    let mut h = Harness::embedded();
    let config = ExecutorConfig {
        statistics_enabled: true,
        statistics_persist_frequency: Duration::from_millis(300),
        ..h.config("ie-stats", AckStrategy::SkipAll)
    };
    let ex = start(&h, config);
    let (id, _) = h.recording_integration();
    wait_parked(&ex, 1);
    let (msb, lsb) = uuid_to_bits(id);
    let statistics = |h: &Harness| {
        h.events
            .iter()
            .filter_map(|m| m.event_proto.as_ref())
            .filter(|e| e.event_source_id_msb == msb && e.event_source_id_lsb == lsb && e.statistics.is_some())
            .count()
    };
    let seen = statistics(&h);
    // Two more statistics events: the timer woke the parked worker for them (at least once
    // after it parked).
    let deadline = Instant::now() + WAIT;
    while statistics(&h) < seen + 2 {
        assert!(Instant::now() < deadline, "no statistics from the parked integration");
        h.collect_events(Duration::from_millis(100));
    }
    wait_parked(&ex, 1);
    ex.shutdown();
}

/// The embedded queue behind consumers that cannot call back on records, as Kafka's cannot.
struct PollingOnly(EmbeddedQueue);

/// A consumer that keeps the default `on_records` (false).
struct PollingConsumer(Box<dyn Consumer>);

impl Consumer for PollingConsumer {
    fn poll(&mut self, timeout: Duration, max_records: usize) -> QueueResult<Vec<ConsumerEvent>> {
        self.0.poll(timeout, max_records)
    }
    fn commit(&mut self, tp: &TopicPartition, next_offset: i64) -> QueueResult<()> {
        self.0.commit(tp, next_offset)
    }
    fn committed(&mut self, tp: &TopicPartition) -> QueueResult<Option<i64>> {
        self.0.committed(tp)
    }
    fn seek(&mut self, tp: &TopicPartition, offset: i64) -> QueueResult<()> {
        self.0.seek(tp, offset)
    }
    fn watermarks(&mut self, tp: &TopicPartition) -> QueueResult<(i64, i64)> {
        self.0.watermarks(tp)
    }
}

impl Queue for PollingOnly {
    fn producer(&self) -> Arc<dyn Producer> {
        self.0.producer()
    }
    fn create_topic(&self, spec: &TopicSpec) -> QueueResult<()> {
        self.0.create_topic(spec)
    }
    fn delete_topic(&self, name: &str) -> QueueResult<()> {
        self.0.delete_topic(name)
    }
    fn topic_exists(&self, name: &str) -> QueueResult<bool> {
        self.0.topic_exists(name)
    }
    fn delete_group(&self, group: &str) -> QueueResult<()> {
        self.0.delete_group(group)
    }
    fn subscribe(&self, group: &str, client_id: &str, topics: &[String]) -> QueueResult<Box<dyn Consumer>> {
        Ok(Box::new(PollingConsumer(self.0.subscribe(group, client_id, topics)?)))
    }
    fn assign(&self, group: &str, client_id: &str, tp: &TopicPartition) -> QueueResult<Box<dyn Consumer>> {
        Ok(Box::new(PollingConsumer(self.0.assign(group, client_id, tp)?)))
    }
}

#[test]
fn on_a_queue_that_cannot_call_back_running_workers_keep_polling_and_deliver() {
    let mut h = Harness::on(Arc::new(PollingOnly(EmbeddedQueue::new())), TopicNames::default());
    let ex = start(&h, h.config("ie-polling", AckStrategy::SkipAll));
    let (id, out) = h.recording_integration();
    h.publish(id, &["a", "b"]);
    assert_eq!(wait_lines(&out, 2), ["a", "b"]);
    // Idle for several poll intervals (a worker that parked here would never hear of "c"), yet
    // not parked: it polls on its thread, as before.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(ex.parked_integrations(), 0);
    h.publish(id, &["c"]);
    assert_eq!(wait_lines(&out, 3), ["a", "b", "c"]);
    ex.shutdown();
    h.wait_lifecycle(id, Lc::Stopped, true);
}
