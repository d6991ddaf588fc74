//! Durability of a persistent queue: the background thread that syncs written files and changed
//! directories to the disk once a [`SYNC_INTERVAL`], and [`sync_dir`] for the rare changes that
//! are synced at once. Which files are written, and when, is decided in `segments` and `groups`.

use std::{
    fs::File,
    io::{self, ErrorKind},
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use parking_lot::{Condvar, Mutex};

use super::store::at;

/// How often written files are synced to the disk.
const SYNC_INTERVAL: Duration = Duration::from_secs(1);

/// Makes the creation, renaming or removal of the directory's entries durable.
pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(at(dir))
}

/// A file that is synced by the syncer thread after writes.
pub(super) struct SyncFile {
    pub(super) file: File,
    /// Written since the syncer last took it.
    dirty: AtomicBool,
}

impl SyncFile {
    pub(super) fn new(file: File) -> Self {
        SyncFile { file, dirty: AtomicBool::new(false) }
    }
}

enum Dirty {
    File(Arc<SyncFile>),
    Dir(PathBuf),
}

/// Syncs written files and changed directories once a [`SYNC_INTERVAL`], on its own thread.
#[derive(Default)]
pub(super) struct Syncer {
    dirty: Mutex<Vec<Dirty>>,
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl Syncer {
    /// Notes a write to `file`: it is synced at the next round.
    pub(super) fn written(&self, file: &Arc<SyncFile>) {
        if !file.dirty.swap(true, Ordering::AcqRel) {
            self.dirty.lock().push(Dirty::File(file.clone()));
        }
    }

    /// Notes a change of a directory's entries: it is synced at the next round.
    pub(super) fn dir_changed(&self, dir: PathBuf) {
        self.dirty.lock().push(Dirty::Dir(dir));
    }

    /// Ends [`Syncer::run`] after one last round.
    pub(super) fn stop(&self) {
        *self.stopped.lock() = true;
        self.wake.notify_all();
    }

    /// The syncer thread's loop.
    pub(super) fn run(&self) {
        loop {
            let stopped = {
                let mut stopped = self.stopped.lock();
                if !*stopped {
                    self.wake.wait_for(&mut stopped, SYNC_INTERVAL);
                }
                *stopped
            };
            self.sync_dirty();
            if stopped {
                return;
            }
        }
    }

    fn sync_dirty(&self) {
        let work = std::mem::take(&mut *self.dirty.lock());
        let mut dirs: Vec<PathBuf> = Vec::new();
        for item in work {
            match item {
                Dirty::File(f) => {
                    // Cleared first: a write during the sync marks the file again.
                    f.dirty.store(false, Ordering::Release);
                    if let Err(e) = f.file.sync_data() {
                        metrics::counter!("queue_embedded_disk_errors_total").increment(1);
                        tracing::error!(error = %e, "Cannot sync a queue file to the disk.");
                    }
                }
                Dirty::Dir(d) => {
                    if !dirs.contains(&d) {
                        dirs.push(d);
                    }
                }
            }
        }
        for dir in dirs {
            if let Err(e) = sync_dir(&dir) {
                if e.kind() != ErrorKind::NotFound {
                    metrics::counter!("queue_embedded_disk_errors_total").increment(1);
                    tracing::error!(path = %dir.display(), error = %e, "Cannot sync a queue directory to the disk.");
                }
            }
        }
    }
}
