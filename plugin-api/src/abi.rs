//! The frozen 1.0 binary interface between the executor (host) and a driver plugin.
//!
//! Everything in this module crosses the dynamic-library boundary, so its layout is a promise:
//! the `layout_snapshot` test fails when any type reachable from [`DriverModuleRef`] changes.
//! New capabilities are added through the `control` calls and the capability flags in
//! [`DriverMetadata::capabilities`], never by adding fields here (see the crate guide).
//!
//! Driver authors do not use this module directly; the safe layer in [`crate::driver`] and the
//! [`crate::export_driver!`] macro build these types for them.

use std::ffi::c_void;

use abi_stable::{
    library::RootModule,
    sabi_types::VersionStrings,
    std_types::{ROption, RResult, RSlice, RStr, RString, RVec},
    StableAbi,
};

/// Version of the binary interface described by this module.
///
/// abi_stable only refuses a library whose *major* version differs, and the layout check refuses
/// any change to the frozen types, so this stays `1.0.0` for the whole 1.x series.
pub const ABI_VERSION: &str = "1.0.0";

/// The root module a driver library exports: its metadata and a factory for instances.
///
/// Obtain it on the host side with the loader in `trib-core`; build it on the driver side with
/// [`crate::export_driver!`].
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = DriverModuleRef)))]
#[sabi(missing_field(panic))]
pub struct DriverModule {
    /// Returns the driver's metadata. Must not fail and must be cheap.
    pub metadata: extern "C" fn() -> DriverMetadata,
    /// Creates a new, not yet started, driver instance bound to the given host services.
    pub create: extern "C" fn(host: HostServices) -> RResult<DriverInstance, PluginError>,
    /// Module-level extension call: `op` names the operation, `arg` is its (usually JSON) argument.
    ///
    /// Unknown operations return an error of kind [`error_kind::UNSUPPORTED`].
    #[sabi(last_prefix_field)]
    pub control: extern "C" fn(op: RStr<'_>, arg: RStr<'_>) -> RResult<RString, PluginError>,
}

impl RootModule for DriverModuleRef {
    abi_stable::declare_root_module_statics! {DriverModuleRef}
    const BASE_NAME: &'static str = "trib_driver";
    const NAME: &'static str = "trib_driver";
    const VERSION_STRINGS: VersionStrings = VersionStrings::new(ABI_VERSION);
}

/// What a driver says about itself.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct DriverMetadata {
    /// Driver name, for logs and status output (e.g. `http`).
    pub name: RString,
    /// Integration type served by this driver, upper case (e.g. `HTTP`).
    pub integration_type: RString,
    /// The driver's own version (its crate version).
    pub driver_version: RString,
    /// Version of `trib-plugin-api` the driver was compiled against.
    pub api_version: RString,
    /// One-line human description.
    pub description: RString,
    /// Bit set of [`capabilities`] flags.
    pub capabilities: u64,
}

/// Capability flags a driver can announce in [`DriverMetadata::capabilities`].
///
/// Flags are how the interface grows without changing its layout: a later 1.x release defines
/// a new bit plus the `control` operations that go with it, and a host only uses an operation
/// when the driver announced the bit.
pub mod capabilities {
    /// The driver implements a real connection check (not just a configuration check).
    pub const CHECK_CONNECTION: u64 = 1 << 0;
    /// The driver answers instance-level `control` calls (beyond returning "unsupported").
    pub const INSTANCE_CONTROL: u64 = 1 << 1;
    /// The driver answers module-level `control` calls (beyond returning "unsupported").
    pub const MODULE_CONTROL: u64 = 1 << 2;
    /// The driver declares a JSON Schema for its `clientConfiguration`: the module-level
    /// `control` operation [`super::control_op::CONFIG_SCHEMA`] returns it. This bit alone
    /// promises that one operation; [`MODULE_CONTROL`] is about the driver's own operations.
    /// Added after 1.0.0; a host that predates it never asks.
    pub const CONFIG_SCHEMA: u64 = 1 << 3;
    /// The instance accepts the next batch while earlier batches' outcomes are pending
    /// (pipelining, see [`super::control_op::PIPELINE`]). Until the host switches it on with
    /// that operation, `process` keeps its 1.0 meaning. Added after 1.0.0; a host that
    /// predates it never switches it on.
    pub const PIPELINE: u64 = 1 << 4;
    /// The instance reports whether it is connected to its target: the instance-level
    /// operation [`super::control_op::CONNECTIVITY`]. Added after 1.0.0; a host that predates
    /// it never asks.
    pub const CONNECTIVITY: u64 = 1 << 5;
    /// The driver checks every address it connects to against the host's target policy
    /// ([`crate::support::target_policy`]), and takes the host's policy through the
    /// module-level operation [`super::control_op::TARGET_POLICY`]. Added after 1.0.0; a host
    /// that predates it never sends one, and the driver then applies the default policy.
    pub const TARGET_POLICY: u64 = 1 << 6;
}

