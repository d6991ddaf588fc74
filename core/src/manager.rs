//! The integration manager: one worker thread per integration (see [`crate::processor`]),
//! lifecycle messages routed to them, and validation / check-connection requests answered.

use std::{
    collections::HashMap,
    sync::{mpsc, Arc},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use abi_stable::std_types::RStr;
use parking_lot::Mutex;
use prost::Message as _;
use trib_plugin_api::abi::StartConfig;
use uuid::Uuid;

use crate::{
    config::ExecutorConfig,
    events::Events,
    processor::{Command, Worker},
    queue::{Partitioning, Queue, TopicPartition},
    registry::Registry,
    stats::Stats,
    wire::{
        uuid_from_bits, uuid_to_bits, ComponentLifecycleEvent as Lc, FieldErrorProto, IntegrationMsgProto,
        IntegrationValidationRequestProto, IntegrationValidationResponseProto, UplinkIntegrationNotificationMsgProto,
        WIRE_VERSION,
    },
};

/// What every worker shares.
pub struct Context {
    /// Settings.
    pub config: ExecutorConfig,
    /// This executor's service id.
    pub service_id: String,
    /// Served drivers.
    pub registry: Registry,
    /// The queue.
    pub queue: Arc<dyn Queue>,
    /// Uplink events.
    pub events: Arc<Events>,
    /// Statistics.
    pub stats: Arc<Stats>,
}

/// An integration as the executor sees it (TBMQ's `IntegrationLifecycleMsg`).
#[derive(Debug, Clone, PartialEq)]
pub struct IntegrationDef {
    /// Id.
    pub id: Uuid,
    /// Type, upper case.
    pub integration_type: String,
    /// Name.
    pub name: String,
    /// Enabled flag.
    pub enabled: bool,
    /// The whole `configuration` object.
    pub configuration: serde_json::Value,
}

impl IntegrationDef {
    /// From a lifecycle message; `None` when it carries no configuration (DELETED).
    pub fn from_msg(msg: &IntegrationMsgProto) -> Option<Self> {
        let configuration = serde_json::from_str(msg.configuration.as_deref()?).unwrap_or(serde_json::Value::Null);
        Some(IntegrationDef {
            id: uuid_from_bits(msg.integration_id_msb, msg.integration_id_lsb),
            integration_type: msg.r#type.to_ascii_uppercase(),
            name: msg.name.clone().unwrap_or_default(),
            enabled: msg.enabled.unwrap_or(false),
            configuration,
        })
    }

    /// `configuration.clientConfiguration` as JSON text.
    pub fn client_configuration(&self) -> Option<String> {
        self.configuration.get("clientConfiguration").filter(|c| !c.is_null()).map(|c| c.to_string())
    }

    /// `{"integrationName": name} ∪ configuration.metadata` (metadata wins), values as text.
    pub fn metadata_json(&self) -> String {
        let mut map = serde_json::Map::new();
        map.insert("integrationName".into(), self.name.clone().into());
        if let Some(serde_json::Value::Object(m)) = self.configuration.get("metadata") {
            for (k, v) in m {
                let text = match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                map.insert(k.clone(), text.into());
            }
        }
        serde_json::Value::Object(map).to_string()
    }
}

struct WorkerEntry {
    commands: mpsc::Sender<Command>,
    thread: JoinHandle<()>,
    partition: Option<TopicPartition>,
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
        if let Some(w) = workers.get(&def.id) {
            let enabled = def.enabled;
            if w.commands.send(Command::Apply(def.clone())).is_ok() {
                if !enabled {
                    if let Some(w) = workers.remove(&def.id) {
                        drop(workers);
                        let _ = w.thread.join();
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
        let worker = Worker::new(self.ctx.clone(), def, rx);
        match std::thread::Builder::new()
            .name(format!("ie-{}", &id.simple().to_string()[..8]))
            .stack_size(512 * 1024)
            .spawn(move || worker.run())
        {
            Ok(thread) => {
                workers.insert(id, WorkerEntry { commands: tx, thread, partition: tp.cloned() });
            }
            Err(e) => {
                tracing::error!(integration_id = %id, error = %e, "Could not start the integration's thread.")
            }
        }
    }

    /// Stops (and with `delete`, removes the queue data of) an integration.
    pub fn stop(&self, id: Uuid, delete: bool) {
        let entry = self.workers.lock().remove(&id);
        if let Some(w) = entry {
            let _ = w.commands.send(Command::Stop { delete });
            let _ = w.thread.join();
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
            let _ = w.commands.send(Command::Stop { delete: false });
        }
        let deadline = Instant::now() + self.ctx.config.forced_shutdown_timeout;
        for (id, w) in entries {
            while !w.thread.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if w.thread.is_finished() {
                let _ = w.thread.join();
            } else {
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
    let (error, field_errors) = match validate(ctx, &request) {
        Ok(()) => (None, Vec::new()),
        Err((text, fields)) => (Some(text), fields),
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

type ValidationFailure = (String, Vec<FieldErrorProto>);

fn validate(ctx: &Context, request: &IntegrationValidationRequestProto) -> Result<(), ValidationFailure> {
    let plain = |text: &str| (text.to_string(), Vec::new());
    let integration = request.configuration.as_ref().ok_or_else(|| plain("Integration configuration is empty!"))?;
    let configuration: serde_json::Value =
        serde_json::from_str(&integration.configuration).map_err(|_| plain("Integration configuration is empty!"))?;
    let client = configuration
        .get("clientConfiguration")
        .filter(|c| !c.is_null())
        .ok_or_else(|| plain("clientConfiguration field is missing!"))?
        .to_string();
    let id = uuid_from_bits(integration.integration_id_msb, integration.integration_id_lsb);
    let mut driver = ctx.registry.create(&integration.r#type, &id.to_string()).map_err(|e| plain(&e.message))?;
    match request.r#type.as_str() {
        "CHECK_CONNECTION" => {
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
            driver.check_connection(&config).map_err(|e| plain(&e.message))
        }
        _ => {
            let errors = driver.validate(&client).map_err(|e| plain(&e.message))?;
            if errors.is_empty() {
                return Ok(());
            }
            let text = errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; ");
            let fields = errors
                .iter()
                .map(|e| FieldErrorProto { field: e.field.to_string(), message: e.message.to_string() })
                .collect();
            Err((text, fields))
        }
    }
}

/// Request id bits of a new request (used by the broker and tests).
pub fn new_request_id() -> (i64, i64) {
    uuid_to_bits(Uuid::new_v4())
}
