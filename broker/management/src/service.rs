//! What the REST API does with integrations (TBMQ's `IntegrationController` +
//! `DefaultPlatformIntegrationService`): the save flow with the validation round-trip, check,
//! restart, enable/disable, delete, the status summary, and (ours) dead letters.

use std::sync::Arc;

use prost::Message as _;
use serde_json::Value;
use trib_queue::{
    queue::QueueError,
    wire::{
        uuid_to_bits, ComponentLifecycleEvent as Lc, DownlinkIntegrationMsgProto, IntegrationMsgProto, WIRE_VERSION,
    },
};
use uuid::Uuid;

use crate::{
    db::{Db, DbError},
    dead_letters::DeadLetters,
    executors::Executors,
    health::Health,
    model::{Event, EventBody, EventKind, ExecutorInfo, Integration, IntegrationInput, Page, PageLink},
    subscriptions::Subscriptions,
    topics::Topics,
    validation::{RequestKind, ValidationError, Validator},
    xss,
};

/// Why a request failed; the REST layer maps each to a status and TBMQ error code.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The integration does not exist (404).
    #[error("Requested item wasn't found!")]
    NotFound,
    /// Bad input (400).
    #[error("{0}")]
    InvalidArgument(String),
    /// No live executor serves the type (400, at once).
    #[error("{0}")]
    TypeNotServed(String),
    /// Fields failed TBMQ's constraints (`@NoXss`) (400, with field errors).
    #[error("{message}")]
    InvalidFields {
        /// `Validation error: <field> <message>, ...`.
        message: String,
        /// `(field, message)`.
        field_errors: Vec<(String, String)>,
    },
    /// The executor rejected the configuration (400, with field errors).
    #[error("{message}")]
    Rejected {
        /// The executor's message.
        message: String,
        /// `(field, message)`.
        field_errors: Vec<(String, String)>,
        /// What failed, when the executor says (`CONFIGURATION_INVALID`, `TARGET_UNREACHABLE`,
        /// `DRIVER_ERROR`).
        failure: Option<String>,
    },
    /// No executor answered in time (504).
    #[error("{0}")]
    Timeout(String),
    /// The queue failed (503).
    #[error("queue unavailable: {0}")]
    Queue(#[from] QueueError),
    /// The database failed (500).
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Result alias.
pub type ServiceResult<T> = Result<T, ServiceError>;

/// Integration status with the latest events.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusSummary {
    /// The integration.
    pub integration: Integration,
    /// Newest lifecycle event.
    pub last_lifecycle: Option<Event>,
    /// Newest error event.
    pub last_error: Option<Event>,
    /// Newest statistics event.
    pub last_stats: Option<Event>,
    /// The status now, from what executors announce.
    pub health: Health,
}

/// The integration service.
pub struct Service {
    pub(crate) db: Db,
    topics: Arc<Topics>,
    validator: Validator,
    executors: Arc<Executors>,
    subscriptions: Subscriptions,
    service_id: String,
    /// Serializes check-then-write of saves so two saves cannot both take one name.
    save_lock: tokio::sync::Mutex<()>,
    /// Serializes dead-letter replays on this node, so two calls do not replay the same records.
    replay_lock: tokio::sync::Mutex<()>,
    /// Most topic filters one integration may have.
    max_topic_filters: usize,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service").field("service_id", &self.service_id).finish_non_exhaustive()
    }
}

impl Service {
    /// Checks that the database answers (readiness).
    pub async fn ping(&self) -> Result<(), crate::db::DbError> {
        self.db.ping().await
    }

    /// Wires the parts together.
    pub fn new(
        db: Db,
        topics: Arc<Topics>,
        validator: Validator,
        executors: Arc<Executors>,
        subscriptions: Subscriptions,
        service_id: String,
        max_topic_filters: usize,
    ) -> Self {
        Service {
            db,
            topics,
            validator,
            executors,
            subscriptions,
            service_id,
            save_lock: tokio::sync::Mutex::new(()),
            replay_lock: tokio::sync::Mutex::new(()),
            max_topic_filters,
        }
    }

