//! The executors this broker node has heard from (their service info on `tbmq.ie.uplink`, read
//! by every node on its own): which integration types are served right now, what each
//! executor refused to load, and which integrations each runs with how their deliveries go.

use std::{collections::HashMap, time::Duration};

use parking_lot::Mutex;
use trib_queue::wire::{uuid_from_bits, IntegrationStatusProto, ServiceInfo};
use uuid::Uuid;

use crate::{
    health::Delivery,
    model::{DriverInfo, ExecutorInfo, IntegrationType},
};

/// Live executors, by service id.
#[derive(Debug)]
pub struct Executors {
    liveness: Duration,
    seen: Mutex<HashMap<String, ExecutorInfo>>,
    /// The last announcement of each integration an executor said it runs.
    running: Mutex<HashMap<Uuid, Announced>>,
    /// Per integration, what its announcements said over the last [`HISTORY`], oldest first.
    history: Mutex<HashMap<Uuid, std::collections::VecDeque<Sample>>>,
}

/// How far back [`Executors::history`] goes.
pub const HISTORY: Duration = Duration::from_secs(15 * 60);

/// Most samples kept per integration (executors announce every 10 s by default, and within
/// 200 ms of a start or stop).
const MAX_SAMPLES: usize = 600;

/// One announcement of an integration, as kept for its history.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// When this node received it (ms).
    pub time: i64,
    /// The executor that announced it.
    pub service_id: String,
    /// Counts since that executor took the integration.
    pub delivered: u64,
    /// Messages given up on.
    pub failed: u64,
    /// Messages of retried attempts.
    pub retried: u64,
    /// Messages waiting in the queue topic (None: not measured).
    pub backlog: Option<i64>,
}

/// One executor's announcement of one integration.
#[derive(Debug, Clone)]
struct Announced {
    service_id: String,
    received: i64,
    delivered_per_sec: Option<f64>,
    status: IntegrationStatusProto,
}

impl Executors {
    /// An executor counts as live for `liveness` after its last announcement.
    pub fn new(liveness: Duration) -> Self {
        Executors {
            liveness,
            seen: Mutex::new(HashMap::new()),
            running: Mutex::new(HashMap::new()),
            history: Mutex::new(HashMap::new()),
        }
    }

    /// What the announcements of integration `id` said over the last [`HISTORY`] before `now`,
    /// oldest first.
    pub fn history(&self, id: Uuid, now: i64) -> Vec<Sample> {
        let since = now - HISTORY.as_millis() as i64;
        let history = self.history.lock();
        history.get(&id).map(|h| h.iter().filter(|s| s.time >= since).cloned().collect()).unwrap_or_default()
    }

    /// Adds one sample per announced integration; drops samples older than [`HISTORY`] and
    /// integrations nobody announced for that long (deleted ones too).
    fn record_history(&self, service_id: &str, integrations: &[IntegrationStatusProto], now: i64) {
        let since = now - HISTORY.as_millis() as i64;
        let mut history = self.history.lock();
        history.retain(|_, h| h.back().is_some_and(|s| s.time >= since));
        for status in integrations {
            let id = uuid_from_bits(status.integration_id_msb, status.integration_id_lsb);
            let samples = history.entry(id).or_default();
            while samples.front().is_some_and(|s| s.time < since) || samples.len() >= MAX_SAMPLES {
                samples.pop_front();
            }
            samples.push_back(Sample {
                time: now,
                service_id: service_id.to_string(),
                delivered: status.delivered_msgs,
                failed: status.failed_msgs,
                retried: status.retried_msgs,
                backlog: status.backlog,
            });
        }
    }

    /// What the executor running integration `id` last announced about it, and whether that
    /// executor is still live at `now`.
    pub fn delivery(&self, id: Uuid, now: i64) -> Option<Delivery> {
        let a = self.running.lock().get(&id).cloned()?;
        let executor_live = self.seen.lock().get(&a.service_id).is_some_and(|e| self.is_live(e, now));
        Some(Delivery {
            service_id: a.service_id,
            executor_live,
            reported_time: a.received,
            delivered_per_sec: a.delivered_per_sec,
            status: a.status,
        })
    }

    /// Records the integrations an executor announced: those it no longer lists are no longer
    /// its (stopped, deleted or taken over by another executor).
    fn record_running(&self, service_id: &str, integrations: &[IntegrationStatusProto], now: i64) {
        let mut running = self.running.lock();
        let listed: std::collections::HashSet<Uuid> =
            integrations.iter().map(|s| uuid_from_bits(s.integration_id_msb, s.integration_id_lsb)).collect();
        running.retain(|id, a| a.service_id != service_id || listed.contains(id));
        for status in integrations {
            let id = uuid_from_bits(status.integration_id_msb, status.integration_id_lsb);
            let rate = running.get(&id).filter(|a| a.service_id == service_id && now > a.received).and_then(|a| {
                let delivered = status.delivered_msgs.checked_sub(a.status.delivered_msgs)?;
                Some(delivered as f64 * 1000.0 / (now - a.received) as f64)
            });
            let announced = Announced {
                service_id: service_id.to_string(),
                received: now,
                delivered_per_sec: rate,
                status: status.clone(),
            };
            running.insert(id, announced);
        }
    }

