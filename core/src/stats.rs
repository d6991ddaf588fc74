//! Executor statistics with TBMQ's names: integration activity counters, the state summary,
//! uplink queue stats and per-integration processing stats. They are logged every
//! `stats.ie.print-interval-ms` (then reset, like TBMQ) and exported as Prometheus metrics
//! (cumulative, never reset), with the integration id as a label for per-integration series.
//! The per-integration series are rendered from the live stats at each scrape
//! ([`Stats::render_prometheus`]), so an integration that stops or is deleted leaves `/metrics`;
//! with how its deliveries go ([`Health`]) they are also announced to the broker, which derives
//! the integration's status from them.
//!
//! Counters and activities are enums; their TBMQ names (which are also the Prometheus label
//! values and the keys of the printed stats) are spelled only in the `name` methods here. The
//! uplink events themselves live in [`crate::events`].

use std::{
    collections::BTreeMap,
    sync::atomic::{AtomicU64, Ordering::Relaxed},
    sync::Arc,
};

use parking_lot::Mutex;
use uuid::Uuid;

use crate::wire::{uuid_to_bits, ComponentLifecycleEvent, IntegrationStatusProto};

/// A per-integration processing counter (`[integrationProcessor][<id>]`), in TBMQ's print order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Counter {
    /// Messages in packs (counted once per pack, even when retried).
    TotalMsgs,
    /// Messages delivered.
    SuccessfulMsgs,
    /// Timed-out messages of non-final attempts.
    TmpTimeout,
    /// Failed messages of non-final attempts.
    TmpFailed,
    /// Timed-out messages given up on.
    TimeoutMsgs,
    /// Failed messages given up on (including rejected and undecodable ones).
    FailedMsgs,
    /// Final attempts without failures.
    SuccessfulIterations,
    /// Attempts with failures.
    FailedIterations,
}

impl Counter {
    /// Every counter, in print order (the order of the discriminants).
    pub const ALL: [Counter; 8] = [
        Counter::TotalMsgs,
        Counter::SuccessfulMsgs,
        Counter::TmpTimeout,
        Counter::TmpFailed,
        Counter::TimeoutMsgs,
        Counter::FailedMsgs,
        Counter::SuccessfulIterations,
        Counter::FailedIterations,
    ];

    /// TBMQ's name: the key in the printed stats and the `counter` label in Prometheus.
    pub const fn name(self) -> &'static str {
        match self {
            Counter::TotalMsgs => "totalMsgs",
            Counter::SuccessfulMsgs => "successfulMsgs",
            Counter::TmpTimeout => "tmpTimeout",
            Counter::TmpFailed => "tmpFailed",
            Counter::TimeoutMsgs => "timeoutMsgs",
            Counter::FailedMsgs => "failedMsgs",
            Counter::SuccessfulIterations => "successfulIterations",
            Counter::FailedIterations => "failedIterations",
        }
    }
}

/// Processing counts gathered locally (over one attempt of a pack) and then added to the shared
/// [`ProcessorStats`] in one [`ProcessorStats::record`], instead of once per message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally([u64; Counter::ALL.len()]);

impl Tally {
    /// Adds `n` to `counter`.
    pub fn add(&mut self, counter: Counter, n: usize) {
        self.0[counter as usize] += n as u64;
    }

    /// The count of `counter`.
    pub fn get(&self, counter: Counter) -> u64 {
        self.0[counter as usize]
    }
}

/// Per-integration processing counters (`[integrationProcessor][<id>]`), and how the
/// integration's deliveries go ([`Health`]), which the executor announces to the broker.
#[derive(Debug, Default)]
pub struct ProcessorStats {
    /// Indexed by [`Counter`]; reset by every print.
    counters: [AtomicU64; Counter::ALL.len()],
    /// Indexed by [`Counter`]; never reset (Prometheus and the announced status).
    totals: [AtomicU64; Counter::ALL.len()],
    /// Messages stored as dead letters.
    dead_lettered: AtomicU64,
    health: Mutex<Health>,
}