    /// Brings every stored integration's topic filters into the broker's trie (startup): reads
    /// `tbmq.client.subscriptions` up to now, writes to it what disagrees with the database (the
    /// topic lost, or a node stopped between a database write and its record), and reads again
    /// up to now. Returns how many integrations are stored.
    ///
    /// When a type's downlink topic does not exist (the in-memory queue of a restarted
    /// all-in-one process, or a Kafka cluster that lost it), the executors would never learn
    /// about the stored integrations: their lifecycle records are written again from the database.
    pub async fn restore_subscriptions(&self) -> ServiceResult<usize> {
        self.subscriptions.catch_up().await?;
        let all = self.db.all_integrations().await?;
        let mut on_topic = self.subscriptions.applied();
        let mut corrected = 0;
        for i in &all {
            let filters = crate::subscriptions::normalized(i.topic_filters());
            if on_topic.remove(&i.id).unwrap_or_default() != filters {
                self.subscriptions.write(i.id, &filters).await?;
                corrected += 1;
            }
        }
        for gone in on_topic.into_keys() {
            self.subscriptions.write(gone, &[]).await?;
            corrected += 1;
        }
        if corrected > 0 {
            tracing::info!(
                integrations = corrected,
                "Integration subscriptions written from the database to the queue."
            );
            self.subscriptions.catch_up().await?;
        }
        let mut missing: std::collections::HashMap<String, bool> = std::collections::HashMap::new();
        for i in &all {
            let ty = i.integration_type.clone();
            if !missing.contains_key(&ty) {
                let exists = self.topics.downlink_exists(&ty).await.unwrap_or(true);
                missing.insert(ty.clone(), !exists);
            }
            if missing.get(&ty).copied().unwrap_or(false) {
                if let Err(e) = self.resend_lifecycle(i).await {
                    tracing::warn!(integration_id = %i.id, error = %e, "Could not re-send an integration's lifecycle record.");
                }
            }
        }
        Ok(all.len())
    }

    /// Starts applying the subscription changes every node writes (after
    /// [`Service::restore_subscriptions`]).
    pub fn follow_subscriptions(
        &self,
        stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) -> Result<std::thread::JoinHandle<()>, QueueError> {
        self.subscriptions.follow(stop)
    }

    /// Writes an integration's lifecycle record (UPDATED) to the downlink topic again.
    async fn resend_lifecycle(&self, integration: &Integration) -> ServiceResult<()> {
        self.topics.ensure_msg(integration.id).await?;
        self.send_downlink(&integration.integration_type, integration.id, lifecycle_msg(integration, Lc::Updated)).await
    }

    /// One integration.
    pub async fn get(&self, id: Uuid) -> ServiceResult<Integration> {
        self.db.integration(id).await?.ok_or(ServiceError::NotFound)
    }

    /// A page of integrations, of one type when `integration_type` is given (case-insensitive).
    pub async fn list(&self, link: &PageLink, integration_type: Option<&str>) -> ServiceResult<Page<Integration>> {
        Ok(self.db.integrations(link, integration_type).await?)
    }

    /// The integration's topic filters in this node's subscriptions (empty when none or unknown).
    pub fn subscriptions(&self, id: Uuid) -> Vec<String> {
        self.subscriptions.get(id)
    }

    /// This node's service id.
    pub fn service_id(&self) -> &str {
        &self.service_id
    }

    /// Executors heard from.
    pub fn executors(&self) -> Vec<ExecutorInfo> {
        self.executors.all(trib_queue::now_ms())
    }

    /// The integration as REST shows it: the secrets of its `clientConfiguration` masked, by
    /// the configuration schema of its type's driver (see [`crate::secrets`]).
    pub fn shown(&self, mut integration: Integration) -> Integration {
        if let Some(schema) = self.executors.config_schema(&integration.integration_type) {
            if let Some(client) = integration.configuration.get_mut("clientConfiguration") {
                crate::secrets::mask(client, &schema);
            }
        }
        integration
    }

