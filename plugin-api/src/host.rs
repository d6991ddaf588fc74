//! [`Host`]: the safe handle a driver uses to log through the executor and to bump counters.
//!
//! Lines logged here land in the executor's `tracing` output with the integration id attached,
//! so a driver never sets up logging of its own.

use std::{ffi::c_void, fmt::Display};

use abi_stable::{
    prefix_type::{PrefixTypeTrait, WithMetadata},
    staticref,
    std_types::RStr,
};

use crate::abi::{log_level, HostServices, HostVTable, HostVTableRef};

/// The host services of one driver instance. Cheap to copy; valid for the life of the instance.
#[derive(Clone, Copy)]
pub struct Host {
    services: HostServices,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Host")
    }
}

impl Host {
    /// Wraps the services the host passed to `create`.
    pub fn from_abi(services: HostServices) -> Self {
        Host { services }
    }

    /// A host that drops every log line and counter: for unit tests of a driver.
    pub fn detached() -> Self {
        Host { services: HostServices { ctx: std::ptr::null(), vtable: DETACHED } }
    }

    /// Whether a line at `level` (one of [`log_level`]) would be written.
    pub fn enabled(&self, level: u8) -> bool {
        (self.services.vtable.log_enabled())(self.services.ctx, level)
    }

    /// Logs `message` at `level` (one of [`log_level`]).
    pub fn log(&self, level: u8, message: impl Display) {
        if self.enabled(level) {
            let text = message.to_string();
            (self.services.vtable.log())(self.services.ctx, level, RStr::from_str(&text));
        }
    }

    /// Logs at ERROR: data was lost or an operator must act.
    pub fn error(&self, message: impl Display) {
        self.log(log_level::ERROR, message);
    }

    /// Logs at WARN: something went wrong and was recovered.
    pub fn warn(&self, message: impl Display) {
        self.log(log_level::WARN, message);
    }

    /// Logs at INFO: lifecycle.
    pub fn info(&self, message: impl Display) {
        self.log(log_level::INFO, message);
    }

    /// Logs at DEBUG: per-message detail.
    pub fn debug(&self, message: impl Display) {
        self.log(log_level::DEBUG, message);
    }

    /// Adds `value` to the host counter `name`. Use short fixed names, never message data.
    pub fn count(&self, name: &str, value: u64) {
        (self.services.vtable.counter_add())(self.services.ctx, RStr::from_str(name), value);
    }
}

extern "C" fn detached_log(_ctx: *const c_void, _level: u8, _message: RStr<'_>) {}

extern "C" fn detached_enabled(_ctx: *const c_void, _level: u8) -> bool {
    false
}

extern "C" fn detached_counter(_ctx: *const c_void, _name: RStr<'_>, _value: u64) {}

struct Detached;

impl Detached {
    staticref! {
        const WM: WithMetadata<HostVTable> = WithMetadata::new(HostVTable {
            log: detached_log,
            log_enabled: detached_enabled,
            counter_add: detached_counter,
        })
    }
}

const DETACHED: HostVTableRef = HostVTableRef(Detached::WM.as_prefix());

/// Builds a [`HostVTableRef`] from three functions; used by hosts (the executor, tests).
pub fn host_vtable(
    log: extern "C" fn(*const c_void, u8, RStr<'_>),
    log_enabled: extern "C" fn(*const c_void, u8) -> bool,
    counter_add: extern "C" fn(*const c_void, RStr<'_>, u64),
) -> HostVTableRef {
    HostVTable { log, log_enabled, counter_add }.leak_into_prefix()
}
