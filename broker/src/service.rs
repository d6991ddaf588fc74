//! Running the broker service (`TB_SERVICE_TYPE=tbmq`, or the broker half of the all-in-one
//! process): the MQTT broker, the queue forwarder feeding integrations, and the management plane
//! (`trib-management`), wired together, and the retained messages on `tbmq.msg.retained`
//! ([`RetainedTopic`]). The broker never loads a driver: integrations reach executors only
//! through the queue.

use std::{
    net::SocketAddr,
    sync::{atomic::AtomicBool, Arc},
    thread::JoinHandle,
    time::Duration,
};

use trib_management::{AdminCredentials, Management, ManagementConfig, ManagementHandle, SubscriptionSink};
use trib_queue::{
    config::ConfigError,
    queue::{Queue, QueueError},
    topics::TopicNames,
};
use uuid::Uuid;

use crate::{
    cluster::ClusterLink, forward::QueueForwarder, retained_topic::RetainedTopic, Broker, BrokerConfig, BrokerHandle,
    BrokerHooks, Router,
};

/// How long shutdown waits for the queue to store the messages the forwarder handed it.
const SHUTDOWN_FLUSH_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the retained messages reader waits for records per poll (it answers as soon as
/// records come; this bounds how long a stop takes).
const RETAINED_POLL: Duration = Duration::from_millis(100);
/// The same for the cluster readers (client subscriptions, messages from other nodes).
const CLUSTER_POLL: Duration = Duration::from_millis(100);

/// A lookup of configuration variables (see `trib_ops::settings::Settings::lookup`).
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Why the broker service could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Bad broker configuration.
    #[error(transparent)]
    BrokerConfig(#[from] crate::ConfigError),
    /// The MQTT listeners.
    #[error(transparent)]
    Broker(#[from] crate::StartError),
    /// The management plane.
    #[error(transparent)]
    Management(#[from] trib_management::StartError),
    /// The retained messages topic could not be read.
    #[error("retained messages: {0}")]
    Retained(#[source] QueueError),
    /// The cluster topics could not be read.
    #[error("cluster: {0}")]
    Cluster(#[source] QueueError),
}

/// Integration topic filters go into the broker's subscription trie.
struct RouterSubscriptions(Arc<Router>);

impl SubscriptionSink for RouterSubscriptions {
    fn set_integration_subscriptions(&self, integration_id: Uuid, filters: &[String]) {
        let id = integration_id.to_string();
        // One step: a PUBLISH routed meanwhile sees the old filters or the new ones.
        if let Err(e) = self.0.set_integration_subscriptions(&id, filters) {
            tracing::error!(integration_id = %id, error = %e, "Integration topic filters were refused by the broker.");
        }
    }

    fn remove_integration_subscriptions(&self, integration_id: Uuid) {
        self.0.remove_integration(&integration_id.to_string());
    }

    fn integration_subscriptions(&self, integration_id: Uuid) -> Option<Vec<String>> {
        Some(self.0.integration_filters(&integration_id.to_string()))
    }
}

/// A running broker service.
pub struct BrokerService {
    broker: BrokerHandle,
    management: ManagementHandle,
    forwarder: Arc<QueueForwarder>,
    /// The retained messages reader (`None` when `MQTT_RETAIN_AVAILABLE` is false).
    retained: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
    /// The cluster readers.
    cluster: (Arc<AtomicBool>, Vec<JoinHandle<()>>),
    /// True while the MQTT listeners accept connections (a readiness check).
    listening: Arc<AtomicBool>,
}

impl std::fmt::Debug for BrokerService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerService").field("mqtt", &self.broker.tcp_addr()).finish()
    }
}

impl BrokerService {
    /// Starts the MQTT listeners, the forwarder and the management plane on `queue`.
    pub async fn start(lookup: Lookup<'_>, queue: Arc<dyn Queue>) -> Result<Self, ServiceError> {
        // Install the metrics recorder before anything counts.
        let _ = trib_ops::prometheus();
        let mut broker_config = BrokerConfig::default();
        broker_config.apply_env(lookup)?;
        let management_config = management_config(lookup)?;
        let service_id = management_config.effective_service_id();
        let forwarder = QueueForwarder::new(queue.clone(), management_config.topics.clone(), service_id.clone());
        // The management plane restores the integrations' topic filters into the router before
        // the MQTT listeners open: a message accepted earlier would miss its integrations.
        let router = Arc::new(Router::new(Some(forwarder.clone())));
        // Retained messages too: a client subscribing at once must get them.
        let retained = match broker_config.mqtt.retain_available {
            true => Some(restore_retained(queue.clone(), &management_config.topics, &service_id, &router).await?),
            false => None,
        };
        // Other nodes' clients' subscriptions too: a message accepted here must reach them; and
        // this node's persistent sessions of an earlier run.
        let cluster = open_cluster(queue.clone(), &management_config.topics, &service_id, &router).await?;
        let subscriptions = Arc::new(RouterSubscriptions(router.clone()));
        let management = Management::start(management_config, queue, subscriptions).await?;
        // The REST port answers before the MQTT listeners open: readiness waits for them, so a
        // load balancer or a script never sends a device to a port that is not listening yet.
        let listening = Arc::new(AtomicBool::new(false));
        let open = listening.clone();
        management.readiness().add(
            "mqtt",
            Arc::new(move || match open.load(std::sync::atomic::Ordering::Acquire) {
                true => Ok(()),
                false => Err("the MQTT listeners are not open".into()),
            }),
        );
        cluster.set_alive_nodes(Arc::new(management.alive_nodes()));
        let authenticator = crate::auth::stored::from_lookup(lookup, &broker_config, management.credential_store())?;
        let hooks = BrokerHooks { router: Some(router), authenticator: Some(authenticator), ..Default::default() };
        let broker = Broker::start_with(broker_config, hooks).await?;
        listening.store(true, std::sync::atomic::Ordering::Release);
        let stop = Arc::new(AtomicBool::new(false));
        let readers = cluster.follow_broker(&broker, stop.clone()).map_err(ServiceError::Cluster)?;
        let cluster = (stop, readers);
        management.set_listeners(listeners(&broker));
        tracing::info!(
            service_id,
            mqtt = ?broker.tcp_addr(),
            mqtts = ?broker.tls_addr(),
            http = %management.local_addr(),
            "Broker service started."
        );
        Ok(BrokerService { broker, management, forwarder, retained, cluster, listening })
    }

    /// The MQTT TCP listener's address.
    pub fn mqtt_addr(&self) -> Option<SocketAddr> {
        self.broker.tcp_addr()
    }

    /// The MQTT TLS listener's address, if it is enabled.
    pub fn mqtts_addr(&self) -> Option<SocketAddr> {
        self.broker.tls_addr()
    }

    /// The REST API's address.
    pub fn http_addr(&self) -> SocketAddr {
        self.management.local_addr()
    }

    /// What the REST port's `/health/ready` checks besides the database; add to it.
    pub fn readiness(&self) -> &trib_management::ReadinessChecks {
        self.management.readiness()
    }

    /// The broker's router.
    pub fn router(&self) -> &Arc<Router> {
        self.broker.router()
    }

    /// The forwarder (counters of messages handed to integrations).
    pub fn forwarder(&self) -> &Arc<QueueForwarder> {
        &self.forwarder
    }

    /// Stops accepting MQTT connections, hands what the forwarder still holds to the queue and
    /// waits (up to 30 s) until the queue stored it, then stops the management plane.
    pub async fn shutdown(self) {
        self.listening.store(false, std::sync::atomic::Ordering::Release);
        self.broker.shutdown().await;
        let forwarder = self.forwarder.clone();
        match tokio::task::spawn_blocking(move || forwarder.flush(SHUTDOWN_FLUSH_TIMEOUT)).await {
            Ok(Ok(())) => tracing::info!("Integration messages flushed to the queue."),
            Ok(Err(e)) => tracing::error!(error = %e, "Integration messages may be lost: the queue flush failed."),
            Err(e) => tracing::error!(error = %e, "Integration messages may be lost: the queue flush panicked."),
        }
        let (stop, readers) = self.cluster;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = tokio::task::spawn_blocking(move || readers.into_iter().for_each(|r| drop(r.join()))).await;
        if let Some((stop, reader)) = self.retained {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            let _ = tokio::task::spawn_blocking(move || reader.join()).await;
        }
        self.management.shutdown().await;
    }
}

/// Reads `tbmq.msg.retained` into the router's store and starts following it; the router writes
/// its clients' retained messages there from then on.
async fn restore_retained(
    queue: Arc<dyn Queue>,
    names: &TopicNames,
    service_id: &str,
    router: &Arc<Router>,
) -> Result<(Arc<AtomicBool>, JoinHandle<()>), ServiceError> {
    let topic =
        RetainedTopic::open(queue, names, service_id, router, RETAINED_POLL).await.map_err(ServiceError::Retained)?;
    let restored = topic.catch_up().await.map_err(ServiceError::Retained)?;
    let stop = Arc::new(AtomicBool::new(false));
    let reader = topic.follow(stop.clone()).map_err(ServiceError::Retained)?;
    tracing::info!(retained = restored, "Retained messages restored from the queue.");
    Ok((stop, reader))
}

/// Reads the other nodes' clients' subscriptions into the router; the link follows both
/// cluster topics once the broker runs.
async fn open_cluster(
    queue: Arc<dyn Queue>,
    names: &TopicNames,
    service_id: &str,
    router: &Arc<Router>,
) -> Result<ClusterLink, ServiceError> {
    let link =
        ClusterLink::open(queue, names, service_id, router, CLUSTER_POLL).await.map_err(ServiceError::Cluster)?;
    let remote = link.catch_up().await.map_err(ServiceError::Cluster)?;
    tracing::info!(remote_clients = remote, "Other nodes' clients' subscriptions restored from the queue.");
    Ok(link)
}

/// The MQTT listeners this node announces to the cluster, as URLs.
fn listeners(broker: &BrokerHandle) -> Vec<String> {
    let schemes = [("mqtt", broker.tcp_addr()), ("mqtts", broker.tls_addr()), ("ws", broker.ws_addr())];
    schemes.into_iter().filter_map(|(scheme, addr)| addr.map(|a| format!("{scheme}://{a}"))).collect()
}

fn get<T: std::str::FromStr>(lookup: Lookup<'_>, name: &str, default: T) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match lookup(name).filter(|v| !v.trim().is_empty()) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|e: T::Err| ConfigError {
            name: name.into(),
            value: v.clone(),
            reason: e.to_string(),
        }),
    }
}

