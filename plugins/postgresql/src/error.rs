//! The driver's one error type. Only [`Error`] values cross into
//! `trib_plugin_api::driver::Error`; the client library's errors become [`crate::retry::Failure`]s
//! (for messages) or the text of an [`Error`] (for a start or a connection check).

use trib_plugin_api::driver::{self, ErrorKind};

/// What can go wrong outside of writing one message.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is invalid: the field errors, joined.
    #[error("{0}")]
    Config(String),
    /// The server could not be reached, refused the login, or took too long.
    #[error("{0}")]
    Connect(String),
    /// The table does not exist or does not match the mapping.
    #[error("{0}")]
    Table(String),
    /// The TLS client could not be built.
    #[error("TLS setup failed: {0}")]
    Tls(String),
    /// The instance's runtime could not be built.
    #[error("cannot start the driver's runtime: {0}")]
    Runtime(String),
    /// A call the instance's state does not allow.
    #[error("{0}")]
    State(&'static str),
}

impl From<Error> for driver::Error {
    fn from(e: Error) -> Self {
        let kind = match &e {
            Error::Config(_) | Error::Table(_) | Error::Tls(_) => ErrorKind::Config,
            Error::Connect(_) => ErrorKind::Connection,
            Error::Runtime(_) => ErrorKind::Internal,
            Error::State(_) => ErrorKind::State,
        };
        driver::Error::new(kind, e.to_string())
    }
}
