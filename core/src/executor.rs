//! The executor service: loads nothing itself (it gets a [`LoadReport`]), wires the registry,
//! manager, downlink consumers, service-info announcements and the stats printer together, and
//! stops them in order.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread::JoinHandle,
    time::Duration,
};

use crate::{
    config::ExecutorConfig,
    events::Events,
    loader::LoadReport,
    manager::{Context, Manager},
    queue::{Queue, QueueError},
    registry::{Registry, SelectionError, TypeSelection},
    stats::Stats,
};

/// Why the executor could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Bad type selection.
    #[error(transparent)]
    Selection(#[from] SelectionError),
    /// The queue refused a topic.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// A thread could not be started.
    #[error("cannot start thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// What an operator wants to know about a running executor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutorStatus {
    /// Service id.
    pub service_id: String,
    /// Served types as `TYPE@driver-version`.
    pub integration_types: Vec<String>,
    /// Refused plugin files, one line each.
    pub plugin_errors: Vec<String>,
    /// Integrations with a worker on this executor.
    pub integrations: usize,
}

/// A running executor.
pub struct Executor {
    manager: Arc<Manager>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    status: ExecutorStatus,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor").field("status", &self.status).finish()
    }
}

impl Executor {
    /// Starts serving the types selected by the configuration among the loaded drivers.
    pub fn start(config: ExecutorConfig, queue: Arc<dyn Queue>, report: &LoadReport) -> Result<Self, StartError> {
        let selection = TypeSelection::parse(&config.integrations_supported, &config.integrations_excluded)?;
        let registry = Registry::new(report, &selection);
        let service_id = config.effective_service_id();
        queue.create_topic(&config.topics.uplink_spec()?)?;
        let stats = Arc::new(Stats::default());
        let limits = config.error_rate_limits_enabled.then_some(config.error_rate_limits.as_str());
        let events =
            Arc::new(Events::new(queue.producer(), config.topics.uplink(), service_id.clone(), limits, stats.clone()));
        let status = ExecutorStatus {
            service_id: service_id.clone(),
            integration_types: registry
                .types()
                .map(|t| format!("{t}@{}", registry.get(t).map_or("", |d| d.metadata.driver_version.as_str())))
                .collect(),
            plugin_errors: report.failures.iter().map(|f| f.to_string()).collect(),
            integrations: 0,
        };
        for failure in &report.failures {
            tracing::warn!(plugin = %failure.path.display(), error = %failure.error, "Plugin refused.");
        }
        for ty in registry.types() {
            tracing::info!(integration_type = ty, "Serving integration type.");
        }
        let types: Vec<String> = registry.types().map(str::to_string).collect();
        let ctx = Arc::new(Context { config, service_id, registry, queue, events, stats });
        let manager = Arc::new(Manager::new(ctx.clone()));
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for ty in types {
            threads.push(crate::downlink::spawn(manager.clone(), ty, stop.clone())?);
        }
        threads.push(spawn_periodic("ie-service-info", stop.clone(), ctx.config.service_info_interval, {
            let (events, status) = (ctx.events.clone(), status.clone());
            move || events.service_info(status.integration_types.clone(), status.plugin_errors.clone())
        })?);
        if ctx.config.stats_enabled {
            let stats = ctx.stats.clone();
            threads.push(spawn_periodic("ie-stats", stop.clone(), ctx.config.stats_print_interval, move || {
                stats.print()
            })?);
        }
        Ok(Executor { manager, stop, threads, status })
    }

    /// Current status.
    pub fn status(&self) -> ExecutorStatus {
        ExecutorStatus { integrations: self.manager.running().len(), ..self.status.clone() }
    }

    /// The shared statistics.
    pub fn stats(&self) -> Arc<Stats> {
        self.manager.context().stats.clone()
    }

    /// Stops consuming, stops every integration (undelivered packs are not committed under
    /// RETRY_ALL) and leaves the consumer groups so other executors take over.
    pub fn shutdown(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
        self.manager.shutdown();
        tracing::info!("Executor stopped.");
    }
}

/// Runs `f` now and then every `period` until `stop`.
fn spawn_periodic(
    name: &str,
    stop: Arc<AtomicBool>,
    period: Duration,
    f: impl Fn() + Send + 'static,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name(name.into()).spawn(move || {
        let step = Duration::from_millis(50);
        while !stop.load(Ordering::Relaxed) {
            f();
            let mut waited = Duration::ZERO;
            while waited < period && !stop.load(Ordering::Relaxed) {
                std::thread::sleep(step);
                waited += step;
            }
        }
    })
}
