//! # trib-plugin-testkit: testing a Tributary driver
//!
//! The companion of `trib-plugin-api` for a driver's own tests (add it under
//! `[dev-dependencies]`, with the same major version as `trib-plugin-api`):
//!
//! * [`message`]: [`TestMessage`], an owned MQTT message with a builder, and [`Batch`], which
//!   lends a slice of them as the `&[abi::Message]` that `process` takes, so no test fills the
//!   fourteen fields of [`trib_plugin_api::abi::Message`] by hand;
//! * [`host`]: [`FakeHost`], host services that record every log line and counter increment;
//! * [`conformance`]: the boundary contract, checked through the ABI in one line,
//!   `assert_conforms::<MyDriver>(&Scenario::new(valid_json).unreachable(..).black_hole(..))`,
//!   or on a module loaded from a library file with [`conformance::check_module`];
//! * [`target`]: loopback targets that refuse ([`target::closed_port`]) or swallow
//!   ([`target::BlackHole`]) connections.
//!
//! ```
//! use std::time::{Duration, Instant};
//!
//! use trib_plugin_api::driver::{Driver, Error, FieldError, Host, Message, Metadata, Outcome, StartConfig};
//! use trib_plugin_testkit::{Batch, FakeHost, TestMessage};
//!
//! struct Echo(Host);
//!
//! impl Driver for Echo {
//!     fn metadata() -> Metadata {
//!         Metadata { name: "echo", integration_type: "ECHO", version: "0.1.0", description: "Logs.", capabilities: 0 }
//!     }
//!     fn create(host: Host) -> Result<Self, Error> { Ok(Echo(host)) }
//!     fn validate(&self, _config: &str) -> Vec<FieldError> { Vec::new() }
//!     fn start(&mut self, _config: &StartConfig<'_>) -> Result<(), Error> { Ok(()) }
//!     fn process(&mut self, batch: &[Message<'_>], _deadline: Instant) -> Vec<Outcome> {
//!         batch.iter().map(|m| { self.0.info(m.topic()); Outcome::Delivered }).collect()
//!     }
//!     fn stop(&mut self) {}
//! }
//!
//! let fake = FakeHost::new();
//! let mut driver = Echo::create(fake.host()).unwrap();
//! let messages = [TestMessage::new("a/1", "x"), TestMessage::new("a/2", "y")];
//! let outcomes = driver.process(&Batch::new(&messages).messages(), Instant::now() + Duration::from_secs(1));
//! assert_eq!(outcomes, [Outcome::Delivered, Outcome::Delivered]);
//! assert_eq!(fake.lines_at(trib_plugin_api::abi::log_level::INFO), ["a/1", "a/2"]);
//! ```
//!
//! What this crate does not do: start real targets (a driver's tests bring their own server) or
//! load library files (the executor's loader does; `check_module` takes what it loaded).

#![warn(missing_docs)]

pub mod conformance;
pub mod host;
pub mod message;
pub mod schema;
pub mod target;

pub use conformance::{assert_conforms, Scenario};
pub use host::FakeHost;
pub use message::{Batch, TestMessage};

#[cfg(test)]
mod tests;
