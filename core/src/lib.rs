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

pub mod host;
pub mod loader;
pub mod queue;
pub mod registry;
pub mod wire;

#[cfg(test)]
mod tests;
