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
//! The quickest start is `tributary new-driver my-sink`: it writes a driver crate that works as
//! generated (it appends every message to a file as a JSON line), with the file layout of the
//! first-party drivers, unit tests and the conformance suite. The crate's README walks through
//! it ("Writing a driver in 15 minutes"). By hand:
//!
//! 1. Create a library crate and make it a `cdylib`:
//!    ```toml
//!    [lib]
//!    crate-type = ["cdylib", "rlib"]   # rlib only so that unit tests and benches can link it
//!
//!    [dependencies]
//!    trib-plugin-api = "1"
//!
//!    [dev-dependencies]
//!    trib-plugin-testkit = "1"
//!    ```
//!    Until the crates are published, take both from the repository instead, by git
//!    (`{ git = "<repository>", tag = "plugin-api-v1.0.0" }`) or by path
//!    (`{ path = "<checkout>/plugin-api" }` and `{ path = "<checkout>/plugin-api/testkit" }`).
//! 2. Implement [`driver::Driver`] for a type. `metadata` names the integration type you serve
//!    (for example `WEBHOOK`); the broker then accepts integrations of that type, and the
//!    executor routes them to you through the downlink topic `tbmq.ie.downlink.webhook`.
//!    `validate` checks the integration's `clientConfiguration` JSON and returns field errors;
//!    `start` connects; `process` delivers a batch and returns one [`driver::Outcome`] per
//!    message, in order; `stop` releases everything.
//! 3. Export it, once, in `lib.rs`: `trib_plugin_api::export_driver!(MyDriver);`
//! 4. Test it with the companion crate `trib-plugin-testkit`: `TestMessage` and `Batch` build
//!    the borrowed [`abi::Message`] batches, `FakeHost` records what the driver logs and counts,
//!    and one line,
//!    `assert_conforms::<MyDriver>(&Scenario::new(valid).unreachable(..).black_hole(..))`,
//!    checks the boundary contract through the ABI (metadata, `validate` on hostile input, the
//!    call order, one outcome per message within the deadline, errors of the right kind).
//! 5. `cargo build --release` and copy `target/release/libmy_driver.so` into the executor's
//!    plugins directory (`TB_PLUGINS_DIR`, default `plugins` in the executor's working
//!    directory), then restart the executor. The executor's log and status output name every
//!    library it loaded or refused.
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
//! Added since 1.0.0 this way: the bit [`abi::capabilities::CONFIG_SCHEMA`] with the module
//! operation [`abi::control_op::CONFIG_SCHEMA`] (a driver's configuration schema), the bit
//! [`abi::capabilities::TARGET_POLICY`] with the module operation
//! [`abi::control_op::TARGET_POLICY`] (the host's policy of which addresses drivers may connect
//! to, applied with [`support::target_policy`]), and the
//! outcome status [`abi::outcome_status::TIMEOUT`], which a host that predates it reads as
//! [`abi::outcome_status::RETRY`] because hosts treat unknown statuses as retry.
//!
//! A plugin built against a different major version, or against another abi_stable major, is
//! refused at load time with one clear line saying why.
//!
//! The crate follows semver with its major version equal to the ABI's; the README's "Version
//! policy" says what a 1.x release may add and what only 2.0 may change.

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