    /// Records an announcement received at `now` (ms, this node's clock). An announcement sent
    /// more than the liveness before `now` is skipped: a node reading the uplink topic from the
    /// beginning must not take executors gone long ago for live ones.
    pub fn announce(&self, info: &ServiceInfo, now: i64) {
        if info.timestamp > 0 && now.saturating_sub(info.timestamp) > self.liveness.as_millis() as i64 {
            return;
        }
        let entry = ExecutorInfo {
            service_id: info.service_id.clone(),
            integration_types: info.integration_types.clone(),
            plugin_errors: info.plugin_errors.clone(),
            last_seen: now,
            live: true,
            drivers: info
                .drivers
                .iter()
                .map(|d| DriverInfo {
                    integration_type: d.integration_type.to_ascii_uppercase(),
                    driver_version: d.driver_version.clone(),
                    file: d.file.clone(),
                    description: d.description.clone(),
                    capabilities: d.capabilities,
                    config_schema: d.config_schema.as_deref().and_then(|t| serde_json::from_str(t).ok()),
                })
                .collect(),
        };
        self.seen.lock().insert(info.service_id.clone(), entry);
        self.record_running(&info.service_id, &info.integrations, now);
        self.record_history(&info.service_id, &info.integrations, now);
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

    /// The types live executors serve, with their drivers' versions and configuration schema,
    /// sorted by type. Several executors may run different driver versions during an upgrade;
    /// the schema is the one of the highest version that declares one.
    pub fn types(&self, now: i64) -> Vec<IntegrationType> {
        let mut types: std::collections::BTreeMap<String, (IntegrationType, Option<String>)> = Default::default();
        for e in self.seen.lock().values().filter(|e| self.is_live(e, now)) {
            for announced in &e.integration_types {
                let name = type_name(announced).to_ascii_uppercase();
                let (entry, schema_version) = types.entry(name.clone()).or_insert_with(|| {
                    let t = IntegrationType {
                        integration_type: name.clone(),
                        driver_versions: Vec::new(),
                        executors: Vec::new(),
                        description: String::new(),
                        config_schema: None,
                    };
                    (t, None)
                });
                entry.executors.push(e.service_id.clone());
                if let Some(d) = e.drivers.iter().find(|d| d.integration_type == name) {
                    entry.driver_versions.push(d.driver_version.clone());
                    if entry.description.is_empty() {
                        entry.description = d.description.clone();
                    }
                    let newer = schema_version.as_deref().is_none_or(|v| newer_version(&d.driver_version, v));
                    if d.config_schema.is_some() && newer {
                        entry.config_schema = d.config_schema.clone();
                        *schema_version = Some(d.driver_version.clone());
                    }
                } else if let Some(version) = announced.split_once('@').map(|(_, v)| v) {
                    entry.driver_versions.push(version.to_string());
                }
            }
        }
        types
            .into_values()
            .map(|(mut t, _)| {
                t.driver_versions.sort();
                t.driver_versions.dedup();
                t.executors.sort();
                t.executors.dedup();
                t
            })
            .collect()
    }

    /// The configuration schema of `integration_type` (case-insensitive) as announced by any
    /// executor heard from, live or not (the highest driver version that declares one): what
    /// decides which configuration values are secret.
    pub fn config_schema(&self, integration_type: &str) -> Option<serde_json::Value> {
        let seen = self.seen.lock();
        let mut best: Option<(&str, &serde_json::Value)> = None;
        for d in seen.values().flat_map(|e| &e.drivers) {
            let Some(schema) = d.config_schema.as_ref() else { continue };
            if d.integration_type.eq_ignore_ascii_case(integration_type)
                && best.is_none_or(|(v, _)| newer_version(&d.driver_version, v))
            {
                best = Some((&d.driver_version, schema));
            }
        }
        best.map(|(_, s)| s.clone())
    }

    /// Whether a live executor serves `integration_type` (case-insensitive).
    pub fn serves(&self, integration_type: &str, now: i64) -> bool {
        self.live_types(now).iter().any(|t| t.eq_ignore_ascii_case(integration_type))
    }

    fn is_live(&self, e: &ExecutorInfo, now: i64) -> bool {
        now.saturating_sub(e.last_seen) <= self.liveness.as_millis() as i64
    }
}

/// Whether version `a` is above `b`, comparing dot-separated numbers (text order for the rest).
fn newer_version(a: &str, b: &str) -> bool {
    let parts = |v: &str| -> Vec<u64> { v.split(['.', '-', '+']).map_while(|p| p.parse().ok()).collect() };
    match parts(a).cmp(&parts(b)) {
        std::cmp::Ordering::Equal => a > b,
        order => order.is_gt(),
    }
}

/// `HTTP@1.2.0` -> `HTTP`.
fn type_name(announced: &str) -> &str {
    announced.split('@').next().unwrap_or(announced)
}
