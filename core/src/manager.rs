//! The integration manager: one worker per integration (see [`crate::processor`]), run in turns
//! on a shared pool of threads and parked, owning no thread, while it has nothing to do
//! (`slot`, `pool`); lifecycle messages routed to them, and validation / check-connection
//! requests answered.

mod pool;
mod slot;

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, Ordering},
        mpsc, Arc,
    },
    time::{Duration, Instant},
};

use abi_stable::std_types::RStr;
use parking_lot::Mutex;
use prost::Message as _;
use trib_plugin_api::{abi::StartConfig, driver::ErrorKind};
use uuid::Uuid;

use crate::context::{Context, IntegrationDef};
use crate::{
    manager::slot::Slot,
    processor::{Command, Worker},
    queue::{Partitioning, TopicPartition},
    registry::CallWatch,
    retry::RetryPolicy,
    wire::{
        check_failure, uuid_from_bits, uuid_to_bits, ComponentLifecycleEvent as Lc, FieldErrorProto,
        IntegrationMsgProto, IntegrationValidationRequestProto, IntegrationValidationResponseProto,
        UplinkIntegrationNotificationMsgProto, WIRE_VERSION,
    },
};

struct WorkerEntry {
    commands: mpsc::Sender<Command>,
    slot: Arc<Slot>,
    partition: Option<TopicPartition>,
    abandoned: Arc<AtomicBool>,
    /// The definition the worker runs, to start a fresh worker after the watchdog fired.
    def: IntegrationDef,
    watch: Arc<CallWatch>,
}

impl WorkerEntry {
    /// Hands the worker a command and wakes it to apply it; false when the worker ended.
    fn send(&self, command: Command) -> bool {
        let sent = self.commands.send(command).is_ok();
        self.slot.wake();
        sent
    }
}

impl Drop for WorkerEntry {
    /// A worker nobody can command any more stops (as a worker owning its thread did when its
    /// command channel closed); one that already stopped ignores it.
    fn drop(&mut self) {
        self.send(Command::Stop { delete: false });
    }
}

/// Runs the integrations assigned to this executor.
pub struct Manager {
    ctx: Arc<Context>,
    workers: Mutex<HashMap<Uuid, WorkerEntry>>,
}

impl Manager {
    /// Creates an empty manager.
    pub fn new(ctx: Arc<Context>) -> Self {
        Manager { ctx, workers: Mutex::new(HashMap::new()) }
    }

    /// Shared context.
    pub fn context(&self) -> &Arc<Context> {
        &self.ctx
    }

    /// Ids of the integrations with a worker.
    pub fn running(&self) -> Vec<Uuid> {
        self.workers.lock().keys().copied().collect()
    }

    /// How many of the workers are parked (own no thread) now.
    pub fn parked(&self) -> usize {
        self.workers.lock().values().filter(|w| w.slot.is_parked()).count()
    }

    /// The threads of the process's worker pool (shared by every executor of the process),
    /// busy or free.
    pub fn worker_threads() -> usize {
        pool::POOL.threads()
    }

    /// Applies a lifecycle message read from downlink partition `tp`.
    pub fn handle_lifecycle(&self, msg: &IntegrationMsgProto, tp: Option<&TopicPartition>) {
        let id = uuid_from_bits(msg.integration_id_msb, msg.integration_id_lsb);
        let event = Lc::try_from(msg.event).unwrap_or(Lc::Updated);
        match event {
            Lc::Deleted => self.stop(id, true),
            Lc::Created | Lc::Updated | Lc::Reinit => match IntegrationDef::from_msg(msg) {
                Some(def) => self.apply(def, tp),
                None => {
                    tracing::warn!(integration_id = %id, "Lifecycle message without configuration was ignored.")
                }
            },
            other => {
                tracing::debug!(integration_id = %id, event = other.name(), "Ignoring lifecycle event.")
            }
        }
    }

    fn apply(&self, def: IntegrationDef, tp: Option<&TopicPartition>) {
        let mut workers = self.workers.lock();
        if let Some(w) = workers.get_mut(&def.id) {
            let enabled = def.enabled;
            if w.send(Command::Apply(def.clone())) {
                w.def = def.clone();
                if !enabled {
                    if let Some(w) = workers.remove(&def.id) {
                        drop(workers);
                        self.join_or_abandon(def.id, w);
                    }
                }
                return;
            }
            workers.remove(&def.id);
        }
        if !def.enabled {
            tracing::debug!(integration_id = %def.id, "Integration is disabled.");
            return;
        }
        let (tx, rx) = mpsc::channel();
        let id = def.id;
        let abandoned = Arc::new(AtomicBool::new(false));
        let watch = Arc::new(CallWatch::default());
        let worker = Worker::new(self.ctx.clone(), def.clone(), rx, abandoned.clone(), watch.clone());
        let slot = Slot::start(Box::new(worker));
        workers.insert(id, WorkerEntry { commands: tx, slot, partition: tp.cloned(), abandoned, def, watch });
    }