/// Names of the `control` operations this crate defines, with their argument and answer.
///
/// A host calls an operation only when the driver announced the capability bit named in its
/// documentation. Drivers built with the safe layer ([`crate::driver::Driver`]) get these
/// answered by [`crate::export_driver!`]; a driver written against this module directly answers
/// them in [`DriverModule::control`].
pub mod control_op {
    /// Module-level. Argument: empty. Answer: the JSON Schema (draft 2020-12 subset, see the
    /// "Configuration schema" section of [`crate::driver`]) of the driver's
    /// `clientConfiguration`, as JSON text whose root is an object schema (`"type": "object"`).
    /// Capability: [`super::capabilities::CONFIG_SCHEMA`].
    pub const CONFIG_SCHEMA: &str = "config_schema";

    /// Instance-level, after `start`. Argument: empty. Answer: `on`. Capability:
    /// [`super::capabilities::PIPELINE`].
    ///
    /// Switches the instance's `process` to pipelined use, for the rest of its life:
    ///
    /// * `process` with a **non-empty** batch *submits* it: the driver sends what it can and
    ///   returns either no outcome at all (the batch is pending) or, when it already settled the
    ///   whole batch (not connected, every message refused), exactly one outcome per message,
    ///   in order. `timeout_ms` is the batch's deadline, counted from this call.
    /// * `process` with an **empty** batch *collects*: it waits up to `timeout_ms` for the
    ///   oldest pending batch and returns exactly one outcome per message of that batch, in
    ///   order, once every message of it is settled or its deadline has passed (the unsettled
    ///   ones as [`super::outcome_status::TIMEOUT`]). It returns no outcome when nothing is
    ///   pending or the oldest batch is not finished by `timeout_ms` (`0` = just look).
    ///
    /// Batches are collected in the order they were submitted. Nothing a batch borrows may be
    /// kept after the submitting call returns, exactly as without pipelining. `stop` drops
    /// every pending batch (the host redelivers what it did not collect).
    pub const PIPELINE: &str = "pipeline";

    /// Instance-level, after `start`. Argument: empty. Answer: JSON text
    /// `{"connected": true}` or `{"connected": false, "reason": "<why, one line>"}`. Must be
    /// cheap (the host asks about once a second) and must not block on the network.
    /// Capability: [`super::capabilities::CONNECTIVITY`].
    pub const CONNECTIVITY: &str = "connectivity";

    /// Module-level, at any time (the host sends it right after loading the library, before
    /// creating instances). Argument: the policy as JSON text,
    /// `{"deny":[{"rule":"169.254.0.0/16","source":"<where it comes from>"}],"allow":[..]}`
    /// with rules in the text form of [`crate::support::target_policy::Rule::parse`]. Answer:
    /// `ok`; a CONFIG error when the text is not a valid policy (the policy in force is kept).
    /// The policy replaces the one in force for every connection made afterwards, in every
    /// instance of the library. Capability: [`super::capabilities::TARGET_POLICY`].
    pub const TARGET_POLICY: &str = "target_policy";
}

/// A started or not-yet-started driver instance: an opaque state pointer and its vtable.
///
/// The host owns it and must call `destroy` exactly once; after that the state pointer is dangling.
/// The host never calls two methods of one instance at the same time.
#[repr(C)]
#[derive(StableAbi)]
pub struct DriverInstance {
    /// Opaque driver state, only ever passed back to the vtable functions.
    pub state: *mut c_void,
    /// The instance's functions.
    pub vtable: InstanceVTableRef,
}

// SAFETY: the state is only touched through the vtable, one call at a time, and the safe layer
// requires the driver type to be `Send`.
unsafe impl Send for DriverInstance {}

