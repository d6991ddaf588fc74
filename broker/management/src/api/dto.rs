//! Request and response bodies of the REST API (TBMQ's JSON shapes), and their conversions
//! from and to the domain types.

use poem_openapi::{Object, Union};
use serde_json::Value;

use super::{
    error::ApiError,
    json::{JsonObject, Text},
};
use crate::{
    dead_letters::{DeadLetter, DeadLetters},
    health::{Delivery, Health},
    model::{
        DriverInfo, Event, EventBody, EventFilter, ExecutorInfo, Integration, IntegrationInput, IntegrationType, Page,
    },
    service::StatusSummary,
};

/// Login request.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct LoginRequest {
    /// User name.
    pub username: Text,
    /// Password.
    pub password: Text,
}

/// Password change request (ThingsBoard's `changePassword`).
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", deny_unknown_fields)]
pub struct AdminPasswordChange {
    /// The password now.
    pub current_password: Text,
    /// The new password (at least 6 characters, different from the current one).
    pub new_password: Text,
}

/// Refresh request.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", deny_unknown_fields)]
pub struct RefreshRequest {
    /// A refresh token from the login.
    pub refresh_token: Text,
}

/// Tokens.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct LoginResponse {
    /// Access token; send it as `X-Authorization: Bearer <token>`.
    pub token: String,
    /// Refresh token for `POST /api/auth/token`.
    pub refresh_token: String,
}

/// An integration as sent by a client. Read-only fields (`createdTime`, `disconnectedTime`,
/// `status`) are accepted so that a fetched integration can be sent back, and are ignored.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", deny_unknown_fields)]
pub struct IntegrationRequest {
    /// Absent to create, present to update.
    pub id: Option<super::UuidParam>,
    /// Ignored (server-assigned).
    pub created_time: Option<i64>,
    /// Ignored (server-computed).
    pub disconnected_time: Option<i64>,
    /// Unique name, at most 255 characters, without HTML markup.
    pub name: Option<Text>,
    /// Type served by an executor (`HTTP`, `MQTT`, `KAFKA`, ...); cannot change on update.
    #[oai(rename = "type")]
    pub integration_type: Option<Text>,
    /// False when omitted.
    pub enabled: Option<bool>,
    /// `{"clientConfiguration":{..},"topicFilters":[..],"metadata":{..}}`.
    pub configuration: Option<JsonObject>,
    /// Free-form JSON (the UI stores `{"description":".."}`), without HTML markup.
    pub additional_info: Option<Value>,
    /// Ignored (written by executors' lifecycle events).
    pub status: Option<Value>,
}

impl IntegrationRequest {
    /// The domain input.
    pub fn into_input(self) -> Result<IntegrationInput, ApiError> {
        Ok(IntegrationInput {
            id: self.id.map(|id| id.0),
            name: self.name.map(Text::into_inner),
            integration_type: self.integration_type.map(Text::into_inner),
            enabled: self.enabled.unwrap_or(false),
            configuration: self.configuration.map(JsonObject::into_value),
            additional_info: self.additional_info,
        })
    }
}

/// An integration.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct IntegrationDto {
    /// Id.
    pub id: String,
    /// Created at (ms).
    pub created_time: i64,
    /// 0 while enabled, else when it was last saved disabled (ms).
    pub disconnected_time: i64,
    /// Name.
    pub name: String,
    /// Type.
    #[oai(rename = "type")]
    pub integration_type: String,
    /// Enabled flag.
    pub enabled: bool,
    /// Configuration.
    pub configuration: Value,
    /// Additional info.
    pub additional_info: Option<Value>,
    /// `{"success":true}`, `{"success":false,"serviceId":..,"error":..}` or null (pending).
    pub status: Option<Value>,
}

impl From<Integration> for IntegrationDto {
    fn from(i: Integration) -> Self {
        IntegrationDto {
            id: i.id.to_string(),
            created_time: i.created_time,
            disconnected_time: i.disconnected_time,
            name: i.name,
            integration_type: i.integration_type,
            enabled: i.enabled,
            configuration: i.configuration,
            additional_info: i.additional_info,
            status: i.status,
        }
    }
}

/// A page of integrations.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct IntegrationPage {
    /// Items.
    pub data: Vec<IntegrationDto>,
    /// Number of pages.
    pub total_pages: u64,
    /// Number of items.
    pub total_elements: u64,
    /// Whether there is a next page.
    pub has_next: bool,
}

