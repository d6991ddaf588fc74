//! The executors this broker node has heard from (their service info on `tbmq.ie.uplink`):
//! which integration types are served right now, and what each executor refused to load.

use std::{collections::HashMap, time::Duration};

use parking_lot::Mutex;
use trib_core::wire::ServiceInfo;

use crate::model::ExecutorInfo;

/// Live executors, by service id.
#[derive(Debug)]
pub struct Executors {
    liveness: Duration,
    seen: Mutex<HashMap<String, ExecutorInfo>>,
}

impl Executors {
    /// An executor counts as live for `liveness` after its last announcement.
    pub fn new(liveness: Duration) -> Self {
        Executors { liveness, seen: Mutex::new(HashMap::new()) }
    }

    /// Records an announcement received at `now` (ms, this node's clock).
    pub fn announce(&self, info: &ServiceInfo, now: i64) {
        let entry = ExecutorInfo {
            service_id: info.service_id.clone(),
            integration_types: info.integration_types.clone(),
            plugin_errors: info.plugin_errors.clone(),
            last_seen: now,
            live: true,
        };
        self.seen.lock().insert(info.service_id.clone(), entry);
    }

    /// Every executor heard from, live or not, sorted by service id.
    pub fn all(&self, now: i64) -> Vec<ExecutorInfo> {
        let mut list: Vec<ExecutorInfo> =
            self.seen.lock().values().map(|e| ExecutorInfo { live: self.is_live(e, now), ..e.clone() }).collect();
        list.sort_by(|a, b| a.service_id.cmp(&b.service_id));
        list
    }

    /// Types (upper case, without driver versions) served by live executors, sorted.
    pub fn live_types(&self, now: i64) -> Vec<String> {
        let mut types: Vec<String> = self
            .seen
            .lock()
            .values()
            .filter(|e| self.is_live(e, now))
            .flat_map(|e| e.integration_types.iter().map(|t| type_name(t).to_ascii_uppercase()))
            .collect();
        types.sort();
        types.dedup();
        types
    }

    /// Whether a live executor serves `integration_type` (case-insensitive).
    pub fn serves(&self, integration_type: &str, now: i64) -> bool {
        self.live_types(now).iter().any(|t| t.eq_ignore_ascii_case(integration_type))
    }

    fn is_live(&self, e: &ExecutorInfo, now: i64) -> bool {
        now.saturating_sub(e.last_seen) <= self.liveness.as_millis() as i64
    }
}

/// `HTTP@1.2.0` -> `HTTP`.
fn type_name(announced: &str) -> &str {
    announced.split('@').next().unwrap_or(announced)
}
