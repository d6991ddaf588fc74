//! The validation round-trip: a `VALIDATE` or `CHECK_CONNECTION` request goes to the type's
//! downlink topic under the key `validation:<requestId>` (never an integration id, so the
//! compacted topic never loses a lifecycle record to it), and the answer comes back on this
//! node's notifications topic, where one consumer thread resolves the waiting request.
//!
//! After the answer (or the timeout) a tombstone for the request's key is sent, so that
//! compaction removes the request record.

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
use prost::Message as _;
use tokio::sync::oneshot;
use trib_queue::{
    queue::{ConsumerEvent, Partitioning, Queue, QueueError, TopicPartition},
    topics::TopicNames,
    wire::{
        uuid_from_bits, uuid_to_bits, DownlinkIntegrationMsgProto, IntegrationProto, IntegrationValidationRequestProto,
        IntegrationValidationResponseProto, UplinkIntegrationNotificationMsgProto, WIRE_VERSION,
    },
};
use uuid::Uuid;

use crate::model::Integration;

/// What to ask an executor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// Validate the configuration.
    Validate,
    /// Connect to the target once.
    CheckConnection,
}

impl RequestKind {
    fn wire_name(self) -> &'static str {
        match self {
            RequestKind::Validate => "VALIDATE",
            RequestKind::CheckConnection => "CHECK_CONNECTION",
        }
    }
}

/// Why a request did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ValidationError {
    /// No executor answered in time.
    #[error("no integration executor answered within {0:?}")]
    Timeout(Duration),
    /// An executor answered with an error.
    #[error("{message}")]
    Rejected {
        /// The executor's error text.
        message: String,
        /// Field-level errors `(field, message)`.
        field_errors: Vec<(String, String)>,
        /// Which executor answered.
        executor: String,
        /// What failed (`CONFIGURATION_INVALID`, `TARGET_UNREACHABLE`, `DRIVER_ERROR`), when the
        /// executor says.
        failure: Option<String>,
    },
    /// The request could not be queued.
    #[error("cannot send the request: {0}")]
    Queue(#[from] QueueError),
}

struct Pending {
    answer: oneshot::Sender<IntegrationValidationResponseProto>,
    expires: Instant,
}

type PendingMap = Arc<Mutex<HashMap<Uuid, Pending>>>;

/// Sends requests and matches answers.
pub struct Validator {
    queue: Arc<dyn Queue>,
    topics: TopicNames,
    service_id: String,
    timeout: Duration,
    pending: PendingMap,
}

impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Validator").field("service_id", &self.service_id).finish_non_exhaustive()
    }
}

/// Removes a pending request when its waiter goes away (answered, timed out or cancelled).
struct PendingGuard<'a>(&'a PendingMap, Uuid);

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.0.lock().remove(&self.1);
    }
}