impl From<Page<Integration>> for IntegrationPage {
    fn from(p: Page<Integration>) -> Self {
        IntegrationPage {
            data: p.data.into_iter().map(Into::into).collect(),
            total_pages: p.total_pages,
            total_elements: p.total_elements,
            has_next: p.has_next,
        }
    }
}

/// An event (TBMQ's `EventInfo`).
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct EventInfo {
    /// Id.
    pub id: String,
    /// Received at (ms).
    pub created_time: i64,
    /// `LC_EVENT`, `ERROR` or `STATS`.
    #[oai(rename = "type")]
    pub event_type: String,
    /// Integration id.
    pub entity_id: String,
    /// LC: `{"server","event","success"[,"error"]}`; ERROR: `{"server","method"[,"error"]}`;
    /// STATS: `{"server","messagesProcessed","errorsOccurred"}`.
    pub body: Value,
}

impl From<Event> for EventInfo {
    fn from(e: Event) -> Self {
        let mut body = match &e.body {
            EventBody::Lifecycle { event, success, .. } => {
                serde_json::json!({"server": e.service_id, "event": event, "success": success})
            }
            EventBody::Error { method, .. } => {
                serde_json::json!({"server": e.service_id, "method": method})
            }
            EventBody::Stats { messages_processed, errors_occurred } => {
                serde_json::json!({"server": e.service_id, "messagesProcessed": messages_processed, "errorsOccurred": errors_occurred})
            }
        };
        if let EventBody::Lifecycle { error: Some(error), .. } | EventBody::Error { error: Some(error), .. } = &e.body {
            body["error"] = Value::String(error.clone());
        }
        EventInfo {
            id: e.id.to_string(),
            created_time: e.ts,
            event_type: e.body.kind().name().to_string(),
            entity_id: e.entity_id.to_string(),
            body,
        }
    }
}

/// A page of events.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct EventPage {
    /// Items.
    pub data: Vec<EventInfo>,
    /// Number of pages.
    pub total_pages: u64,
    /// Number of items.
    pub total_elements: u64,
    /// Whether there is a next page.
    pub has_next: bool,
}

impl From<Page<Event>> for EventPage {
    fn from(p: Page<Event>) -> Self {
        EventPage {
            data: p.data.into_iter().map(Into::into).collect(),
            total_pages: p.total_pages,
            total_elements: p.total_elements,
            has_next: p.has_next,
        }
    }
}

/// Which events (TBMQ's `EventFilter`, polymorphic on `eventType`).
#[derive(Debug, Union)]
#[oai(discriminator_name = "eventType")]
pub enum EventFilterRequest {
    /// Lifecycle events.
    #[oai(mapping = "LC_EVENT")]
    Lifecycle(LcEventFilter),
    /// Error events.
    #[oai(mapping = "ERROR")]
    Error(ErrorEventFilter),
    /// Statistics events.
    #[oai(mapping = "STATS")]
    Stats(StatsEventFilter),
}

/// Lifecycle filter; string fields match case-insensitively as "contains".
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", deny_unknown_fields)]
pub struct LcEventFilter {
    /// `LC_EVENT`.
    pub event_type: Text,
    /// Service id.
    pub server: Option<Text>,
    /// Event name (`STARTED`, ...).
    pub event: Option<Text>,
    /// `Success`, or anything else for failures.
    pub status: Option<Text>,
    /// Error text.
    pub error_str: Option<Text>,
}

/// Error filter.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", deny_unknown_fields)]
pub struct ErrorEventFilter {
    /// `ERROR`.
    pub event_type: Text,
    /// Service id.
    pub server: Option<Text>,
    /// Method.
    pub method: Option<Text>,
    /// Error text.
    pub error_str: Option<Text>,
}

/// Statistics filter; bounds count when greater than zero, min inclusive, max exclusive.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", deny_unknown_fields)]
pub struct StatsEventFilter {
    /// `STATS`.
    pub event_type: Text,
    /// Service id.
    pub server: Option<Text>,
    /// Minimum messages processed.
    pub min_messages_processed: Option<i64>,
    /// Maximum messages processed (exclusive).
    pub max_messages_processed: Option<i64>,
    /// Minimum errors.
    pub min_errors_occurred: Option<i64>,
    /// Maximum errors (exclusive).
    pub max_errors_occurred: Option<i64>,
}

