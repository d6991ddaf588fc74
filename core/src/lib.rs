//! trib-core: the integration executor.
//!
//! * [`loader`] scans a plugins directory and loads every driver library it can, recording a
//!   one-line reason for every file it refuses.
//! * [`registry`] selects the drivers this executor serves (`TB_SERVICE_INTEGRATIONS_SUPPORTED` /
//!   `..._EXCLUDED`) and creates driver instances behind a safe handle.
//! * [`host`] implements the services lent to drivers (logging into `tracing`, counters into
//!   `metrics`).
//! * [`target_policy`] reads which addresses drivers may connect to and hands the policy to
//!   every driver library it loads.
//!
//! Libraries are never unloaded: upgrading a driver means restarting the executor.
//!
//! The queue, the wire messages and the topic names are the broker's too: they live in
//! `trib-queue` (re-exported here as [`queue`], [`wire`] and [`topics`]), so that the broker
//! depends on them without depending on this crate, its loader or abi_stable.

pub mod config;
pub mod context;
pub mod downlink;
pub mod events;
pub mod executor;
pub mod host;
pub mod loader;
pub mod manager;
pub mod plugins_watch;
pub mod processor;
pub mod registry;
pub mod retry;
pub mod service;
pub mod stats;
pub mod target_policy;

pub use trib_queue::{now_ms, queue, topics, wire};

#[cfg(test)]
mod tests;
