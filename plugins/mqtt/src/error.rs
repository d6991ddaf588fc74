//! The driver's one error type, and its conversion to the plugin API's error at the boundary.
//!
//! The connection messages keep TBMQ's wording ("Failed to connect to MQTT broker at host:port",
//! "... Result code is: <code>") so that operators recognise them.

use trib_plugin_api::driver::{Error as DriverError, ErrorKind};

/// Everything that can make `start` or `check_connection` fail.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is invalid; the text lists the fields.
    #[error("{0}")]
    Config(String),
    /// The TLS client could not be built from the credentials.
    #[error("Creating TLS factory failed! {0}")]
    Tls(String),
    /// No CONNACK within the connect timeout.
    #[error("Failed to connect to MQTT broker at {addr}")]
    Timeout {
        /// `host:port`.
        addr: String,
    },
    /// The broker answered CONNACK with a refusal.
    #[error("Failed to connect to MQTT broker at {addr}. Result code is: {code}")]
    Refused {
        /// `host:port`.
        addr: String,
        /// The CONNACK return / reason code.
        code: String,
    },
    /// The connection failed before a CONNACK (refused TCP connection, TLS failure, ...).
    #[error("Failed to connect to MQTT broker at {addr}: {reason}")]
    Connect {
        /// `host:port`.
        addr: String,
        /// What went wrong.
        reason: String,
    },
    /// The host's target policy refuses every address of the broker; nothing was sent to it.
    #[error("Failed to connect to MQTT broker at {addr}: {refused}")]
    Target {
        /// `host:port`.
        addr: String,
        /// The refusal, naming the address and the rule.
        refused: String,
    },
    /// The connection thread or its runtime could not be created.
    #[error("cannot start the MQTT client thread: {0}")]
    Thread(#[from] std::io::Error),
    /// `start` was called twice.
    #[error("the MQTT integration is already started")]
    AlreadyStarted,
}

impl From<Error> for DriverError {
    fn from(e: Error) -> Self {
        let kind = match &e {
            Error::Config(_) | Error::Tls(_) => ErrorKind::Config,
            Error::Timeout { .. } | Error::Refused { .. } | Error::Connect { .. } | Error::Target { .. } => {
                ErrorKind::Connection
            }
            Error::Thread(_) => ErrorKind::Internal,
            Error::AlreadyStarted => ErrorKind::State,
        };
        DriverError::new(kind, e.to_string())
    }
}