/// Functions of a driver instance. Every function catches panics and reports them as an error of
/// kind [`error_kind::PANIC`].
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = InstanceVTableRef)))]
#[sabi(missing_field(panic))]
pub struct InstanceVTable {
    /// Validates a `clientConfiguration` JSON text; an empty list means valid.
    pub validate:
        extern "C" fn(state: *mut c_void, client_configuration: RStr<'_>) -> RResult<RVec<FieldError>, PluginError>,
    /// Connects to the external system with the given configuration and disconnects again.
    pub check_connection: extern "C" fn(state: *mut c_void, config: &StartConfig<'_>) -> RResult<(), PluginError>,
    /// Starts delivering with the given configuration. Called once per instance.
    pub start: extern "C" fn(state: *mut c_void, config: &StartConfig<'_>) -> RResult<(), PluginError>,
    /// Delivers a batch; returns exactly one outcome per message, in order, within about
    /// `timeout_ms` milliseconds (messages still unacknowledged by then are reported as
    /// [`outcome_status::TIMEOUT`], or as retry by drivers built before that status existed).
    /// An instance the host switched to pipelining ([`control_op::PIPELINE`]) submits
    /// non-empty batches and collects outcomes with empty ones, as described there.
    pub process: extern "C" fn(
        state: *mut c_void,
        batch: RSlice<'_, Message<'_>>,
        timeout_ms: u64,
    ) -> RResult<RVec<Outcome>, PluginError>,
    /// Stops delivering and releases every external resource (connections, threads).
    pub stop: extern "C" fn(state: *mut c_void) -> RResult<(), PluginError>,
    /// Frees the instance state. Calls `stop` first if the instance is still running.
    pub destroy: extern "C" fn(state: *mut c_void),
    /// Instance-level extension call, like [`DriverModule::control`].
    #[sabi(last_prefix_field)]
    pub control: extern "C" fn(state: *mut c_void, op: RStr<'_>, arg: RStr<'_>) -> RResult<RString, PluginError>,
}

/// What an instance needs to start (or to check a connection).
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy)]
pub struct StartConfig<'a> {
    /// Integration id (UUID text with hyphens).
    pub integration_id: RStr<'a>,
    /// Integration name.
    pub integration_name: RStr<'a>,
    /// Service id of the executor running the instance (`tbmqIeNode` in the JSON envelope).
    pub service_id: RStr<'a>,
    /// The type-specific `clientConfiguration` object, as JSON text.
    pub client_configuration: RStr<'a>,
    /// The metadata map `{"integrationName": .., <configuration.metadata>..}`, as JSON text.
    pub metadata: RStr<'a>,
}

/// One MQTT message handed to a driver. Every field borrows the host's memory: nothing is copied
/// when a batch crosses the boundary, and nothing may be kept after `process` returns.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy)]
pub struct Message<'a> {
    /// The MQTT topic the message was published to.
    pub topic: RStr<'a>,
    /// The payload bytes.
    pub payload: RSlice<'a, u8>,
    /// The publisher's QoS (0, 1 or 2).
    pub qos: u8,
    /// The publisher's retain flag.
    pub retain: bool,
    /// MQTT client id of the publisher.
    pub client_id: RStr<'a>,
    /// Service id of the broker node that routed the message (`tbmqNode`).
    pub broker_node: RStr<'a>,
    /// Broker time in epoch milliseconds when the message was queued for the integration (`ts`).
    pub timestamp_ms: i64,
    /// MQTT 5 user properties, in order (may repeat keys).
    pub user_properties: RSlice<'a, UserProperty<'a>>,
    /// MQTT 5 content type.
    pub content_type: ROption<RStr<'a>>,
    /// MQTT 5 correlation data.
    pub correlation_data: ROption<RSlice<'a, u8>>,
    /// MQTT 5 response topic.
    pub response_topic: ROption<RStr<'a>>,
    /// MQTT 5 message expiry interval in seconds, as left when the message was queued.
    pub message_expiry_secs: ROption<u32>,
    /// MQTT 5 payload format indicator (true = UTF-8 text).
    pub payload_is_utf8: ROption<bool>,
    /// Common name of the publisher's client certificate, when it authenticated with one.
    pub client_cert_cn: ROption<RStr<'a>>,
}

impl<'a> Message<'a> {
    /// A message on `topic` with `payload` and nothing else: QoS 0, not retained, empty client id
    /// and broker node, time 0, no user properties and no MQTT 5 fields. Tests and tools fill in
    /// what they need with struct update syntax (`Message { qos: 1, ..Message::new(t, p) }`);
    /// `trib-plugin-testkit`'s `TestMessage` builds owned messages.
    pub fn new(topic: &'a str, payload: &'a [u8]) -> Self {
        Message {
            topic: RStr::from_str(topic),
            payload: RSlice::from_slice(payload),
            qos: 0,
            retain: false,
            client_id: RStr::from_str(""),
            broker_node: RStr::from_str(""),
            timestamp_ms: 0,
            user_properties: RSlice::from_slice(&[]),
            content_type: ROption::RNone,
            correlation_data: ROption::RNone,
            response_topic: ROption::RNone,
            message_expiry_secs: ROption::RNone,
            payload_is_utf8: ROption::RNone,
            client_cert_cn: ROption::RNone,
        }
    }
}