impl From<EventFilterRequest> for EventFilter {
    fn from(f: EventFilterRequest) -> Self {
        match f {
            EventFilterRequest::Lifecycle(f) => EventFilter::Lifecycle {
                server: text(f.server),
                event: text(f.event),
                status: text(f.status),
                error_str: text(f.error_str),
            },
            EventFilterRequest::Error(f) => {
                EventFilter::Error { server: text(f.server), method: text(f.method), error_str: text(f.error_str) }
            }
            EventFilterRequest::Stats(f) => EventFilter::Stats {
                server: text(f.server),
                min_messages_processed: f.min_messages_processed,
                max_messages_processed: f.max_messages_processed,
                min_errors_occurred: f.min_errors_occurred,
                max_errors_occurred: f.max_errors_occurred,
            },
        }
    }
}

fn text(value: Option<Text>) -> Option<String> {
    value.map(Text::into_inner)
}

/// Status of an integration with its latest events.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct StatusDto {
    /// Its state now, with why and the delivery figures.
    #[oai(flatten)]
    pub now: StateDto,
    /// Raw status as reported by executors.
    pub status: Option<Value>,
    /// Newest lifecycle event.
    pub last_lifecycle_event: Option<EventInfo>,
    /// Newest error event.
    pub last_error_event: Option<EventInfo>,
    /// Newest statistics event.
    pub last_stats_event: Option<EventInfo>,
}

impl From<StatusSummary> for StatusDto {
    fn from(s: StatusSummary) -> Self {
        StatusDto {
            now: StateDto::new(s.integration.id, s.health),
            status: s.integration.status,
            last_lifecycle_event: s.last_lifecycle.map(Into::into),
            last_error_event: s.last_error.map(Into::into),
            last_stats_event: s.last_stats.map(Into::into),
        }
    }
}

/// The status of an integration now (ours; `GET /api/integrations/status` lists these).
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct StateDto {
    /// Integration id.
    pub integration_id: String,
    /// `Active` only while a live executor runs it and its deliveries succeed; otherwise
    /// `Disabled`, `Pending` (no executor runs it yet) or `Failed`, with `reasonCode` and `reason`.
    pub state: String,
    /// Why it is not Active: `DISABLED`, `NO_EXECUTOR`, `WAITING_FOR_EXECUTOR`, `EXECUTOR_LOST`,
    /// `START_FAILED`, `TARGET_UNREACHABLE` or `FAILING`.
    pub reason_code: Option<String>,
    /// The same as a sentence.
    pub reason: Option<String>,
    /// How its deliveries go, as the executor running it last announced.
    pub delivery: Option<DeliveryDto>,
}

impl StateDto {
    /// The status of integration `id`.
    pub fn new(id: uuid::Uuid, health: Health) -> Self {
        let (reason_code, reason) = match health.reason {
            Some((code, text)) => (Some(code.code().to_string()), Some(text)),
            None => (None, None),
        };
        StateDto {
            integration_id: id.to_string(),
            state: health.state.name().to_string(),
            reason_code,
            reason,
            delivery: health.delivery.map(Into::into),
        }
    }
}

/// One moment of an integration's delivery history (ours).
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct HistoryPointDto {
    /// When this node received the executor's announcement (ms).
    pub time: i64,
    /// The executor running it then.
    pub service_id: String,
    /// Messages delivered per second since the previous point (absent at the first point and
    /// when the counts restarted: another executor took over).
    pub delivered_per_second: Option<f64>,
    /// Messages given up on per second.
    pub failed_per_second: Option<f64>,
    /// Retried messages per second.
    pub retried_per_second: Option<f64>,
    /// Messages waiting in the integration's queue topic.
    pub backlog: Option<i64>,
}

impl From<crate::health::Point> for HistoryPointDto {
    fn from(p: crate::health::Point) -> Self {
        HistoryPointDto {
            time: p.time,
            service_id: p.service_id,
            delivered_per_second: p.delivered_per_sec,
            failed_per_second: p.failed_per_sec,
            retried_per_second: p.retried_per_sec,
            backlog: p.backlog,
        }
    }
}