/// How an integration's deliveries go, as the worker saw them. Times are ms since the epoch,
/// 0 = never.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    /// Last message delivered.
    pub last_delivered_ms: i64,
    /// Last message not delivered.
    pub last_error_ms: i64,
    /// Why (the driver's reason, at most [`MAX_ERROR_CHARS`] characters).
    pub last_error: Option<String>,
    /// Driver calls in a row that failed messages and delivered none.
    pub consecutive_failures: u64,
    /// Start of the current run of such calls (0 = not failing).
    pub failing_since_ms: i64,
    /// Messages in the integration's queue topic not committed yet (None: not known yet).
    pub backlog: Option<i64>,
    /// The driver's word on its connection to the target (None: it does not say).
    pub connected: Option<bool>,
    /// Why it is disconnected.
    pub disconnect_reason: Option<String>,
}

/// Reads one per-integration gauge off a [`Health`] (None: unknown, the series is left out).
type GaugeOf = fn(&Health) -> Option<f64>;

/// Longest failure reason kept per integration, in characters.
pub const MAX_ERROR_CHARS: usize = 1024;

impl ProcessorStats {
    /// Adds a tally (to the printed counters and the totals).
    pub fn record(&self, tally: &Tally) {
        for counter in Counter::ALL {
            let n = tally.get(counter);
            if n > 0 {
                self.counters[counter as usize].fetch_add(n, Relaxed);
                self.totals[counter as usize].fetch_add(n, Relaxed);
            }
        }
    }

    /// Records one driver call at `now_ms`: `delivered` messages went through, and `error` is
    /// the reason of the first that did not (if any did not). A call that delivered something
    /// ends a run of failures; one that failed messages and delivered nothing extends it.
    pub fn observe_call(&self, now_ms: i64, delivered: usize, error: Option<&str>) {
        let mut h = self.health.lock();
        if delivered > 0 {
            h.last_delivered_ms = now_ms;
            h.consecutive_failures = 0;
            h.failing_since_ms = 0;
        }
        if let Some(reason) = error {
            h.last_error_ms = now_ms;
            h.last_error = Some(reason.chars().take(MAX_ERROR_CHARS).collect());
            if delivered == 0 {
                h.consecutive_failures += 1;
                if h.failing_since_ms == 0 {
                    h.failing_since_ms = now_ms;
                }
            }
        }
    }

    /// Records the messages waiting in the integration's queue topic.
    pub fn set_backlog(&self, backlog: i64) {
        self.health.lock().backlog = Some(backlog.max(0));
    }

    /// Records what the driver said of its connection.
    pub fn set_connected(&self, connected: bool, reason: Option<&str>) {
        let mut h = self.health.lock();
        h.connected = Some(connected);
        h.disconnect_reason = reason.filter(|_| !connected).map(|r| r.chars().take(MAX_ERROR_CHARS).collect());
    }

    /// Forgets the connection state (the driver instance it belonged to stopped).
    pub fn clear_connected(&self) {
        let mut h = self.health.lock();
        h.connected = None;
        h.disconnect_reason = None;
    }

    /// Counts messages stored as dead letters.
    pub fn dead_lettered(&self, n: usize) {
        self.dead_lettered.fetch_add(n as u64, Relaxed);
    }

    /// How deliveries go now.
    pub fn health(&self) -> Health {
        self.health.lock().clone()
    }

    /// The current value of one counter (since the last print).
    pub fn get(&self, counter: Counter) -> u64 {
        self.counters[counter as usize].load(Relaxed)
    }

    /// The value of one counter since the integration started on this executor.
    pub fn total(&self, counter: Counter) -> u64 {
        self.totals[counter as usize].load(Relaxed)
    }

    /// Messages stored as dead letters since the integration started on this executor.
    pub fn dead_letters(&self) -> u64 {
        self.dead_lettered.load(Relaxed)
    }

    /// Current values without resetting, by name.
    pub fn snapshot(&self) -> BTreeMap<&'static str, u64> {
        Counter::ALL.iter().map(|c| (c.name(), self.get(*c))).collect()
    }

    /// Current values in print order, resetting them (for the periodic log).
    pub fn take(&self) -> Vec<(&'static str, u64)> {
        Counter::ALL.iter().map(|c| (c.name(), self.counters[*c as usize].swap(0, Relaxed))).collect()
    }

    /// The status announced to the broker for integration `id`.
    pub fn status(&self, id: Uuid, started: bool) -> IntegrationStatusProto {
        let h = self.health();
        let (msb, lsb) = uuid_to_bits(id);
        IntegrationStatusProto {
            integration_id_msb: msb,
            integration_id_lsb: lsb,
            started,
            last_delivered_ts: h.last_delivered_ms,
            last_error_ts: h.last_error_ms,
            last_error: h.last_error,
            consecutive_failures: h.consecutive_failures,
            failing_since_ts: h.failing_since_ms,
            backlog: h.backlog,
            connected: h.connected,
            disconnect_reason: h.disconnect_reason,
            total_msgs: self.total(Counter::TotalMsgs),
            delivered_msgs: self.total(Counter::SuccessfulMsgs),
            failed_msgs: self.total(Counter::FailedMsgs) + self.total(Counter::TimeoutMsgs),
            retried_msgs: self.total(Counter::TmpFailed) + self.total(Counter::TmpTimeout),
            dead_lettered_msgs: self.dead_letters(),
        }
    }
}

