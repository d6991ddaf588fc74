//! Domain types of the management plane: integrations, events, paging and filters.
//!
//! No serialization here: the REST layer (`api`) converts to and from its own types, and the
//! database layer (`db`) to and from its rows.

use serde_json::Value;
use uuid::Uuid;

/// An integration (TBMQ's `Integration`).
#[derive(Debug, Clone, PartialEq)]
pub struct Integration {
    /// Id.
    pub id: Uuid,
    /// Created at (ms).
    pub created_time: i64,
    /// 0 while enabled, else when it was last saved disabled (ms).
    pub disconnected_time: i64,
    /// Unique name.
    pub name: String,
    /// Type, upper case.
    pub integration_type: String,
    /// Enabled flag.
    pub enabled: bool,
    /// `{"clientConfiguration":{..},"topicFilters":[..],"metadata":{..}}`.
    pub configuration: Value,
    /// Free-form JSON.
    pub additional_info: Option<Value>,
    /// Last status reported by an executor; `None` = pending.
    pub status: Option<Value>,
}

impl Integration {
    /// `configuration.topicFilters` as strings (non-strings are skipped; saving rejects them).
    pub fn topic_filters(&self) -> Vec<String> {
        self.configuration
            .get("topicFilters")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
            .unwrap_or_default()
    }

    /// What the UI shows (TBMQ's `statusCell`, except that "Pending" means waiting for an executor).
    pub fn state(&self) -> IntegrationState {
        match &self.status {
            _ if !self.enabled => IntegrationState::Disabled,
            None | Some(Value::Null) => IntegrationState::Pending,
            Some(s) if s.get("success").and_then(Value::as_bool) == Some(true) => IntegrationState::Active,
            Some(_) => IntegrationState::Failed,
        }
    }
}

/// Derived state of an integration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntegrationState {
    /// Not enabled.
    Disabled,
    /// Enabled, no executor has reported it started (yet).
    Pending,
    /// An executor reported it started.
    Active,
    /// An executor reported a failure.
    Failed,
}

impl IntegrationState {
    /// Name shown to users.
    pub fn name(self) -> &'static str {
        match self {
            IntegrationState::Disabled => "Disabled",
            IntegrationState::Pending => "Pending",
            IntegrationState::Active => "Active",
            IntegrationState::Failed => "Failed",
        }
    }
}

/// What a client sent to save (create without id, update with id).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IntegrationInput {
    /// Id of the integration to update.
    pub id: Option<Uuid>,
    /// Name.
    pub name: Option<String>,
    /// Type.
    pub integration_type: Option<String>,
    /// Enabled (false when omitted, like TBMQ's primitive boolean).
    pub enabled: bool,
    /// Configuration.
    pub configuration: Option<Value>,
    /// Additional info.
    pub additional_info: Option<Value>,
}

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortOrder {
    /// Ascending.
    Asc,
    /// Descending.
    Desc,
}

/// A page request (TBMQ's `PageLink`); the sort property is already checked by the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct PageLink {
    /// Items per page, at least 1.
    pub page_size: u64,
    /// Zero-based page.
    pub page: u64,
    /// Case-insensitive "contains" on the name (integrations only).
    pub text_search: Option<String>,
    /// Sort property (API name, e.g. `createdTime`) and order.
    pub sort: Option<(String, SortOrder)>,
}

/// One page of results (TBMQ's `PageData`).
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// Items.
    pub data: Vec<T>,
    /// Number of pages.
    pub total_pages: u64,
    /// Number of items.
    pub total_elements: u64,
    /// Whether a next page exists.
    pub has_next: bool,
}

impl<T> Page<T> {
    /// Builds a page from its items and the total count.
    pub fn new(data: Vec<T>, total: u64, link: &PageLink) -> Self {
        let total_pages = total.div_ceil(link.page_size);
        Page { data, total_pages, total_elements: total, has_next: link.page + 1 < total_pages }
    }
}

/// Event kinds (TBMQ's event tables).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// Lifecycle.
    Lifecycle,
    /// Delivery error.
    Error,
    /// Statistics.
    Stats,
}

impl EventKind {
    /// TBMQ's name (`LC_EVENT`, `ERROR`, `STATS`).
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Lifecycle => "LC_EVENT",
            EventKind::Error => "ERROR",
            EventKind::Stats => "STATS",
        }
    }

    /// Parses a name case-insensitively.
    pub fn parse(name: &str) -> Option<Self> {
        [EventKind::Lifecycle, EventKind::Error, EventKind::Stats]
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(name))
    }
}

