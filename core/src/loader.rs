//! Loading driver libraries from a directory.
//!
//! Each file is loaded on its own; a bad file never stops the others. Every refusal carries a
//! [`LoadError`] whose message is one specific line (not a shared library, not a driver,
//! incompatible plugin-api, missing system library, duplicate integration type).
//! Loaded libraries are leaked on purpose: unloading code that may still have threads running
//! is unsound, so a driver upgrade needs an executor restart.

use std::{
    fmt,
    path::{Path, PathBuf},
};

use abi_stable::{
    library::{AbiHeaderRef, LibraryError, ROOT_MODULE_LOADER_NAME_WITH_NUL},
    std_types::{RResult, RStr},
};
use trib_plugin_api::{
    abi::{capabilities, control_op, DriverMetadata, DriverModuleRef},
    support::schema,
};

/// Why a file was not loaded as a driver.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// The file is not a loadable shared library (wrong format, wrong architecture, truncated).
    #[error("not a shared library: {0}")]
    NotSharedLibrary(String),
    /// The library needs another shared library that is not installed.
    #[error("missing system library: {0}")]
    MissingSystemLibrary(String),
    /// A shared library, but it exports no driver root module.
    #[error("a shared library, but not a Tributary driver (it exports no driver root module)")]
    NotADriver,
    /// Built against an incompatible plugin-api or abi_stable.
    #[error("built against an incompatible plugin-api: {0}")]
    IncompatibleApi(String),
    /// The driver's own initialisation failed or its metadata is unusable.
    #[error("driver failed to initialise: {0}")]
    BrokenDriver(String),
    /// Another library already serves this integration type.
    #[error("integration type {integration_type} is already provided by {}", first.display())]
    DuplicateType {
        /// The contested type.
        integration_type: String,
        /// The library that won (first in file-name order).
        first: PathBuf,
    },
    /// The file could not be read.
    #[error("cannot read: {0}")]
    Io(String),
}

/// A loaded driver library.
#[derive(Clone)]
pub struct LoadedDriver {
    /// Where it was loaded from.
    pub path: PathBuf,
    /// What it says about itself.
    pub metadata: DriverMetadata,
    /// Its root module (valid for the life of the process).
    pub module: DriverModuleRef,
}

impl fmt::Debug for LoadedDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedDriver").field("path", &self.path).field("metadata", &self.metadata).finish()
    }
}

impl LoadedDriver {
    /// The integration type this driver serves, upper case.
    pub fn integration_type(&self) -> &str {
        self.metadata.integration_type.as_str()
    }

    /// The JSON Schema of the driver's `clientConfiguration`: `None` when the driver does not
    /// announce [`capabilities::CONFIG_SCHEMA`] (it is then never asked), `Some(Err(reason))`
    /// with a one-line reason when it announces one but answers with an error or with text
    /// that is not an object schema ([`schema::parse`]).
    ///
    /// Asks the driver on every call (a cheap module-level call); callers keep the result.
    pub fn config_schema(&self) -> Option<Result<serde_json::Value, String>> {
        if self.metadata.capabilities & capabilities::CONFIG_SCHEMA == 0 {
            return None;
        }
        let answer = (self.module.control())(RStr::from_str(control_op::CONFIG_SCHEMA), RStr::from_str(""));
        Some(match answer {
            RResult::ROk(text) => schema::parse(text.as_str()),
            RResult::RErr(e) => {
                let message = e.message.as_str().lines().next().unwrap_or_default();
                Err(format!("the driver did not return its configuration schema: {message}"))
            }
        })
    }
}

/// A file that was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadFailure {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub error: LoadError,
}

impl fmt::Display for LoadFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.error)
    }
}

/// The result of scanning a directory.
#[derive(Debug, Default, Clone)]
pub struct LoadReport {
    /// Drivers loaded, in file-name order, one per integration type.
    pub drivers: Vec<LoadedDriver>,
    /// Files refused, in file-name order.
    pub failures: Vec<LoadFailure>,
}

/// File names the loader considers: shared libraries by extension.
pub fn is_library_name(path: &Path) -> bool {
    matches!(path.extension().and_then(|e| e.to_str()), Some("so" | "dylib" | "dll"))
}

/// Loads every shared library in `dir` (not recursive), in file-name order.
///
/// A missing directory yields an empty report with one failure for the directory itself.
pub fn load_dir(dir: &Path) -> LoadReport {
    match library_files(dir) {
        Ok(paths) => load_files(paths, LoadReport::default()),
        Err(e) => LoadReport {
            failures: vec![LoadFailure { path: dir.to_path_buf(), error: LoadError::Io(e.to_string()) }],
            ..LoadReport::default()
        },
    }
}

/// The drivers shipped with the binary whose directory is `exe_dir`: the libraries in
/// `<exe_dir>/plugins/` (the installed layout: the binary beside a `plugins/` folder), or else
/// the first-party drivers cargo built beside it (`target/<profile>/deps/libtrib_driver_*.so`,
/// so that `cargo run` works with no install step). Sorted by file name.
pub fn bundled_driver_files(exe_dir: &Path) -> Vec<PathBuf> {
    let installed = exe_dir.join("plugins");
    if installed.is_dir() {
        return library_files(&installed).unwrap_or_default();
    }
    let mut built: Vec<PathBuf> = library_files(&exe_dir.join("deps"))
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("libtrib_driver_")))
        .collect();
    built.sort();
    built
}