/// What an `integration_stats_counter` counts (its `name` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Activity {
    /// An integration started (success) or failed to start (failed).
    Start,
    /// An integration stopped.
    Stop,
    /// A message delivered to (success) or not delivered to (failed) the target.
    MsgUplink,
}

impl Activity {
    /// TBMQ's name (the `name` label).
    pub const fn name(self) -> &'static str {
        match self {
            Activity::Start => "start",
            Activity::Stop => "stop",
            Activity::MsgUplink => "msgUplink",
        }
    }

    /// The activity a lifecycle event counts, as in TBMQ: START/success on STARTED, START/failed
    /// on FAILED, STOP/success on STOPPED; other events count nothing.
    pub fn of_lifecycle(event: ComponentLifecycleEvent) -> Option<(Activity, ActivityState)> {
        match event {
            ComponentLifecycleEvent::Started => Some((Activity::Start, ActivityState::Success)),
            ComponentLifecycleEvent::Failed => Some((Activity::Start, ActivityState::Failed)),
            ComponentLifecycleEvent::Stopped => Some((Activity::Stop, ActivityState::Success)),
            _ => None,
        }
    }
}

/// Whether an activity succeeded (the `state` label of the activity counters and gauges).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ActivityState {
    /// It succeeded.
    Success,
    /// It failed.
    Failed,
}

impl ActivityState {
    /// TBMQ's name (the `state` label).
    pub const fn name(self) -> &'static str {
        match self {
            ActivityState::Success => "success",
            ActivityState::Failed => "failed",
        }
    }
}

/// State of an integration for the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Running.
    Started,
    /// Start failed; waits for re-init.
    Failed,
}

impl State {
    /// Its name in the "Integration State Summary" log line.
    pub const fn summary_name(self) -> &'static str {
        match self {
            State::Started => "started",
            State::Failed => "failed",
        }
    }

    /// The `state` label of the `integration_stats_gauge{name="start"}` that counts it.
    pub const fn gauge_state(self) -> ActivityState {
        match self {
            State::Started => ActivityState::Success,
            State::Failed => ActivityState::Failed,
        }
    }
}

/// Executor-wide statistics.
#[derive(Debug, Default)]
pub struct Stats {
    /// `integration_stats_counter{name,state,type}` by (type, activity name, state name); keyed
    /// by the names rather than the enums so that the periodic log stays sorted by name.
    activity: Mutex<BTreeMap<(String, &'static str, &'static str), u64>>,
    /// Started / failed integration count per type.
    states: Mutex<BTreeMap<Uuid, (String, State)>>,
    /// Processing stats per integration.
    processors: Mutex<BTreeMap<Uuid, Arc<ProcessorStats>>>,
    /// Uplink queue: messages sent (TBMQ's `totalMsgs`), successful, failed.
    pub uplink_total: AtomicU64,
    /// Uplink messages sent and not yet stored or refused (TBMQ's `queueSize`; never reset).
    pub uplink_pending: AtomicU64,
    /// Uplink messages stored by the queue.
    pub uplink_successful: AtomicU64,
    /// An integration started, failed or stopped since the last [`Stats::take_changed`].
    changed: std::sync::atomic::AtomicBool,
    /// Uplink messages the queue refused.
    pub uplink_failed: AtomicU64,
}

impl Stats {
    /// Counts `n` occurrences of an activity (nothing when `n` is 0).
    pub fn activity(&self, integration_type: &str, activity: Activity, state: ActivityState, n: usize) {
        if n == 0 {
            return;
        }
        let (name, state) = (activity.name(), state.name());
        *self.activity.lock().entry((integration_type.to_string(), name, state)).or_default() += n as u64;
        metrics::counter!("integration_stats_counter_total", "name" => name, "state" => state, "type" => integration_type.to_string())
            .increment(n as u64);
    }

