//! Queue housekeeping of the management plane: making sure topics exist before producing to
//! them, deleting an integration's message topic and consumer group (and its dead letters),
//! reading and replaying dead letters ([`crate::dead_letters`]), and producing records from
//! async code. Queue calls may block (Kafka admin requests), so they run on the blocking pool.

use std::{collections::HashSet, sync::Arc, time::Instant};

use parking_lot::Mutex;
use trib_queue::{
    queue::{Partitioning, Queue, QueueError, QueueResult, TopicSpec},
    topics::TopicNames,
};
use uuid::Uuid;

use crate::{
    dead_letters::{self, DeadLetters},
    msg_topic::ensure_msg_blocking,
};

/// Topic names plus the queue.
pub struct Topics {
    queue: Arc<dyn Queue>,
    names: TopicNames,
    created: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for Topics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Topics").field("names", &self.names).finish_non_exhaustive()
    }
}

impl Topics {
    /// Wraps a queue.
    pub fn new(queue: Arc<dyn Queue>, names: TopicNames) -> Self {
        Topics { queue, names, created: Mutex::new(HashSet::new()) }
    }

    /// The names.
    pub fn names(&self) -> &TopicNames {
        &self.names
    }

    /// Creates the downlink topic of a type unless this node already did.
    pub async fn ensure_downlink(&self, integration_type: &str) -> QueueResult<()> {
        let spec = self.names.downlink_spec(integration_type)?;
        if self.created.lock().contains(&spec.name) {
            return Ok(());
        }
        self.create(spec.clone()).await?;
        self.created.lock().insert(spec.name);
        Ok(())
    }

    /// Creates an integration's message topic if it does not exist and, when the integration's
    /// consumer group has no committed offset yet, commits the topic's current end for it. Not
    /// cached: the cleanup task or another node may have deleted them.
    ///
    /// Called before the integration's topic filters go into the broker, so its very first start
    /// begins with the first message that matched it, wherever the executor is by then. TBMQ
    /// leaves the offset to the executor, which commits the end when it first gets there: the
    /// messages of that window are never delivered.
    pub async fn ensure_msg(&self, integration_id: Uuid) -> QueueResult<()> {
        let (queue, names) = (self.queue.clone(), self.names.clone());
        blocking(move || ensure_msg_blocking(queue.as_ref(), &names, integration_id)).await
    }

    /// Whether a type's downlink topic exists on the queue.
    pub async fn downlink_exists(&self, integration_type: &str) -> QueueResult<bool> {
        let (queue, name) = (self.queue.clone(), self.names.downlink(integration_type));
        blocking(move || queue.topic_exists(&name)).await
    }

    /// Whether an integration's message topic exists.
    pub async fn msg_exists(&self, integration_id: Uuid) -> QueueResult<bool> {
        let (queue, name) = (self.queue.clone(), self.names.msg(integration_id));
        blocking(move || queue.topic_exists(&name)).await
    }

    /// Deletes an integration's message topic and consumer group.
    pub async fn delete_msg(&self, integration_id: Uuid) -> QueueResult<()> {
        let (queue, topic, group) =
            (self.queue.clone(), self.names.msg(integration_id), self.names.msg_group(integration_id));
        blocking(move || {
            queue.delete_group(&group)?;
            queue.delete_topic(&topic)
        })
        .await
    }

    /// Deletes an integration's dead-letter topic and replay group.
    pub async fn delete_dead_letters(&self, integration_id: Uuid) -> QueueResult<()> {
        let (queue, topic, group) =
            (self.queue.clone(), self.names.dlq(integration_id), self.names.dlq_replay_group(integration_id));
        blocking(move || {
            queue.delete_group(&group)?;
            queue.delete_topic(&topic)
        })
        .await
    }

    /// Up to `limit` dead letters of an integration from `from` (default: the beginning).
    pub async fn dead_letters(
        &self,
        integration_id: Uuid,
        from: Option<i64>,
        limit: usize,
    ) -> QueueResult<DeadLetters> {
        let (queue, names) = (self.queue.clone(), self.names.clone());
        let deadline = Instant::now() + dead_letters::READ_DEADLINE;
        blocking(move || dead_letters::read(queue.as_ref(), &names, integration_id, from, limit, deadline)).await
    }

    /// Replays an integration's dead letters not replayed yet to its message topic; returns how many.
    pub async fn replay_dead_letters(&self, integration_id: Uuid) -> QueueResult<u64> {
        let (queue, names) = (self.queue.clone(), self.names.clone());
        let deadline = Instant::now() + dead_letters::READ_DEADLINE;
        blocking(move || dead_letters::replay(queue.as_ref(), &names, integration_id, deadline)).await
    }

    /// Produces a record by key and waits until the queue stored it.
    pub async fn send(&self, topic: &str, key: &[u8], value: &[u8]) -> QueueResult<()> {
        self.queue
            .producer()
            .send(topic, Partitioning::ByKey, Some(key), value)
            .await
            .unwrap_or(Err(QueueError::Closed))?;
        Ok(())
    }

    async fn create(&self, spec: TopicSpec) -> QueueResult<()> {
        let queue = self.queue.clone();
        blocking(move || queue.create_topic(&spec)).await
    }
}

/// Runs a blocking queue call on the blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> QueueResult<T> + Send + 'static) -> QueueResult<T> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| Err(QueueError::Backend(format!("queue task failed: {e}"))))
}