    /// Stops (and with `delete`, removes the queue data of) an integration.
    pub fn stop(&self, id: Uuid, delete: bool) {
        let entry = self.workers.lock().remove(&id);
        if let Some(w) = entry {
            w.send(Command::Stop { delete });
            self.join_or_abandon(id, w);
        }
    }

    /// Waits for a stopping worker at most `INTEGRATIONS_DESTROY_FORCED_SHUTDOWN_TIMEOUT_MS`.
    /// A worker still busy then (a driver call that does not return) is abandoned: it may never
    /// commit again, its integration is reported FAILED with the reason, and the caller (the
    /// downlink consumer, a shutdown) goes on. Its thread is left to finish or hang on its own.
    fn join_or_abandon(&self, id: Uuid, worker: WorkerEntry) {
        let deadline = Instant::now() + self.ctx.config.forced_shutdown_timeout;
        if worker.slot.wait_done(deadline) {
            return;
        }
        worker.abandoned.store(true, Ordering::Relaxed);
        let reason = format!(
            "the integration did not stop within {} ms (a driver call did not return); its worker was abandoned",
            self.ctx.config.forced_shutdown_timeout.as_millis()
        );
        tracing::error!(integration_id = %id, "{reason}");
        self.ctx.events.error(id, crate::events::ErrorMethod::OnMsgProcess, &reason);
        self.ctx.events.lifecycle(id, Lc::Failed, Some(&reason));
    }

    /// The watchdog's round: a worker whose driver call is more than `TB_IE_MSG_WATCHDOG_GRACE_MS`
    /// past its deadline is abandoned (it commits nothing more and exits if the call ever
    /// returns), its integration reported FAILED with the reason, and a fresh worker started with
    /// a new driver instance; the uncommitted pack is delivered again.
    pub fn watchdog(&self) {
        let grace = self.ctx.config.watchdog_grace;
        let now = trib_queue::now_ms();
        let stuck: Vec<(Uuid, Duration)> = self
            .workers
            .lock()
            .iter()
            .filter_map(|(id, w)| w.watch.overdue(now).filter(|late| *late > grace).map(|late| (*id, late)))
            .collect();
        for (id, late) in stuck {
            let Some(w) = self.workers.lock().remove(&id) else { continue };
            w.abandoned.store(true, Ordering::Relaxed);
            let reason = format!(
                "a driver call was still running {} ms past its deadline; its worker was abandoned and a fresh one started",
                late.as_millis()
            );
            tracing::error!(integration_id = %id, "{reason}");
            self.ctx.events.error(id, crate::events::ErrorMethod::OnMsgProcess, &reason);
            self.ctx.events.lifecycle(id, Lc::Failed, Some(&reason));
            self.apply(w.def.clone(), w.partition.as_ref());
        }
    }

    /// Stops every integration that came from one of `partitions` (they were revoked).
    pub fn stop_partitions(&self, partitions: &[TopicPartition]) {
        let ids: Vec<Uuid> = self
            .workers
            .lock()
            .iter()
            .filter(|(_, w)| w.partition.as_ref().is_some_and(|p| partitions.contains(p)))
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.stop(id, false);
        }
    }

    /// Stops everything, waiting at most the forced-shutdown timeout.
    pub fn shutdown(&self) {
        let entries: Vec<(Uuid, WorkerEntry)> = self.workers.lock().drain().collect();
        for (_, w) in &entries {
            w.send(Command::Stop { delete: false });
        }
        let deadline = Instant::now() + self.ctx.config.forced_shutdown_timeout;
        for (id, w) in entries {
            if !w.slot.wait_done(deadline) {
                w.abandoned.store(true, Ordering::Relaxed);
                tracing::warn!(integration_id = %id, "Integration did not stop in time; abandoning it.");
            }
        }
    }

    /// Answers a validation or check-connection request on a separate thread.
    pub fn handle_validation(&self, request: IntegrationValidationRequestProto) {
        let ctx = self.ctx.clone();
        let spawned = std::thread::Builder::new().name("ie-commands".into()).spawn(move || answer(&ctx, request));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "Could not start a validation thread.");
        }
    }
}

fn expired(deadline: i64) -> bool {
    deadline > 0 && deadline <= crate::now_ms()
}

