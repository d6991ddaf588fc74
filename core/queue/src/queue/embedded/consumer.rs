//! Embedded consumers: group members (`subscribe`) and manually assigned partitions (`assign`),
//! and how a consumer blocked in `poll` is woken. A member takes its pending `Revoked` and
//! `Assigned` events before any record; new partitions start at the group's committed offset,
//! else at the oldest record kept. Records come from memory when cached, else from the segment
//! files: one segment per poll, read without the state lock. A consumer that is not polling can
//! instead ask to be called back when it has something to return (`on_records`, `waiters`).
//! Deliberately not here: deciding the assignment and storing commits (`groups`), the files
//! (`read`).

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use parking_lot::{Condvar, MutexGuard};

use super::{disk_error, read::DiskRead, waiters, Inner, State};
use crate::{
    now_ms,
    queue::{Consumer, ConsumerEvent, QueueError, QueueResult, Record, RecordWaker, TopicPartition},
};

/// A consumer waiting in `poll`: the topics it reads and its own condition variable (always
/// used with the state mutex).
pub(super) struct Sleeper {
    topics: Arc<[String]>,
    wake: Arc<Condvar>,
}

impl State {
    /// Wakes every consumer blocked in `poll` (a change of topics, groups or assignments), and
    /// fires the wakers of the group members and of the consumers reading `topic` (the topic
    /// created or deleted) (see `waiters`; the caller calls them once it released the lock).
    pub(super) fn wake_all(&mut self, topic: Option<&str>) {
        for sleeper in self.sleepers.values() {
            sleeper.wake.notify_one();
        }
        self.waiters.fire_members();
        if let Some(topic) = topic {
            self.waiters.fire_topic(topic);
        }
    }

    /// Wakes the waiting consumers that read `topic` (a record was appended), and fires their
    /// wakers (the caller calls them once it released the lock).
    pub(super) fn wake_readers_of(&mut self, topic: &str) {
        for sleeper in self.sleepers.values() {
            if sleeper.topics.iter().any(|t| t == topic) {
                sleeper.wake.notify_one();
            }
        }
        self.waiters.fire_topic(topic);
    }
}

/// The consumer behind [`crate::queue::Queue::subscribe`] and [`crate::queue::Queue::assign`].
pub(super) struct EmbeddedConsumer {
    inner: Arc<Inner>,
    group: String,
    /// This consumer's key among the sleepers (and, for a group member, in the group).
    key: u64,
    member: Option<u64>,
    /// The topics whose records wake this consumer.
    topics: Arc<[String]>,
    wake: Arc<Condvar>,
    assigned: Vec<TopicPartition>,
    positions: HashMap<TopicPartition, i64>,
    next_start: usize,
    /// A waker may be registered among the state's waiters (`on_records`).
    waiting: bool,
}

impl EmbeddedConsumer {
    /// A consumer of `group` under `key`: a member of the group (which already holds it under
    /// that key) when `is_member`, else reading the partitions `assigned`.
    pub(super) fn new(
        inner: Arc<Inner>,
        group: &str,
        key: u64,
        is_member: bool,
        topics: Arc<[String]>,
        assigned: Vec<TopicPartition>,
    ) -> Self {
        EmbeddedConsumer {
            inner,
            group: group.to_string(),
            key,
            member: is_member.then_some(key),
            topics,
            wake: Arc::new(Condvar::new()),
            assigned,
            positions: HashMap::new(),
            next_start: 0,
            waiting: false,
        }
    }

    fn start_position(state: &State, group: &str, tp: &TopicPartition) -> i64 {
        let committed = state.groups.get(group).and_then(|g| g.committed.get(tp).copied());
        committed.unwrap_or_else(|| state.partition(tp).map_or(0, |p| p.base))
    }

    /// Takes pending partition changes of a group member and applies them locally.
    fn take_events(&mut self, state: &mut State) -> Vec<ConsumerEvent> {
        let Some(id) = self.member else {
            return Vec::new();
        };
        let Some(member) = state.groups.get_mut(&self.group).and_then(|g| g.members.get_mut(&id)) else {
            return Vec::new();
        };
        let events: Vec<ConsumerEvent> = member.pending.drain(..).collect();
        for event in &events {
            match event {
                ConsumerEvent::Revoked(tps) => {
                    self.assigned.retain(|tp| !tps.contains(tp));
                    for tp in tps {
                        self.positions.remove(tp);
                    }
                }
                ConsumerEvent::Assigned(tps) => self.assigned.extend(tps.iter().cloned()),
                ConsumerEvent::Records(_) => {}
            }
        }
        events
    }

    /// Records from memory, round robin over the assigned partitions from one poll to the next,
    /// or, when the next records of a partition are only in the files, the read that fetches them.
    fn read(&mut self, state: &State, max: usize) -> QueueResult<(Vec<Record>, Option<DiskRead>)> {
        let mut out = Vec::new();
        let n = self.assigned.len();
        let start = self.next_start;
        self.next_start = self.next_start.wrapping_add(1);
        for i in 0..n {
            let tp = &self.assigned[(start + i) % n];
            let Some(log) = state.partition(tp) else {
                continue;
            };
            let from = match self.positions.get(tp) {
                Some(p) => *p,
                None => Self::start_position(state, &self.group, tp),
            }
            .max(log.base);
            if from < log.mem_base() {
                if !out.is_empty() {
                    break;
                }
                let read = log.plan_disk_read(tp, from, max).map_err(|e| disk_error("read records", e))?;
                if read.is_some() {
                    return Ok((out, read));
                }
            }
            let next = log.read(tp, from, max, &mut out);
            self.positions.insert(tp.clone(), next);
            if out.len() >= max {
                break;
            }
        }
        Ok((out, None))
    }

