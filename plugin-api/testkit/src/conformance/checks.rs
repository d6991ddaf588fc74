//! The checks, one function each, in [`Check::ALL`] order, and [`run`], which prepares the
//! loopback targets, substitutes their ports into the scenario and times every check.
//!
//! A check returns `Ok(Passed)` or `Err(detail)`; the detail is one line saying what was seen.

use std::time::{Duration, Instant};

use trib_plugin_api::{
    abi::{capabilities, control_op, error_kind, outcome_status, DriverMetadata, DriverModuleRef},
    abi_stable::std_types::RResult,
};

use super::{
    corpus,
    instance::{bounded, describe, one_line, Instance},
    Check, CheckResult, Report, Scenario, Verdict, BLACKHOLE_PORT, CLOSED_PORT,
};
use crate::{
    message::TestMessage,
    target::{closed_port, BlackHole},
};

/// Configurations `start` must always refuse: none is a JSON object.
const NOT_OBJECTS: [&str; 3] = ["not json", "[]", "null"];

/// What a check passed with.
enum Passed {
    Pass(String),
    Skip(String),
}

type Checked = Result<Passed, String>;

/// The module, its metadata and the scenario with the target ports substituted.
struct Context<'s> {
    module: DriverModuleRef,
    metadata: DriverMetadata,
    scenario: &'s Scenario,
    valid: Result<String, String>,
    unreachable: Option<Result<String, String>>,
    black_hole: Option<Result<String, String>>,
    delivering: Option<Result<String, String>>,
    invalid: Vec<Result<String, String>>,
}

pub(super) fn run(module: DriverModuleRef, scenario: &Scenario) -> Report {
    let closed = closed_port().map_err(|e| format!("cannot find a closed loopback port: {e}"));
    let hole = BlackHole::start().map_err(|e| format!("cannot start the black-hole listener: {e}"));
    let substitute = |text: &str| -> Result<String, String> {
        let mut text = text.to_string();
        if text.contains(CLOSED_PORT) {
            text = text.replace(CLOSED_PORT, &closed.as_ref().map_err(Clone::clone)?.to_string());
        }
        if text.contains(BLACKHOLE_PORT) {
            text = text.replace(BLACKHOLE_PORT, &hole.as_ref().map_err(Clone::clone)?.port().to_string());
        }
        Ok(text)
    };
    let metadata = match bounded(scenario.call_bound, move || (module.metadata())()) {
        Ok(metadata) => metadata,
        Err(e) => {
            let detail = format!("metadata(): {e}");
            let results =
                vec![CheckResult { check: Check::Metadata, verdict: Verdict::Fail, detail, elapsed: Duration::ZERO }];
            return Report { driver: "a driver whose metadata() hangs".into(), results };
        }
    };
    let ctx = Context {
        module,
        metadata,
        scenario,
        valid: substitute(&scenario.valid_configuration),
        unreachable: scenario.unreachable_configuration.as_deref().map(substitute),
        black_hole: scenario.black_hole_configuration.as_deref().map(substitute),
        delivering: scenario.delivering_configuration.as_deref().map(substitute),
        invalid: scenario.invalid_configurations.iter().map(|c| substitute(c)).collect(),
    };
    let m = &ctx.metadata;
    let driver = format!("{} ({} {}, plugin-api {})", m.integration_type, m.name, m.driver_version, m.api_version);
    let results = Check::ALL.iter().map(|&check| timed(check, &ctx)).collect();
    Report { driver, results }
}

fn timed(check: Check, ctx: &Context<'_>) -> CheckResult {
    let started = Instant::now();
    let outcome = match check {
        Check::Metadata => metadata(ctx),
        Check::ValidConfiguration => valid_configuration(ctx),
        Check::ValidateNeverPanics => validate_never_panics(ctx),
        Check::StartRejectsInvalidConfiguration => start_rejects_invalid_configuration(ctx),
        Check::ProcessBeforeStart => process_before_start(ctx),
        Check::StopIsIdempotent => stop_is_idempotent(ctx),
        Check::DestroyWithoutStart => destroy_without_start(ctx),
        Check::CheckConnectionUnreachable => check_connection_unreachable(ctx),
        Check::ProcessAgainstBlackHole => process_against_black_hole(ctx),
        Check::PipelinedBatchesInOrder => pipelined_batches_in_order(ctx),
    };
    let (verdict, detail) = match outcome {
        Ok(Passed::Pass(detail)) => (Verdict::Pass, detail),
        Ok(Passed::Skip(detail)) => (Verdict::Skip, detail),
        Err(detail) => (Verdict::Fail, detail),
    };
    CheckResult { check, verdict, detail, elapsed: started.elapsed() }
}