/// One MQTT 5 user property.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy)]
pub struct UserProperty<'a> {
    /// Property name.
    pub key: RStr<'a>,
    /// Property value.
    pub value: RStr<'a>,
}

/// Result of delivering one message. `status` is one of [`outcome_status`].
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// [`outcome_status::DELIVERED`], [`outcome_status::RETRY`], [`outcome_status::REJECTED`] or
    /// [`outcome_status::TIMEOUT`].
    pub status: u8,
    /// Why it was not delivered; empty when delivered.
    pub reason: RString,
}

/// Values of [`Outcome::status`]. A host treats unknown values as [`outcome_status::RETRY`].
///
/// That rule is how this set grows without a new ABI version: a value added later means "not
/// delivered, may succeed later, and here is more precisely why" to a host that knows it, and
/// plain [`outcome_status::RETRY`] to a host that predates it.
pub mod outcome_status {
    /// The external system acknowledged the message.
    pub const DELIVERED: u8 = 0;
    /// Not delivered; trying again later may succeed (target down, connection lost, 5xx, 429).
    pub const RETRY: u8 = 1;
    /// Not delivered and never will be as it is (a 4xx, a payload the target refuses).
    pub const REJECTED: u8 = 2;
    /// Not delivered because time ran out: the target did not answer by the batch deadline or
    /// within the driver's own time limit (an HTTP read timeout, a PUBACK or a Kafka delivery
    /// report that never came), or the message could not even be sent before the deadline.
    /// Retried like [`RETRY`]; a host counts it as a timeout (TBMQ's `timeoutMsgs`).
    /// Added after 1.0.0: a host that predates it reads it as [`RETRY`].
    pub const TIMEOUT: u8 = 3;
}

/// A problem with one configuration field.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// JSON path of the field inside `clientConfiguration`, e.g. `restEndpointUrl` or `credentials.username`.
    pub field: RString,
    /// What is wrong, e.g. `must be between 1 and 65535`.
    pub message: RString,
}

/// An error that crossed the boundary: a kind code from [`error_kind`] and a message.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct PluginError {
    /// One of [`error_kind`]; unknown values are treated as [`error_kind::INTERNAL`].
    pub kind: u32,
    /// Human-readable message.
    pub message: RString,
}

/// Values of [`PluginError::kind`].
pub mod error_kind {
    /// Something unexpected inside the driver.
    pub const INTERNAL: u32 = 0;
    /// The configuration is invalid.
    pub const CONFIG: u32 = 1;
    /// The external system could not be reached or refused the connection.
    pub const CONNECTION: u32 = 2;
    /// The driver panicked; the instance should be destroyed.
    pub const PANIC: u32 = 3;
    /// The operation is not supported by this driver.
    pub const UNSUPPORTED: u32 = 4;
    /// The instance is not in a state that allows the call (e.g. `process` before `start`).
    pub const STATE: u32 = 5;
}

/// Services the host lends a driver instance: logging into the host's tracing output (tagged
/// with the integration id) and counters the host exports.
///
/// `ctx` stays valid until the instance is destroyed.
#[repr(C)]
#[derive(StableAbi, Clone, Copy)]
pub struct HostServices {
    /// Opaque host context, passed back to every function.
    pub ctx: *const c_void,
    /// The host's functions.
    pub vtable: HostVTableRef,
}

// SAFETY: the host guarantees that its context may be used from any thread.
unsafe impl Send for HostServices {}
// SAFETY: as above; every host function takes `&ctx` only.
unsafe impl Sync for HostServices {}

/// Functions of [`HostServices`].
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = HostVTableRef)))]
#[sabi(missing_field(panic))]
pub struct HostVTable {
    /// Writes one log line at `level` (one of [`log_level`]).
    pub log: extern "C" fn(ctx: *const c_void, level: u8, message: RStr<'_>),
    /// Tells whether a line at `level` would be written, so drivers can skip formatting.
    pub log_enabled: extern "C" fn(ctx: *const c_void, level: u8) -> bool,
    /// Adds `value` to the counter `name` (a short, fixed name such as `requests_sent`).
    #[sabi(last_prefix_field)]
    pub counter_add: extern "C" fn(ctx: *const c_void, name: RStr<'_>, value: u64),
}

/// Values of the `level` argument of [`HostVTable::log`].
pub mod log_level {
    /// Errors: data lost or operator action needed.
    pub const ERROR: u8 = 1;
    /// Something went wrong and was recovered.
    pub const WARN: u8 = 2;
    /// Lifecycle.
    pub const INFO: u8 = 3;
    /// Per-message detail.
    pub const DEBUG: u8 = 4;
    /// Very verbose detail.
    pub const TRACE: u8 = 5;
}
