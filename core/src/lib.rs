//! trib-core: the integration executor.
//!
//! * [`loader`] scans a plugins directory and loads every driver library it can, recording a
//!   one-line reason for every file it refuses.
//! * [`registry`] selects the drivers this executor serves (`TB_SERVICE_INTEGRATIONS_SUPPORTED` /
//!   `..._EXCLUDED`) and creates driver instances behind a safe handle.
//! * [`host`] implements the services lent to drivers (logging into `tracing`, counters into
//!   `metrics`).
//!
//! Libraries are never unloaded: upgrading a driver means restarting the executor.

pub mod config;
pub mod downlink;
pub mod events;
pub mod executor;
pub mod host;
pub mod loader;
pub mod manager;
pub mod processor;
pub mod queue;
pub mod registry;
pub mod retry;
pub mod service;
pub mod settings;
pub mod stats;
pub mod topics;
pub mod wire;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests;
