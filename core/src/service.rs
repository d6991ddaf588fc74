//! Running the executor as a service (`TB_SERVICE_TYPE=tbmq-integration-executor`, or inside the
//! all-in-one process): open the queue, load the plugins, start the [`Executor`], and serve the
//! operations endpoints (`/health/live`, `/health/ready`, `/metrics`, `/status`).

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use poem::{
    get, handler,
    http::StatusCode,
    listener::{Acceptor, Listener, TcpListener},
    web::Data,
    EndpointExt, IntoResponse, Response, Route, Server,
};

use crate::{
    config::{ConfigError, ExecutorConfig},
    executor::{Executor, ExecutorStatus, StartError},
    loader::{load_dir, load_files, LoadReport},
    queue::{
        embedded::EmbeddedQueue,
        kafka::{KafkaConfig, KafkaQueue},
        Queue, QueueError,
    },
};

/// A lookup of configuration variables (see [`crate::settings::Settings::lookup`]).
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

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

/// The process-wide Prometheus recorder (installed on first use).
pub fn prometheus() -> PrometheusHandle {
    static HANDLE: std::sync::OnceLock<PrometheusHandle> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (tests); then metrics go there.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Opens the queue named by `TB_QUEUE_TYPE` (`in-memory` or `kafka`, default `default_type`).
/// The in-process queue is kept in the directory `TB_QUEUE_IN_MEMORY_DIR` (default `data/queue`,
/// relative to the working directory); an empty value keeps it in memory only.
pub fn open_queue(lookup: Lookup<'_>, default_type: &str) -> Result<Arc<dyn Queue>, ServiceError> {
    let kind = lookup("TB_QUEUE_TYPE").filter(|v| !v.trim().is_empty()).unwrap_or_else(|| default_type.to_string());
    match kind.trim() {
        "in-memory" => {
            let dir = lookup("TB_QUEUE_IN_MEMORY_DIR").unwrap_or_else(|| "data/queue".into());
            let dir = dir.trim();
            if dir.is_empty() {
                tracing::info!("TB_QUEUE_IN_MEMORY_DIR is empty: the queue is kept in memory only and lost at exit.");
                return Ok(Arc::new(EmbeddedQueue::new()));
            }
            let max = crate::queue::embedded::DEFAULT_MAX_PARTITION_BYTES;
            Ok(Arc::new(EmbeddedQueue::open(Path::new(dir), max)?))
        }
        "kafka" => {
            let servers = lookup("TB_KAFKA_SERVERS").unwrap_or_else(|| "localhost:9092".into());
            let mut config = KafkaConfig::new(servers);
            let props = |name: &str| parse_properties(&lookup(name).unwrap_or_default());
            config.common_properties = props("TB_KAFKA_DEFAULT_PRODUCER_CONSUMER_CONFIG");
            config.extra_producer_properties = props("TB_KAFKA_DEFAULT_PRODUCER_CONFIG");
            config.extra_consumer_properties = props("TB_KAFKA_DEFAULT_CONSUMER_CONFIG");
            config.admin_properties = props("TB_KAFKA_ADMIN_CONFIG");
            if let Some(secs) = lookup("TB_KAFKA_ADMIN_COMMAND_TIMEOUT_SEC").and_then(|v| v.trim().parse().ok()) {
                config.admin_timeout = Duration::from_secs(secs);
            }
            Ok(Arc::new(KafkaQueue::new(config)?))
        }
        other => Err(ConfigError {
            name: "TB_QUEUE_TYPE".into(),
            value: other.into(),
            reason: "use in-memory or kafka".into(),
        }
        .into()),
    }
}

/// TBMQ's `key:value;key:value` property strings.
pub fn parse_properties(text: &str) -> Vec<(String, String)> {
    text.split(';')
        .filter_map(|kv| kv.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .filter(|(k, _)| !k.is_empty())
        .collect()
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
        // Install the metrics recorder before anything counts.
        let _ = prometheus();
        let config = ExecutorConfig::from_lookup(lookup)?;
        let plugins = config.plugins_dir.clone();
        let report = tokio::task::spawn_blocking(move || load_plugins(&plugins)).await.unwrap_or_default();
        let executor = tokio::task::spawn_blocking(move || Executor::start(config, queue, &report))
            .await
            .map_err(|e| ServiceError::Bind("executor".into(), std::io::Error::other(e.to_string())))??;
        let status = executor.status();
        tracing::info!(
            service_id = %status.service_id,
            types = ?status.integration_types,
            refused = status.plugin_errors.len(),
            "Integration executor started."
        );
        let mut service = ExecutorService { executor: Some(executor), ops: None, ops_addr: None };
        if serve_ops {
            let bind = format!(
                "{}:{}",
                lookup("HTTP_BIND_ADDRESS").unwrap_or_else(|| "0.0.0.0".into()),
                lookup("HTTP_BIND_PORT").unwrap_or_else(|| "8082".into())
            );
            let (addr, stop, task) = serve_ops_endpoints(&bind, status).await?;
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

/// Loads the drivers of `TB_PLUGINS_DIR`. When that directory does not exist, the first-party
/// drivers built next to the binary are used instead (`cargo build` puts them in
/// `target/<profile>/deps/libtrib_driver_*.so`), so that `cargo run` works with no install step.
pub fn load_plugins(dir: &Path) -> LoadReport {
    if dir.exists() {
        return load_dir(dir);
    }
    let exe_dir = std::env::current_exe().ok().and_then(|e| e.parent().map(Path::to_path_buf));
    if let Some(beside) = exe_dir.as_ref().map(|d| d.join(dir)).filter(|d| d.exists()) {
        return load_dir(&beside);
    }
    let built: Vec<PathBuf> = exe_dir
        .map(|d| d.join("deps"))
        .and_then(|deps| std::fs::read_dir(deps).ok())
        .map(|entries| {
            let mut files: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("libtrib_driver_") && n.ends_with(".so"))
                })
                .collect();
            files.sort();
            files
        })
        .unwrap_or_default();
    if built.is_empty() {
        return load_dir(dir);
    }
    tracing::info!(dir = %dir.display(), "Plugins directory not found; using the drivers built with this binary.");
    load_files(built, LoadReport::default())
}

#[handler]
fn live() -> &'static str {
    "UP"
}

#[handler]
fn ready(Data(status): Data<&ExecutorStatus>) -> Response {
    if status.integration_types.is_empty() {
        (StatusCode::SERVICE_UNAVAILABLE, "no integration type served: check the plugins directory").into_response()
    } else {
        "READY".into_response()
    }
}

#[handler]
fn metrics_text() -> String {
    prometheus().render()
}

#[handler]
fn status_json(Data(status): Data<&ExecutorStatus>) -> poem::web::Json<serde_json::Value> {
    poem::web::Json(serde_json::json!({
        "serviceId": status.service_id,
        "integrationTypes": status.integration_types,
        "pluginErrors": status.plugin_errors,
    }))
}

/// Serves `/health/live`, `/health/ready`, `/metrics` and `/status` on `bind`.
pub async fn serve_ops_endpoints(
    bind: &str,
    status: ExecutorStatus,
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
