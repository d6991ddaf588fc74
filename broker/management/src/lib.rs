//! trib-management: the management plane of a broker node, modelled on TBMQ's integrations.
//!
//! * [`db`](crate::db) keeps integrations, their events and administrators (SQLite or PostgreSQL).
//! * `api` serves TBMQ's REST API with JWT login, Swagger UI and the OpenAPI document.
//! * `service` is the save flow: a validation round-trip through an executor, DAO checks, the
//!   subscription sink, a lifecycle event and the lifecycle record on the downlink topic.
//! * `uplink` stores executor events and status; `executors` remembers who serves which types.
//! * `subscriptions` carries integrations' topic filters to every node's trie through the
//!   compacted `tbmq.client.subscriptions` topic; `cluster` is the nodes' heartbeats on
//!   `tbmq.sys.service.info` and this node's view of them.
//! * `tasks` removes queue data of long-disabled integrations and expires old events.
//!
//! It does not route MQTT messages: the broker owns the subscription trie and receives an
//! integration's topic filters through [`SubscriptionSink`].

mod api;
mod auth;
mod cluster;
pub mod config;
mod console;
mod credentials;
mod db;
mod dead_letters;
mod executors;
mod health;
mod model;
mod msg_topic;
mod secrets;
mod service;
mod subscriptions;
mod tasks;
mod topics;
mod uplink;
mod validation;
mod xss;

use std::{
    collections::HashSet,
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread::JoinHandle,
    time::Duration,
};

use poem::{
    listener::{Acceptor, Listener, TcpListener},
    Server,
};
use tokio::sync::watch;
use trib_queue::queue::{Queue, QueueError};
use uuid::Uuid;

pub use crate::config::{AdminCredentials, ManagementConfig};
pub use crate::credentials::{BasicCandidates, BasicMatch, CredentialStore, SslMatch, StoreError};

/// Where an integration's topic filters go: the broker's subscription trie.
/// Called from async code; implementations must not block for long.
pub trait SubscriptionSink: Send + Sync {
    /// Replaces the integration's subscriptions with `filters` (an empty slice clears them).
    fn set_integration_subscriptions(&self, integration_id: Uuid, filters: &[String]);
    /// Removes all of the integration's subscriptions.
    fn remove_integration_subscriptions(&self, integration_id: Uuid);
    /// The integration's topic filters as the trie holds them now, when the sink can tell
    /// (`GET /api/subscription/integration`). `None`, the default, makes the management plane
    /// answer from its record of what it set through this sink.
    fn integration_subscriptions(&self, _integration_id: Uuid) -> Option<Vec<String>> {
        None
    }
}

impl From<service::ServiceError> for StartError {
    fn from(e: service::ServiceError) -> Self {
        match e {
            service::ServiceError::Queue(e) => StartError::Queue(e),
            service::ServiceError::Db(e) => StartError::Db(e),
            other => StartError::Queue(QueueError::Backend(other.to_string())),
        }
    }
}

/// Why the management plane could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database.
    #[error(transparent)]
    Db(#[from] db::DbError),
    /// The queue.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// Creating the administrator.
    #[error("cannot create the administrator: {0}")]
    Auth(#[from] auth::AuthError),
    /// Binding the HTTP port.
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
}

/// The management plane.
#[derive(Debug)]
pub struct Management;

/// A readiness check: `Err` carries the one-line reason `/health/ready` answers with.
pub type ReadinessCheck = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// Checks that `/health/ready` runs besides the database ping, added by whoever wires the
/// process (the all-in-one binary adds its in-process executor's).
#[derive(Clone, Default)]
pub struct ReadinessChecks(Arc<std::sync::RwLock<Vec<(String, ReadinessCheck)>>>);

impl std::fmt::Debug for ReadinessChecks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self.0.read().map(|c| c.iter().map(|(n, _)| n.clone()).collect()).unwrap_or_default();
        f.debug_tuple("ReadinessChecks").field(&names).finish()
    }
}

impl ReadinessChecks {
    /// Adds a check named `name` (the name prefixes its failure reason).
    pub fn add(&self, name: &str, check: ReadinessCheck) {
        if let Ok(mut checks) = self.0.write() {
            checks.push((name.to_string(), check));
        }
    }