    /// Puts the stored secrets back where a saved or checked configuration of an existing
    /// integration sends their mask (a configuration read over REST and sent back).
    async fn restore_secrets(&self, candidate: &mut Integration) -> ServiceResult<()> {
        let Some(schema) = self.executors.config_schema(&candidate.integration_type) else { return Ok(()) };
        let Some(stored) = self.db.integration(candidate.id).await? else { return Ok(()) };
        if !stored.integration_type.eq_ignore_ascii_case(&candidate.integration_type) {
            return Ok(());
        }
        if let (Some(client), Some(old)) =
            (candidate.configuration.get_mut("clientConfiguration"), stored.configuration.get("clientConfiguration"))
        {
            crate::secrets::unmask(client, old, &schema);
        }
        Ok(())
    }

    /// Integration types live executors serve, with their configuration schemas.
    pub fn integration_types(&self) -> Vec<crate::model::IntegrationType> {
        self.executors.types(trib_queue::now_ms())
    }

    /// Saves (creates or updates) an integration after an executor validated it (TBMQ §2.2).
    pub async fn save(&self, input: IntegrationInput) -> ServiceResult<Integration> {
        let mut candidate = self.candidate(&input)?;
        self.restore_secrets(&mut candidate).await?;
        check_fields(&candidate)?;
        self.round_trip(RequestKind::Validate, &candidate).await?;
        let guard = self.save_lock.lock().await;
        let existing = self.check_for_save(&input, &candidate).await?;
        let now = trib_queue::now_ms();
        let saved = Integration {
            created_time: existing.as_ref().map_or(now, |e| e.created_time),
            disconnected_time: if candidate.enabled { 0 } else { now },
            // A re-enabled integration waits for an executor again.
            status: existing.as_ref().filter(|e| e.enabled || !candidate.enabled).and_then(|e| e.status.clone()),
            ..candidate
        };
        self.db.save_integration(&saved).await?;
        drop(guard);
        let event = if existing.is_some() { Lc::Updated } else { Lc::Created };
        self.publish(&saved, event).await?;
        Ok(saved)
    }

    /// Asks an executor to connect with this configuration once; nothing is saved (TBMQ §2.3).
    pub async fn check(&self, input: IntegrationInput) -> ServiceResult<()> {
        let mut candidate = self.candidate(&input)?;
        self.restore_secrets(&mut candidate).await?;
        self.round_trip(RequestKind::CheckConnection, &candidate).await
    }

    /// Re-initialises an enabled integration and returns it (TBMQ §2.4; TBMQ returns nothing).
    pub async fn restart(&self, id: Uuid) -> ServiceResult<Integration> {
        let integration = self.get(id).await?;
        if !integration.enabled {
            return Err(ServiceError::InvalidArgument("Integration is disabled".into()));
        }
        self.publish(&integration, Lc::Reinit).await?;
        Ok(integration)
    }

    /// Enables or disables an integration without a validation round-trip (its configuration
    /// was validated when it was saved).
    pub async fn set_enabled(&self, id: Uuid, enabled: bool) -> ServiceResult<Integration> {
        let guard = self.save_lock.lock().await;
        let mut integration = self.get(id).await?;
        let was = integration.enabled;
        integration.enabled = enabled;
        integration.disconnected_time = if enabled { 0 } else { trib_queue::now_ms() };
        if enabled && !was {
            integration.status = None;
        }
        self.db.save_integration(&integration).await?;
        drop(guard);
        self.publish(&integration, Lc::Updated).await?;
        Ok(integration)
    }