fn metadata(ctx: &Context<'_>) -> Checked {
    let m = &ctx.metadata;
    let kind = m.integration_type.as_str();
    if m.name.is_empty() {
        return Err("the driver name is empty".into());
    }
    if kind.is_empty() || !kind.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_') {
        return Err(format!("integration type '{}' is not upper-case [A-Z0-9_]", one_line(kind)));
    }
    if m.driver_version.is_empty() {
        return Err("the driver version is empty".into());
    }
    let major = |v: &str| v.split('.').next().unwrap_or_default().to_string();
    let expected = major(trib_plugin_api::abi::ABI_VERSION);
    if major(m.api_version.as_str()) != expected {
        return Err(format!("built against plugin-api {}, this kit checks {expected}.x", m.api_version));
    }
    Ok(Passed::Pass(format!("type {kind}, driver {} {}, api {}", m.name, m.driver_version, m.api_version)))
}

fn valid_configuration(ctx: &Context<'_>) -> Checked {
    let valid = ctx.valid.clone()?;
    let (_, result) = Instance::create(ctx.module, ctx.scenario.call_bound)?
        .run(ctx.scenario.call_bound, move |i| i.validate(&valid))?;
    match result {
        RResult::ROk(errors) if errors.is_empty() => Ok(Passed::Pass("no field error".into())),
        RResult::ROk(errors) => {
            let listed: Vec<String> = errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect();
            Err(format!("field errors: {}", one_line(&listed.join("; "))))
        }
        RResult::RErr(e) => Err(format!("validate failed: {}", describe(&e))),
    }
}

fn validate_never_panics(ctx: &Context<'_>) -> Checked {
    let valid = ctx.valid.clone().unwrap_or_default();
    let inputs = corpus::inputs(&valid, ctx.scenario.seed, ctx.scenario.random_inputs);
    let count = inputs.len();
    let (_, first_panic) =
        Instance::create(ctx.module, ctx.scenario.call_bound)?.run(ctx.scenario.call_bound, move |i| {
            inputs.iter().enumerate().find_map(|(n, input)| match i.validate(input) {
                RResult::RErr(e) if e.kind == error_kind::PANIC => {
                    Some(format!("input #{n} `{}` -> {}", one_line(input), describe(&e)))
                }
                _ => None,
            })
        })?;
    match first_panic {
        None => Ok(Passed::Pass(format!("{count} inputs, no panic"))),
        Some(detail) => Err(detail),
    }
}

fn start_rejects_invalid_configuration(ctx: &Context<'_>) -> Checked {
    let mut texts: Vec<String> = NOT_OBJECTS.iter().map(|s| s.to_string()).collect();
    for text in &ctx.invalid {
        texts.push(text.clone()?);
    }
    for text in &texts {
        let owned = text.clone();
        let (_, (errors, started)) = Instance::create(ctx.module, ctx.scenario.call_bound)?
            .run(ctx.scenario.call_bound, move |i| (i.validate(&owned), i.start(&owned)))?;
        let shown = one_line(text);
        match errors {
            RResult::ROk(errors) if errors.is_empty() => return Err(format!("validate accepts `{shown}`")),
            RResult::RErr(e) => return Err(format!("validate(`{shown}`) failed: {}", describe(&e))),
            RResult::ROk(_) => {}
        }
        match started {
            RResult::RErr(e) if e.kind == error_kind::CONFIG => {}
            RResult::RErr(e) => return Err(format!("start(`{shown}`): expected a CONFIG error, got {}", describe(&e))),
            RResult::ROk(()) => return Err(format!("start(`{shown}`) succeeded")),
        }
    }
    Ok(Passed::Pass(format!("{} configurations refused with CONFIG errors", texts.len())))
}

fn process_before_start(ctx: &Context<'_>) -> Checked {
    let timeout = ctx.scenario.process_timeout;
    let (_, (result, _)) = Instance::create(ctx.module, ctx.scenario.call_bound)?
        .run(ctx.scenario.call_bound + timeout, move |i| i.process(&messages(2), timeout))?;
    match result {
        RResult::RErr(e) if e.kind == error_kind::STATE => Ok(Passed::Pass(format!("refused: {}", describe(&e)))),
        RResult::RErr(e) => Err(format!("expected a STATE error or outcomes, got {}", describe(&e))),
        RResult::ROk(outcomes) => {
            let statuses = statuses(&outcomes);
            if outcomes.len() != 2 {
                return Err(format!("{} outcomes for 2 messages: {statuses}", outcomes.len()));
            }
            if outcomes.iter().any(|o| o.status == outcome_status::DELIVERED) {
                return Err(format!("delivered without being started: {statuses}"));
            }
            Ok(Passed::Pass(format!("outcomes {statuses}")))
        }
    }
}

