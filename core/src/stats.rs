//! Executor statistics with TBMQ's names: integration activity counters, the state summary,
//! uplink queue stats and per-integration processing stats. They are logged every
//! `stats.ie.print-interval-ms` (then reset, like TBMQ) and exported as Prometheus metrics
//! (cumulative, never reset), with the integration id as a label for per-integration series.

use std::{
    collections::BTreeMap,
    sync::atomic::{AtomicU64, Ordering::Relaxed},
    sync::Arc,
};

use parking_lot::Mutex;
use uuid::Uuid;

/// Per-integration processing counters (`[integrationProcessor][<id>]`).
#[derive(Debug, Default)]
pub struct ProcessorStats {
    /// Messages in packs (counted once per pack, even when retried).
    pub total_msgs: AtomicU64,
    /// Messages delivered.
    pub successful_msgs: AtomicU64,
    /// Timed-out messages of non-final attempts.
    pub tmp_timeout: AtomicU64,
    /// Failed messages of non-final attempts.
    pub tmp_failed: AtomicU64,
    /// Timed-out messages given up on.
    pub timeout_msgs: AtomicU64,
    /// Failed messages given up on.
    pub failed_msgs: AtomicU64,
    /// Final attempts without failures.
    pub successful_iterations: AtomicU64,
    /// Attempts with failures.
    pub failed_iterations: AtomicU64,
}

/// The counter names, in TBMQ's print order.
pub const PROCESSOR_COUNTERS: [&str; 8] = [
    "totalMsgs",
    "successfulMsgs",
    "tmpTimeout",
    "tmpFailed",
    "timeoutMsgs",
    "failedMsgs",
    "successfulIterations",
    "failedIterations",
];

impl ProcessorStats {
    fn counters(&self) -> [&AtomicU64; 8] {
        [
            &self.total_msgs,
            &self.successful_msgs,
            &self.tmp_timeout,
            &self.tmp_failed,
            &self.timeout_msgs,
            &self.failed_msgs,
            &self.successful_iterations,
            &self.failed_iterations,
        ]
    }

    /// Adds `n` to the counter at `index` of [`PROCESSOR_COUNTERS`], also in Prometheus.
    pub fn add(&self, id: Uuid, index: usize, n: u64) {
        if n == 0 {
            return;
        }
        self.counters()[index].fetch_add(n, Relaxed);
        metrics::counter!("ie_processor_msgs_total", "integration_id" => id.to_string(), "counter" => PROCESSOR_COUNTERS[index])
            .increment(n);
    }

    /// Current values without resetting, by name.
    pub fn snapshot(&self) -> BTreeMap<&'static str, u64> {
        PROCESSOR_COUNTERS.iter().zip(self.counters()).map(|(n, c)| (*n, c.load(Relaxed))).collect()
    }

    /// Current values, resetting them (for the periodic log).
    pub fn take(&self) -> Vec<(&'static str, u64)> {
        PROCESSOR_COUNTERS.iter().zip(self.counters()).map(|(n, c)| (*n, c.swap(0, Relaxed))).collect()
    }
}

/// Executor-wide statistics.
#[derive(Debug, Default)]
pub struct Stats {
    /// `integration_stats_counter{name,state,type}`: start/stop/msgUplink with success/failed.
    activity: Mutex<BTreeMap<(String, &'static str, &'static str), u64>>,
    /// Started / failed integration count per type.
    states: Mutex<BTreeMap<Uuid, (String, State)>>,
    /// Processing stats per integration.
    processors: Mutex<BTreeMap<Uuid, Arc<ProcessorStats>>>,
    /// Uplink queue: total, successful, failed.
    pub uplink_total: AtomicU64,
    /// Uplink messages stored by the queue.
    pub uplink_successful: AtomicU64,
    /// Uplink messages the queue refused.
    pub uplink_failed: AtomicU64,
}

/// State of an integration for the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Running.
    Started,
    /// Start failed; waits for re-init.
    Failed,
}

impl Stats {
    /// Counts a lifecycle or message activity: `name` is `start`, `stop` or `msgUplink`.
    pub fn activity(&self, integration_type: &str, name: &'static str, success: bool) {
        let state = if success { "success" } else { "failed" };
        *self.activity.lock().entry((integration_type.to_string(), name, state)).or_default() += 1;
        metrics::counter!("integration_stats_counter_total", "name" => name, "state" => state, "type" => integration_type.to_string())
            .increment(1);
    }

    /// Records an integration's state (None = stopped / gone) and refreshes the gauges.
    pub fn set_state(&self, id: Uuid, integration_type: &str, state: Option<State>) {
        let mut states = self.states.lock();
        match state {
            Some(s) => states.insert(id, (integration_type.to_string(), s)),
            None => states.remove(&id),
        };
        let count = |t: &str, s: State| states.values().filter(|(ty, st)| ty == t && *st == s).count() as f64;
        for (s, label) in [(State::Started, "success"), (State::Failed, "failed")] {
            metrics::gauge!("integration_stats_gauge", "name" => "start", "state" => label, "type" => integration_type.to_string())
                .set(count(integration_type, s));
        }
    }

    /// Number of integrations per (type, state).
    pub fn state_summary(&self) -> BTreeMap<(String, &'static str), usize> {
        let mut out = BTreeMap::new();
        for (ty, s) in self.states.lock().values() {
            let label = if *s == State::Started { "started" } else { "failed" };
            *out.entry((ty.clone(), label)).or_default() += 1;
        }
        out
    }

    /// The processing stats of an integration (created on first use).
    pub fn processor(&self, id: Uuid) -> Arc<ProcessorStats> {
        self.processors.lock().entry(id).or_default().clone()
    }

    /// Forgets a stopped integration's processing stats (after its last print).
    pub fn remove_processor(&self, id: Uuid) {
        self.processors.lock().remove(&id);
    }

    /// Logs everything TBMQ logs and resets the periodic counters.
    pub fn print(&self) {
        let activity: Vec<_> = std::mem::take(&mut *self.activity.lock()).into_iter().collect();
        let text = activity.iter().map(|((t, n, s), v)| format!("{t}/{n}/{s}={v}")).collect::<Vec<_>>().join(", ");
        tracing::info!(activity = %text, "Current Integration Activity.");
        let summary = self.state_summary();
        let text = summary.iter().map(|((t, s), v)| format!("{t}/{s}={v}")).collect::<Vec<_>>().join(", ");
        tracing::info!(summary = %text, "Integration State Summary.");
        let (t, s, f) = (
            self.uplink_total.swap(0, Relaxed),
            self.uplink_successful.swap(0, Relaxed),
            self.uplink_failed.swap(0, Relaxed),
        );
        tracing::info!(
            totalMsgs = t,
            successfulMsgs = s,
            failedMsgs = f,
            "[ie.uplink.published] Integration Uplink Queue Stats."
        );
        let processors: Vec<_> = self.processors.lock().iter().map(|(id, p)| (*id, p.clone())).collect();
        for (id, p) in processors {
            let values = p.take();
            if values.iter().any(|(_, v)| *v > 0) {
                let text = values.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join(", ");
                tracing::info!(integration_id = %id, stats = %text, "Integration Message Processing Stats.");
            }
        }
    }
}