    /// Deletes an integration (TBMQ §2.5).
    pub async fn delete(&self, id: Uuid) -> ServiceResult<()> {
        let integration = self.get(id).await?;
        if !self.db.delete_integration(id).await? {
            return Err(ServiceError::NotFound);
        }
        self.subscriptions.remove(id).await?;
        self.lifecycle_event(id, Lc::Deleted).await?;
        let (msb, lsb) = uuid_to_bits(id);
        let msg = IntegrationMsgProto {
            integration_id_msb: msb,
            integration_id_lsb: lsb,
            r#type: integration.integration_type.clone(),
            name: None,
            enabled: None,
            configuration: None,
            event: Lc::Deleted as i32,
        };
        self.send_downlink(&integration.integration_type, id, msg).await?;
        if !integration.enabled {
            // No executor runs it, so nobody else would remove its queue data.
            self.topics.delete_msg(id).await?;
        }
        // Its dead letters go too, enabled or not (the executor that stops it removes them
        // again after its wait, in case it stored more in between).
        self.topics.delete_dead_letters(id).await?;
        Ok(())
    }

    /// Up to `limit` dead letters of an integration from `from` (default: the oldest kept).
    pub async fn dead_letters(&self, id: Uuid, from: Option<i64>, limit: usize) -> ServiceResult<DeadLetters> {
        self.get(id).await?;
        Ok(self.topics.dead_letters(id, from, limit).await?)
    }

    /// Replays the dead letters of an integration not replayed yet to its message topic (also
    /// when it is disabled: they wait there until it is enabled); returns how many.
    pub async fn replay_dead_letters(&self, id: Uuid) -> ServiceResult<u64> {
        self.get(id).await?;
        let _one_at_a_time = self.replay_lock.lock().await;
        Ok(self.topics.replay_dead_letters(id).await?)
    }

    /// Status and the latest events.
    pub async fn status(&self, id: Uuid) -> ServiceResult<StatusSummary> {
        let integration = self.get(id).await?;
        Ok(StatusSummary {
            last_lifecycle: self.db.last_event(id, EventKind::Lifecycle).await?,
            last_error: self.db.last_event(id, EventKind::Error).await?,
            last_stats: self.db.last_event(id, EventKind::Stats).await?,
            health: self.health(&integration),
            integration,
        })
    }

    /// The delivery figures of integration `id` over the last 15 minutes, oldest first, from
    /// the announcements of the executors that ran it.
    pub async fn delivery_history(&self, id: Uuid) -> ServiceResult<Vec<crate::health::Point>> {
        self.get(id).await?;
        Ok(crate::health::rates(&self.executors.history(id, trib_queue::now_ms())))
    }

    /// The status now of the integrations among `ids` that exist, in the order asked.
    pub async fn states(&self, ids: &[Uuid]) -> ServiceResult<Vec<(Uuid, Health)>> {
        let mut out = Vec::with_capacity(ids.len());
        for &id in ids {
            if let Some(integration) = self.db.integration(id).await? {
                out.push((id, self.health(&integration)));
            }
        }
        Ok(out)
    }

    /// The status of `integration` now: Active only while a live executor runs it and its
    /// deliveries succeed, otherwise the reason (see [`crate::health`]).
    pub fn health(&self, integration: &Integration) -> Health {
        let now = trib_queue::now_ms();
        let delivery = self.executors.delivery(integration.id, now);
        let served = self.executors.serves(&integration.integration_type, now);
        crate::health::derive(integration, delivery, served, now)
    }

    /// Name and type checks, then the integration as it would be saved (TBMQ §2.2 step 1).
    fn candidate(&self, input: &IntegrationInput) -> ServiceResult<Integration> {
        let name = input.name.clone().unwrap_or_default();
        if name.trim().is_empty() {
            return Err(ServiceError::InvalidArgument("Integration name should be specified!".into()));
        }
        let integration_type = input.integration_type.clone().unwrap_or_default().trim().to_ascii_uppercase();
        if integration_type.is_empty() {
            return Err(ServiceError::InvalidArgument("Integration type should be specified!".into()));
        }
        Ok(Integration {
            id: input.id.unwrap_or_else(Uuid::new_v4),
            created_time: 0,
            disconnected_time: 0,
            name,
            integration_type,
            enabled: input.enabled,
            configuration: input.configuration.clone().unwrap_or(Value::Null),
            additional_info: input.additional_info.clone(),
            status: None,
        })
    }