    /// The first failing check's reason, as `name: reason`.
    pub fn check(&self) -> Result<(), String> {
        let checks = self.0.read().map(|c| c.clone()).unwrap_or_default();
        for (name, check) in checks {
            check().map_err(|e| format!("{name}: {e}"))?;
        }
        Ok(())
    }
}

/// A running management plane.
pub struct ManagementHandle {
    local_addr: SocketAddr,
    service_id: String,
    stop_threads: Arc<AtomicBool>,
    stop_tasks: watch::Sender<bool>,
    stop_server: Option<tokio::sync::oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<()>,
    threads: Vec<JoinHandle<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    db: db::Db,
    readiness: ReadinessChecks,
    cluster: Arc<cluster::Cluster>,
}

impl std::fmt::Debug for ManagementHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagementHandle")
            .field("local_addr", &self.local_addr)
            .field("service_id", &self.service_id)
            .finish()
    }
}

impl Management {
    /// Connects the database (running migrations), creates the administrator, starts the
    /// uplink and notifications consumers, reads every integration's subscriptions from the
    /// queue into `subscriptions` (and follows them from then on), announces this node, starts
    /// the periodic tasks and serves HTTP on `config.bind`.
    pub async fn start(
        config: ManagementConfig,
        queue: Arc<dyn Queue>,
        subscriptions: Arc<dyn SubscriptionSink>,
    ) -> Result<ManagementHandle, StartError> {
        let service_id = config.effective_service_id();
        let db = db::Db::connect(&config.database_url, config.database_max_connections).await?;
        tracing::info!(backend = db.backend(), "Management database ready.");
        let auth = Arc::new(auth::Auth::new(db.clone(), &config));
        auth.ensure_admin(&config).await?;
        let topics = Arc::new(topics::Topics::new(queue.clone(), config.topics.clone()));
        let executors = Arc::new(executors::Executors::new(config.executor_liveness()));
        let stop_threads = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        let (validator, thread) = validation::Validator::start(
            queue.clone(),
            config.topics.clone(),
            service_id.clone(),
            config.validation_timeout,
            config.uplink_poll_interval,
            stop_threads.clone(),
        )?;
        threads.push(thread);
        let store = uplink::Store { db: db.clone(), max_symbols: config.events_max_symbols };
        let (thread, uplink_task) = uplink::start(
            queue.clone(),
            &config.topics,
            &service_id,
            config.uplink_poll_interval,
            stop_threads.clone(),
            store,
        )?;
        threads.push(thread);
        // From here on, a failure must also stop the consumer threads started above.
        let stop_on_error = |e: StartError| {
            stop_threads.store(true, Ordering::Relaxed);
            e
        };
        let thread = uplink::start_service_info(
            queue.clone(),
            &config.topics,
            &service_id,
            config.uplink_poll_interval,
            stop_threads.clone(),
            executors.clone(),
        )
        .map_err(|e| stop_on_error(e.into()))?;
        threads.push(thread);
        let cluster = Arc::new(cluster::Cluster::new(&service_id, config.node_liveness(), executors.clone()));
        let heartbeats = {
            let (queue, names, cluster) = (queue.clone(), config.topics.clone(), cluster.clone());
            let (interval, poll) = (config.node_heartbeat_interval, config.uplink_poll_interval);
            topics::blocking(move || cluster::Heartbeats::open(queue, &names, cluster, interval, poll)).await
        };
        threads.push(heartbeats.and_then(|h| h.spawn(stop_threads.clone())).map_err(|e| stop_on_error(e.into()))?);
        let subscriptions = subscriptions::Subscriptions::open(
            queue.clone(),
            &config.topics,
            &service_id,
            subscriptions,
            config.uplink_poll_interval,
        )
        .await
        .map_err(|e| stop_on_error(e.into()))?;
        let service = Arc::new(service::Service::new(
            db.clone(),
            topics.clone(),
            validator,
            executors,
            subscriptions,
            service_id.clone(),
            config.max_topic_filters,
        ));
        let restored = service.restore_subscriptions().await.map_err(|e| stop_on_error(e.into()))?;
        tracing::info!(integrations = restored, "Integration subscriptions restored.");
        threads.push(service.follow_subscriptions(stop_threads.clone()).map_err(|e| stop_on_error(e.into()))?);
        let (stop_tasks, stop_rx) = watch::channel(false);
        let mut tasks = vec![uplink_task];
        if !config.cleanup_ttl.is_zero() && !config.cleanup_period.is_zero() {
            tasks.push(tasks::spawn_cleanup(
                db.clone(),
                topics,
                config.cleanup_period,
                config.cleanup_ttl,
                stop_rx.clone(),
            ));
        }
        if config.events_ttl_enabled && !config.events_ttl.is_zero() && !config.events_ttl_execution_interval.is_zero()
        {
            tasks.push(tasks::spawn_event_ttl(
                db.clone(),
                config.events_ttl_execution_interval,
                config.events_ttl,
                stop_rx,
            ));
        }
        let acceptor = match TcpListener::bind(config.bind).into_acceptor().await {
            Ok(a) => a,
            Err(e) => {
                let _ = stop_tasks.send(true);
                return Err(stop_on_error(StartError::Bind(config.bind, e)));
            }
        };
        let local_addr = acceptor.local_addr().first().and_then(|a| a.as_socket_addr().copied()).unwrap_or(config.bind);
        cluster.set_listeners(vec![format!("http://{local_addr}")]);
        let readiness = ReadinessChecks::default();
        let credentials = Arc::new(credentials::Credentials::new(db.clone(), trib_ops::login::PasswordPool::shared()));
        let state = api::State {
            service,
            auth,
            credentials,
            readiness: readiness.clone(),
            cluster: cluster.clone(),
            metrics_require_token: config.metrics_require_token,
        };
        let app = api::app(state, config.max_body_bytes);
        let (stop_server, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let result = Server::new_with_acceptor(acceptor)
                .run_with_graceful_shutdown(app, async move { drop(stopped.await) }, Some(Duration::from_secs(5)))
                .await;
            if let Err(e) = result {
                tracing::error!(error = %e, "Management HTTP server failed.");
            }
        });
        tracing::info!(address = %local_addr, service_id = %service_id, "Management API listening.");
        Ok(ManagementHandle {
            local_addr,
            service_id,
            stop_threads,
            stop_tasks,
            stop_server: Some(stop_server),
            server,
            threads,
            tasks,
            db,
            readiness,
            cluster,
        })
    }
}

