//! The drivers this executor serves, and safe handles to driver instances.
//!
//! [`TypeSelection`] implements TBMQ's `TB_SERVICE_INTEGRATIONS_SUPPORTED` /
//! `TB_SERVICE_INTEGRATIONS_EXCLUDED` rules; [`Registry`] keeps the selected drivers by type;
//! [`DriverHandle`] owns one instance and makes every boundary call safe to use.

use std::{collections::BTreeMap, time::Duration};

use abi_stable::std_types::{RResult, RSlice, RStr};
use trib_plugin_api::{
    abi::{DriverInstance, FieldError, Message, StartConfig},
    driver::{Error, ErrorKind, Outcome},
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

/// The drivers an executor serves, by integration type.
#[derive(Debug, Default, Clone)]
pub struct Registry {
    drivers: BTreeMap<String, LoadedDriver>,
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
        Registry { drivers }
    }

    /// The served integration types, sorted.
    pub fn types(&self) -> impl Iterator<Item = &str> {
        self.drivers.keys().map(String::as_str)
    }

    /// The driver for a type, if served.
    pub fn get(&self, integration_type: &str) -> Option<&LoadedDriver> {
        self.drivers.get(&integration_type.to_ascii_uppercase())
    }

    /// Creates an instance of the driver for `integration_type`, bound to `integration_id`.
    pub fn create(&self, integration_type: &str, integration_id: &str) -> Result<DriverHandle, Error> {
        let driver = self.get(integration_type).ok_or_else(|| {
            Error::new(ErrorKind::Unsupported, format!("no driver for integration type {integration_type}"))
        })?;
        DriverHandle::create(driver, integration_id)
    }
}

/// Owns one driver instance. Dropping it destroys the instance.
///
/// Methods take `&mut self`, which enforces the ABI rule that calls on one instance never overlap.
pub struct DriverHandle {
    instance: DriverInstance,
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
        Ok(DriverHandle { instance, _host: host })
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
    pub fn process(&mut self, batch: &[Message<'_>], timeout: Duration) -> Result<Vec<Outcome>, Error> {
        let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        let outcomes =
            result((self.instance.vtable.process())(self.instance.state, RSlice::from_slice(batch), timeout_ms))?;
        Ok(outcomes.iter().map(Outcome::from_abi).collect())
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
