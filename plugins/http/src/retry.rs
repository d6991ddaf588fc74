//! Classifies the result of one request into an [`Outcome`].
//!
//! | result | outcome |
//! |---|---|
//! | a status listed in the integration's `statusCodes` (exact code, else its class) | as listed |
//! | 2xx | Delivered |
//! | 408, 429, 5xx | Retry |
//! | 3xx (redirects are not followed) | Rejected |
//! | other 4xx, anything else | Rejected |
//! | `readTimeoutMs` or the batch deadline passed (ureq's timeout, a socket read that timed out) | Timeout |
//! | connection refused or reset, DNS, TLS, I/O, malformed response | Retry |
//! | a request that cannot be built (bad URI or header) | Rejected |
//! | every address of the target refused by the host's target policy | Rejected |
//!
//! A 408 stays Retry: the server answered, it did not run out of our time. Requests that got
//! no answer by the deadline, and those never sent for want of a free worker, are made Timeout
//! in [`crate::driver`], which sees the deadline.
//!
//! Reasons follow TBMQ's texts: `404 Not Found from POST http://host/path`.

use trib_plugin_api::{driver::Outcome, support::target_policy::Refused};
use ureq::http::StatusCode;

use crate::config::status_codes::{StatusCodes, Treatment};

/// What came back for one request.
#[derive(Debug)]
pub enum Exchange {
    /// A response with this status; `location` is its Location header (for redirects).
    Response {
        /// The status code.
        status: u16,
        /// The Location header, if any.
        location: Option<String>,
        /// The start of the response body (for logs), read up to `maxInMemoryBufferSizeInKb`.
        body_excerpt: String,
    },
    /// No response: the request failed.
    Failed(ureq::Error),
}

/// The outcome of `exchange` for a request `method url`, statuses listed in `codes` as listed.
pub fn classify(method: &str, url: &str, exchange: &Exchange, codes: &StatusCodes) -> Outcome {
    let status = |status: u16, location: Option<&str>| {
        let treatment = codes.treatment(status).unwrap_or_else(|| default_treatment(status));
        status_outcome(method, url, status, location, treatment)
    };
    match exchange {
        Exchange::Response { status: code, location, .. } => status(*code, location.as_deref()),
        Exchange::Failed(ureq::Error::StatusCode(code)) => status(*code, None),
        Exchange::Failed(error) => classify_error(method, url, error),
    }
}

/// TBMQ's text for a status: `404 Not Found from POST http://host/path`.
pub fn status_reason(method: &str, url: &str, status: u16) -> String {
    let phrase = StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason());
    match phrase {
        Some(phrase) => format!("{status} {phrase} from {method} {url}"),
        None => format!("{status} from {method} {url}"),
    }
}

/// What a status means when the integration does not list it.
fn default_treatment(status: u16) -> Treatment {
    match status {
        200..=299 => Treatment::Delivered,
        408 | 429 | 500..=599 => Treatment::Retry,
        _ => Treatment::Reject,
    }
}

fn status_outcome(method: &str, url: &str, status: u16, location: Option<&str>, treatment: Treatment) -> Outcome {
    match treatment {
        Treatment::Delivered => Outcome::Delivered,
        Treatment::Retry => Outcome::Retry(status_reason(method, url, status)),
        Treatment::Reject if (300..=399).contains(&status) => {
            let target = location.map(|l| format!(" to {l}")).unwrap_or_default();
            Outcome::Rejected(format!("{} (redirect{target} not followed)", status_reason(method, url, status)))
        }
        Treatment::Reject => Outcome::Rejected(status_reason(method, url, status)),
    }
}

fn classify_error(method: &str, url: &str, error: &ureq::Error) -> Outcome {
    match error {
        // The target policy refused every address of the target: sending again cannot help.
        ureq::Error::Io(e) if Refused::in_io(e).is_some() => Outcome::Rejected(format!("{method} {url} not sent: {e}")),
        ureq::Error::Timeout(which) => Outcome::Timeout(format!("timeout ({which}) on {method} {url}")),
        ureq::Error::Io(e) if matches!(e.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock) => {
            Outcome::Timeout(format!("timeout ({e}) on {method} {url}"))
        }
        // The request itself is malformed: sending it again cannot help.
        ureq::Error::Http(_) | ureq::Error::BadUri(_) | ureq::Error::RequireHttpsOnly(_) => {
            Outcome::Rejected(format!("invalid request {method} {url}: {error}"))
        }
        _ => Outcome::Retry(format!("{method} {url} failed: {error}")),
    }
}