impl ManagementHandle {
    /// The address the HTTP server listens on (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// This node's service id.
    pub fn service_id(&self) -> &str {
        &self.service_id
    }

    /// Sets the listeners this node announces to the cluster (URLs such as `mqtt://host:1883`),
    /// once the broker has opened them.
    pub fn set_listeners(&self, listeners: Vec<String>) {
        let http = format!("http://{}", self.local_addr);
        self.cluster.set_listeners(std::iter::once(http).chain(listeners).collect());
    }

    /// A reader of the broker nodes alive now (heard from within three heartbeat intervals,
    /// this node included), for the broker's cluster link: `None` until this node has run for
    /// that long (a node not heard from yet may be alive).
    pub fn alive_nodes(&self) -> impl Fn() -> Option<HashSet<String>> + Send + Sync + 'static {
        let cluster = self.cluster.clone();
        move || cluster.alive_nodes(trib_queue::now_ms())
    }

    /// The MQTT client credentials the broker checks at every CONNECT (one query each, no cache).
    pub fn credential_store(&self) -> CredentialStore {
        CredentialStore::new(self.db.clone())
    }

    /// What `/health/ready` checks besides the database; add to it.
    pub fn readiness(&self) -> &ReadinessChecks {
        &self.readiness
    }

    /// Stops the HTTP server (letting requests finish for up to 5 s), the consumers and the
    /// tasks, and closes the database.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop_server.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.server).await;
        self.stop_threads.store(true, Ordering::Relaxed);
        let _ = self.stop_tasks.send(true);
        let threads = std::mem::take(&mut self.threads);
        let _ = tokio::task::spawn_blocking(move || threads.into_iter().for_each(|t| drop(t.join()))).await;
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
        self.db.close().await;
        tracing::info!("Management plane stopped.");
    }
}

#[cfg(test)]
mod tests;
