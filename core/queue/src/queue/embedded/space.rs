//! A full disk, told apart from other disk errors: a write that fails for lack of space (or of
//! quota) makes the queue refuse records with [`QueueError::Full`] instead of failing as a
//! broken disk, and lets it start, serve what it stored and recover once space returns.
//! In tests, a directory can be made "full" on demand ([`fill`]), since a real small filesystem
//! (tmpfs) needs root.
//! Deliberately not here: what each write does when the disk is full (`producer`, `groups`,
//! `log`, `segments`).

use std::{
    io::{self, ErrorKind},
    path::Path,
};

use super::State;
use crate::queue::QueueError;

/// Whether `e` says the disk (or the user's quota) has no room left.
pub(super) fn is_full(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::StorageFull | ErrorKind::QuotaExceeded)
}

/// Fails as a full disk would when `path` is in a directory a test filled; a no-op otherwise.
pub(super) fn check(path: &Path) -> io::Result<()> {
    #[cfg(test)]
    if test_hook::is_filled(path) {
        return Err(io::Error::new(ErrorKind::StorageFull, "no space left on device (test)"));
    }
    let _ = path;
    Ok(())
}

impl State {
    /// The error of a write that failed for lack of space: the queue refuses until a write
    /// succeeds again. Logged and counted once per such episode, not once per refused record.
    pub(super) fn disk_full(&mut self, what: &str, e: &io::Error) -> QueueError {
        metrics::counter!("queue_embedded_refused_records_total").increment(1);
        if !std::mem::replace(&mut self.disk_full, true) {
            metrics::counter!("queue_embedded_disk_errors_total").increment(1);
            tracing::error!(error = %e, "The embedded queue's disk is full; records are refused until space is freed (consumed records free theirs).");
        }
        QueueError::Full(format!("no space left on the queue's disk: cannot {what}: {e}"))
    }

    /// Notes a successful write: a full-disk episode ends.
    pub(super) fn disk_has_room(&mut self) {
        if std::mem::take(&mut self.disk_full) {
            tracing::info!("The embedded queue's disk has room again; records are accepted.");
        }
    }
}

#[cfg(test)]
pub(super) use test_hook::fill;

#[cfg(test)]
mod test_hook {
    use std::{
        path::{Path, PathBuf},
        sync::Mutex,
    };

    static FILLED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

    /// Makes every later write under `dir` fail as on a full disk (`full`), or lets them succeed
    /// again. Other directories are not affected, so tests can run side by side.
    pub(in super::super) fn fill(dir: &Path, full: bool) {
        let mut filled = FILLED.lock().unwrap_or_else(|e| e.into_inner());
        filled.retain(|d| d != dir);
        if full {
            filled.push(dir.to_path_buf());
        }
    }

    pub(super) fn is_filled(path: &Path) -> bool {
        FILLED.lock().unwrap_or_else(|e| e.into_inner()).iter().any(|d| path.starts_with(d))
    }
}
