//! The executor service: loads nothing itself at start (it gets a [`LoadReport`]), wires the
//! registry, manager, downlink consumers, service-info announcements, the stats printer and the
//! plugins-directory watch (hot plugging, [`crate::plugins_watch`]) together, and stops them in
//! order.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread::JoinHandle,
    time::Duration,
};

use parking_lot::{Mutex, RwLock};

use crate::{
    config::ExecutorConfig,
    context::Context,
    events::Events,
    loader::{LoadReport, LoadedDriver},
    manager::Manager,
    plugins_watch::{Found, PluginsWatch},
    queue::{Queue, QueueError},
    registry::{Added, Registry, SelectionError, TypeSelection},
    stats::Stats,
    wire::DriverInfoProto,
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
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExecutorStatus {
    /// Service id.
    pub service_id: String,
    /// Served types as `TYPE@driver-version`.
    pub integration_types: Vec<String>,
    /// Refused plugin files, one line each.
    pub plugin_errors: Vec<String>,
    /// Integrations with a worker on this executor.
    pub integrations: usize,
    /// The driver behind each served type, as announced to brokers.
    pub drivers: Vec<DriverInfoProto>,
}

impl ExecutorStatus {
    /// Ready when at least one integration type is served; otherwise the reason, naming the
    /// refused plugin files.
    pub fn readiness(&self) -> Result<(), String> {
        if !self.integration_types.is_empty() {
            return Ok(());
        }
        let refused = if self.plugin_errors.is_empty() {
            String::new()
        } else {
            format!(" (refused: {})", self.plugin_errors.join("; "))
        };
        Err(format!(
            "no integration type served: check TB_PLUGINS_DIR and TB_SERVICE_INTEGRATIONS_SUPPORTED/EXCLUDED{refused}"
        ))
    }
}

/// A running executor.
pub struct Executor {
    manager: Arc<Manager>,
    stop: Arc<AtomicBool>,
    /// Its per-integration series in `/metrics` (`trib_ops::add_collector`).
    collector: u64,
    /// Sends the service info (once more at shutdown, listing no integration any more).
    announce: Box<dyn Fn() + Send + Sync>,
    threads: Arc<Mutex<Vec<JoinHandle<()>>>>,
    status: StatusHandle,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor").field("status", &self.status.get()).finish()
    }
}

/// The executor's status as it is now (types appear while it runs), for endpoints and checks
/// that outlive a single call.
#[derive(Clone)]
pub struct StatusHandle {
    status: Arc<RwLock<ExecutorStatus>>,
    manager: Arc<Manager>,
}

impl std::fmt::Debug for StatusHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("StatusHandle").field(&self.status.read().service_id).finish()
    }
}

impl StatusHandle {
    /// The status now.
    pub fn get(&self) -> ExecutorStatus {
        ExecutorStatus { integrations: self.manager.running().len(), ..self.status.read().clone() }
    }
}