impl Validator {
    /// Creates the validator and starts the notifications consumer thread.
    pub fn start(
        queue: Arc<dyn Queue>,
        topics: TopicNames,
        service_id: String,
        timeout: Duration,
        poll: Duration,
        stop: Arc<AtomicBool>,
    ) -> Result<(Self, JoinHandle<()>), QueueError> {
        queue.create_topic(&topics.notifications_spec(&service_id)?)?;
        let tp = TopicPartition::new(topics.notifications(&service_id), 0);
        let client_id = format!("{}ie-uplink-notifications-consumer-{service_id}", topics.prefix);
        let mut consumer = queue.assign(&topics.notifications_group(&service_id), &client_id, &tp)?;
        // Answers to an earlier run of this node are of no use: start at the end.
        let (_, end) = consumer.watermarks(&tp)?;
        consumer.seek(&tp, end)?;
        let pending: PendingMap = Arc::new(Mutex::new(HashMap::new()));
        let thread = {
            let pending = pending.clone();
            std::thread::Builder::new()
                .name("mgmt-notifications".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        match consumer.poll(poll, 100) {
                            Ok(events) => {
                                for event in events {
                                    if let ConsumerEvent::Records(records) = event {
                                        for r in &records {
                                            resolve(&pending, &r.value);
                                        }
                                        if let Some(last) = records.last() {
                                            let _ = consumer.commit(&last.tp, last.offset + 1);
                                        }
                                    }
                                }
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "Notifications poll failed.");
                                std::thread::sleep(poll);
                            }
                        }
                        let now = Instant::now();
                        pending.lock().retain(|_, p| p.expires > now);
                    }
                })
                .map_err(|e| QueueError::Backend(format!("cannot start the notifications thread: {e}")))?
        };
        Ok((Validator { queue, topics, service_id, timeout, pending }, thread))
    }

    /// Asks an executor of the integration's type and waits for its answer.
    /// Cancel-safe: dropping the future forgets the request.
    pub async fn request(&self, kind: RequestKind, integration: &Integration) -> Result<(), ValidationError> {
        let request_id = Uuid::new_v4();
        let (tx, rx) = oneshot::channel();
        self.pending.lock().insert(request_id, Pending { answer: tx, expires: Instant::now() + self.timeout });
        let _guard = PendingGuard(&self.pending, request_id);
        let now = trib_queue::now_ms();
        let (msb, lsb) = uuid_to_bits(request_id);
        let (imsb, ilsb) = uuid_to_bits(integration.id);
        let request = IntegrationValidationRequestProto {
            id_msb: msb,
            id_lsb: lsb,
            service_id: self.service_id.clone(),
            configuration: Some(IntegrationProto {
                integration_id_msb: imsb,
                integration_id_lsb: ilsb,
                created_time: integration.created_time,
                r#type: integration.integration_type.clone(),
                name: integration.name.clone(),
                enabled: integration.enabled,
                configuration: integration.configuration.to_string(),
                additional_info: integration.additional_info.as_ref().map(|v| v.to_string()),
            }),
            r#type: kind.wire_name().into(),
            timestamp: now,
            deadline: now + self.timeout.as_millis() as i64,
        };
        let msg = DownlinkIntegrationMsgProto {
            integration_msg: None,
            validation_request_msg: Some(request),
            wire_version: WIRE_VERSION,
        };
        let topic = self.topics.downlink(&integration.integration_type);
        let key = format!("validation:{request_id}");
        let started = Instant::now();
        let producer = self.queue.producer();
        producer
            .send(&topic, Partitioning::ByKey, Some(key.as_bytes()), &msg.encode_to_vec())
            .await
            .unwrap_or(Err(QueueError::Closed))?;
        let remaining = self.timeout.saturating_sub(started.elapsed());
        let answer = tokio::time::timeout(remaining, rx).await;
        // The request is done either way; let compaction drop it.
        drop(producer.send(&topic, Partitioning::ByKey, Some(key.as_bytes()), &[]));
        let response = match answer {
            Ok(Ok(response)) => response,
            _ => return Err(ValidationError::Timeout(self.timeout)),
        };
        match (response.error, response.field_errors) {
            (None, fields) if fields.is_empty() => Ok(()),
            (error, fields) => Err(ValidationError::Rejected {
                message: error.unwrap_or_else(|| "invalid configuration".into()),
                field_errors: fields.into_iter().map(|f| (f.field, f.message)).collect(),
                executor: response.executor_service_id,
                failure: response.failure,
            }),
        }
    }
}

fn resolve(pending: &PendingMap, value: &[u8]) {
    let response = match UplinkIntegrationNotificationMsgProto::decode(value) {
        Ok(m) => m.integration_validation_response_msg,
        Err(e) => {
            tracing::warn!(error = %e, "Undecodable notification dropped.");
            return;
        }
    };
    let Some(response) = response else { return };
    let id = uuid_from_bits(response.id_msb, response.id_lsb);
    match pending.lock().remove(&id) {
        Some(p) => {
            let _ = p.answer.send(response);
        }
        None => {
            tracing::debug!(request_id = %id, "Answer to an expired or unknown request ignored.")
        }
    }
}