    /// Whether a poll would return something now: pending partition changes, or a record past
    /// this consumer's position in an assigned partition.
    fn has_news(&self, state: &State) -> bool {
        let pending = self.member.is_some_and(|id| {
            state.groups.get(&self.group).and_then(|g| g.members.get(&id)).is_some_and(|m| !m.pending.is_empty())
        });
        pending
            || self.assigned.iter().any(|tp| {
                state.partition(tp).is_some_and(|log| {
                    let from =
                        self.positions.get(tp).copied().unwrap_or_else(|| Self::start_position(state, &self.group, tp));
                    log.next_offset() > from.max(log.base)
                })
            })
    }

    /// Runs the cleanup of the assigned partitions (retention by time needs no write to apply).
    fn reclaim_assigned(&self, state: &mut State) {
        let now = now_ms();
        for tp in &self.assigned {
            state.reclaim(tp, now, false);
        }
    }
}

impl Consumer for EmbeddedConsumer {
    fn poll(&mut self, timeout: Duration, max_records: usize) -> QueueResult<Vec<ConsumerEvent>> {
        let deadline = Instant::now() + timeout;
        let inner = self.inner.clone();
        let mut state = inner.state.lock();
        if std::mem::take(&mut self.waiting) {
            state.waiters.remove(self.key);
        }
        let mut idle_cleanup_done = false;
        loop {
            let events = self.take_events(&mut state);
            if !events.is_empty() {
                return Ok(events);
            }
            let (records, disk) = self.read(&state, max_records.max(1))?;
            if !records.is_empty() {
                return Ok(vec![ConsumerEvent::Records(records)]);
            }
            if let Some(read) = disk {
                let tp = read.tp.clone();
                let (records, next) =
                    MutexGuard::unlocked(&mut state, || read.run()).map_err(|e| disk_error("read records", e))?;
                self.positions.insert(tp, next);
                if !records.is_empty() {
                    return Ok(vec![ConsumerEvent::Records(records)]);
                }
                continue;
            }
            if !idle_cleanup_done {
                self.reclaim_assigned(&mut state);
                idle_cleanup_done = true;
            }
            state.sleepers.insert(self.key, Sleeper { topics: self.topics.clone(), wake: self.wake.clone() });
            let timed_out = self.wake.wait_until(&mut state, deadline).timed_out();
            state.sleepers.remove(&self.key);
            if timed_out {
                return Ok(Vec::new());
            }
        }
    }

    fn commit(&mut self, tp: &TopicPartition, next_offset: i64) -> QueueResult<()> {
        if !self.assigned.contains(tp) {
            return Err(QueueError::NotAssigned(tp.topic.clone(), tp.partition));
        }
        self.inner.state.lock().commit(&self.group, tp, next_offset)
    }

    fn committed(&mut self, tp: &TopicPartition) -> QueueResult<Option<i64>> {
        Ok(self.inner.state.lock().groups.get(&self.group).and_then(|g| g.committed.get(tp).copied()))
    }

    fn seek(&mut self, tp: &TopicPartition, offset: i64) -> QueueResult<()> {
        if !self.assigned.contains(tp) {
            return Err(QueueError::NotAssigned(tp.topic.clone(), tp.partition));
        }
        self.positions.insert(tp.clone(), offset);
        Ok(())
    }

    fn watermarks(&mut self, tp: &TopicPartition) -> QueueResult<(i64, i64)> {
        let state = self.inner.state.lock();
        let topic = state.topics.get(&tp.topic).ok_or_else(|| QueueError::UnknownTopic(tp.topic.clone()))?;
        let log = usize::try_from(tp.partition)
            .ok()
            .and_then(|p| topic.partitions.get(p))
            .ok_or_else(|| QueueError::UnknownPartition(tp.topic.clone(), tp.partition))?;
        Ok((log.base, log.next_offset()))
    }

    fn on_records(&mut self, waker: RecordWaker) -> bool {
        let mut state = self.inner.state.lock();
        // Checked under the lock the producers append under: a record appended before this is
        // seen here, one appended after it fires the waker.
        if self.has_news(&state) {
            state.waiters.remove(self.key);
            self.waiting = false;
            drop(state);
            waker();
            return true;
        }
        state.waiters.insert(self.key, self.topics.clone(), self.member.is_some(), waker);
        self.waiting = true;
        true
    }
}

impl Drop for EmbeddedConsumer {
    fn drop(&mut self) {
        if self.waiting {
            self.inner.state.lock().waiters.remove(self.key);
        }
        if let Some(id) = self.member {
            let mut state = self.inner.state.lock();
            if let Some(g) = state.groups.get_mut(&self.group) {
                g.members.remove(&id);
            }
            state.rebalance(&self.group);
            state.wake_all(None);
            let fired = state.take_fired();
            drop(state);
            waiters::call(fired);
        }
    }
}
