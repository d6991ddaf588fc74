//! Integrations' subscriptions on every broker node. A change made through any node is written
//! to the compacted `tbmq.client.subscriptions` topic ([`topic`]); every node reads that topic
//! (its own consumer, from the beginning at start, then in real time) and puts what it reads
//! into its broker's trie through the [`SubscriptionSink`]. The node that made the change waits
//! until it read its own record back, so a save answers after this node's trie has the filters,
//! and every node applies the changes in the topic's one order.
//!
//! TBMQ answers `GET /api/subscription/integration` from the node's in-memory subscription
//! cache; [`Local`] is that cache, unless the sink itself reports what its trie holds.
//! The database stays the source of truth for REST; `Service::restore_subscriptions` writes to
//! the topic what it is missing at start.

pub mod topic;

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use parking_lot::Mutex;
use trib_queue::{
    queue::{Queue, QueueError, QueueResult},
    topics::TopicNames,
};
use uuid::Uuid;

use self::topic::{Change, Reader, SubscriptionTopic, CATCH_UP_TIMEOUT};
use crate::{topics::blocking, SubscriptionSink};

/// This node's subscriptions: the topic, and what was applied from it.
pub struct Subscriptions {
    local: Arc<Local>,
    topic: SubscriptionTopic,
    reader: Mutex<Option<Reader>>,
    poll: Duration,
}

impl std::fmt::Debug for Subscriptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriptions").field("local", &self.local).field("topic", &self.topic).finish_non_exhaustive()
    }
}

impl Subscriptions {
    /// Opens the topic (creating it when missing) for the broker's sink. Nothing is applied
    /// until [`Subscriptions::catch_up`].
    pub async fn open(
        queue: Arc<dyn Queue>,
        names: &TopicNames,
        service_id: &str,
        sink: Arc<dyn SubscriptionSink>,
        poll: Duration,
    ) -> QueueResult<Self> {
        let (names, service_id) = (names.clone(), service_id.to_string());
        let (topic, reader) = blocking(move || SubscriptionTopic::open(queue, &names, &service_id)).await?;
        let local = Arc::new(Local { sink, current: Mutex::new(HashMap::new()) });
        Ok(Subscriptions { local, topic, reader: Mutex::new(Some(reader)), poll })
    }

    /// Reads the topic up to now (a marker this node writes), applying every change to the
    /// broker's trie; returns how many integrations have subscriptions then. Called at start,
    /// before the MQTT listeners open and before [`Subscriptions::follow`].
    pub async fn catch_up(&self) -> QueueResult<usize> {
        let (marker, offset) = self.topic.write_marker().await?;
        let mut reader = self.reader.lock().take().ok_or(QueueError::Closed)?;
        let (local, poll) = (self.local.clone(), self.poll);
        let deadline = Instant::now() + CATCH_UP_TIMEOUT;
        let (reader, result) = tokio::task::spawn_blocking(move || {
            let result = reader.read_through(offset, poll, deadline, &|c| local.apply(c));
            (reader, result)
        })
        .await
        .map_err(|e| QueueError::Backend(format!("subscriptions catch-up failed: {e}")))?;
        *self.reader.lock() = Some(reader);
        result?;
        self.topic.remove_marker(&marker).await?;
        Ok(self.local.current.lock().len())
    }

    /// Starts the thread that applies what other nodes (and this one) write, until `stop`.
    pub fn follow(&self, stop: Arc<AtomicBool>) -> QueueResult<JoinHandle<()>> {
        let mut reader = self.reader.lock().take().ok_or(QueueError::Closed)?;
        let (local, poll) = (self.local.clone(), self.poll);
        std::thread::Builder::new()
            .name("mgmt-subscriptions".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Err(e) = reader.poll_once(poll, &|c| local.apply(c)) {
                        tracing::warn!(error = %e, "Subscriptions topic poll failed.");
                        std::thread::sleep(poll);
                    }
                }
            })
            .map_err(|e| QueueError::Backend(format!("cannot start the subscriptions thread: {e}")))
    }

    /// Replaces the integration's subscriptions on every node (empty filters remove them) and
    /// waits until this node applied the change.
    pub async fn set(&self, integration_id: Uuid, filters: &[String]) -> QueueResult<()> {
        let offset = self.write(integration_id, filters).await?;
        self.topic.wait_applied(offset).await
    }

    /// Removes all of the integration's subscriptions on every node and waits until this node
    /// applied the change.
    pub async fn remove(&self, integration_id: Uuid) -> QueueResult<()> {
        self.set(integration_id, &[]).await
    }

    /// Writes the integration's record without waiting for it to be applied; returns its offset.
    pub async fn write(&self, integration_id: Uuid, filters: &[String]) -> QueueResult<i64> {
        self.topic.write(integration_id, &normalized(filters.to_vec())).await
    }

    /// The filters of every integration this node applied, sorted.
    pub fn applied(&self) -> HashMap<Uuid, Vec<String>> {
        self.local.current.lock().clone()
    }

    /// The integration's topic filters on this node, sorted and without duplicates (TBMQ returns
    /// a set); empty when it has none or does not exist.
    pub fn get(&self, integration_id: Uuid) -> Vec<String> {
        match self.local.sink.integration_subscriptions(integration_id) {
            Some(filters) => normalized(filters),
            None => self.local.current.lock().get(&integration_id).cloned().unwrap_or_default(),
        }
    }
}

/// The broker's sink and a record of what was set into it.
struct Local {
    sink: Arc<dyn SubscriptionSink>,
    current: Mutex<HashMap<Uuid, Vec<String>>>,
}

impl std::fmt::Debug for Local {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Local").field("integrations", &self.current.lock().len()).finish_non_exhaustive()
    }
}

impl Local {
    fn apply(&self, change: Change) {
        // One lock around the record and the sink, so both see the changes in one order.
        let mut current = self.current.lock();
        match change {
            Change::Set(id, filters) => {
                let filters = normalized(filters);
                if current.get(&id) == Some(&filters) {
                    return;
                }
                self.sink.set_integration_subscriptions(id, &filters);
                current.insert(id, filters);
            }
            Change::Remove(id) => {
                if current.remove(&id).is_some() {
                    self.sink.remove_integration_subscriptions(id);
                }
            }
        }
    }
}

/// Sorted and without duplicates.
pub fn normalized(mut filters: Vec<String>) -> Vec<String> {
    filters.sort_unstable();
    filters.dedup();
    filters
}