/// Body of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventBody {
    /// A lifecycle event.
    Lifecycle {
        /// `STARTED`, `CREATED`, ...
        event: String,
        /// Success flag.
        success: bool,
        /// Error text.
        error: Option<String>,
    },
    /// A delivery error.
    Error {
        /// Where (`onMsgProcess`).
        method: String,
        /// Error text.
        error: Option<String>,
    },
    /// Statistics since the previous statistics event.
    Stats {
        /// Delivered messages.
        messages_processed: i64,
        /// Errors.
        errors_occurred: i64,
    },
}

impl EventBody {
    /// Its kind.
    pub fn kind(&self) -> EventKind {
        match self {
            EventBody::Lifecycle { .. } => EventKind::Lifecycle,
            EventBody::Error { .. } => EventKind::Error,
            EventBody::Stats { .. } => EventKind::Stats,
        }
    }
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Id, assigned on receipt.
    pub id: Uuid,
    /// Time of receipt (ms).
    pub ts: i64,
    /// Integration id.
    pub entity_id: Uuid,
    /// Service that produced it.
    pub service_id: String,
    /// Body.
    pub body: EventBody,
}

/// Which events to list or clear (TBMQ's `EventFilter`); empty fields match everything.
#[derive(Debug, Clone, PartialEq)]
pub enum EventFilter {
    /// Lifecycle events.
    Lifecycle {
        /// Service id contains.
        server: Option<String>,
        /// Event name contains.
        event: Option<String>,
        /// `Success` = successful ones; any other non-empty text = failed ones.
        status: Option<String>,
        /// Error text contains.
        error_str: Option<String>,
    },
    /// Error events.
    Error {
        /// Service id contains.
        server: Option<String>,
        /// Method contains.
        method: Option<String>,
        /// Error text contains.
        error_str: Option<String>,
    },
    /// Statistics events; bounds count only when greater than zero; min inclusive, max exclusive.
    Stats {
        /// Service id contains.
        server: Option<String>,
        /// Minimum messages processed.
        min_messages_processed: Option<i64>,
        /// Maximum messages processed (exclusive).
        max_messages_processed: Option<i64>,
        /// Minimum errors.
        min_errors_occurred: Option<i64>,
        /// Maximum errors (exclusive).
        max_errors_occurred: Option<i64>,
    },
}

impl EventFilter {
    /// A filter that matches every event of a kind.
    pub fn all(kind: EventKind) -> Self {
        match kind {
            EventKind::Lifecycle => EventFilter::Lifecycle { server: None, event: None, status: None, error_str: None },
            EventKind::Error => EventFilter::Error { server: None, method: None, error_str: None },
            EventKind::Stats => EventFilter::Stats {
                server: None,
                min_messages_processed: None,
                max_messages_processed: None,
                min_errors_occurred: None,
                max_errors_occurred: None,
            },
        }
    }

    /// The kind it selects.
    pub fn kind(&self) -> EventKind {
        match self {
            EventFilter::Lifecycle { .. } => EventKind::Lifecycle,
            EventFilter::Error { .. } => EventKind::Error,
            EventFilter::Stats { .. } => EventKind::Stats,
        }
    }
}

/// A time window in ms, both ends inclusive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeWindow {
    /// `ts >= start`.
    pub start: Option<i64>,
    /// `ts <= end`.
    pub end: Option<i64>,
}

/// An executor as announced in its service info.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutorInfo {
    /// Service id.
    pub service_id: String,
    /// Served types as announced (`TYPE@driver-version`).
    pub integration_types: Vec<String>,
    /// Plugin files it refused.
    pub plugin_errors: Vec<String>,
    /// When this broker last heard from it (ms).
    pub last_seen: i64,
    /// Whether it was heard from recently enough to count as running.
    pub live: bool,
    /// The drivers behind its types (empty from executors that do not say).
    pub drivers: Vec<DriverInfo>,
}

/// A driver an executor announced (ours).
#[derive(Debug, Clone, PartialEq)]
pub struct DriverInfo {
    /// Integration type (upper case).
    pub integration_type: String,
    /// The driver's version.
    pub driver_version: String,
    /// The library file on the executor.
    pub file: String,
    /// One-line description.
    pub description: String,
    /// Capability bits.
    pub capabilities: u64,
    /// JSON Schema of its `clientConfiguration`, when it declares one (unparsable text is
    /// dropped: the executor already refused it as a schema).
    pub config_schema: Option<serde_json::Value>,
}

/// An integration type served by live executors (ours): what the console needs to build a form.
#[derive(Debug, Clone, PartialEq)]
pub struct IntegrationType {
    /// Type (upper case).
    pub integration_type: String,
    /// Versions of the drivers serving it, sorted.
    pub driver_versions: Vec<String>,
    /// Live executors serving it, sorted.
    pub executors: Vec<String>,
    /// A description from one of its drivers.
    pub description: String,
    /// The configuration schema of the newest driver version that declares one.
    pub config_schema: Option<serde_json::Value>,
}