    /// Records an integration's state (None = stopped / gone) and refreshes the gauges.
    pub fn set_state(&self, id: Uuid, integration_type: &str, state: Option<State>) {
        self.changed.store(true, Relaxed);
        let mut states = self.states.lock();
        match state {
            Some(s) => states.insert(id, (integration_type.to_string(), s)),
            None => states.remove(&id),
        };
        let count = |t: &str, s: State| states.values().filter(|(ty, st)| ty == t && *st == s).count() as f64;
        for s in [State::Started, State::Failed] {
            metrics::gauge!("integration_stats_gauge", "name" => Activity::Start.name(), "state" => s.gauge_state().name(), "type" => integration_type.to_string())
                .set(count(integration_type, s));
        }
    }

    /// Whether an integration started, failed or stopped since the last call.
    pub fn take_changed(&self) -> bool {
        self.changed.swap(false, Relaxed)
    }

    /// Number of integrations per (type, state).
    pub fn state_summary(&self) -> BTreeMap<(String, &'static str), usize> {
        let mut out = BTreeMap::new();
        for (ty, s) in self.states.lock().values() {
            *out.entry((ty.clone(), s.summary_name())).or_default() += 1;
        }
        out
    }

    /// The processing stats of an integration (created on first use).
    pub fn processor(&self, id: Uuid) -> Arc<ProcessorStats> {
        self.processors.lock().entry(id).or_default().clone()
    }

    /// Forgets a stopped integration's processing stats (after its last print); its series
    /// leave `/metrics` with them.
    pub fn remove_processor(&self, id: Uuid) {
        self.processors.lock().remove(&id);
    }

    /// The integrations this executor runs, with how their deliveries go (for the service info).
    pub fn integration_statuses(&self) -> Vec<IntegrationStatusProto> {
        let states: Vec<(Uuid, State)> = self.states.lock().iter().map(|(id, (_, s))| (*id, *s)).collect();
        states
            .into_iter()
            .map(|(id, state)| {
                let stats = self.processors.lock().get(&id).cloned().unwrap_or_default();
                stats.status(id, state == State::Started)
            })
            .collect()
    }

    /// Appends the per-integration series in Prometheus text: one series per integration this
    /// executor has stats of, so a stopped or deleted integration's series disappear.
    pub fn render_prometheus(&self, out: &mut String) {
        use std::fmt::Write as _;
        let processors: Vec<(Uuid, Arc<ProcessorStats>)> =
            self.processors.lock().iter().map(|(id, p)| (*id, p.clone())).collect();
        if processors.is_empty() {
            return;
        }
        let healths: Vec<Health> = processors.iter().map(|(_, p)| p.health()).collect();
        let _ = writeln!(out, "# TYPE ie_processor_msgs_total counter");
        for (id, p) in &processors {
            for c in Counter::ALL {
                let _ = writeln!(
                    out,
                    "ie_processor_msgs_total{{integration_id=\"{id}\",counter=\"{}\"}} {}",
                    c.name(),
                    p.total(c)
                );
            }
        }
        let _ = writeln!(out, "# TYPE ie_dead_letters_total counter");
        for (id, p) in &processors {
            let _ = writeln!(out, "ie_dead_letters_total{{integration_id=\"{id}\"}} {}", p.dead_letters());
        }
        let gauges: [(&str, GaugeOf); 5] = [
            ("ie_integration_last_delivered_timestamp_seconds", |h| {
                (h.last_delivered_ms > 0).then(|| h.last_delivered_ms as f64 / 1000.0)
            }),
            ("ie_integration_last_error_timestamp_seconds", |h| {
                (h.last_error_ms > 0).then(|| h.last_error_ms as f64 / 1000.0)
            }),
            ("ie_integration_consecutive_failures", |h| Some(h.consecutive_failures as f64)),
            ("ie_integration_backlog", |h| h.backlog.map(|b| b as f64)),
            ("ie_integration_connected", |h| h.connected.map(|c| if c { 1.0 } else { 0.0 })),
        ];
        for (name, value) in gauges {
            let _ = writeln!(out, "# TYPE {name} gauge");
            for ((id, _), h) in processors.iter().zip(&healths) {
                if let Some(v) = value(h) {
                    let _ = writeln!(out, "{name}{{integration_id=\"{id}\"}} {v}");
                }
            }
        }
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
            queueSize = self.uplink_pending.load(Relaxed),
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

#[cfg(test)]
mod tests;
