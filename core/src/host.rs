//! The host services lent to each driver instance: log lines go to `tracing` with the
//! integration id and type attached, counters go to the `metrics` registry (exported on the
//! Prometheus endpoint) as `trib_driver_<name>` with the integration type as label.
//!
//! A driver's WARN and ERROR lines are rate-limited per instance ([`LogLimit`]): a line that
//! repeats (the same text but for its numbers) is written at most once per 10 s, with
//! `suppressed` = how many like it were not written since, so a failing target under `SKIP_ALL`
//! writes a few lines, not one per batch.

use std::ffi::c_void;

use abi_stable::std_types::RStr;
use trib_ops::log_limit::LogLimit;
use trib_plugin_api::{
    abi::{log_level, HostServices, HostVTableRef},
    host::host_vtable,
};

/// Per-instance context behind [`HostServices::ctx`]. Boxed so that its address is stable for
/// the life of the instance.
#[derive(Debug)]
pub struct HostContext {
    integration_id: String,
    integration_type: String,
    /// WARN and ERROR lines that repeat.
    limit: LogLimit,
}

impl HostContext {
    /// Creates the context of one instance.
    pub fn new(integration_id: &str, integration_type: &str) -> Box<Self> {
        Box::new(HostContext {
            integration_id: integration_id.to_string(),
            integration_type: integration_type.to_string(),
            limit: LogLimit::default(),
        })
    }

    /// [`HostContext::new`] with another interval for repeated lines (tests).
    #[cfg(test)]
    fn with_log_interval(integration_id: &str, integration_type: &str, interval: std::time::Duration) -> Box<Self> {
        Box::new(HostContext { limit: LogLimit::new(interval), ..*Self::new(integration_id, integration_type) })
    }

    /// The services to hand to `create`. Valid while `self` is alive (the handle keeps it).
    /// The context must stay where it is (boxed, never moved) while the instance lives.
    pub fn services(&self) -> HostServices {
        HostServices { ctx: (self as *const HostContext).cast::<c_void>(), vtable: vtable() }
    }
}

fn vtable() -> HostVTableRef {
    static VTABLE: std::sync::OnceLock<HostVTableRef> = std::sync::OnceLock::new();
    *VTABLE.get_or_init(|| host_vtable(log, log_enabled, counter_add))
}

/// # Safety
/// `ctx` is the pointer produced by [`HostContext::services`], alive for the instance's life.
unsafe fn context<'a>(ctx: *const c_void) -> &'a HostContext {
    // SAFETY: see above.
    unsafe { &*ctx.cast::<HostContext>() }
}

extern "C" fn log(ctx: *const c_void, level: u8, message: RStr<'_>) {
    // SAFETY: drivers only call back with the context they were given.
    let c = unsafe { context(ctx) };
    let msg = escape_controls(message.as_str());
    let (id, ty, msg) = (c.integration_id.as_str(), c.integration_type.as_str(), msg.as_ref());
    let suppressed = match level {
        log_level::ERROR | log_level::WARN => match c.limit.admit(&repeat_key(level, msg)) {
            Some(n) => n,
            None => return,
        },
        _ => 0,
    };
    // A panic in a subscriber must not unwind into the driver.
    let _ = std::panic::catch_unwind(|| match (level, suppressed) {
        (log_level::ERROR, 0) => tracing::error!(integration_id = id, integration_type = ty, "{msg}"),
        (log_level::ERROR, n) => tracing::error!(integration_id = id, integration_type = ty, suppressed = n, "{msg}"),
        (log_level::WARN, 0) => tracing::warn!(integration_id = id, integration_type = ty, "{msg}"),
        (log_level::WARN, n) => tracing::warn!(integration_id = id, integration_type = ty, suppressed = n, "{msg}"),
        (log_level::INFO, _) => tracing::info!(integration_id = id, integration_type = ty, "{msg}"),
        (log_level::DEBUG, _) => tracing::debug!(integration_id = id, integration_type = ty, "{msg}"),
        _ => tracing::trace!(integration_id = id, integration_type = ty, "{msg}"),
    });
}

/// What makes two driver lines "the same line" for the rate limit: the level and the text
/// without its digits (counts, offsets, ports vary from batch to batch), at most 96 characters.
fn repeat_key(level: u8, message: &str) -> String {
    let mut key = String::with_capacity(97);
    key.push(char::from(b'0' + level % 10));
    key.extend(message.chars().filter(|c| !c.is_ascii_digit()).take(96));
    key
}

/// `text` with control characters escaped (`\n`, `\u{1b}`): a driver message that quotes an
/// integration name or a URL must not start a new log line or drive the terminal.
fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    text.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect()
}

extern "C" fn log_enabled(_ctx: *const c_void, level: u8) -> bool {
    match level {
        log_level::ERROR => tracing::enabled!(tracing::Level::ERROR),
        log_level::WARN => tracing::enabled!(tracing::Level::WARN),
        log_level::INFO => tracing::enabled!(tracing::Level::INFO),
        log_level::DEBUG => tracing::enabled!(tracing::Level::DEBUG),
        _ => tracing::enabled!(tracing::Level::TRACE),
    }
}

extern "C" fn counter_add(ctx: *const c_void, name: RStr<'_>, value: u64) {
    // SAFETY: as in `log`.
    let c = unsafe { context(ctx) };
    let name = name.as_str();
    // Names come from driver code; keep the metric namespace clean rather than trusting them.
    if name.is_empty()
        || name.len() > 64
        || !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return;
    }
    let _ = std::panic::catch_unwind(|| {
        metrics::counter!(format!("trib_driver_{name}"), "type" => c.integration_type.clone()).increment(value);
    });
}

#[cfg(test)]
mod tests;
