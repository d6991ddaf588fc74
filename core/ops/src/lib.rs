//! trib-ops: what every Tributary process is wired with, whichever services it runs.
//!
//! * [`settings`]: configuration files in TBMQ's style (`"${ENV_NAME:default}"` leaves), the
//!   environment overriding any of them.
//! * [`prometheus`]: the process-wide Prometheus recorder that every `metrics` counter lands in,
//!   and ([`render_metrics`]) the text the `/metrics` endpoints serve, with the series that
//!   services render themselves ([`add_collector`]).
//! * [`log_limit`]: at most one line per interval for log lines that repeat, with the count of
//!   the suppressed ones.
//! * [`memory`]: gives memory the allocator keeps free back to the system, so that RSS comes
//!   down after a burst.
//! * [`login`]: password hashing on a bounded blocking pool and the lockout after failed logins,
//!   shared by the REST administrator login and MQTT passwords.
//!
//! It holds no service logic; `dist/` builds each process from the services' crates with it.

pub mod log_limit;
pub mod login;
pub mod memory;
pub mod settings;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// The process-wide Prometheus recorder, installed on first use. Every service calls it before it
/// counts anything, so whichever starts first installs it.
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

/// Renders series that a service keeps itself rather than in the recorder, appending Prometheus
/// text (with its `# TYPE` lines) to the string.
pub type Collector = Box<dyn Fn(&mut String) + Send + Sync>;

fn collectors() -> &'static parking_lot::Mutex<Vec<(u64, Collector)>> {
    static COLLECTORS: std::sync::OnceLock<parking_lot::Mutex<Vec<(u64, Collector)>>> = std::sync::OnceLock::new();
    COLLECTORS.get_or_init(Default::default)
}

/// Registers a collector whose series `/metrics` serves after the recorder's; returns its key
/// for [`remove_collector`]. Series with a label per entity (one per integration, say) are
/// rendered this way because the recorder cannot forget a series: what a collector no longer
/// renders disappears from the next scrape.
pub fn add_collector(collector: Collector) -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let key = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    collectors().lock().push((key, collector));
    key
}

/// Removes a collector added by [`add_collector`] (a service that stopped).
pub fn remove_collector(key: u64) {
    collectors().lock().retain(|(k, _)| *k != key);
}

/// The text `/metrics` serves: every series of the recorder, then those of the collectors.
pub fn render_metrics() -> String {
    let mut text = prometheus().render();
    for (_, collector) in collectors().lock().iter() {
        collector(&mut text);
    }
    text
}
