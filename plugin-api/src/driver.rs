//! The safe Rust side of a driver: the [`Driver`] trait a driver author implements, and the
//! types it uses. The [`crate::export_driver!`] macro turns an implementation into the frozen
//! [`crate::abi`] module; nothing here is `repr(C)` except what is re-used from [`crate::abi`].
//!
//! ## Outcomes
//!
//! [`Driver::process`] returns one [`Outcome`] per message. `Delivered` means the external
//! system acknowledged the message; `Rejected`, that sending it again cannot help. Of the
//! outcomes that the executor retries, `Timeout` means time ran out (nothing came back by the
//! deadline or within the driver's own time limit, or the message could not be sent before the
//! deadline) and `Retry` means anything else (target down, connection lost, a 5xx or 429). The
//! executor retries both the same way and counts `Timeout` as a timeout (TBMQ's `timeoutMsgs`).
//! The kind is the variant, never the reason text: the text is for people.
//!
//! ## Pipelining
//!
//! A driver whose target acknowledges asynchronously (an MQTT broker's PUBACKs, Kafka's
//! delivery reports) can take the next batch while the previous one's acknowledgements are
//! still on their way, so the target never idles between batches. Such a driver sets
//! [`capabilities::PIPELINE`](crate::abi::capabilities::PIPELINE) in its [`Metadata`] and
//! overrides [`Driver::submit`] and [`Driver::collect`]. The executor switches pipelining on
//! per instance after `start`; from then on it calls `submit` for each new batch and `collect`
//! for the outcomes, oldest batch first, and never `process` (which stays what a host without
//! pipelining calls). The executor settles, commits and retries batches in the order they were
//! submitted, so the at-least-once rules are those of `process`. The defaults make a driver
//! that sets the bit without overriding anything behave exactly as without it.
//!
//! ## Configuration schema
//!
//! A driver describes its `clientConfiguration` with a JSON Schema by overriding
//! [`Driver::config_schema`]. The export layer then announces
//! [`capabilities::CONFIG_SCHEMA`](crate::abi::capabilities::CONFIG_SCHEMA) and answers the
//! module-level operation [`control_op::CONFIG_SCHEMA`](crate::abi::control_op::CONFIG_SCHEMA);
//! the executor passes the schema on, so that the console can draw a form and the REST API can
//! document the type and mask its secrets. Schemas use a small subset of JSON Schema draft
//! 2020-12, so that every consumer can rely on the same few keywords:
//!
//! * The root is `{"$schema": "https://json-schema.org/draft/2020-12/schema", "title": ..,
//!   "type": "object", "properties": {..}, "required": [..]}`, with one property per field the
//!   driver reads, under TBMQ's field name where TBMQ has the field.
//! * Every property has a `title` (a short label), a `description` (meaning, unit, what an
//!   absent value does, conditions on other fields) and a `type` (`string`, `integer`,
//!   `number`, `boolean`, `object` or `array`).
//! * `default` is the value the driver uses when the field is absent or `null`. A field that
//!   has none and must be given is listed in `required`. A top-level field without a default
//!   carries `examples` (the first one is what a form may pre-fill).
//! * `enum` lists the values of a closed set; `minimum` and `maximum` bound a number, inclusive.
//! * A secret (a password, a private key, a SASL JAAS line) carries `"writeOnly": true` and
//!   `"x-secret": true`, always both: the console and the REST API mask it and never send it
//!   back. In a map with free keys, keys known to be secret are declared in its `properties`
//!   (Kafka's `otherProperties` declares `sasl.password`) or, by pattern, in its
//!   `patternProperties` (the HTTP driver's `headers` marks `Authorization` and API-key headers).
//! * A map is `"type": "object"` with `additionalProperties` holding the schema of its values,
//!   and optionally `patternProperties` holding the schema of the values whose keys match.
//! * An object with variants (TBMQ's `credentials`) is `"type": "object"` with `oneOf`
//!   branches; each branch is an object schema whose `type` property is a `const`
//!   (`anonymous`, `basic`, `cert.PEM`) and whose own `required` lists that variant's fields.
//! * Nothing else: no `$ref`, `if`/`then`, `pattern` or `format`. A condition between fields
//!   (MQTT's `topicName` is needed unless `useMsgTopicName`) is said in the `description`.
//!
//! [`crate::support::schema`] checks a schema against these rules and against the driver's own
//! [`Driver::validate`], builds the example configuration and lists the secret fields; a driver's
//! unit tests call it.

