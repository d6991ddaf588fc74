//! Classifies what went wrong into an [`Outcome`].
//!
//! | what | outcome |
//! |---|---|
//! | the line was written (and synced when configured) | Delivered |
//! | the payload is not JSON with `payloadFormat: JSON` | Rejected: the same message never will be |
//! | the deadline passed before writing | Timeout |
//! | a write that timed out | Timeout |
//! | any other write error (disk full, permissions, I/O) | Retry: the operator can fix the cause |

use std::{io, path::Path};

use trib_plugin_api::driver::Outcome;

use crate::error::Error;

/// The outcome of a message whose line could not be built.
pub fn rejected(error: &Error) -> Outcome {
    Outcome::Rejected(error.to_string())
}

/// The outcome of a message that was not written because the deadline had passed.
pub fn deadline_passed() -> Outcome {
    Outcome::Timeout("deadline passed before the write".to_string())
}

/// The outcome of a message whose write to `path` failed with `error`.
pub fn write_failed(path: &Path, error: &io::Error) -> Outcome {
    let reason = format!("write to {} failed: {error}", path.display());
    match error.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => Outcome::Timeout(reason),
        _ => Outcome::Retry(reason),
    }
}
