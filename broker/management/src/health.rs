//! An integration's status as it is, not as it was last reported: derived at each request from
//! what the executors announce about the integrations they run (their service info on
//! `tbmq.ie.uplink`, every `TB_IE_SERVICE_INFO_INTERVAL_MS` and on every start or stop), which
//! executors are alive, and the lifecycle status the last event left in the database.
//!
//! Active means that a live executor runs the integration and its last driver calls delivered;
//! every other state comes with a reason code and a sentence saying why.

use trib_queue::wire::IntegrationStatusProto;

use crate::model::{Integration, IntegrationState};

/// How an integration's deliveries go, as the executor running it last announced.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// The executor that announced it.
    pub service_id: String,
    /// Whether that executor is still heard from.
    pub executor_live: bool,
    /// When this broker node received the announcement (ms).
    pub reported_time: i64,
    /// Messages delivered per second between the last two announcements (None: one so far).
    pub delivered_per_sec: Option<f64>,
    /// What the executor said.
    pub status: IntegrationStatusProto,
}

/// Why an integration is not Active (or, for Disabled, that it is switched off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Saved disabled.
    Disabled,
    /// No live executor serves its type.
    NoExecutor,
    /// Executors serve the type but none has announced running it yet.
    WaitingForExecutor,
    /// The executor that ran it stopped being heard from.
    ExecutorLost,
    /// Its driver failed to start (waiting to be re-initialised).
    StartFailed,
    /// The driver reports it is not connected to the target.
    TargetUnreachable,
    /// Its last driver calls failed every message.
    Failing,
}

impl Reason {
    /// The code REST answers with.
    pub fn code(self) -> &'static str {
        match self {
            Reason::Disabled => "DISABLED",
            Reason::NoExecutor => "NO_EXECUTOR",
            Reason::WaitingForExecutor => "WAITING_FOR_EXECUTOR",
            Reason::ExecutorLost => "EXECUTOR_LOST",
            Reason::StartFailed => "START_FAILED",
            Reason::TargetUnreachable => "TARGET_UNREACHABLE",
            Reason::Failing => "FAILING",
        }
    }
}

/// An integration's status now.
#[derive(Debug, Clone, PartialEq)]
pub struct Health {
    /// The state shown to users.
    pub state: IntegrationState,
    /// Why it is not Active (None when it is).
    pub reason: Option<(Reason, String)>,
    /// The executor's last word on it, if an executor announced running it.
    pub delivery: Option<Delivery>,
}

/// Derives the status of `integration` at `now` (ms) from the executor's announcement of it,
/// whether a live executor serves its type, and its lifecycle status.
pub fn derive(integration: &Integration, delivery: Option<Delivery>, type_served: bool, now: i64) -> Health {
    let (state, reason) = state_and_reason(integration, delivery.as_ref(), type_served, now);
    Health { state, reason, delivery }
}

fn state_and_reason(
    integration: &Integration,
    delivery: Option<&Delivery>,
    type_served: bool,
    now: i64,
) -> (IntegrationState, Option<(Reason, String)>) {
    use IntegrationState::{Active, Disabled, Failed, Pending};
    let ty = &integration.integration_type;
    if !integration.enabled {
        return (Disabled, Some((Reason::Disabled, "The integration is disabled.".into())));
    }
    let Some(d) = delivery else {
        if !type_served {
            let text = format!("No running integration executor serves type {ty}.");
            return (Pending, Some((Reason::NoExecutor, text)));
        }
        if integration.state() == Failed {
            return (Failed, Some((Reason::StartFailed, start_error(integration))));
        }
        let text = format!("No executor has announced running it yet (executors of type {ty} are running).");
        return (Pending, Some((Reason::WaitingForExecutor, text)));
    };
    let s = &d.status;
    if !d.executor_live {
        let seconds = (now - d.reported_time).max(0) / 1000;
        let next = if type_served {
            format!("another executor of type {ty} should take it over")
        } else {
            format!("no running executor serves type {ty}")
        };
        let text = format!("Executor {} that ran it has not been heard from for {seconds} s; {next}.", d.service_id);
        return (Failed, Some((Reason::ExecutorLost, text)));
    }
    if !s.started {
        return (Failed, Some((Reason::StartFailed, start_error(integration))));
    }
    if s.connected == Some(false) {
        let why = s.disconnect_reason.as_deref().unwrap_or("no reason given");
        return (Failed, Some((Reason::TargetUnreachable, format!("The target is unreachable: {why}."))));
    }
    if s.consecutive_failures > 0 {
        let error = s.last_error.as_deref().unwrap_or("no reason given");
        let text = format!(
            "Failing since {} ({} driver call{} in a row delivered nothing): {error}",
            iso_time(s.failing_since_ts),
            s.consecutive_failures,
            if s.consecutive_failures == 1 { "" } else { "s" },
        );
        return (Failed, Some((Reason::Failing, text)));
    }
    (Active, None)
}

/// The start error the last FAILED lifecycle event left, or a general sentence.
fn start_error(integration: &Integration) -> String {
    let error = integration.status.as_ref().and_then(|s| s.get("error")).and_then(|e| e.as_str());
    match error {
        Some(e) => format!("The driver failed to start: {e}"),
        None => "The driver failed to start.".into(),
    }
}

/// `2026-12-03T15:04:05.123Z` for ms since the epoch.
fn iso_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map_or_else(|| ms.to_string(), |t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

/// The delivery figures of one moment of an integration's history.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// When (ms, this node's clock).
    pub time: i64,
    /// The executor running it then.
    pub service_id: String,
    /// Messages per second since the previous announcement (None at the first one, or when the
    /// counts restarted: another executor took over, or the executor restarted).
    pub delivered_per_sec: Option<f64>,
    /// Messages given up on per second.
    pub failed_per_sec: Option<f64>,
    /// Retried messages per second.
    pub retried_per_sec: Option<f64>,
    /// Messages waiting in the queue topic.
    pub backlog: Option<i64>,
}

/// Rates between consecutive samples, one point per sample.
pub fn rates(samples: &[crate::executors::Sample]) -> Vec<Point> {
    let mut points = Vec::with_capacity(samples.len());
    let mut previous: Option<&crate::executors::Sample> = None;
    for s in samples {
        let comparable = previous.filter(|p| {
            p.service_id == s.service_id
                && s.time > p.time
                && s.delivered >= p.delivered
                && s.failed >= p.failed
                && s.retried >= p.retried
        });
        let rate = |now: u64, before: fn(&crate::executors::Sample) -> u64| {
            comparable.map(|p| (now - before(p)) as f64 * 1000.0 / (s.time - p.time) as f64)
        };
        points.push(Point {
            time: s.time,
            service_id: s.service_id.clone(),
            delivered_per_sec: rate(s.delivered, |p| p.delivered),
            failed_per_sec: rate(s.failed, |p| p.failed),
            retried_per_sec: rate(s.retried, |p| p.retried),
            backlog: s.backlog,
        });
        previous = Some(s);
    }
    points
}

#[cfg(test)]
mod tests;
