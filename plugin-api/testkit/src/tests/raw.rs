//! A module written against the raw ABI, without the export layer, the way a foreign or broken
//! library could look: the suite must catch what the export layer would have caught for a Rust
//! driver (here, two outcomes per message) and a plugin-api major it does not speak.

use std::{ffi::c_void, sync::OnceLock};

use trib_plugin_api::{
    abi::{
        error_kind, outcome_status, DriverInstance, DriverMetadata, DriverModule, DriverModuleRef, FieldError,
        HostServices, InstanceVTable, InstanceVTableRef, Message, Outcome, PluginError, StartConfig,
    },
    abi_stable::{
        prefix_type::PrefixTypeTrait,
        std_types::{RResult, RSlice, RStr, RString, RVec},
    },
};

use crate::conformance::{check_module, Check, Scenario, Verdict};

#[test]
fn a_raw_module_is_checked_by_the_kit_itself() {
    let scenario = Scenario::new("{}").unreachable("{}").black_hole("{}").random_inputs(20);
    let report = check_module(module(), &scenario);
    assert_eq!(report.failed(), [Check::Metadata, Check::ProcessAgainstBlackHole], "{report}");
    let detail = |check| report.result(check).expect("ran").detail.clone();
    assert_eq!(detail(Check::Metadata), "built against plugin-api 2.0.0, this kit checks 1.x");
    assert!(detail(Check::ProcessAgainstBlackHole).starts_with("6 outcomes for 3 messages: [RETRY, "), "{report}");
    assert_eq!(report.verdict(Check::ProcessBeforeStart), Verdict::Pass, "a STATE error is a valid answer");
    assert!(detail(Check::CheckConnectionUnreachable).starts_with("no CHECK_CONNECTION capability: UNSUPPORTED"));
}

fn module() -> DriverModuleRef {
    DriverModule { metadata, create, control: module_control }.leak_into_prefix()
}

struct State {
    started: bool,
}

fn error(kind: u32, message: &str) -> PluginError {
    PluginError { kind, message: message.into() }
}

/// # Safety
/// `state` comes from `create` and is not destroyed yet.
unsafe fn state<'a>(state: *mut c_void) -> &'a mut State {
    // SAFETY: guaranteed by the caller; the suite never overlaps calls on one instance.
    unsafe { &mut *state.cast::<State>() }
}

extern "C" fn metadata() -> DriverMetadata {
    DriverMetadata {
        name: "raw".into(),
        integration_type: "RAW".into(),
        driver_version: "1.0.0".into(),
        api_version: "2.0.0".into(),
        description: "Hand-written module.".into(),
        capabilities: 0,
    }
}

extern "C" fn create(_host: HostServices) -> RResult<DriverInstance, PluginError> {
    static VTABLE: OnceLock<InstanceVTableRef> = OnceLock::new();
    let vtable = *VTABLE.get_or_init(|| {
        InstanceVTable { validate, check_connection, start, process, stop, destroy, control }.leak_into_prefix()
    });
    let state = Box::into_raw(Box::new(State { started: false })).cast::<c_void>();
    RResult::ROk(DriverInstance { state, vtable })
}

extern "C" fn module_control(_op: RStr<'_>, _arg: RStr<'_>) -> RResult<RString, PluginError> {
    RResult::RErr(error(error_kind::UNSUPPORTED, "no operations"))
}

fn is_object(text: RStr<'_>) -> bool {
    matches!(serde_json::from_str::<serde_json::Value>(text.as_str()), Ok(serde_json::Value::Object(_)))
}

extern "C" fn validate(_state: *mut c_void, text: RStr<'_>) -> RResult<RVec<FieldError>, PluginError> {
    let errors = if is_object(text) { RVec::new() } else { RVec::from(vec![FieldError::new("", "not an object")]) };
    RResult::ROk(errors)
}

extern "C" fn check_connection(_state: *mut c_void, _config: &StartConfig<'_>) -> RResult<(), PluginError> {
    RResult::RErr(error(error_kind::UNSUPPORTED, "no connection check"))
}

extern "C" fn start(s: *mut c_void, config: &StartConfig<'_>) -> RResult<(), PluginError> {
    if !is_object(config.client_configuration) {
        return RResult::RErr(error(error_kind::CONFIG, "not an object"));
    }
    // SAFETY: the suite passes back the pointer from `create`.
    unsafe { state(s) }.started = true;
    RResult::ROk(())
}

extern "C" fn process(
    s: *mut c_void,
    batch: RSlice<'_, Message<'_>>,
    _timeout_ms: u64,
) -> RResult<RVec<Outcome>, PluginError> {
    // SAFETY: as in `start`.
    if !unsafe { state(s) }.started {
        return RResult::RErr(error(error_kind::STATE, "not started"));
    }
    let retry = Outcome { status: outcome_status::RETRY, reason: "later".into() };
    RResult::ROk(std::iter::repeat_n(retry, batch.len() * 2).collect())
}

extern "C" fn stop(s: *mut c_void) -> RResult<(), PluginError> {
    // SAFETY: as in `start`.
    unsafe { state(s) }.started = false;
    RResult::ROk(())
}

extern "C" fn destroy(s: *mut c_void) {
    // SAFETY: called once, with the pointer from `create`.
    drop(unsafe { Box::from_raw(s.cast::<State>()) });
}

extern "C" fn control(_state: *mut c_void, _op: RStr<'_>, _arg: RStr<'_>) -> RResult<RString, PluginError> {
    RResult::RErr(error(error_kind::UNSUPPORTED, "no operations"))
}