fn stop_is_idempotent(ctx: &Context<'_>) -> Checked {
    let bound = ctx.scenario.call_bound;
    let (_, (first, second)) = Instance::create(ctx.module, bound)?.run(bound, |i| (i.stop(), i.stop()))?;
    check_stops("without start", first, second)?;
    let Some(configuration) = ctx.black_hole.clone().or_else(|| ctx.unreachable.clone()) else {
        return Ok(Passed::Pass("stop twice without start: ok (no target configuration to start with)".into()));
    };
    let configuration = configuration?;
    let (_, (started, first, second)) =
        Instance::create(ctx.module, bound)?.run(bound * 3, move |i| (i.start(&configuration), i.stop(), i.stop()))?;
    check_stops("after start", first, second)?;
    let how = match started {
        RResult::ROk(()) => "after a successful start".to_string(),
        RResult::RErr(e) => format!("after a failed start ({})", describe(&e)),
    };
    Ok(Passed::Pass(format!("stop twice without start and {how}: ok")))
}

fn check_stops(
    when: &str,
    first: RResult<(), trib_plugin_api::abi::PluginError>,
    second: RResult<(), trib_plugin_api::abi::PluginError>,
) -> Result<(), String> {
    for (n, result) in [("first", first), ("second", second)] {
        if let RResult::RErr(e) = result {
            return Err(format!("{n} stop {when} failed: {}", describe(&e)));
        }
    }
    Ok(())
}

fn destroy_without_start(ctx: &Context<'_>) -> Checked {
    let instance = Instance::create(ctx.module, ctx.scenario.call_bound)?;
    bounded(ctx.scenario.call_bound, move || drop(instance))?;
    Ok(Passed::Pass("destroyed".into()))
}

fn check_connection_unreachable(ctx: &Context<'_>) -> Checked {
    let Some(configuration) = ctx.unreachable.clone() else {
        return Ok(Passed::Skip("no unreachable_configuration in the scenario".into()));
    };
    let configuration = configuration?;
    let announced = ctx.metadata.capabilities & capabilities::CHECK_CONNECTION != 0;
    let started = Instant::now();
    let (_, result) = Instance::create(ctx.module, ctx.scenario.call_bound)?
        .run(ctx.scenario.call_bound, move |i| i.check_connection(&configuration))?;
    let took = started.elapsed().as_millis();
    match result {
        RResult::RErr(e) if e.kind == error_kind::CONNECTION => {
            Ok(Passed::Pass(format!("{} after {took} ms", describe(&e))))
        }
        RResult::RErr(e) if !announced && e.kind == error_kind::UNSUPPORTED => {
            Ok(Passed::Pass(format!("no CHECK_CONNECTION capability: {}", describe(&e))))
        }
        RResult::ROk(()) if !announced => Ok(Passed::Pass("no CHECK_CONNECTION capability: Ok".into())),
        RResult::ROk(()) => Err(format!("succeeded against an unreachable target after {took} ms")),
        RResult::RErr(e) => Err(format!("expected a CONNECTION error, got {} after {took} ms", describe(&e))),
    }
}

fn process_against_black_hole(ctx: &Context<'_>) -> Checked {
    let Some(configuration) = ctx.black_hole.clone() else {
        return Ok(Passed::Skip("no black_hole_configuration in the scenario".into()));
    };
    let configuration = configuration?;
    let bound = ctx.scenario.call_bound;
    let (timeout, grace) = (ctx.scenario.process_timeout, ctx.scenario.grace);
    let started = Instant::now();
    let (instance, result) = Instance::create(ctx.module, bound)?.run(bound, move |i| i.start(&configuration))?;
    match result {
        RResult::ROk(()) => {}
        RResult::RErr(e) if e.kind == error_kind::CONNECTION => {
            let took = started.elapsed().as_millis();
            return Ok(Passed::Pass(format!("start refused the black hole after {took} ms: {}", describe(&e))));
        }
        RResult::RErr(e) => return Err(format!("start failed: {}", describe(&e))),
    }
    let (_, ((result, took), (empty, _))) = instance.run(timeout + bound, move |i| {
        let full = i.process(&messages(3), timeout);
        (full, i.process(&[], timeout))
    })?;
    let outcomes = match result {
        RResult::ROk(outcomes) => outcomes,
        RResult::RErr(e) => return Err(format!("process failed: {}", describe(&e))),
    };
    let statuses = statuses(&outcomes);
    if outcomes.len() != 3 {
        return Err(format!("{} outcomes for 3 messages: {statuses}", outcomes.len()));
    }
    if outcomes.iter().any(|o| o.status == outcome_status::DELIVERED) {
        return Err(format!("reported delivered by a target that never answers: {statuses}"));
    }
    let limits = format!("{} ms for a {} ms timeout", took.as_millis(), timeout.as_millis());
    if took > timeout + grace {
        return Err(format!("returned after {limits} (grace {} ms)", grace.as_millis()));
    }
    match empty {
        RResult::ROk(outcomes) if outcomes.is_empty() => {}
        RResult::ROk(outcomes) => return Err(format!("{} outcomes for an empty batch", outcomes.len())),
        RResult::RErr(e) => return Err(format!("process of an empty batch failed: {}", describe(&e))),
    }
    Ok(Passed::Pass(format!("{statuses} in {limits}; empty batch: no outcome")))
}