use std::{fmt, time::Instant};

use abi_stable::std_types::RString;

use crate::abi::{self, error_kind, outcome_status};
pub use crate::abi::{FieldError, Message, StartConfig, UserProperty};
pub use crate::host::Host;

/// Static description of a driver, returned by [`Driver::metadata`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metadata {
    /// Driver name, e.g. `http`.
    pub name: &'static str,
    /// Integration type served, upper case, e.g. `HTTP`. Becomes the downlink topic suffix in lower case.
    pub integration_type: &'static str,
    /// The driver's own version; `env!("CARGO_PKG_VERSION")` is the usual value.
    pub version: &'static str,
    /// One-line description.
    pub description: &'static str,
    /// Bit set of [`crate::abi::capabilities`].
    pub capabilities: u64,
}

/// A driver: validates configurations and delivers batches of MQTT messages to one external system.
///
/// The host creates one value per integration, calls [`Driver::start`] once, then
/// [`Driver::process`] repeatedly, then [`Driver::stop`]. Calls on one value never overlap.
/// Every call runs on a host thread that may block, so a driver may block too; a driver that
/// needs async code runs its own runtime. Panics are caught by the export layer and reported to
/// the host as errors, but a driver should still return errors rather than panic.
///
/// # Example
///
/// ```
/// use trib_plugin_api::driver::{Driver, Error, FieldError, Host, Message, Metadata, Outcome, StartConfig};
///
/// struct Null;
///
/// impl Driver for Null {
///     fn metadata() -> Metadata {
///         Metadata { name: "null", integration_type: "NULL", version: "0.1.0",
///                    description: "Accepts everything.", capabilities: 0 }
///     }
///     fn create(_host: Host) -> Result<Self, Error> { Ok(Null) }
///     fn validate(&self, _config: &str) -> Vec<FieldError> { Vec::new() }
///     fn start(&mut self, _config: &StartConfig<'_>) -> Result<(), Error> { Ok(()) }
///     fn process(&mut self, batch: &[Message<'_>], _deadline: std::time::Instant) -> Vec<Outcome> {
///         batch.iter().map(|_| Outcome::Delivered).collect()
///     }
///     fn stop(&mut self) {}
/// }
/// // In the driver's lib.rs: trib_plugin_api::export_driver!(Null);
/// ```
pub trait Driver: Send + Sized + 'static {
    /// Describes the driver. Must be cheap and must not fail.
    fn metadata() -> Metadata;

    /// Creates an instance that is not started yet.
    fn create(host: Host) -> Result<Self, Error>;

    /// Checks a `clientConfiguration` JSON text and returns one entry per problem (empty = valid).
    fn validate(&self, client_configuration: &str) -> Vec<FieldError>;

    /// Connects to the external system with `config` and disconnects again.
    ///
    /// The default validates the configuration only; drivers that can do better announce
    /// [`crate::abi::capabilities::CHECK_CONNECTION`].
    fn check_connection(&mut self, config: &StartConfig<'_>) -> Result<(), Error> {
        config_errors_to_result(self.validate(config.client_configuration.as_str()))
    }

    /// Starts delivering with `config`. Called once per instance.
    fn start(&mut self, config: &StartConfig<'_>) -> Result<(), Error>;

    /// Delivers a batch and returns exactly one outcome per message, in the same order.
    ///
    /// `Delivered` means the external system acknowledged the message. The call should return
    /// by `deadline` (the executor's pack-processing timeout); messages not acknowledged by then
    /// are reported as [`Outcome::Timeout`] (see the module docs on outcomes).
    fn process(&mut self, batch: &[Message<'_>], deadline: Instant) -> Vec<Outcome>;

    /// Pipelining (see the module docs): sends `batch` and returns at once with
    /// [`Submitted::Pending`], or with [`Submitted::Settled`] and one outcome per message when
    /// the whole batch is already settled (not connected, every message refused). `deadline`
    /// is the batch's own: [`Driver::collect`] reports what is unsettled by then as
    /// [`Outcome::Timeout`]. Nothing borrowed from `batch` may be kept after the call returns.
    ///
    /// Called only on a driver that announced
    /// [`capabilities::PIPELINE`](crate::abi::capabilities::PIPELINE). The default settles the
    /// batch with [`Driver::process`].
    fn submit(&mut self, batch: &[Message<'_>], deadline: Instant) -> Submitted {
        Submitted::Settled(self.process(batch, deadline))
    }

    /// Pipelining: waits until `until` for the oldest pending batch. Returns its outcomes, one
    /// per message in order, once every message of it is settled or its deadline has passed
    /// (the unsettled ones as [`Outcome::Timeout`]); `None` when nothing is pending or the
    /// oldest batch is not finished by `until`. The default has nothing pending.
    fn collect(&mut self, _until: Instant) -> Option<Vec<Outcome>> {
        None
    }

    /// Whether the started instance is connected to its target right now, and if not why.
    /// Called about once a second between batches, so it must be cheap and must not block on
    /// the network. Drivers that override it announce
    /// [`capabilities::CONNECTIVITY`](crate::abi::capabilities::CONNECTIVITY); the export layer
    /// answers the host's [`control_op::CONNECTIVITY`](crate::abi::control_op::CONNECTIVITY)
    /// with it. The default (`None`) knows nothing.
    fn connectivity(&self) -> Option<Connectivity> {
        None
    }

    /// Stops delivering and releases every external resource. Pending batches are dropped.
    fn stop(&mut self);

    /// Instance-level extension call; see the crate guide. The default refuses every operation.
    fn control(&mut self, op: &str, _arg: &str) -> Result<String, Error> {
        Err(Error::unsupported(op))
    }

    /// Module-level extension call; see the crate guide. The default refuses every operation.
    ///
    /// Operations this crate defines (such as
    /// [`control_op::CONFIG_SCHEMA`](crate::abi::control_op::CONFIG_SCHEMA) when
    /// [`Driver::config_schema`] returns a schema) are answered by the export layer and never
    /// reach this method.
    fn module_control(op: &str, _arg: &str) -> Result<String, Error> {
        Err(Error::unsupported(op))
    }

    /// The JSON Schema of the driver's `clientConfiguration` (see the module docs for the
    /// conventions), as JSON text; `None`, the default, declares none.
    ///
    /// Returning `Some` makes the export layer announce
    /// [`capabilities::CONFIG_SCHEMA`](crate::abi::capabilities::CONFIG_SCHEMA) and answer the
    /// operation. Called from `metadata`, so it must be cheap: keep the schema in a file next to
    /// the code and return `Some(include_str!("schema.json"))`.
    fn config_schema() -> Option<&'static str> {
        None
    }
}

/// Turns a list of field errors into `Ok(())` or one [`ErrorKind::Config`] error that lists them.
pub fn config_errors_to_result(errors: Vec<FieldError>) -> Result<(), Error> {
    if errors.is_empty() {
        return Ok(());
    }
    let text = errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; ");
    Err(Error::new(ErrorKind::Config, text))
}

impl FieldError {
    /// Builds a field error.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError { field: RString::from(field.into()), message: RString::from(message.into()) }
    }
}

/// The delivery result of one message (see the module docs on outcomes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The external system acknowledged the message.
    Delivered,
    /// Not delivered; a later attempt may succeed.
    Retry(String),
    /// Not delivered, and retrying the same message will not help.
    Rejected(String),
    /// Not delivered because time ran out: no answer by the deadline or within the driver's own
    /// time limit, or not sent before the deadline. Retried like [`Outcome::Retry`] and counted
    /// as a timeout. Added after 1.0.0; a host that predates it reads it as `Retry`.
    Timeout(String),
}

