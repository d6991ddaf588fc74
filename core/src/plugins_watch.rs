//! Hot plugging: the plugins directory is scanned while the executor runs, and a driver library
//! that appears there is loaded and its type served within a scan or two, without a restart.
//!
//! Libraries are never unloaded (code of a loaded library may run on any thread until the
//! process exits), so what a scan can do is limited, and it says so:
//! * a new file is loaded once it has stopped changing (same size and time on two scans, so a
//!   file still being copied is not opened half-written);
//! * a loaded file changed in place (same inode, new contents) is refused loudly: overwriting a
//!   mapped library can crash the process; the upgrade path is to write the new file elsewhere,
//!   rename it over the old one, and restart the executor;
//! * a loaded file renamed over (new inode) is noted: the new version is used after a restart;
//! * a removed file stays loaded until the executor restarts.
//!
//! What it finds goes to the executor's status (`plugin_errors`, served types) and, through the
//! next service info, to the brokers.

use std::{
    collections::HashMap,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

use crate::loader::{is_library_name, load_file, LoadError, LoadedDriver};

/// A file's identity and contents' stamp: inode, size and modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime_ns: i128,
}

impl Stamp {
    fn of(path: &Path) -> Option<Stamp> {
        let m = std::fs::metadata(path).ok()?;
        Some(Stamp {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
        })
    }

    fn same_file(&self, other: &Stamp) -> bool {
        self.dev == other.dev && self.ino == other.ino
    }
}

/// What the executor knows of a file of the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Known {
    /// Loaded as a driver (served or not): never loaded again.
    Loaded(Stamp),
    /// Refused, or seen and reported: looked at again only when the file changes.
    Settled(Stamp),
    /// New and still changing: loaded once two scans see the same stamp.
    Settling(Stamp),
}

/// What a scan found.
#[derive(Debug)]
pub enum Found {
    /// A new library loaded as a driver; the caller decides whether its type is served.
    Driver(LoadedDriver),
    /// A new or changed file that is not a usable driver.
    Refused {
        /// The file.
        path: PathBuf,
        /// Why, one line.
        error: LoadError,
    },
    /// A loaded library was changed in place: one line saying why this is refused and how to
    /// upgrade.
    ChangedInPlace(PathBuf),
    /// A loaded library was replaced by another file (renamed over): used after a restart.
    Replaced(PathBuf),
}

impl Found {
    /// One line for logs and the executor's status.
    pub fn describe(&self) -> String {
        match self {
            Found::Driver(d) => format!("{}: loaded, integration type {}", d.path.display(), d.integration_type()),
            Found::Refused { path, error } => format!("{}: {error}", path.display()),
            Found::ChangedInPlace(path) => format!(
                "{}: changed in place while loaded; refused (overwriting a loaded library can crash the executor). \
                 To upgrade a driver, write the new file elsewhere, rename it over this one, then restart the executor",
                path.display()
            ),
            Found::Replaced(path) => format!(
                "{}: replaced by a new file; the running executor keeps the version it loaded (libraries are never \
                 unloaded), restart it to use the new one",
                path.display()
            ),
        }
    }
}

/// The scanner of one plugins directory.
#[derive(Debug)]
pub struct PluginsWatch {
    dir: PathBuf,
    known: HashMap<PathBuf, Known>,
}

impl PluginsWatch {
    /// Watches `dir`; `loaded` and `refused` are the files the executor loaded or refused at
    /// start (from any directory: only those inside `dir` matter).
    pub fn new(dir: &Path, loaded: &[PathBuf], refused: &[PathBuf]) -> Self {
        let mut known = HashMap::new();
        for (paths, loaded) in [(loaded, true), (refused, false)] {
            for path in paths {
                if let Some(stamp) = Stamp::of(path) {
                    let entry = if loaded { Known::Loaded(stamp) } else { Known::Settled(stamp) };
                    known.insert(canonical(path), entry);
                }
            }
        }
        PluginsWatch { dir: dir.to_path_buf(), known }
    }

    /// Looks at the directory once and returns what changed since the last look.
    pub fn scan(&mut self) -> Vec<Found> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut paths: Vec<PathBuf> =
            entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| is_library_name(p)).collect();
        paths.sort();
        let mut found = Vec::new();
        for path in paths {
            let Some(stamp) = Stamp::of(&path) else { continue };
            let key = canonical(&path);
            let next = match self.known.get(&key).copied() {
                None => Known::Settling(stamp),
                Some(Known::Settling(before)) if before == stamp => self.load(&path, stamp, &mut found),
                Some(Known::Settling(_)) => Known::Settling(stamp),
                Some(Known::Settled(before)) if before == stamp => continue,
                Some(Known::Settled(_)) => Known::Settling(stamp),
                Some(Known::Loaded(before)) if before == stamp => continue,
                Some(Known::Loaded(before)) => {
                    found.push(if before.same_file(&stamp) {
                        Found::ChangedInPlace(path.clone())
                    } else {
                        Found::Replaced(path.clone())
                    });
                    // Reported once; the library in memory stays the one first loaded.
                    Known::Loaded(stamp)
                }
            };
            self.known.insert(key, next);
        }
        found
    }

    fn load(&self, path: &Path, stamp: Stamp, found: &mut Vec<Found>) -> Known {
        match load_file(path) {
            Ok(driver) => {
                found.push(Found::Driver(driver));
                Known::Loaded(stamp)
            }
            Err(error) => {
                found.push(Found::Refused { path: path.to_path_buf(), error });
                Known::Settled(stamp)
            }
        }
    }
}

fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}
