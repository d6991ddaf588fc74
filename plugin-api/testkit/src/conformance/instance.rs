//! A driver instance driven through the raw ABI, the way the executor drives it, plus
//! [`Instance::run`]: a call on a helper thread with a time limit.
//!
//! The instance is destroyed when dropped. A call that overruns its limit is abandoned with the
//! instance inside it: the helper thread keeps it and destroys it if the call ever returns.

use std::{
    sync::mpsc,
    time::{Duration, Instant},
};

use trib_plugin_api::{
    abi::{error_kind, DriverInstance, DriverModuleRef, FieldError, Outcome, PluginError, StartConfig},
    abi_stable::std_types::{RResult, RSlice, RStr, RString, RVec},
};

use crate::{
    host::FakeHost,
    message::{Batch, TestMessage},
};

/// Integration id every instance is started with.
const INTEGRATION_ID: &str = "00000000-0000-4000-8000-00000000c0de";
/// Integration name every instance is started with.
const INTEGRATION_NAME: &str = "conformance";
/// Executor service id every instance is started with.
const SERVICE_ID: &str = "tbmq-ie-conformance";
/// Metadata map every instance is started with.
const METADATA: &str = r#"{"integrationName":"conformance"}"#;

/// One instance created through a module's `create`.
pub(crate) struct Instance {
    raw: DriverInstance,
}

impl Instance {
    /// Creates an instance with a fresh [`FakeHost`], within `bound`.
    pub(crate) fn create(module: DriverModuleRef, bound: Duration) -> Result<Instance, String> {
        let services = FakeHost::new().services();
        let created = bounded(bound, move || (module.create())(services))?;
        match created {
            RResult::ROk(raw) => Ok(Instance { raw }),
            RResult::RErr(e) => Err(format!("create failed: {}", describe(&e))),
        }
    }

    /// Runs `f` on a helper thread; `Err` when it did not return within `bound`.
    pub(crate) fn run<R: Send + 'static>(
        self,
        bound: Duration,
        f: impl FnOnce(&mut Instance) -> R + Send + 'static,
    ) -> Result<(Instance, R), String> {
        bounded(bound, move || {
            let mut instance = self;
            let result = f(&mut instance);
            (instance, result)
        })
    }

    pub(crate) fn validate(&mut self, configuration: &str) -> RResult<RVec<FieldError>, PluginError> {
        (self.raw.vtable.validate())(self.raw.state, RStr::from_str(configuration))
    }

    pub(crate) fn check_connection(&mut self, configuration: &str) -> RResult<(), PluginError> {
        (self.raw.vtable.check_connection())(self.raw.state, &start_config(configuration))
    }

    pub(crate) fn start(&mut self, configuration: &str) -> RResult<(), PluginError> {
        (self.raw.vtable.start())(self.raw.state, &start_config(configuration))
    }

    /// Processes `messages` with `timeout`; also returns how long the call took.
    pub(crate) fn process(
        &mut self,
        messages: &[TestMessage],
        timeout: Duration,
    ) -> (RResult<RVec<Outcome>, PluginError>, Duration) {
        let batch = Batch::new(messages);
        let abi_messages = batch.messages();
        let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        let started = Instant::now();
        let result = (self.raw.vtable.process())(self.raw.state, RSlice::from_slice(&abi_messages), timeout_ms);
        (result, started.elapsed())
    }

    /// An instance-level `control` call.
    pub(crate) fn control(&mut self, op: &str, arg: &str) -> RResult<RString, PluginError> {
        (self.raw.vtable.control())(self.raw.state, RStr::from_str(op), RStr::from_str(arg))
    }

    pub(crate) fn stop(&mut self) -> RResult<(), PluginError> {
        (self.raw.vtable.stop())(self.raw.state)
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        (self.raw.vtable.destroy())(self.raw.state);
    }
}

/// Runs `f` on a helper thread and waits at most `bound` for it.
pub(crate) fn bounded<R: Send + 'static>(bound: Duration, f: impl FnOnce() -> R + Send + 'static) -> Result<R, String> {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("conformance-call".into())
        .spawn(move || {
            // The receiver is gone only when the caller gave up; the result is then dropped.
            let _ = tx.send(f());
        })
        .map_err(|e| format!("cannot start a helper thread: {e}"))?;
    rx.recv_timeout(bound).map_err(|e| match e {
        mpsc::RecvTimeoutError::Timeout => format!("the call did not return within {} ms", bound.as_millis()),
        mpsc::RecvTimeoutError::Disconnected => "the call ended without a result".to_string(),
    })
}

/// `KIND: message`, e.g. `CONNECTION: connection refused`.
pub(crate) fn describe(error: &PluginError) -> String {
    format!("{}: {}", kind_name(error.kind), one_line(error.message.as_str()))
}

/// The name of an error kind code.
pub(crate) fn kind_name(kind: u32) -> String {
    match kind {
        error_kind::INTERNAL => "INTERNAL".into(),
        error_kind::CONFIG => "CONFIG".into(),
        error_kind::CONNECTION => "CONNECTION".into(),
        error_kind::PANIC => "PANIC".into(),
        error_kind::UNSUPPORTED => "UNSUPPORTED".into(),
        error_kind::STATE => "STATE".into(),
        other => format!("kind {other}"),
    }
}

/// `text` on one line and at most 160 characters, for report details.
pub(crate) fn one_line(text: &str) -> String {
    const MAX: usize = 160;
    let flat: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if flat.chars().count() <= MAX {
        flat
    } else {
        format!("{}...", flat.chars().take(MAX).collect::<String>())
    }
}

fn start_config(configuration: &str) -> StartConfig<'_> {
    StartConfig {
        integration_id: RStr::from_str(INTEGRATION_ID),
        integration_name: RStr::from_str(INTEGRATION_NAME),
        service_id: RStr::from_str(SERVICE_ID),
        client_configuration: RStr::from_str(configuration),
        metadata: RStr::from_str(METADATA),
    }
}