/// Loads the drivers shipped with the binary (`bundled`, see [`bundled_driver_files`]) and then
/// every library in the plugins directory `dir`, which adds to them: a directory holding one
/// third-party driver does not hide the first-party ones. A file reached both ways (the plugins
/// directory is the bundled one) is loaded once; a type provided by two files is refused for the
/// second with one line naming both. A missing `dir` is not an error (nothing to add).
pub fn load_bundled_and_dir(bundled: &[PathBuf], dir: &Path) -> LoadReport {
    let mut files: Vec<PathBuf> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut add = |path: PathBuf, files: &mut Vec<PathBuf>| {
        let key = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        if seen.insert(key) {
            files.push(path);
        }
    };
    for path in bundled {
        add(path.clone(), &mut files);
    }
    let mut report = LoadReport::default();
    if dir.exists() {
        match library_files(dir) {
            Ok(paths) => {
                for path in paths {
                    add(path, &mut files);
                }
            }
            Err(e) => {
                report.failures.push(LoadFailure { path: dir.to_path_buf(), error: LoadError::Io(e.to_string()) })
            }
        }
    }
    load_files(files, report)
}

/// The shared libraries directly inside `dir`, sorted by file name.
fn library_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut paths: Vec<PathBuf> =
        std::fs::read_dir(dir)?.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| is_library_name(p)).collect();
    paths.sort();
    Ok(paths)
}

/// Loads the given library files, in the given order (see [`load_dir`]).
pub fn load_files(paths: Vec<PathBuf>, mut report: LoadReport) -> LoadReport {
    for path in paths {
        match load_file(&path) {
            Ok(driver) => {
                let duplicate = report
                    .drivers
                    .iter()
                    .find(|d| d.integration_type().eq_ignore_ascii_case(driver.integration_type()));
                match duplicate {
                    Some(first) => report.failures.push(LoadFailure {
                        path,
                        error: LoadError::DuplicateType {
                            integration_type: driver.integration_type().to_string(),
                            first: first.path.clone(),
                        },
                    }),
                    None => report.drivers.push(driver),
                }
            }
            Err(error) => report.failures.push(LoadFailure { path, error }),
        }
    }
    report
}

/// Loads one driver library.
pub fn load_file(path: &Path) -> Result<LoadedDriver, LoadError> {
    std::fs::metadata(path).map_err(|e| LoadError::Io(e.to_string()))?;
    // SAFETY: loading a library runs its initialisers. That is inherent to plugins: the plugins
    // directory is trusted configuration, like the executable itself.
    let library = unsafe { libloading::Library::new(path) }.map_err(|e| classify_open_error(path, &e.to_string()))?;
    // SAFETY: the symbol, when present, is abi_stable's `LibHeader` static, whose first field is
    // the `AbiHeader` that `AbiHeaderRef` points to; we read it as a pointer-sized value.
    let header: AbiHeaderRef = match unsafe { library.get::<AbiHeaderRef>(ROOT_MODULE_LOADER_NAME_WITH_NUL.as_bytes()) }
    {
        Ok(symbol) => *symbol,
        Err(_) => return Err(LoadError::NotADriver),
    };
    let lib_header = header.upgrade().map_err(|e| LoadError::IncompatibleApi(describe_library_error(&e)))?;
    let module = lib_header.init_root_module::<DriverModuleRef>().map_err(|e| match e {
        LibraryError::RootModule { .. } => LoadError::BrokenDriver(describe_library_error(&e)),
        other => LoadError::IncompatibleApi(describe_library_error(&other)),
    })?;
    let metadata = (module.metadata())();
    if metadata.integration_type.is_empty() {
        return Err(LoadError::BrokenDriver(format!("no integration type in metadata ({})", metadata.description)));
    }
    if !metadata.integration_type.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_') {
        return Err(LoadError::BrokenDriver(format!(
            "integration type '{}' must be upper-case ASCII letters, digits or '_'",
            metadata.integration_type
        )));
    }
    // Never unload: code from this library may be referenced for the life of the process.
    std::mem::forget(library);
    Ok(LoadedDriver { path: path.to_path_buf(), metadata, module })
}

/// Sorts a dlopen error into the loader's classes. glibc's messages are stable and specific:
/// a dependency that is absent reads "libX.so: cannot open shared object file", while a file that
/// is not ELF (or is for another machine) reads "invalid ELF header", "file too short" or
/// "wrong ELF class".
fn classify_open_error(path: &Path, message: &str) -> LoadError {
    let file_part = message.split(": ").next().unwrap_or(message);
    if message.contains("cannot open shared object file") && Path::new(file_part) != path {
        // The first part names the missing dependency, not the file we asked for.
        return LoadError::MissingSystemLibrary(message.to_string());
    }
    if message.contains("undefined symbol") {
        return LoadError::MissingSystemLibrary(message.to_string());
    }
    LoadError::NotSharedLibrary(message.to_string())
}

/// One line out of abi_stable's multi-line errors.
fn describe_library_error(error: &LibraryError) -> String {
    match error {
        LibraryError::AbiInstability(_) => {
            "its driver module layout differs from this executor's plugin-api 1.x layout; rebuild it against trib-plugin-api 1.x"
                .to_string()
        }
        LibraryError::IncompatibleVersionNumber { expected_version, actual_version, .. } => format!(
            "it implements plugin ABI {actual_version}, this executor needs {}.x (expected {expected_version})",
            expected_version.major
        ),
        LibraryError::InvalidAbiHeader(h) => format!(
            "it was built with abi_stable ABI {}.{}, this executor uses another abi_stable ABI",
            h.abi_major, h.abi_minor
        ),
        other => other.to_string().lines().next().unwrap_or("unknown error").to_string(),
    }
}
