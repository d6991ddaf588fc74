//! The drivers this executor serves, and safe handles to driver instances.
//!
//! [`TypeSelection`] implements TBMQ's `TB_SERVICE_INTEGRATIONS_SUPPORTED` /
//! `TB_SERVICE_INTEGRATIONS_EXCLUDED` rules; [`Registry`] keeps the selected drivers by type;
//! [`DriverHandle`] owns one instance and makes every boundary call safe to use.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use abi_stable::std_types::{RResult, RSlice, RStr};
use trib_plugin_api::{
    abi::{capabilities, control_op, DriverInstance, FieldError, Message, StartConfig},
    driver::{Connectivity, Error, ErrorKind, Outcome},
};

use crate::{
    host::HostContext,
    loader::{LoadReport, LoadedDriver},
};

/// Which integration types an executor serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeSelection {
    supported: Option<Vec<String>>,
    excluded: Vec<String>,
}

/// A bad `TB_SERVICE_INTEGRATIONS_*` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid integration type '{0}' in {1}: use ALL, NONE or a comma list of type names")]
pub struct SelectionError(pub String, pub &'static str);

impl TypeSelection {
    /// Parses the two settings. `ALL` (any case) means every loaded type; empty or `NONE` means none.
    pub fn parse(supported: &str, excluded: &str) -> Result<Self, SelectionError> {
        Ok(TypeSelection {
            supported: parse_list(supported, "TB_SERVICE_INTEGRATIONS_SUPPORTED")?,
            excluded: parse_list(excluded, "TB_SERVICE_INTEGRATIONS_EXCLUDED")?.unwrap_or_default(),
        })
    }

    /// Every type.
    pub fn all() -> Self {
        TypeSelection { supported: None, excluded: Vec::new() }
    }

    /// Whether `integration_type` is selected.
    pub fn selects(&self, integration_type: &str) -> bool {
        let t = integration_type.to_ascii_uppercase();
        let supported = self.supported.as_ref().is_none_or(|list| list.contains(&t));
        supported && !self.excluded.contains(&t)
    }
}

/// `None` = ALL; `Some(list)` otherwise (empty for NONE).
fn parse_list(value: &str, name: &'static str) -> Result<Option<Vec<String>>, SelectionError> {
    let v = value.trim();
    if v.eq_ignore_ascii_case("ALL") {
        return Ok(None);
    }
    if v.is_empty() || v.eq_ignore_ascii_case("NONE") {
        return Ok(Some(Vec::new()));
    }
    v.split(',')
        .map(|item| {
            let t = item.trim();
            let valid = !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if valid {
                Ok(t.to_ascii_uppercase())
            } else {
                Err(SelectionError(t.to_string(), name))
            }
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// The drivers an executor serves, by integration type. Drivers can be added while the
/// executor runs (hot plugging); they are never removed (libraries are never unloaded).
#[derive(Debug, Default)]
pub struct Registry {
    drivers: parking_lot::RwLock<BTreeMap<String, LoadedDriver>>,
    selection: Option<TypeSelection>,
}

/// What [`Registry::add`] did with a driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Added {
    /// Its type is served from now on.
    Serving,
    /// `TB_SERVICE_INTEGRATIONS_SUPPORTED/EXCLUDED` leave its type out.
    NotSelected,
    /// Another library already serves its type.
    Duplicate(std::path::PathBuf),
}

impl Registry {
    /// Keeps the loaded drivers whose type `selection` selects.
    pub fn new(report: &LoadReport, selection: &TypeSelection) -> Self {
        let drivers = report
            .drivers
            .iter()
            .filter(|d| selection.selects(d.integration_type()))
            .map(|d| (d.integration_type().to_string(), d.clone()))
            .collect();
        Registry { drivers: parking_lot::RwLock::new(drivers), selection: Some(selection.clone()) }
    }

    /// Serves `driver`'s type from now on, unless the selection leaves it out or another library
    /// already serves it.
    pub fn add(&self, driver: LoadedDriver) -> Added {
        if !self.selection.as_ref().is_none_or(|s| s.selects(driver.integration_type())) {
            return Added::NotSelected;
        }
        let mut drivers = self.drivers.write();
        if let Some(first) = drivers.get(driver.integration_type()) {
            return Added::Duplicate(first.path.clone());
        }
        drivers.insert(driver.integration_type().to_string(), driver);
        Added::Serving
    }

    /// The served integration types, sorted.
    pub fn types(&self) -> Vec<String> {
        self.drivers.read().keys().cloned().collect()
    }

    /// The driver for a type, if served.
    pub fn get(&self, integration_type: &str) -> Option<LoadedDriver> {
        self.drivers.read().get(&integration_type.to_ascii_uppercase()).cloned()
    }

    /// Every served driver, by type.
    pub fn drivers(&self) -> Vec<LoadedDriver> {
        self.drivers.read().values().cloned().collect()
    }

    /// Creates an instance of the driver for `integration_type`, bound to `integration_id`.
    pub fn create(&self, integration_type: &str, integration_id: &str) -> Result<DriverHandle, Error> {
        let driver = self.get(integration_type).ok_or_else(|| {
            Error::new(ErrorKind::Unsupported, format!("no driver for integration type {integration_type}"))
        })?;
        DriverHandle::create(&driver, integration_id)
    }
}

/// How long after a batch's deadline a pipelined driver may still take to settle it.
pub const SETTLE_GRACE: Duration = Duration::from_millis(500);

/// Until when the driver call in progress on an instance may run (epoch ms, 0 = no call): what
/// the watchdog reads to find a worker stuck in a driver call.
#[derive(Debug, Default)]
pub struct CallWatch(std::sync::atomic::AtomicI64);

impl CallWatch {
    fn enter(&self, budget: Duration) {
        let until = trib_queue::now_ms().saturating_add(i64::try_from(budget.as_millis()).unwrap_or(i64::MAX));
        self.0.store(until.max(1), std::sync::atomic::Ordering::Relaxed);
    }

    fn exit(&self) {
        self.0.store(0, std::sync::atomic::Ordering::Relaxed);
    }

    /// How long past its budget the call in progress is, if one is and it is late.
    pub fn overdue(&self, now_ms: i64) -> Option<Duration> {
        let until = self.0.load(std::sync::atomic::Ordering::Relaxed);
        (until != 0 && now_ms > until).then(|| Duration::from_millis((now_ms - until) as u64))
    }
}

/// Owns one driver instance. Dropping it destroys the instance.
///
/// Methods take `&mut self`, which enforces the ABI rule that calls on one instance never overlap.
pub struct DriverHandle {
    instance: DriverInstance,
    /// The driver announced [`capabilities::PIPELINE`].
    can_pipeline: bool,
    /// The driver announced [`capabilities::CONNECTIVITY`].
    can_report_connectivity: bool,
    /// The host switched the instance to pipelining ([`DriverHandle::enable_pipeline`]).
    pipelined: bool,
    /// Set around deliveries when watched ([`DriverHandle::watch`]).
    watch: Option<std::sync::Arc<CallWatch>>,
    // Keeps the host context alive as long as the instance may call back into it.
    _host: Box<HostContext>,
}

impl std::fmt::Debug for DriverHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DriverHandle")
    }
}

fn result<T>(r: RResult<T, trib_plugin_api::abi::PluginError>) -> Result<T, Error> {
    match r {
        RResult::ROk(v) => Ok(v),
        RResult::RErr(e) => Err(Error::from_abi(&e)),
    }
}

impl DriverHandle {
    /// Creates an instance of `driver`.
    pub fn create(driver: &LoadedDriver, integration_id: &str) -> Result<Self, Error> {
        let host = HostContext::new(integration_id, driver.integration_type());
        let instance = result((driver.module.create())(host.services()))?;
        let can_pipeline = driver.metadata.capabilities & capabilities::PIPELINE != 0;
        let can_report_connectivity = driver.metadata.capabilities & capabilities::CONNECTIVITY != 0;
        Ok(DriverHandle { instance, can_pipeline, can_report_connectivity, pipelined: false, watch: None, _host: host })
    }

    /// Validates a `clientConfiguration` JSON text.
    pub fn validate(&mut self, client_configuration: &str) -> Result<Vec<FieldError>, Error> {
        result((self.instance.vtable.validate())(self.instance.state, RStr::from_str(client_configuration)))
            .map(|v| v.into_vec())
    }

    /// Checks the connection to the external system.
    pub fn check_connection(&mut self, config: &StartConfig<'_>) -> Result<(), Error> {
        result((self.instance.vtable.check_connection())(self.instance.state, config))
    }

    /// Starts the instance.
    pub fn start(&mut self, config: &StartConfig<'_>) -> Result<(), Error> {
        result((self.instance.vtable.start())(self.instance.state, config))
    }

    /// Delivers a batch: one outcome per message, in order. A driver error (including a panic)
    /// is returned as `Err`; the caller then treats every message as not delivered.
    ///
    /// On a pipelined instance this submits the batch and waits for its outcomes; nothing else
    /// may be pending then.
    pub fn process(&mut self, batch: &[Message<'_>], timeout: Duration) -> Result<Vec<Outcome>, Error> {
        let deadline = Instant::now() + timeout;
        match self.submit(batch, timeout)? {
            Some(outcomes) => Ok(outcomes),
            None => loop {
                // The batch is the only one pending, so the oldest; the driver settles it by
                // its deadline, a little later at worst. One that never does is an error, not
                // a wait without end.
                let last_chance = deadline + SETTLE_GRACE;
                let wait = last_chance.saturating_duration_since(Instant::now());
                if let Some(outcomes) = self.collect(wait)? {
                    return Ok(outcomes);
                }
                if Instant::now() >= last_chance {
                    return Err(Error::new(ErrorKind::Internal, "the driver did not settle the batch by its deadline"));
                }
            },
        }
    }

    /// Switches the instance to pipelining ([`control_op::PIPELINE`]) when its driver announced
    /// [`capabilities::PIPELINE`]; returns whether it is on. Call after `start`.
    pub fn enable_pipeline(&mut self) -> bool {
        if self.can_pipeline && !self.pipelined {
            self.pipelined = self.control(control_op::PIPELINE, "").is_ok();
        }
        self.pipelined
    }

    /// Pipelined: submits a non-empty batch with its `timeout`. `Some` = the driver settled it at
    /// once (one outcome per message); `None` = pending, to be [`DriverHandle::collect`]ed. Not
    /// pipelined: the batch is delivered and settled here.
    pub fn submit(&mut self, batch: &[Message<'_>], timeout: Duration) -> Result<Option<Vec<Outcome>>, Error> {
        if batch.is_empty() {
            // An empty batch would be a collect on a pipelined instance.
            return Ok(Some(Vec::new()));
        }
        let outcomes = self.call_process(batch, timeout)?;
        Ok((!(self.pipelined && outcomes.is_empty())).then_some(outcomes))
    }

    /// Pipelined: waits up to `wait` for the oldest pending batch; `Some` = its outcomes (the
    /// caller checks their number), `None` = not finished yet or nothing pending.
    pub fn collect(&mut self, wait: Duration) -> Result<Option<Vec<Outcome>>, Error> {
        if !self.pipelined {
            return Ok(None);
        }
        let outcomes = self.call_process(&[], wait)?;
        Ok((!outcomes.is_empty()).then_some(outcomes))
    }

    /// The driver announced [`capabilities::CONNECTIVITY`]: [`DriverHandle::connectivity`]
    /// answers.
    pub fn reports_connectivity(&self) -> bool {
        self.can_report_connectivity
    }

    /// Whether the instance is connected to its target, when its driver announced
    /// [`capabilities::CONNECTIVITY`] and answered; `None` otherwise.
    pub fn connectivity(&mut self) -> Option<Connectivity> {
        if !self.can_report_connectivity {
            return None;
        }
        self.control(control_op::CONNECTIVITY, "").ok().and_then(|text| Connectivity::from_json(&text))
    }

    /// From now on, every delivery call (`process`, `submit`, `collect`) is announced on `watch`
    /// with the time it may take.
    pub fn watch(&mut self, watch: std::sync::Arc<CallWatch>) {
        self.watch = Some(watch);
    }

    fn call_process(&mut self, batch: &[Message<'_>], timeout: Duration) -> Result<Vec<Outcome>, Error> {
        let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        if let Some(w) = &self.watch {
            w.enter(timeout);
        }
        let returned = (self.instance.vtable.process())(self.instance.state, RSlice::from_slice(batch), timeout_ms);
        if let Some(w) = &self.watch {
            w.exit();
        }
        Ok(result(returned)?.iter().map(Outcome::from_abi).collect())
    }

    /// Stops the instance (it may be started again only by creating a new one).
    pub fn stop(&mut self) -> Result<(), Error> {
        result((self.instance.vtable.stop())(self.instance.state))
    }

    /// Instance-level extension call.
    pub fn control(&mut self, op: &str, arg: &str) -> Result<String, Error> {
        result((self.instance.vtable.control())(self.instance.state, RStr::from_str(op), RStr::from_str(arg)))
            .map(|s| s.into_string())
    }
}

impl Drop for DriverHandle {
    fn drop(&mut self) {
        (self.instance.vtable.destroy())(self.instance.state);
    }
}
