//! Running the executor as a service (`TB_SERVICE_TYPE=tbmq-integration-executor`, or inside the
//! all-in-one process): open the queue, load the plugins, start the [`Executor`], and serve the
//! operations endpoints (`/health/live`, `/health/ready`, `/metrics`, `/status`).

use std::{net::SocketAddr, path::Path, sync::Arc};

use poem::{
    get, handler,
    http::StatusCode,
    listener::{Acceptor, Listener, TcpListener},
    web::Data,
    EndpointExt, IntoResponse, Response, Route, Server,
};

use trib_ops::prometheus;

use crate::{
    config::{ConfigError, ExecutorConfig},
    executor::{Executor, ExecutorStatus, StartError, StatusHandle},
    loader::{bundled_driver_files, load_bundled_and_dir, LoadReport},
    queue::{Queue, QueueError},
};

pub use trib_queue::config::Lookup;

/// Why a service could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The queue.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// The executor.
    #[error(transparent)]
    Start(#[from] StartError),
    /// The operations endpoint.
    #[error("cannot listen on {0}: {1}")]
    Bind(String, std::io::Error),
}

/// A running executor service.
pub struct ExecutorService {
    executor: Option<Executor>,
    ops: Option<(tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>)>,
    ops_addr: Option<SocketAddr>,
}

impl std::fmt::Debug for ExecutorService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecutorService").field("ops_addr", &self.ops_addr).finish()
    }
}

impl ExecutorService {
    /// Loads plugins from `TB_PLUGINS_DIR`, starts the executor on `queue`, and serves the
    /// operations endpoints on `HTTP_BIND_ADDRESS:HTTP_BIND_PORT` unless `serve_ops` is false
    /// (the all-in-one process serves them once, on the broker's side).
    pub async fn start(lookup: Lookup<'_>, queue: Arc<dyn Queue>, serve_ops: bool) -> Result<Self, ServiceError> {
        Self::start_with_listeners(lookup, queue, serve_ops, &[]).await
    }

    /// [`ExecutorService::start`] in a process that also listens on `listeners` (name and
    /// address; the all-in-one process passes the broker's REST port): drivers may not connect
    /// to them, nor to the operations endpoint, by the target policy ([`crate::target_policy`]).
    pub async fn start_with_listeners(
        lookup: Lookup<'_>,
        queue: Arc<dyn Queue>,
        serve_ops: bool,
        listeners: &[(&str, SocketAddr)],
    ) -> Result<Self, ServiceError> {
        // Install the metrics recorder before anything counts.
        let _ = prometheus();
        let mut config = ExecutorConfig::from_lookup(lookup)?;
        let ops_bind = format!(
            "{}:{}",
            lookup("HTTP_BIND_ADDRESS").unwrap_or_else(|| "0.0.0.0".into()),
            lookup("HTTP_BIND_PORT").unwrap_or_else(|| "8082".into())
        );
        let mut own = listeners.to_vec();
        if serve_ops {
            // The configured address: the drivers get the policy before the endpoint is bound.
            if let Ok(addr) = ops_bind.parse::<SocketAddr>() {
                own.push(("executor operations endpoint", addr));
            }
        }
        crate::target_policy::deny_own_listeners(&mut config.target_policy, &own);
        tracing::info!(
            deny = %rules_text(config.target_policy.deny_rules()),
            allow = %rules_text(config.target_policy.allow_rules()),
            "Target policy of the drivers (TB_IE_TARGET_DENY / TB_IE_TARGET_ALLOW; allow wins)."
        );
        let plugins = config.plugins_dir.clone();
        let plugins_dir = plugins.clone();
        let report = tokio::task::spawn_blocking(move || load_plugins(&plugins)).await.unwrap_or_default();
        let executor = tokio::task::spawn_blocking(move || Executor::start(config, queue, &report))
            .await
            .map_err(|e| ServiceError::Bind("executor".into(), std::io::Error::other(e.to_string())))??;
        let status = executor.status();
        if status.integration_types.is_empty() {
            tracing::warn!(
                service_id = %status.service_id,
                plugins_dir = %plugins_dir.display(),
                refused = ?status.plugin_errors,
                "This executor serves no integration type: no driver library was loaded and selected (check TB_PLUGINS_DIR and TB_SERVICE_INTEGRATIONS_SUPPORTED/EXCLUDED); it reports not ready."
            );
        }
        tracing::info!(
            service_id = %status.service_id,
            types = ?status.integration_types,
            refused = status.plugin_errors.len(),
            "Integration executor started."
        );
        let executor_handle = executor.status_handle();
        let mut service = ExecutorService { executor: Some(executor), ops: None, ops_addr: None };
        if serve_ops {
            let (addr, stop, task) = serve_ops_endpoints(&ops_bind, executor_handle).await?;
            service.ops_addr = Some(addr);
            service.ops = Some((stop, task));
        }
        Ok(service)
    }