    async fn round_trip(&self, kind: RequestKind, candidate: &Integration) -> ServiceResult<()> {
        let ty = &candidate.integration_type;
        if !self.executors.serves(ty, trib_queue::now_ms()) {
            let live = self.executors.live_types(trib_queue::now_ms());
            let known = if live.is_empty() { "none".to_string() } else { live.join(", ") };
            return Err(ServiceError::TypeNotServed(format!(
                "Integration type '{ty}' is not served by any running integration executor (types served now: {known})"
            )));
        }
        self.topics.ensure_downlink(ty).await?;
        match self.validator.request(kind, candidate).await {
            Ok(()) => Ok(()),
            Err(ValidationError::Timeout(wait)) => Err(ServiceError::Timeout(format!(
                "No integration executor of type '{ty}' answered the {} request within {} s; nothing was saved",
                match kind {
                    RequestKind::Validate => "validation",
                    RequestKind::CheckConnection => "check-connection",
                },
                wait.as_secs_f64()
            ))),
            Err(ValidationError::Rejected { message, field_errors, failure, .. }) => {
                Err(ServiceError::Rejected { message, field_errors, failure })
            }
            Err(ValidationError::Queue(e)) => Err(ServiceError::Queue(e)),
        }
    }

    /// TBMQ's DAO validation (§1.3); returns the stored integration on update.
    async fn check_for_save(
        &self,
        input: &IntegrationInput,
        candidate: &Integration,
    ) -> ServiceResult<Option<Integration>> {
        let invalid = |m: &str| Err(ServiceError::InvalidArgument(m.to_string()));
        if candidate.name.chars().count() > 255 {
            return invalid("Integration name length must be equal or less than 255");
        }
        if candidate.configuration.is_null() {
            return invalid("Integration configuration should be specified!");
        }
        match candidate.configuration.get("topicFilters") {
            None | Some(Value::Null) => return invalid("Topic filters should be specified!"),
            Some(Value::Array(filters)) => {
                if filters.len() > self.max_topic_filters {
                    let why =
                        format!("must hold at most {} topic filters (got {})", self.max_topic_filters, filters.len());
                    return Err(topic_filters_error(why));
                }
                for f in filters {
                    let Some(f) = f.as_str() else {
                        return invalid("Topic filters should be strings!");
                    };
                    if let Err(why) = validate_topic_filter(f) {
                        return Err(ServiceError::InvalidArgument(format!("Topic filter '{f}' is invalid: {why}")));
                    }
                    if f.starts_with("$share/") {
                        // The broker refuses shared filters for integrations: saved, it would
                        // never receive a message.
                        return Err(topic_filters_error(format!(
                            "shared subscription '{f}' cannot be an integration's topic filter"
                        )));
                    }
                }
            }
            Some(_) => return invalid("Topic filters should be an array!"),
        }
        let existing = match input.id {
            Some(id) => match self.db.integration(id).await? {
                Some(e) => Some(e),
                None => return invalid("Unable to update non-existent Integration!"),
            },
            None => None,
        };
        if let Some(e) = &existing {
            if e.integration_type != candidate.integration_type {
                return invalid("Integration type can not be changed!");
            }
        }
        if let Some(other) = self.db.integration_by_name(&candidate.name).await? {
            if Some(other.id) != input.id {
                return invalid("Integration with such name already exists!");
            }
        }
        Ok(existing)
    }

