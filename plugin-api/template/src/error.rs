//! The driver's one error type. Only [`Error`] values cross into
//! `trib_plugin_api::driver::Error`; `io::Error` stays inside, as a message.

use std::io;

use trib_plugin_api::driver::{self, ErrorKind};

/// What can go wrong outside of delivering one message.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is invalid: every field error, joined.
    #[error("{0}")]
    Config(String),
    /// The payload is not JSON while `payloadFormat` is JSON.
    #[error("payload is not JSON: {0}")]
    PayloadNotJson(String),
    /// The file cannot be opened for appending.
    #[error("cannot open {path} for appending: {source}")]
    Open {
        /// The configured path.
        path: String,
        /// Why.
        source: io::Error,
    },
    /// `start` was called on a started instance.
    #[error("the driver is already started")]
    AlreadyStarted,
}

impl From<Error> for driver::Error {
    fn from(e: Error) -> Self {
        let kind = match &e {
            Error::Config(_) | Error::PayloadNotJson(_) => ErrorKind::Config,
            Error::Open { .. } => ErrorKind::Connection,
            Error::AlreadyStarted => ErrorKind::State,
        };
        driver::Error::new(kind, e.to_string())
    }
}
