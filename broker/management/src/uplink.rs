//! The uplink consumers of `tbmq.ie.uplink`:
//!
//! * events, through the group `ie-uplink-consumer-group` that every broker node shares, so
//!   each event is stored once per cluster: id and time assigned on receipt, error text
//!   truncated, integration status updated from lifecycle events. A blocking consumer thread
//!   hands each batch to an async task and commits only after the task has stored it, so a
//!   crash re-delivers rather than loses events.
//! * executors' service info, through a group of this node's own
//!   (`ie-uplink-service-info-consumer-group-<serviceId>`), so every node hears every executor
//!   (TBMQ shares one group for both, so each node hears only some executors). It skips events.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread::JoinHandle,
    time::Duration,
};

use prost::Message as _;
use tokio::sync::{mpsc, oneshot};
use trib_queue::{
    queue::{Consumer, ConsumerEvent, Queue, QueueError, Record, TopicPartition},
    topics::TopicNames,
    wire::{uuid_from_bits, IntegrationEventProto, UplinkIntegrationMsgProto},
};
use uuid::Uuid;

use crate::{
    db::Db,
    executors::Executors,
    model::{Event, EventBody},
};

type Batch = (Vec<Record>, oneshot::Sender<()>);

/// Starts the events consumer thread and the task that stores what it reads.
pub fn start(
    queue: Arc<dyn Queue>,
    topics: &TopicNames,
    service_id: &str,
    poll: Duration,
    stop: Arc<AtomicBool>,
    store: Store,
) -> Result<(JoinHandle<()>, tokio::task::JoinHandle<()>), QueueError> {
    queue.create_topic(&topics.uplink_spec()?)?;
    let client_id = format!("{}ie-uplink-consumer-{service_id}", topics.prefix);
    let consumer = queue.subscribe(&topics.uplink_group(), &client_id, &[topics.uplink()])?;
    let (tx, mut rx) = mpsc::channel::<Batch>(4);
    let task = tokio::spawn(async move {
        while let Some((records, done)) = rx.recv().await {
            for r in &records {
                store.handle(&r.value).await;
            }
            let _ = done.send(());
        }
    });
    let thread = spawn_committing("mgmt-uplink", consumer, poll, stop, move |records| {
        let (done_tx, done_rx) = oneshot::channel();
        tx.blocking_send((records, done_tx)).is_ok() && done_rx.blocking_recv().is_ok()
    })?;
    Ok((thread, task))
}

/// Starts this node's consumer of executors' service info (every partition of the uplink topic,
/// from where this node left off; announcements older than the liveness are skipped).
pub fn start_service_info(
    queue: Arc<dyn Queue>,
    topics: &TopicNames,
    service_id: &str,
    poll: Duration,
    stop: Arc<AtomicBool>,
    executors: Arc<Executors>,
) -> Result<JoinHandle<()>, QueueError> {
    queue.create_topic(&topics.uplink_spec()?)?;
    let client_id = format!("{}ie-uplink-service-info-consumer-{service_id}", topics.prefix);
    let consumer = queue.subscribe(&topics.uplink_service_info_group(service_id), &client_id, &[topics.uplink()])?;
    // Commits say only where to resume after a restart: nothing is lost by a failed one.
    spawn_committing("mgmt-service-info", consumer, poll, stop, move |records| {
        for r in &records {
            if let Ok(UplinkIntegrationMsgProto { service_info_proto: Some(info), .. }) =
                UplinkIntegrationMsgProto::decode(r.value.as_ref())
            {
                executors.announce(&info, trib_queue::now_ms());
            }
        }
        true
    })
}