/// How an integration's deliveries go, as the executor running it last announced (ours).
/// Times are ms since the epoch; counts are since that executor took the integration.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct DeliveryDto {
    /// The executor running it.
    pub service_id: String,
    /// Whether that executor is still heard from.
    pub executor_live: bool,
    /// When this node received the announcement.
    pub reported_time: i64,
    /// Messages delivered per second between its last two announcements.
    pub delivered_per_second: Option<f64>,
    /// Whether the driver instance started.
    pub started: bool,
    /// Last message delivered (absent: none yet).
    pub last_delivered_time: Option<i64>,
    /// Last message not delivered (absent: none yet).
    pub last_error_time: Option<i64>,
    /// The reason of that failure.
    pub last_error: Option<String>,
    /// Driver calls in a row that delivered nothing and failed messages.
    pub consecutive_failures: u64,
    /// Since when those calls fail (absent: not failing).
    pub failing_since: Option<i64>,
    /// Messages waiting in the integration's queue topic (absent: not measured yet).
    pub backlog: Option<i64>,
    /// The driver's word on its connection to the target (absent: the driver does not say).
    pub connected: Option<bool>,
    /// Why it is disconnected.
    pub disconnect_reason: Option<String>,
    /// Messages handed to the driver (TBMQ's `totalMsgs`).
    pub total_msgs: u64,
    /// Messages delivered.
    pub delivered_msgs: u64,
    /// Messages given up on (failed, timed out or rejected).
    pub failed_msgs: u64,
    /// Messages of attempts that were retried.
    pub retried_msgs: u64,
    /// Messages stored as dead letters.
    pub dead_lettered_msgs: u64,
}

impl From<Delivery> for DeliveryDto {
    fn from(d: Delivery) -> Self {
        let time = |ms: i64| (ms > 0).then_some(ms);
        let s = d.status;
        DeliveryDto {
            service_id: d.service_id,
            executor_live: d.executor_live,
            reported_time: d.reported_time,
            delivered_per_second: d.delivered_per_sec,
            started: s.started,
            last_delivered_time: time(s.last_delivered_ts),
            last_error_time: time(s.last_error_ts),
            last_error: s.last_error,
            consecutive_failures: s.consecutive_failures,
            failing_since: time(s.failing_since_ts),
            backlog: s.backlog,
            connected: s.connected,
            disconnect_reason: s.disconnect_reason,
            total_msgs: s.total_msgs,
            delivered_msgs: s.delivered_msgs,
            failed_msgs: s.failed_msgs,
            retried_msgs: s.retried_msgs,
            dead_lettered_msgs: s.dead_lettered_msgs,
        }
    }
}

/// An integration executor.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct ExecutorDto {
    /// Service id.
    pub service_id: String,
    /// Served types as `TYPE@driver-version`.
    pub integration_types: Vec<String>,
    /// Plugin files it refused, one line each.
    pub plugin_errors: Vec<String>,
    /// Last announcement received (ms).
    pub last_seen: i64,
    /// Announced within the last three intervals.
    pub live: bool,
    /// The driver library behind each served type (ours).
    pub drivers: Vec<DriverDto>,
}

impl From<ExecutorInfo> for ExecutorDto {
    fn from(e: ExecutorInfo) -> Self {
        ExecutorDto {
            service_id: e.service_id,
            integration_types: e.integration_types,
            plugin_errors: e.plugin_errors,
            last_seen: e.last_seen,
            live: e.live,
            drivers: e.drivers.into_iter().map(Into::into).collect(),
        }
    }
}

/// A driver library an executor loaded (ours).
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct DriverDto {
    /// Integration type it serves.
    pub integration_type: String,
    /// Its version.
    pub driver_version: String,
    /// The file it was loaded from, on the executor.
    pub file: String,
    /// One-line description.
    pub description: String,
    /// Capability bits (plugin-api `capabilities`).
    pub capabilities: u64,
    /// Whether it declares a configuration schema (`GET /api/integration/types`).
    pub has_config_schema: bool,
}

impl From<DriverInfo> for DriverDto {
    fn from(d: DriverInfo) -> Self {
        DriverDto {
            integration_type: d.integration_type,
            driver_version: d.driver_version,
            file: d.file,
            description: d.description,
            capabilities: d.capabilities,
            has_config_schema: d.config_schema.is_some(),
        }
    }
}

