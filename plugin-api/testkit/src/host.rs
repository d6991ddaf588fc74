//! [`FakeHost`]: host services that record every log line and every counter increment, so a test
//! can assert what a driver told the executor.
//!
//! The recording lives for the rest of the test process (it is leaked on purpose): a
//! [`Host`] handle is `Copy` and a driver may keep it in threads that outlive the test's own
//! variables, so the context behind it must never dangle. Each [`FakeHost::new`] leaks a few
//! bytes plus what was recorded, which is nothing for a test binary.
//!
//! ```
//! use trib_plugin_api::abi::log_level;
//! use trib_plugin_testkit::host::FakeHost;
//!
//! let fake = FakeHost::new();
//! let host = fake.host(); // pass to `MyDriver::create(host)`
//! host.warn("Target slow.");
//! host.count("requests_total", 2);
//! host.count("requests_total", 1);
//! assert_eq!(fake.lines_at(log_level::WARN), ["Target slow."]);
//! assert_eq!(fake.counter("requests_total"), 3);
//! ```

use std::{
    collections::BTreeMap,
    ffi::c_void,
    sync::{
        atomic::{AtomicU8, Ordering},
        Mutex, MutexGuard, OnceLock, PoisonError,
    },
};

use trib_plugin_api::{
    abi::{log_level, HostServices, HostVTableRef},
    abi_stable::std_types::RStr,
    host::{host_vtable, Host},
};

/// One line a driver logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// One of [`log_level`] (or whatever number a foreign driver sent).
    pub level: u8,
    /// The text.
    pub text: String,
}

/// One `counter_add` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterAdd {
    /// Counter name.
    pub name: String,
    /// Amount added.
    pub value: u64,
}

/// Host services that record; cheap to copy, every copy sees the same recording.
#[derive(Clone, Copy)]
pub struct FakeHost {
    recording: &'static Recording,
}

#[derive(Default)]
struct Recording {
    max_level: AtomicU8,
    lines: Mutex<Vec<LogLine>>,
    counters: Mutex<Vec<CounterAdd>>,
}

impl FakeHost {
    /// A host with every level enabled (so drivers format every line they would log).
    pub fn new() -> Self {
        FakeHost::with_max_level(log_level::TRACE)
    }

    /// A host that reports levels above `max_level` as disabled (for example
    /// [`log_level::INFO`] to see what a driver logs at the executor's default level).
    pub fn with_max_level(max_level: u8) -> Self {
        let recording: &'static Recording = Box::leak(Box::default());
        recording.max_level.store(max_level, Ordering::Relaxed);
        FakeHost { recording }
    }

    /// The boundary form, for `create` through a module: `(module.create())(fake.services())`.
    pub fn services(&self) -> HostServices {
        // `host_vtable` leaks one small table per call: build it once per process.
        static VTABLE: OnceLock<HostVTableRef> = OnceLock::new();
        let vtable = *VTABLE.get_or_init(|| host_vtable(log, enabled, add));
        HostServices { ctx: (self.recording as *const Recording).cast(), vtable }
    }

    /// The safe handle, for `MyDriver::create(fake.host())`.
    pub fn host(&self) -> Host {
        Host::from_abi(self.services())
    }

    /// Every line logged so far, in order.
    pub fn lines(&self) -> Vec<LogLine> {
        lock(&self.recording.lines).clone()
    }

    /// The texts of the lines logged at exactly `level`, in order.
    pub fn lines_at(&self, level: u8) -> Vec<String> {
        lock(&self.recording.lines).iter().filter(|l| l.level == level).map(|l| l.text.clone()).collect()
    }

    /// Whether a line at `level` contains `needle`.
    pub fn logged(&self, level: u8, needle: &str) -> bool {
        lock(&self.recording.lines).iter().any(|l| l.level == level && l.text.contains(needle))
    }

    /// Every `counter_add` call so far, in order.
    pub fn counter_adds(&self) -> Vec<CounterAdd> {
        lock(&self.recording.counters).clone()
    }

    /// The total added to counter `name` (0 when never touched).
    pub fn counter(&self, name: &str) -> u64 {
        lock(&self.recording.counters).iter().filter(|c| c.name == name).map(|c| c.value).sum()
    }

    /// Totals of every counter touched, by name.
    pub fn counters(&self) -> BTreeMap<String, u64> {
        let mut totals = BTreeMap::new();
        for add in lock(&self.recording.counters).iter() {
            *totals.entry(add.name.clone()).or_insert(0) += add.value;
        }
        totals
    }

    /// Forgets what was recorded so far.
    pub fn clear(&self) {
        lock(&self.recording.lines).clear();
        lock(&self.recording.counters).clear();
    }
}

impl Default for FakeHost {
    fn default() -> Self {
        FakeHost::new()
    }
}

impl std::fmt::Debug for FakeHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeHost")
            .field("lines", &lock(&self.recording.lines).len())
            .field("counter_adds", &lock(&self.recording.counters).len())
            .finish()
    }
}

/// A poisoned lock only means another test thread panicked while recording; the data is still
/// what was recorded.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// # Safety
/// `ctx` must be the pointer built by [`FakeHost::services`]: a leaked, never freed `Recording`.
unsafe fn recording<'a>(ctx: *const c_void) -> &'a Recording {
    // SAFETY: guaranteed by the caller; the recording is leaked, so it lives forever.
    unsafe { &*ctx.cast::<Recording>() }
}

extern "C" fn log(ctx: *const c_void, level: u8, message: RStr<'_>) {
    // SAFETY: the host services hand this function the context built in `services`.
    let recording = unsafe { recording(ctx) };
    lock(&recording.lines).push(LogLine { level, text: message.to_string() });
}

extern "C" fn enabled(ctx: *const c_void, level: u8) -> bool {
    // SAFETY: as in `log`.
    let recording = unsafe { recording(ctx) };
    level <= recording.max_level.load(Ordering::Relaxed)
}

extern "C" fn add(ctx: *const c_void, name: RStr<'_>, value: u64) {
    // SAFETY: as in `log`.
    let recording = unsafe { recording(ctx) };
    lock(&recording.counters).push(CounterAdd { name: name.to_string(), value });
}
