//! Consumers that are not polling but asked to be called back when they have something to
//! return ([`crate::queue::Consumer::on_records`]): an integration's worker that parked, owning no
//! thread until its waker is called.
//!
//! The wakers are taken out under the state lock and called after it is released
//! ([`State::take_fired`], [`call`]): a waker may start a thread, which must not hold up the
//! producers. Deliberately not here: consumers blocked in `poll` (condition variables, in
//! `consumer`), and deciding whether records are already waiting (`consumer`).

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use super::State;
use crate::queue::RecordWaker;

/// One registered waker.
struct Waiter {
    topics: Arc<[String]>,
    /// A group member: its partitions change when members come and go.
    member: bool,
    waker: RecordWaker,
}

/// The registered wakers, by consumer key, indexed by topic so that a record only looks at the
/// waiters of its topic.
#[derive(Default)]
pub(super) struct Waiters {
    by_key: HashMap<u64, Waiter>,
    by_topic: HashMap<String, HashSet<u64>>,
    /// Taken out and due to be called once the state lock is released.
    fired: Vec<RecordWaker>,
}

impl Waiters {
    /// Registers (or replaces) the waker of consumer `key`.
    pub(super) fn insert(&mut self, key: u64, topics: Arc<[String]>, member: bool, waker: RecordWaker) {
        self.remove(key);
        for topic in topics.iter() {
            self.by_topic.entry(topic.clone()).or_default().insert(key);
        }
        self.by_key.insert(key, Waiter { topics, member, waker });
    }

    /// Forgets the waker of consumer `key`, uncalled.
    pub(super) fn remove(&mut self, key: u64) {
        self.take(key);
    }

    /// Fires the wakers of the consumers reading `topic`.
    pub(super) fn fire_topic(&mut self, topic: &str) {
        let Some(keys) = self.by_topic.get(topic) else { return };
        let keys: Vec<u64> = keys.iter().copied().collect();
        for key in keys {
            self.fire(key);
        }
    }

    /// Fires the wakers of every group member (memberships or assignments changed).
    pub(super) fn fire_members(&mut self) {
        let keys: Vec<u64> = self.by_key.iter().filter(|(_, w)| w.member).map(|(k, _)| *k).collect();
        for key in keys {
            self.fire(key);
        }
    }

    /// Moves the waker of `key` to the ones due to be called.
    pub(super) fn fire(&mut self, key: u64) {
        if let Some(waiter) = self.take(key) {
            self.fired.push(waiter.waker);
        }
    }

    fn take(&mut self, key: u64) -> Option<Waiter> {
        let waiter = self.by_key.remove(&key)?;
        for topic in waiter.topics.iter() {
            if let Some(keys) = self.by_topic.get_mut(topic) {
                keys.remove(&key);
                if keys.is_empty() {
                    self.by_topic.remove(topic);
                }
            }
        }
        Some(waiter)
    }
}

impl State {
    /// The wakers fired since the last call, to be called (with [`call`]) once the state lock
    /// is released.
    pub(super) fn take_fired(&mut self) -> Vec<RecordWaker> {
        std::mem::take(&mut self.waiters.fired)
    }
}

/// Calls fired wakers; the caller holds no lock of the queue.
pub(super) fn call(wakers: Vec<RecordWaker>) {
    for waker in wakers {
        waker();
    }
}