/// An integration type served by live executors (ours), with the JSON Schema of its
/// `clientConfiguration` when its driver declares one: enough to build a configuration form.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct IntegrationTypeDto {
    /// Type (upper case), the `type` of an integration.
    #[oai(rename = "type")]
    pub integration_type: String,
    /// Versions of the drivers serving it.
    pub driver_versions: Vec<String>,
    /// Live executors serving it.
    pub executors: Vec<String>,
    /// A one-line description from its driver.
    pub description: String,
    /// JSON Schema (draft 2020-12 subset) of `configuration.clientConfiguration`; secret fields
    /// carry `"writeOnly": true` and `"x-secret": true`. Absent when the driver declares none.
    pub config_schema: Option<serde_json::Value>,
}

impl From<IntegrationType> for IntegrationTypeDto {
    fn from(t: IntegrationType) -> Self {
        IntegrationTypeDto {
            integration_type: t.integration_type,
            driver_versions: t.driver_versions,
            executors: t.executors,
            description: t.description,
            config_schema: t.config_schema,
        }
    }
}

/// Dead letters of an integration (ours): the messages it gave up on, oldest first.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct DeadLetterPage {
    /// Records in the dead-letter topic now (0 when it does not exist yet).
    pub total: i64,
    /// Dead letters below this offset were replayed; null before the first replay.
    pub replayed_up_to: Option<i64>,
    /// At most `limit` dead letters from `fromOffset`.
    pub data: Vec<DeadLetterDto>,
}

impl From<DeadLetters> for DeadLetterPage {
    fn from(d: DeadLetters) -> Self {
        DeadLetterPage {
            total: d.total,
            replayed_up_to: d.replayed_up_to,
            data: d.data.into_iter().map(Into::into).collect(),
        }
    }
}

/// One dead letter. The message fields are null and `undecodable` is true when the stored
/// record does not decode; the dead-letter fields too when the dead letter itself does not.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct DeadLetterDto {
    /// Offset on the dead-letter topic (`fromOffset` of a next page: the last one + 1).
    pub offset: i64,
    /// Offset of the message on the integration's message topic.
    pub msg_offset: Option<i64>,
    /// Why it was given up (`rejected: ...`, `retry: ...`, `undecodable record`, ...).
    pub reason: Option<String>,
    /// Delivery attempts made.
    pub attempts: Option<u32>,
    /// When it was given up (ms).
    pub failed_at: Option<i64>,
    /// The executor that gave it up.
    pub service_id: Option<String>,
    /// MQTT topic.
    pub topic_name: Option<String>,
    /// Publisher's client id.
    pub client_id: Option<String>,
    /// QoS.
    pub qos: Option<i32>,
    /// Retain flag.
    pub retain: Option<bool>,
    /// Payload, base64 (standard alphabet, padded).
    pub payload: Option<String>,
    /// When the broker queued it for the integration (ms).
    pub received_at: Option<i64>,
    /// The stored record does not decode (a replay skips it).
    pub undecodable: bool,
}

impl From<DeadLetter> for DeadLetterDto {
    fn from(d: DeadLetter) -> Self {
        use base64::Engine as _;
        let undecodable = d.message.is_none();
        let letter = d.letter;
        let message = d.message;
        DeadLetterDto {
            offset: d.offset,
            msg_offset: letter.as_ref().map(|l| l.offset),
            reason: letter.as_ref().map(|l| l.reason.clone()),
            attempts: letter.as_ref().map(|l| l.attempts),
            failed_at: letter.as_ref().map(|l| l.failed_at),
            service_id: letter.map(|l| l.service_id),
            topic_name: message.as_ref().map(|m| m.publish.topic_name.clone()),
            client_id: message.as_ref().map(|m| m.publish.client_id.clone()),
            qos: message.as_ref().map(|m| m.publish.qos),
            retain: message.as_ref().map(|m| m.publish.retain),
            payload: message.as_ref().map(|m| base64::engine::general_purpose::STANDARD.encode(&m.publish.payload)),
            received_at: message.map(|m| m.received_at),
            undecodable,
        }
    }
}

/// What a replay did.
#[derive(Debug, Object)]
pub struct ReplayDto {
    /// Dead letters produced again to the integration's message topic.
    pub replayed: u64,
}
