//! The safe Rust side of a driver: the [`Driver`] trait a driver author implements, and the
//! types it uses. The [`crate::export_driver!`] macro turns an implementation into the frozen
//! [`crate::abi`] module; nothing here is `repr(C)` except what is re-used from [`crate::abi`].

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
    /// are reported as [`Outcome::Retry`] (the executor counts them as timed out).
    fn process(&mut self, batch: &[Message<'_>], deadline: Instant) -> Vec<Outcome>;

    /// Stops delivering and releases every external resource.
    fn stop(&mut self);

    /// Instance-level extension call; see the crate guide. The default refuses every operation.
    fn control(&mut self, op: &str, _arg: &str) -> Result<String, Error> {
        Err(Error::unsupported(op))
    }

    /// Module-level extension call; see the crate guide. The default refuses every operation.
    fn module_control(op: &str, _arg: &str) -> Result<String, Error> {
        Err(Error::unsupported(op))
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

/// The delivery result of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The external system acknowledged the message.
    Delivered,
    /// Not delivered; a later attempt may succeed.
    Retry(String),
    /// Not delivered, and retrying the same message will not help.
    Rejected(String),
}

impl Outcome {
    /// Converts to the boundary type.
    pub fn into_abi(self) -> abi::Outcome {
        match self {
            Outcome::Delivered => abi::Outcome { status: outcome_status::DELIVERED, reason: RString::new() },
            Outcome::Retry(r) => abi::Outcome { status: outcome_status::RETRY, reason: r.into() },
            Outcome::Rejected(r) => abi::Outcome { status: outcome_status::REJECTED, reason: r.into() },
        }
    }

    /// Converts from the boundary type; unknown status values become `Retry`.
    pub fn from_abi(outcome: &abi::Outcome) -> Self {
        match outcome.status {
            outcome_status::DELIVERED => Outcome::Delivered,
            outcome_status::REJECTED => Outcome::Rejected(outcome.reason.to_string()),
            outcome_status::RETRY => Outcome::Retry(outcome.reason.to_string()),
            other => Outcome::Retry(format!("unknown outcome status {other}: {}", outcome.reason)),
        }
    }
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