impl Executor {
    /// Starts serving the types selected by the configuration among the loaded drivers.
    pub fn start(config: ExecutorConfig, queue: Arc<dyn Queue>, report: &LoadReport) -> Result<Self, StartError> {
        let selection = TypeSelection::parse(&config.integrations_supported, &config.integrations_excluded)?;
        let registry = Registry::new(report, &selection);
        // Before any instance exists, so that no integration connects unguarded.
        for driver in registry.drivers() {
            crate::target_policy::hand_to(&driver, &config.target_policy);
        }
        let service_id = config.effective_service_id();
        queue.create_topic(&config.topics.uplink_spec()?)?;
        let stats = Arc::new(Stats::default());
        let limits = config.error_rate_limits_enabled.then_some(config.error_rate_limits.as_str());
        let events =
            Arc::new(Events::new(queue.producer(), config.topics.uplink(), service_id.clone(), limits, stats.clone()));
        for failure in &report.failures {
            tracing::warn!(plugin = %failure.path.display(), error = %failure.error, "Plugin refused.");
        }
        let types = registry.types();
        for ty in &types {
            tracing::info!(integration_type = %ty, "Serving integration type.");
        }
        let mut status = ExecutorStatus {
            service_id: service_id.clone(),
            plugin_errors: report.failures.iter().map(|f| f.to_string()).collect(),
            ..Default::default()
        };
        describe_drivers(&registry, &mut status);
        let watch = (!config.plugins_scan_interval.is_zero()).then(|| {
            let loaded: Vec<_> = report.drivers.iter().map(|d| d.path.clone()).collect();
            let refused: Vec<_> = report.failures.iter().map(|f| f.path.clone()).collect();
            PluginsWatch::new(&config.plugins_dir, &loaded, &refused)
        });
        let ctx = Arc::new(Context { config, service_id, registry, queue, events, stats });
        let manager = Arc::new(Manager::new(ctx.clone()));
        let stop = Arc::new(AtomicBool::new(false));
        let threads = Arc::new(Mutex::new(Vec::new()));
        let status = StatusHandle { status: Arc::new(RwLock::new(status)), manager: manager.clone() };
        for ty in types {
            threads.lock().push(crate::downlink::spawn(manager.clone(), ty, stop.clone())?);
        }
        let announce = {
            let (events, status) = (ctx.events.clone(), status.clone());
            move || {
                let s = status.get();
                events.service_info(s.integration_types, s.plugin_errors, s.drivers)
            }
        };
        if let Some(mut watch) = watch {
            let (manager, stop2, threads2, status, announce) =
                (manager.clone(), stop.clone(), threads.clone(), status.clone(), announce.clone());
            let spawned =
                spawn_periodic("ie-plugins-watch", stop.clone(), ctx.config.plugins_scan_interval, move || {
                    let found = watch.scan();
                    if !found.is_empty() {
                        apply_found(found, &manager, &status, &stop2, &threads2);
                        announce();
                    }
                })?;
            threads.lock().push(spawned);
        }
        let final_announce = announce.clone();
        // Every interval, and soon after an integration starts, fails or stops here, so that the
        // broker's status of it follows within a fraction of a second.
        let (stats, interval) = (ctx.stats.clone(), ctx.config.service_info_interval);
        let mut last = None::<std::time::Instant>;
        let spawned = spawn_periodic("ie-service-info", stop.clone(), Duration::from_millis(200), move || {
            let due = last.is_none_or(|at| at.elapsed() >= interval);
            if stats.take_changed() || due {
                announce();
                last = Some(std::time::Instant::now());
            }
        })?;
        threads.lock().push(spawned);
        let watched = manager.clone();
        let period = (ctx.config.watchdog_grace / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
        threads.lock().push(spawn_periodic("ie-watchdog", stop.clone(), period, move || watched.watchdog())?);
        if ctx.config.stats_enabled {
            let stats = ctx.stats.clone();
            let spawned =
                spawn_periodic("ie-stats", stop.clone(), ctx.config.stats_print_interval, move || stats.print())?;
            threads.lock().push(spawned);
        }
        let rendered = ctx.stats.clone();
        let collector = trib_ops::add_collector(Box::new(move |out| rendered.render_prometheus(out)));
        Ok(Executor { manager, stop, collector, announce: Box::new(final_announce), threads, status })
    }

    /// Current status.
    pub fn status(&self) -> ExecutorStatus {
        self.status.get()
    }

    /// A handle that reads the status as it is when asked (hot-plugged types included).
    pub fn status_handle(&self) -> StatusHandle {
        self.status.clone()
    }

    /// How many of this executor's integrations are parked now: they have nothing to do and own
    /// no thread until a record, a command or a periodic duty wakes them.
    pub fn parked_integrations(&self) -> usize {
        self.manager.parked()
    }

    /// The shared statistics.
    pub fn stats(&self) -> Arc<Stats> {
        self.manager.context().stats.clone()
    }

    /// Stops consuming, stops every integration (undelivered packs are not committed under
    /// RETRY_ALL) and leaves the consumer groups so other executors take over.
    pub fn shutdown(self) {
        self.stop.store(true, Ordering::Relaxed);
        // Joined until none is left: the plugins watch may have added one while stopping.
        loop {
            let Some(t) = self.threads.lock().pop() else { break };
            let _ = t.join();
        }
        self.manager.shutdown();
        // The broker learns at once that the integrations stopped here are no longer run by it.
        (self.announce)();
        trib_ops::remove_collector(self.collector);
        tracing::info!("Executor stopped.");
    }
}

/// Fills the served types (`TYPE@version`) and their drivers' descriptions from the registry.
fn describe_drivers(registry: &Registry, status: &mut ExecutorStatus) {
    let drivers = registry.drivers();
    status.integration_types =
        drivers.iter().map(|d| format!("{}@{}", d.integration_type(), d.metadata.driver_version)).collect();
    status.drivers = drivers.iter().map(driver_info).collect();
}

/// What brokers learn of a driver: its version, file and configuration schema.
fn driver_info(driver: &LoadedDriver) -> DriverInfoProto {
    let config_schema = match driver.config_schema() {
        None => None,
        Some(Ok(schema)) => Some(schema.to_string()),
        Some(Err(reason)) => {
            tracing::warn!(plugin = %driver.path.display(), error = %reason, "Driver configuration schema ignored.");
            None
        }
    };
    DriverInfoProto {
        integration_type: driver.integration_type().to_string(),
        driver_version: driver.metadata.driver_version.to_string(),
        file: driver.path.display().to_string(),
        config_schema,
        capabilities: driver.metadata.capabilities,
        description: driver.metadata.description.to_string(),
    }
}

/// Serves the types of newly found drivers (a downlink consumer each) and records refusals.
fn apply_found(
    found: Vec<Found>,
    manager: &Arc<Manager>,
    status: &StatusHandle,
    stop: &Arc<AtomicBool>,
    threads: &Mutex<Vec<JoinHandle<()>>>,
) {
    let registry = &manager.context().registry;
    for item in found {
        let line = item.describe();
        let problem = match item {
            Found::Driver(driver) => {
                let (path, ty) = (driver.path.clone(), driver.integration_type().to_string());
                crate::target_policy::hand_to(&driver, &manager.context().config.target_policy);
                match registry.add(driver) {
                    Added::Serving => {
                        tracing::info!(plugin = %path.display(), integration_type = %ty, "Driver added while running; serving its type.");
                        match crate::downlink::spawn(manager.clone(), ty.clone(), stop.clone()) {
                            Ok(t) => threads.lock().push(t),
                            Err(e) => {
                                tracing::error!(integration_type = %ty, error = %e, "Cannot start the downlink consumer of a new type.")
                            }
                        }
                        None
                    }
                    Added::NotSelected => {
                        tracing::info!(plugin = %path.display(), integration_type = %ty, "Driver added while running; its type is not selected (TB_SERVICE_INTEGRATIONS_SUPPORTED/EXCLUDED).");
                        None
                    }
                    Added::Duplicate(first) => Some(format!(
                        "{}: integration type {ty} is already provided by {}",
                        path.display(),
                        first.display()
                    )),
                }
            }
            Found::Refused { .. } | Found::ChangedInPlace(_) | Found::Replaced(_) => Some(line),
        };
        if let Some(problem) = problem {
            tracing::warn!(error = %problem, "Plugin refused.");
            status.status.write().plugin_errors.push(problem);
        }
    }
    let mut s = status.status.write();
    describe_drivers(registry, &mut s);
}

/// Runs `f` now and then every `period` until `stop`.
fn spawn_periodic(
    name: &str,
    stop: Arc<AtomicBool>,
    period: Duration,
    mut f: impl FnMut() + Send + 'static,
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