    /// Where the operations endpoints listen, when served.
    pub fn ops_addr(&self) -> Option<SocketAddr> {
        self.ops_addr
    }

    /// The executor's status.
    pub fn status(&self) -> Option<ExecutorStatus> {
        self.executor.as_ref().map(Executor::status)
    }

    /// A handle reading the executor's status when asked (types added while running included).
    pub fn status_handle(&self) -> Option<StatusHandle> {
        self.executor.as_ref().map(Executor::status_handle)
    }

    /// Graceful shutdown: stop consuming, stop every integration, close the endpoints.
    pub async fn shutdown(mut self) {
        if let Some(executor) = self.executor.take() {
            let _ = tokio::task::spawn_blocking(move || executor.shutdown()).await;
        }
        if let Some((stop, task)) = self.ops.take() {
            let _ = stop.send(());
            let _ = task.await;
        }
    }
}

/// Loads the drivers shipped with this binary and adds those of `TB_PLUGINS_DIR`
/// (see [`load_bundled_and_dir`]). The plugins directory resolves against the working
/// directory; it may be missing or hold no library (the repository's `plugins/` source folder,
/// when `cargo run` starts in the repository root), which adds nothing.
pub fn load_plugins(dir: &Path) -> LoadReport {
    let exe_dir = std::env::current_exe().ok().and_then(|e| e.parent().map(Path::to_path_buf));
    let bundled = exe_dir.as_deref().map(bundled_driver_files).unwrap_or_default();
    if !dir.exists() {
        tracing::info!(dir = %dir.display(), bundled = bundled.len(), "Plugins directory not found; serving the drivers shipped with the binary.");
    }
    load_bundled_and_dir(&bundled, dir)
}

/// Rules as one line: `169.254.0.0/16, fe80::/10, local:8083`.
fn rules_text(rules: &[trib_plugin_api::support::target_policy::Rule]) -> String {
    rules.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

#[handler]
fn live() -> &'static str {
    "UP"
}

#[handler]
fn ready(Data(status): Data<&StatusHandle>) -> Response {
    match status.get().readiness() {
        Ok(()) => "READY".into_response(),
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, reason).into_response(),
    }
}

#[handler]
fn metrics_text() -> String {
    trib_ops::render_metrics()
}

#[handler]
fn status_json(Data(status): Data<&StatusHandle>) -> poem::web::Json<serde_json::Value> {
    let status = status.get();
    let drivers: Vec<serde_json::Value> = status
        .drivers
        .iter()
        .map(|d| {
            serde_json::json!({
                "integrationType": d.integration_type,
                "driverVersion": d.driver_version,
                "file": d.file,
                "hasConfigSchema": d.config_schema.is_some(),
            })
        })
        .collect();
    poem::web::Json(serde_json::json!({
        "drivers": drivers,
        "serviceId": status.service_id,
        "integrationTypes": status.integration_types,
        "pluginErrors": status.plugin_errors,
    }))
}

/// Serves `/health/live`, `/health/ready`, `/metrics` and `/status` on `bind`.
pub async fn serve_ops_endpoints(
    bind: &str,
    status: StatusHandle,
) -> Result<(SocketAddr, tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>), ServiceError> {
    let _ = prometheus();
    let acceptor =
        TcpListener::bind(bind.to_string()).into_acceptor().await.map_err(|e| ServiceError::Bind(bind.into(), e))?;
    let addr = acceptor
        .local_addr()
        .first()
        .and_then(|a| a.as_socket_addr().copied())
        .ok_or_else(|| ServiceError::Bind(bind.into(), std::io::Error::other("no local address")))?;
    let app = Route::new()
        .at("/health/live", get(live))
        .at("/health/ready", get(ready))
        .at("/metrics", get(metrics_text))
        .at("/status", get(status_json))
        .data(status);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let shutdown = async move {
            let _ = rx.await;
        };
        if let Err(e) = Server::new_with_acceptor(acceptor).run_with_graceful_shutdown(app, shutdown, None).await {
            tracing::error!(error = %e, "Operations endpoint failed.");
        }
    });
    Ok((addr, tx, task))
}