/// Runs `consumer` on a thread called `name` until `stop`: hands every batch of records to
/// `handle`, then commits past it; `handle` returns `false` to end the thread without a commit.
fn spawn_committing(
    name: &'static str,
    mut consumer: Box<dyn Consumer>,
    poll: Duration,
    stop: Arc<AtomicBool>,
    mut handle: impl FnMut(Vec<Record>) -> bool + Send + 'static,
) -> Result<JoinHandle<()>, QueueError> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let events = match consumer.poll(poll, 500) {
                    Ok(e) => e,
                    Err(e) => {
                        tracing::warn!(consumer = name, error = %e, "Uplink poll failed.");
                        std::thread::sleep(poll);
                        continue;
                    }
                };
                for event in events {
                    let ConsumerEvent::Records(records) = event else {
                        continue;
                    };
                    let next = next_offsets(&records);
                    if !handle(records) {
                        return;
                    }
                    for (tp, offset) in next {
                        if let Err(e) = consumer.commit(&tp, offset) {
                            tracing::warn!(consumer = name, partition = %tp, error = %e, "Uplink commit failed.");
                        }
                    }
                }
            }
        })
        .map_err(|e| QueueError::Backend(format!("cannot start the {name} thread: {e}")))
}

/// The offset to commit per partition after `records`.
fn next_offsets(records: &[Record]) -> Vec<(TopicPartition, i64)> {
    let mut next: Vec<(TopicPartition, i64)> = Vec::new();
    for r in records {
        next.retain(|(tp, _)| tp != &r.tp);
        next.push((r.tp.clone(), r.offset + 1));
    }
    next
}

/// Where uplink records go.
#[derive(Debug, Clone)]
pub struct Store {
    /// The database.
    pub db: Db,
    /// Longest stored error text, in characters.
    pub max_symbols: usize,
}

impl Store {
    /// Handles one uplink record; failures are logged (like TBMQ, there is no retry).
    pub async fn handle(&self, value: &[u8]) {
        let msg = match UplinkIntegrationMsgProto::decode(value) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "Undecodable uplink record dropped.");
                return;
            }
        };
        let now = trib_queue::now_ms();
        if let Some(event) = msg.event_proto {
            if let Err(e) = self.store_event(event, now).await {
                tracing::warn!(error = %e, "Uplink event was not stored.");
            }
        }
    }

    async fn store_event(&self, proto: IntegrationEventProto, now: i64) -> Result<(), crate::db::DbError> {
        let entity_id = uuid_from_bits(proto.event_source_id_msb, proto.event_source_id_lsb);
        let truncate = |s: Option<String>| s.map(|s| truncate_chars(s, self.max_symbols));
        let body = if let Some(lc) = proto.lifecycle {
            EventBody::Lifecycle { event: lc.lc_event_type, success: lc.success, error: truncate(lc.error) }
        } else if let Some(err) = proto.error {
            EventBody::Error { method: err.method, error: truncate(err.error) }
        } else if let Some(stats) = proto.statistics {
            EventBody::Stats { messages_processed: stats.messages_processed, errors_occurred: stats.errors_occurred }
        } else {
            tracing::debug!(integration_id = %entity_id, "Uplink event without a body ignored.");
            return Ok(());
        };
        let event = Event { id: Uuid::new_v4(), ts: now, entity_id, service_id: proto.service_id.clone(), body };
        self.db.insert_event(&event).await?;
        if let EventBody::Lifecycle { event: name, error, .. } = &event.body {
            // STARTED -> active; FAILED -> failed with the executor and error; anything else
            // (STOPPED, REINIT) -> pending. A disabled integration still shows Disabled, because
            // the state derivation looks at `enabled` first.
            let status = match name.as_str() {
                "STARTED" => Some(serde_json::json!({"success": true})),
                "FAILED" => Some(serde_json::json!({"success": false, "serviceId": proto.service_id, "error": error})),
                _ => None,
            };
            if !self.db.set_status(entity_id, status.as_ref()).await? {
                tracing::debug!(integration_id = %entity_id, event = %name, "Lifecycle event of an unknown integration.");
            }
        }
        Ok(())
    }
}

/// Cuts a text to at most `max` characters.
pub fn truncate_chars(mut s: String, max: usize) -> String {
    if let Some((at, _)) = s.char_indices().nth(max) {
        s.truncate(at);
    }
    s
}