impl Outcome {
    /// Converts to the boundary type.
    pub fn into_abi(self) -> abi::Outcome {
        match self {
            Outcome::Delivered => abi::Outcome { status: outcome_status::DELIVERED, reason: RString::new() },
            Outcome::Retry(r) => abi::Outcome { status: outcome_status::RETRY, reason: r.into() },
            Outcome::Rejected(r) => abi::Outcome { status: outcome_status::REJECTED, reason: r.into() },
            Outcome::Timeout(r) => abi::Outcome { status: outcome_status::TIMEOUT, reason: r.into() },
        }
    }

    /// Converts from the boundary type; unknown status values become `Retry`.
    pub fn from_abi(outcome: &abi::Outcome) -> Self {
        match outcome.status {
            outcome_status::DELIVERED => Outcome::Delivered,
            outcome_status::REJECTED => Outcome::Rejected(outcome.reason.to_string()),
            outcome_status::RETRY => Outcome::Retry(outcome.reason.to_string()),
            outcome_status::TIMEOUT => Outcome::Timeout(outcome.reason.to_string()),
            other => Outcome::Retry(format!("unknown outcome status {other}: {}", outcome.reason)),
        }
    }

    /// The reason text of an outcome that is not `Delivered`.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Outcome::Delivered => None,
            Outcome::Retry(r) | Outcome::Rejected(r) | Outcome::Timeout(r) => Some(r),
        }
    }
}