fn answer(ctx: &Context, request: IntegrationValidationRequestProto) {
    if expired(request.deadline) {
        tracing::debug!("Integration validation expired.");
        return;
    }
    let (error, field_errors, failure) = match validate(ctx, &request) {
        Ok(()) => (None, Vec::new(), None),
        Err(failure) => (Some(failure.text), failure.fields, Some(failure.kind.to_string())),
    };
    if expired(request.deadline) {
        tracing::debug!("Integration validation expired.");
        return;
    }
    let response = UplinkIntegrationNotificationMsgProto {
        integration_validation_response_msg: Some(IntegrationValidationResponseProto {
            id_msb: request.id_msb,
            id_lsb: request.id_lsb,
            error,
            field_errors,
            executor_service_id: ctx.service_id.clone(),
            failure,
        }),
        wire_version: WIRE_VERSION,
    };
    let topic = ctx.config.topics.notifications(&request.service_id);
    let key = Uuid::new_v4().to_string();
    if let Ok(spec) = ctx.config.topics.notifications_spec(&request.service_id) {
        let _ = ctx.queue.create_topic(&spec);
    }
    let delivery =
        ctx.queue.producer().send(&topic, Partitioning::Fixed(0), Some(key.as_bytes()), &response.encode_to_vec());
    if let Err(e) = crate::queue::wait_delivery(delivery) {
        tracing::warn!(error = %e, topic, "Could not answer a validation request.");
    }
}

/// Why a validation or check-connection request failed: the text, the field errors and which
/// of [`check_failure`]'s classes it is.
struct ValidationFailure {
    text: String,
    fields: Vec<FieldErrorProto>,
    kind: &'static str,
}

impl ValidationFailure {
    fn configuration(text: &str) -> Self {
        ValidationFailure { text: text.to_string(), fields: Vec::new(), kind: check_failure::CONFIGURATION_INVALID }
    }

    /// A driver error, classed by its kind: a configuration error, a connection error, or the
    /// driver's own failure.
    fn from_driver(error: &trib_plugin_api::driver::Error) -> Self {
        let kind = match error.kind {
            ErrorKind::Config => check_failure::CONFIGURATION_INVALID,
            ErrorKind::Connection => check_failure::TARGET_UNREACHABLE,
            _ => check_failure::DRIVER_ERROR,
        };
        ValidationFailure { text: error.message.clone(), fields: Vec::new(), kind }
    }
}

/// Validates the configuration (both request types) and, for CHECK_CONNECTION, connects once:
/// a configuration with field errors is never tried against the target.
fn validate(ctx: &Context, request: &IntegrationValidationRequestProto) -> Result<(), ValidationFailure> {
    let plain = ValidationFailure::configuration;
    let integration = request.configuration.as_ref().ok_or_else(|| plain("Integration configuration is empty!"))?;
    let configuration: serde_json::Value =
        serde_json::from_str(&integration.configuration).map_err(|_| plain("Integration configuration is empty!"))?;
    let client = configuration
        .get("clientConfiguration")
        .filter(|c| !c.is_null())
        .ok_or_else(|| plain("clientConfiguration field is missing!"))?
        .to_string();
    let id = uuid_from_bits(integration.integration_id_msb, integration.integration_id_lsb);
    let mut driver =
        ctx.registry.create(&integration.r#type, &id.to_string()).map_err(|e| ValidationFailure::from_driver(&e))?;
    let errors = driver.validate(&client).map_err(|e| ValidationFailure::from_driver(&e))?;
    // The driver's fields (named from `clientConfiguration`), then the executor's own
    // `retryPolicy` (named from `configuration`), all reported at once.
    let mut fields: Vec<FieldErrorProto> =
        errors.iter().map(|e| FieldErrorProto { field: e.field.to_string(), message: e.message.to_string() }).collect();
    if let Err(policy_errors) = RetryPolicy::of(&configuration, &ctx.config) {
        fields.extend(policy_errors.into_iter().map(|e| FieldErrorProto { field: e.field, message: e.message }));
    }
    if !fields.is_empty() {
        let text = fields.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; ");
        return Err(ValidationFailure { text, fields, kind: check_failure::CONFIGURATION_INVALID });
    }
    if request.r#type != "CHECK_CONNECTION" {
        return Ok(());
    }
    let def = IntegrationDef {
        id,
        integration_type: integration.r#type.clone(),
        name: integration.name.clone(),
        enabled: integration.enabled,
        configuration,
    };
    let (id_text, metadata) = (id.to_string(), def.metadata_json());
    let config = StartConfig {
        integration_id: RStr::from_str(&id_text),
        integration_name: RStr::from_str(&def.name),
        service_id: RStr::from_str(&ctx.service_id),
        client_configuration: RStr::from_str(&client),
        metadata: RStr::from_str(&metadata),
    };
    driver.check_connection(&config).map_err(|e| ValidationFailure::from_driver(&e))
}

/// Request id bits of a new request (used by the broker and tests).
pub fn new_request_id() -> (i64, i64) {
    uuid_to_bits(Uuid::new_v4())
}