    /// After a save, restart or enable/disable: message topic, subscriptions, LC event, downlink.
    async fn publish(&self, integration: &Integration, event: Lc) -> ServiceResult<()> {
        self.topics.ensure_msg(integration.id).await?;
        self.subscriptions.set(integration.id, &integration.topic_filters()).await?;
        self.lifecycle_event(integration.id, event).await?;
        self.send_downlink(&integration.integration_type, integration.id, lifecycle_msg(integration, event)).await
    }

    async fn lifecycle_event(&self, id: Uuid, event: Lc) -> ServiceResult<()> {
        let e = Event {
            id: Uuid::new_v4(),
            ts: trib_queue::now_ms(),
            entity_id: id,
            service_id: self.service_id.clone(),
            body: EventBody::Lifecycle { event: event.name().into(), success: true, error: None },
        };
        Ok(self.db.insert_event(&e).await?)
    }

    async fn send_downlink(&self, ty: &str, id: Uuid, msg: IntegrationMsgProto) -> ServiceResult<()> {
        self.topics.ensure_downlink(ty).await?;
        let record = DownlinkIntegrationMsgProto {
            integration_msg: Some(msg),
            validation_request_msg: None,
            wire_version: WIRE_VERSION,
        };
        let topic = self.topics.names().downlink(ty);
        Ok(self.topics.send(&topic, id.to_string().as_bytes(), &record.encode_to_vec()).await?)
    }
}

/// TBMQ's field constraints that come before everything else (`@NoXss` on the name and
/// `additionalInfo`): checked before asking an executor, so a malformed value is refused at
/// once, with a field error per field and TBMQ's message.
fn check_fields(candidate: &Integration) -> ServiceResult<()> {
    let mut field_errors = Vec::new();
    if candidate.additional_info.as_ref().is_some_and(xss::is_malformed_json) {
        field_errors.push(("additionalInfo".to_string(), xss::MALFORMED.to_string()));
    }
    if xss::is_malformed(&candidate.name) {
        field_errors.push(("name".to_string(), xss::MALFORMED.to_string()));
    }
    if field_errors.is_empty() {
        return Ok(());
    }
    let details: Vec<String> = field_errors.iter().map(|(field, message)| format!("{field} {message}")).collect();
    Err(ServiceError::InvalidFields { message: format!("Validation error: {}", details.join(", ")), field_errors })
}

/// A refusal of the `topicFilters` field (ours: the cap and shared filters), in the shape of
/// [`check_fields`]'s errors.
fn topic_filters_error(message: String) -> ServiceError {
    ServiceError::InvalidFields {
        message: format!("Validation error: topicFilters {message}"),
        field_errors: vec![("topicFilters".to_string(), message)],
    }
}

/// TBMQ's `validateTopicFilter` with the defaults (no segment limit, a bare `#` allowed).
pub fn validate_topic_filter(filter: &str) -> Result<(), &'static str> {
    if filter.is_empty() {
        return Err("topic filter is empty");
    }
    if filter.contains('\0') {
        return Err("topic filter contains a NUL character");
    }
    if filter.len() > 65_535 {
        return Err("topic filter is longer than 65535 bytes");
    }
    let levels: Vec<&str> = filter.split('/').collect();
    for (i, level) in levels.iter().enumerate() {
        if level.contains('#') && (*level != "#" || i != levels.len() - 1) {
            return Err("'#' must be the last level and alone in it");
        }
        if level.contains('+') && *level != "+" {
            return Err("'+' must be alone in its level");
        }
    }
    Ok(())
}

/// The lifecycle record of an integration (TBMQ's `IntegrationMsgProto` with the full config).
fn lifecycle_msg(integration: &Integration, event: Lc) -> IntegrationMsgProto {
    let (msb, lsb) = uuid_to_bits(integration.id);
    IntegrationMsgProto {
        integration_id_msb: msb,
        integration_id_lsb: lsb,
        r#type: integration.integration_type.clone(),
        name: Some(integration.name.clone()),
        enabled: Some(integration.enabled),
        configuration: Some(integration.configuration.to_string()),
        event: event as i32,
    }
}