/// What [`Driver::connectivity`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Connectivity {
    /// Connected to the target.
    Connected,
    /// Not connected, and why (one line).
    Disconnected(String),
}

impl Connectivity {
    /// The JSON text of the [`control_op::CONNECTIVITY`](crate::abi::control_op::CONNECTIVITY) answer.
    pub fn to_json(&self) -> String {
        match self {
            Connectivity::Connected => r#"{"connected":true}"#.to_string(),
            Connectivity::Disconnected(reason) => serde_json::json!({"connected": false, "reason": reason}).to_string(),
        }
    }

    /// Parses that answer; `None` when it is not one.
    pub fn from_json(text: &str) -> Option<Self> {
        let v: serde_json::Value = serde_json::from_str(text).ok()?;
        match v.get("connected")?.as_bool()? {
            true => Some(Connectivity::Connected),
            false => Some(Connectivity::Disconnected(
                v.get("reason").and_then(serde_json::Value::as_str).unwrap_or("disconnected").to_string(),
            )),
        }
    }
}

/// What [`Driver::submit`] did with a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submitted {
    /// Sent (or queued to be sent); its outcomes come from [`Driver::collect`].
    Pending,
    /// Already settled: one outcome per message, in order; nothing to collect for it.
    Settled(Vec<Outcome>),
}

/// Kinds of [`Error`]; mirrors [`crate::abi::error_kind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Something unexpected inside the driver.
    Internal,
    /// The configuration is invalid.
    Config,
    /// The external system could not be reached.
    Connection,
    /// The driver panicked.
    Panic,
    /// The operation is not supported.
    Unsupported,
    /// The call is not allowed in the instance's current state.
    State,
}

impl ErrorKind {
    fn code(self) -> u32 {
        match self {
            ErrorKind::Internal => error_kind::INTERNAL,
            ErrorKind::Config => error_kind::CONFIG,
            ErrorKind::Connection => error_kind::CONNECTION,
            ErrorKind::Panic => error_kind::PANIC,
            ErrorKind::Unsupported => error_kind::UNSUPPORTED,
            ErrorKind::State => error_kind::STATE,
        }
    }

    fn from_code(code: u32) -> Self {
        match code {
            error_kind::CONFIG => ErrorKind::Config,
            error_kind::CONNECTION => ErrorKind::Connection,
            error_kind::PANIC => ErrorKind::Panic,
            error_kind::UNSUPPORTED => ErrorKind::Unsupported,
            error_kind::STATE => ErrorKind::State,
            _ => ErrorKind::Internal,
        }
    }
}

/// An error returned by a driver call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// Human-readable message.
    pub message: String,
}

impl Error {
    /// Builds an error.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error { kind, message: message.into() }
    }

    /// A [`ErrorKind::Config`] error.
    pub fn config(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Config, message)
    }

    /// A [`ErrorKind::Connection`] error.
    pub fn connection(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Connection, message)
    }

    /// An [`ErrorKind::Unsupported`] error naming the operation.
    pub fn unsupported(op: &str) -> Self {
        Error::new(ErrorKind::Unsupported, format!("operation '{op}' is not supported"))
    }

    /// Converts to the boundary type.
    pub fn into_abi(self) -> abi::PluginError {
        abi::PluginError { kind: self.kind.code(), message: self.message.into() }
    }

    /// Converts from the boundary type.
    pub fn from_abi(error: &abi::PluginError) -> Self {
        Error { kind: ErrorKind::from_code(error.kind), message: error.message.to_string() }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl<'a> Message<'a> {
    /// The topic as `&str`.
    pub fn topic(&self) -> &'a str {
        self.topic.as_str()
    }

    /// The payload as bytes.
    pub fn payload(&self) -> &'a [u8] {
        self.payload.as_slice()
    }

    /// The publisher's client id.
    pub fn client_id(&self) -> &'a str {
        self.client_id.as_str()
    }

    /// User properties as `(key, value)` pairs, in order.
    pub fn user_properties(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.user_properties.as_slice().iter().map(|p| (p.key.as_str(), p.value.as_str()))
    }
}
