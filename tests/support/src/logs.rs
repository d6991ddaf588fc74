//! Log lines in tests: one process-wide `tracing` subscriber, installed once, that hands each
//! event to the buffer of the thread that logged it while that thread [`capture`]s, and to the
//! test output (filtered by `RUST_LOG`) otherwise.
//!
//! Why not `tracing::subscriber::with_default` per test: `tracing` caches, per log call site,
//! whether any subscriber wants it. A call site first reached by another test thread while the
//! first scoped subscriber of the process is being registered can keep a stale "nobody wants
//! this" and its line never reaches the test's buffer (seen in CI: one test in twenty lost its
//! "room again" line). With one global subscriber whose capture filter is decided per event,
//! there is no scoped subscriber and nothing stale to cache.

use std::{cell::RefCell, str::FromStr, sync::Once};

use tracing_subscriber::{
    filter::{dynamic_filter_fn, EnvFilter, Targets},
    fmt::{self, writer::OptionalWriter, MakeWriter},
    layer::SubscriberExt,
    util::SubscriberInitExt,
    Layer,
};

use crate::LogBuffer;

thread_local! {
    static CAPTURE: RefCell<Option<(Targets, LogBuffer)>> = const { RefCell::new(None) };
}

/// Installs the process-wide subscriber (once; later calls do nothing). Lines of threads that do
/// not capture go to the test output, filtered by `RUST_LOG` (errors only when it is unset).
/// Test suites call this instead of installing a subscriber of their own.
pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let captured =
            fmt::layer().with_ansi(false).with_writer(CaptureWriter).with_filter(dynamic_filter_fn(|meta, _| {
                CAPTURE.with(|c| c.borrow().as_ref().is_some_and(|(t, _)| t.would_enable(meta.target(), meta.level())))
            }));
        let output = fmt::layer().with_test_writer().with_filter(EnvFilter::from_default_env());
        // Fails only if a subscriber was installed by other means; capturing then keeps nothing,
        // which the capturing test sees.
        let _ = tracing_subscriber::registry().with(captured).with(output).try_init();
    });
}

/// Keeps what this thread logs, as the formatted text log writes it (no colours), while the
/// returned guard lives. `filter` is a `Targets` filter: `"info"`, `"trib_broker=debug"`.
/// Only events of the calling thread are kept: run async code on a current-thread runtime.
pub fn capture(filter: &str) -> Capture {
    init();
    let targets = Targets::from_str(filter).unwrap_or_else(|e| panic!("log filter {filter:?}: {e}"));
    let buffer = LogBuffer::default();
    let previous = CAPTURE.with(|c| c.borrow_mut().replace((targets, buffer.clone())));
    Capture { buffer, previous }
}

/// Runs `f`, keeping what the calling thread logs (see [`capture`]), and returns the text.
pub fn captured(filter: &str, f: impl FnOnce()) -> String {
    let capture = capture(filter);
    f();
    capture.text()
}

/// A running capture; see [`capture`]. Dropping it ends the capture.
pub struct Capture {
    buffer: LogBuffer,
    previous: Option<(Targets, LogBuffer)>,
}

impl Capture {
    /// Everything this thread logged since the capture began.
    pub fn text(&self) -> String {
        self.buffer.text()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CAPTURE.with(|c| *c.borrow_mut() = previous);
    }
}

/// Writes to the buffer of the calling thread's capture.
struct CaptureWriter;

impl<'a> MakeWriter<'a> for CaptureWriter {
    type Writer = OptionalWriter<LogBuffer>;

    fn make_writer(&'a self) -> Self::Writer {
        CAPTURE
            .with(|c| c.borrow().as_ref().map(|(_, b)| b.clone()))
            .map_or_else(OptionalWriter::none, OptionalWriter::some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_capture_keeps_its_threads_lines_at_its_level_only() {
        let text = captured("info", || {
            std::thread::spawn(|| tracing::info!("other thread")).join().unwrap();
            tracing::info!("this thread");
            tracing::debug!("below info");
        });
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains("INFO") && text.contains("this thread"), "{text}");
        assert_eq!(captured("warn", || tracing::info!("below warn")), "");
    }

    #[test]
    fn nested_captures_restore_the_outer_one() {
        let outer = capture("info");
        tracing::info!("one");
        assert!(captured("info", || tracing::info!("two")).contains("two"));
        tracing::info!("three");
        let text = outer.text();
        assert!(text.contains("one") && text.contains("three") && !text.contains("two"), "{text}");
    }

    #[test]
    fn targets_select_modules() {
        let text = captured("trib_test_support=debug,other=off", || tracing::debug!("kept"));
        assert!(text.contains("kept"), "{text}");
        assert_eq!(captured("other=trace", || tracing::error!("dropped")), "");
    }
}
