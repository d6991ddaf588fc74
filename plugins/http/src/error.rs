//! The driver's one error type. Only [`Error`] values cross into `trib_plugin_api::driver::Error`;
//! ureq's own errors never leave [`crate::service`] and [`crate::retry`], where they become outcomes.

use trib_plugin_api::driver::{self, ErrorKind};

/// What can go wrong outside of delivering one message.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The payload is not JSON while `payloadContentType` is JSON and there is no binary fallback.
    ///
    /// The text is TBMQ's failure text word for word (capital letter included), because users
    /// search their logs and error events for it.
    #[error("Failed to parse msg payload to JSON: {0}")]
    PayloadNotJson(String),
    /// The connection check failed: the reason, e.g. `404 Not Found from HEAD http://host/path`.
    #[error("{0}")]
    Check(String),
    /// `process` or `check_connection` was called in a state that does not allow it.
    #[error("{0}")]
    State(&'static str),
}

impl From<Error> for driver::Error {
    fn from(e: Error) -> Self {
        let kind = match &e {
            Error::PayloadNotJson(_) => ErrorKind::Config,
            Error::Check(_) => ErrorKind::Connection,
            Error::State(_) => ErrorKind::State,
        };
        driver::Error::new(kind, e.to_string())
    }
}