/// The management plane's settings from TBMQ's variables.
pub fn management_config(lookup: Lookup<'_>) -> Result<ManagementConfig, ConfigError> {
    let d = ManagementConfig::default();
    let secs = |name: &str, default: Duration| get(lookup, name, default.as_secs()).map(Duration::from_secs);
    let millis =
        |name: &str, default: Duration| get(lookup, name, default.as_millis() as u64).map(Duration::from_millis);
    let address: String = get(lookup, "HTTP_BIND_ADDRESS", d.bind.ip().to_string())?;
    let port: u16 = get(lookup, "HTTP_BIND_PORT", d.bind.port())?;
    let bind = format!("{address}:{port}").parse().map_err(|e: std::net::AddrParseError| ConfigError {
        name: "HTTP_BIND_ADDRESS".into(),
        value: address.clone(),
        reason: e.to_string(),
    })?;
    let admin_password: String = get(lookup, "TB_ADMIN_PASSWORD", String::new())?;
    let admin = (!admin_password.is_empty()).then(|| AdminCredentials {
        username: lookup("TB_ADMIN_USERNAME")
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "sysadmin@thingsboard.org".into()),
        password: admin_password,
    });
    // A heartbeat every 0 ms would spin.
    let node_heartbeat_interval = millis("TB_SERVICE_INFO_INTERVAL_MS", d.node_heartbeat_interval)?;
    if node_heartbeat_interval.is_zero() {
        return Err(ConfigError {
            name: "TB_SERVICE_INFO_INTERVAL_MS".into(),
            value: "0".into(),
            reason: "must be above zero".into(),
        });
    }
    Ok(ManagementConfig {
        service_id: get(lookup, "TB_SERVICE_ID", String::new())?,
        bind,
        database_url: get(lookup, "SPRING_DATASOURCE_URL", d.database_url)?,
        database_max_connections: get(lookup, "SPRING_DATASOURCE_MAXIMUM_POOL_SIZE", d.database_max_connections)?,
        topics: TopicNames::from_lookup(lookup)?,
        admin,
        jwt_signing_key: get(lookup, "JWT_TOKEN_SIGNING_KEY", String::new())?,
        jwt_token_expiration: secs("JWT_TOKEN_EXPIRATION_TIME", d.jwt_token_expiration)?,
        jwt_refresh_token_expiration: secs("JWT_REFRESH_TOKEN_EXPIRATION_TIME", d.jwt_refresh_token_expiration)?,
        validation_timeout: secs("INTEGRATIONS_INIT_CONNECTION_CHECK_API_REQUEST_TIMEOUT_SEC", d.validation_timeout)?,
        executor_announce_interval: millis("TB_IE_SERVICE_INFO_INTERVAL_MS", d.executor_announce_interval)?,
        node_heartbeat_interval,
        cleanup_period: secs("INTEGRATIONS_CLEANUP_PERIOD_SEC", d.cleanup_period)?,
        cleanup_ttl: secs("INTEGRATIONS_CLEANUP_TTL_SEC", d.cleanup_ttl)?,
        events_ttl_enabled: get(lookup, "SQL_TTL_EVENTS_ENABLED", d.events_ttl_enabled)?,
        events_ttl_execution_interval: millis("SQL_TTL_EVENTS_EXECUTION_INTERVAL_MS", d.events_ttl_execution_interval)?,
        events_ttl: secs("SQL_TTL_EVENTS_TTL_SEC", d.events_ttl)?,
        events_max_symbols: get(lookup, "SQL_EVENTS_MAX_SYMBOLS", d.events_max_symbols)?,
        uplink_poll_interval: millis("TB_IE_UPLINK_POLL_INTERVAL", d.uplink_poll_interval)?,
        max_body_bytes: get(lookup, "TB_HTTP_MAX_BODY_BYTES", d.max_body_bytes)?,
        max_topic_filters: get(lookup, "INTEGRATIONS_MAX_TOPIC_FILTERS", d.max_topic_filters)?,
        metrics_require_token: get(lookup, "SECURITY_METRICS_REQUIRE_TOKEN", d.metrics_require_token)?,
    })
}
