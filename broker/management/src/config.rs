//! Settings of the management plane, with TBMQ's defaults (`thingsboard-mqtt-broker.yml`).
//!
//! Plain Rust: reading them from YAML or the environment is the binary's job.

use std::{net::SocketAddr, time::Duration};

use trib_queue::topics::TopicNames;

/// Settings of [`crate::Management`].
#[derive(Debug, Clone)]
pub struct ManagementConfig {
    /// This broker node's service id (`TB_SERVICE_ID`); validation answers come back on
    /// `tbmq.ie.uplink.notifications.<service_id>`. Empty means the host name.
    pub service_id: String,
    /// Where the REST API listens (`HTTP_BIND_ADDRESS` / `HTTP_BIND_PORT`, TBMQ: 0.0.0.0:8083).
    pub bind: SocketAddr,
    /// Database URL: `sqlite://<path>?mode=rwc` or `postgres://user@host:port/db`.
    pub database_url: String,
    /// Maximum connections of the database pool.
    pub database_max_connections: u32,
    /// Queue topic names and properties, shared with the executors.
    pub topics: TopicNames,
    /// Administrator created on first start; `None` with an empty user table means a random
    /// password is generated and logged once at WARN.
    pub admin: Option<AdminCredentials>,
    /// HS256 key for JWTs (`JWT_TOKEN_SIGNING_KEY`); empty means a random key per start
    /// (tokens then do not survive a restart).
    pub jwt_signing_key: String,
    /// Lifetime of an access token (`JWT_TOKEN_EXPIRATION_TIME`, 9000 s).
    pub jwt_token_expiration: Duration,
    /// Lifetime of a refresh token (`JWT_REFRESH_TOKEN_EXPIRATION_TIME`, 604800 s).
    pub jwt_refresh_token_expiration: Duration,
    /// How long a save or check waits for an executor's answer
    /// (`INTEGRATIONS_INIT_CONNECTION_CHECK_API_REQUEST_TIMEOUT_SEC`, 20 s).
    pub validation_timeout: Duration,
    /// How often executors announce themselves (`TB_IE_SERVICE_INFO_INTERVAL_MS`, 10 s); an
    /// executor not heard from for three intervals is no longer live.
    pub executor_announce_interval: Duration,
    /// How often this broker node announces itself on `tbmq.sys.service.info`
    /// (`TB_SERVICE_INFO_INTERVAL_MS`, ours, 10 s); a node not heard from for three intervals
    /// is no longer alive in the cluster view.
    pub node_heartbeat_interval: Duration,
    /// How often long-disabled integrations lose their queue data (`INTEGRATIONS_CLEANUP_PERIOD_SEC`, 10800 s).
    pub cleanup_period: Duration,
    /// How long an integration stays disabled before that (`INTEGRATIONS_CLEANUP_TTL_SEC`,
    /// 604800 s); zero disables the cleanup.
    pub cleanup_ttl: Duration,
    /// Whether old events are deleted (`SQL_TTL_EVENTS_ENABLED`, true).
    pub events_ttl_enabled: bool,
    /// How often (`SQL_TTL_EVENTS_EXECUTION_INTERVAL_MS`, 3600000 ms).
    pub events_ttl_execution_interval: Duration,
    /// Age of deleted events (`SQL_TTL_EVENTS_TTL_SEC`, 1209600 s); zero disables.
    pub events_ttl: Duration,
    /// Longest stored error text (`SQL_EVENTS_MAX_SYMBOLS`, 4096).
    pub events_max_symbols: usize,
    /// Poll interval of the uplink and notifications consumers (`TB_IE_UPLINK_POLL_INTERVAL`, 100 ms).
    pub uplink_poll_interval: Duration,
    /// Largest accepted request body in bytes.
    pub max_body_bytes: usize,
    /// Most topic filters one integration may have (`INTEGRATIONS_MAX_TOPIC_FILTERS`, ours,
    /// 1000); a save with more is refused with a field error on `topicFilters`.
    pub max_topic_filters: usize,
    /// Whether `/metrics` needs an administrator's token like `/api/*`
    /// (`SECURITY_METRICS_REQUIRE_TOKEN`, ours, false): its series name integration ids.
    pub metrics_require_token: bool,
}

/// Credentials of the administrator created at first start.
#[derive(Clone)]
pub struct AdminCredentials {
    /// Login name (an e-mail address in TBMQ).
    pub username: String,
    /// Password in clear text; stored as an argon2 hash.
    pub password: String,
}

impl std::fmt::Debug for AdminCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminCredentials").field("username", &self.username).finish_non_exhaustive()
    }
}

impl Default for ManagementConfig {
    fn default() -> Self {
        ManagementConfig {
            service_id: String::new(),
            bind: default_bind(),
            database_url: "sqlite://tributary.db?mode=rwc".into(),
            database_max_connections: 8,
            topics: TopicNames::default(),
            admin: None,
            jwt_signing_key: String::new(),
            jwt_token_expiration: Duration::from_secs(9000),
            jwt_refresh_token_expiration: Duration::from_secs(604_800),
            validation_timeout: Duration::from_secs(20),
            executor_announce_interval: Duration::from_secs(10),
            node_heartbeat_interval: Duration::from_secs(10),
            cleanup_period: Duration::from_secs(10_800),
            cleanup_ttl: Duration::from_secs(604_800),
            events_ttl_enabled: true,
            events_ttl_execution_interval: Duration::from_millis(3_600_000),
            events_ttl: Duration::from_secs(1_209_600),
            events_max_symbols: 4096,
            uplink_poll_interval: Duration::from_millis(100),
            max_body_bytes: default_max_body_bytes(),
            max_topic_filters: default_max_topic_filters(),
            metrics_require_token: false,
        }
    }
}

fn default_bind() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 8083))
}

/// 1 MiB: integration configurations are small; TBMQ's column allows 10 MB of text.
fn default_max_body_bytes() -> usize {
    1024 * 1024
}

/// 1000: far more than a routing rule needs, few enough that one save cannot grow the broker's
/// subscription trie without bound.
fn default_max_topic_filters() -> usize {
    1000
}

impl ManagementConfig {
    /// The service id, or the host name when none is configured.
    pub fn effective_service_id(&self) -> String {
        trib_queue::config::service_id_or_host_name(&self.service_id, "tbmq")
    }

    /// How long an executor counts as live after its last announcement.
    pub fn executor_liveness(&self) -> Duration {
        self.executor_announce_interval * 3
    }

    /// How long a broker node counts as alive after its last heartbeat.
    pub fn node_liveness(&self) -> Duration {
        self.node_heartbeat_interval * 3
    }
}