fn pipelined_batches_in_order(ctx: &Context<'_>) -> Checked {
    if ctx.metadata.capabilities & capabilities::PIPELINE == 0 {
        return Ok(Passed::Skip("the driver does not announce PIPELINE".into()));
    }
    let Some(configuration) = ctx.delivering.clone() else {
        return Ok(Passed::Skip("no delivering_configuration in the scenario".into()));
    };
    let configuration = configuration?;
    let bound = ctx.scenario.call_bound;
    let (instance, result) = Instance::create(ctx.module, bound)?.run(bound, move |i| i.start(&configuration))?;
    if let RResult::RErr(e) = result {
        return Err(format!("start against the delivering target failed: {}", describe(&e)));
    }
    let (mut instance, switched) = instance.run(bound, |i| i.control(control_op::PIPELINE, ""))?;
    match switched {
        RResult::ROk(answer) if answer.as_str() == "on" => {}
        RResult::ROk(answer) => return Err(format!("the pipeline operation answered '{}'", one_line(&answer))),
        RResult::RErr(e) => return Err(format!("the pipeline operation failed: {}", describe(&e))),
    }
    // Submit batches of 1, 2 and 3 messages, then collect: the sizes show the order.
    let mut pending = Vec::new();
    for size in 1..=3 {
        let (next, (result, _)) = instance.run(bound, move |i| i.process(&messages(size), bound))?;
        instance = next;
        match result {
            RResult::ROk(outcomes) if outcomes.is_empty() => pending.push(size),
            RResult::ROk(outcomes) if outcomes.len() == size => {}
            RResult::ROk(outcomes) => {
                return Err(format!("submit of {size} messages returned {} outcomes", outcomes.len()));
            }
            RResult::RErr(e) => return Err(format!("submit of {size} messages failed: {}", describe(&e))),
        }
    }
    let mut seen = Vec::new();
    for &size in &pending {
        let (next, (result, _)) = instance.run(bound + bound, move |i| i.process(&[], bound))?;
        instance = next;
        let outcomes = match result {
            RResult::ROk(outcomes) => outcomes,
            RResult::RErr(e) => return Err(format!("collect failed: {}", describe(&e))),
        };
        if outcomes.len() != size {
            return Err(format!(
                "collect returned {} outcomes where the oldest pending batch has {size}",
                outcomes.len()
            ));
        }
        if outcomes.iter().any(|o| o.status != outcome_status::DELIVERED) {
            return Err(format!("not all delivered by the delivering target: {}", statuses(&outcomes)));
        }
        seen.push(size);
    }
    let (mut instance, (last, _)) = instance.run(bound, |i| i.process(&[], Duration::ZERO))?;
    match last {
        RResult::ROk(outcomes) if outcomes.is_empty() => {}
        RResult::ROk(outcomes) => {
            return Err(format!("{} outcomes from a collect with nothing pending", outcomes.len()));
        }
        RResult::RErr(e) => return Err(format!("collect with nothing pending failed: {}", describe(&e))),
    }
    let _ = instance.stop();
    Ok(Passed::Pass(format!("pending batches collected in order: {seen:?}, all delivered")))
}

/// `count` distinct messages.
fn messages(count: usize) -> Vec<TestMessage> {
    (0..count).map(|n| TestMessage::new(format!("conformance/{n}"), format!("{{\"n\":{n}}}"))).collect()
}

/// `[RETRY, REJECTED]`: outcome statuses by name.
fn statuses(outcomes: &[trib_plugin_api::abi::Outcome]) -> String {
    let names: Vec<String> = outcomes
        .iter()
        .map(|o| match o.status {
            outcome_status::DELIVERED => "DELIVERED".to_string(),
            outcome_status::RETRY => "RETRY".to_string(),
            outcome_status::REJECTED => "REJECTED".to_string(),
            outcome_status::TIMEOUT => "TIMEOUT".to_string(),
            other => format!("status {other}"),
        })
        .collect();
    format!("[{}]", names.join(", "))
}
