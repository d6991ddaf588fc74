//! # trib-plugin-api: writing a Tributary integration driver
//!
//! An integration driver delivers MQTT messages that matched an integration's topic filters to
//! one kind of external system (an HTTP endpoint, another MQTT broker, Kafka, ...). Drivers are
//! `cdylib` plugins: the executor loads every library in its plugins directory at start-up and
//! serves the integration types the drivers announce. This crate is the only one a driver
//! compiles against.
//!
//! ## From zero to a loaded plugin
//!
//! 1. Create a library crate and make it a `cdylib`:
//!    ```toml
//!    [lib]
//!    crate-type = ["cdylib", "rlib"]   # rlib only so that unit tests and benches can link it
//!
//!    [dependencies]
//!    trib-plugin-api = "1"
//!    ```
//! 2. Implement [`driver::Driver`] for a type. `metadata` names the integration type you serve
//!    (for example `WEBHOOK`); the broker then accepts integrations of that type, and the
//!    executor routes them to you through the downlink topic `tbmq.ie.downlink.webhook`.
//!    `validate` checks the integration's `clientConfiguration` JSON and returns field errors;
//!    `start` connects; `process` delivers a batch and returns one [`driver::Outcome`] per
//!    message, in order; `stop` releases everything.
//! 3. Export it, once, in `lib.rs`: `trib_plugin_api::export_driver!(MyDriver);`
//! 4. `cargo build --release` and copy `target/release/libmy_driver.so` into the executor's
//!    plugins directory (`TB_PLUGINS_DIR`, default `plugins/` next to the binary), then restart
//!    the executor. The executor's log and status output name every library it loaded or refused.
//!
//! The HTTP, MQTT and Kafka drivers in this repository (`plugins/`) are complete examples.
//! [`support`] holds what they share and a new driver usually wants too: a reader that checks
//! a `clientConfiguration` object field by field the way TBMQ (Jackson) reads it
//! ([`support::fields`]), TBMQ's credentials object and TBMQ's JSON message envelope.
//!
//! ## Rules of the boundary
//!
//! * Calls are synchronous and never overlap on one instance. A call may block (the executor
//!   calls drivers from dedicated threads). A driver that wants async runs its own runtime.
//! * [`abi::Message`] borrows the executor's memory: payloads are not copied when a batch crosses
//!   the boundary, and a driver must not keep references after `process` returns.
//! * `Delivered` means the external system acknowledged the message. `Retry` means a later
//!   attempt may succeed (the executor decides when and how often, per the integration's ack
//!   strategy); `Rejected` means it never will.
//! * Panics never cross the boundary: the export layer catches them and reports
//!   [`abi::error_kind::PANIC`]; the executor then fails the integration and re-creates it.
//! * Log through [`host::Host`]: lines land in the executor's log with the integration id.
//!
//! ## Compatibility promise
//!
//! The layout of every type in [`abi`] is frozen for the whole 1.x series, and a test in this
//! crate compares it with a committed snapshot, so a driver built against 1.0 keeps loading in
//! every later 1.x executor. abi_stable refuses a library whose root module or vtables have a
//! different number of fields than the host expects, so the interface never grows by adding
//! fields. It grows in two layout-neutral ways instead:
//!
//! * capability flags in [`abi::DriverMetadata::capabilities`] ([`abi::capabilities`]), which a
//!   later release extends with new bits, and
//! * the generic `control(op, arg)` calls on the module and on each instance, which carry new
//!   operations as a name plus a JSON argument. A host uses an operation only when the driver
//!   announced the matching capability bit; a driver answers unknown operations with
//!   [`abi::error_kind::UNSUPPORTED`].
//!
//! A plugin built against a different major version, or against another abi_stable major, is
//! refused at load time with one clear line saying why.

#![warn(missing_docs)]

pub mod abi;
pub mod driver;
#[doc(hidden)]
pub mod export;
pub mod host;
pub mod support;

#[doc(hidden)]
pub use abi_stable;

#[cfg(test)]
mod tests;
