//! The suite against [`Faulty`]: the conforming variant passes every check, and each fault fails
//! exactly the checks that should catch it, with a detail that says why.

use std::{net::TcpListener, time::Duration};

use trib_plugin_api::driver::Driver;

use super::faulty::*;
use crate::conformance::{assert_conforms, check_driver, Check, Report, Scenario, Verdict};

/// A loopback listener that answers every connection with one byte once it got the payload:
/// the delivering target of `Faulty`. Started once, for every test.
fn acknowledging_port() -> u16 {
    static PORT: std::sync::OnceLock<u16> = std::sync::OnceLock::new();
    *PORT.get_or_init(|| {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the acknowledging target");
        let port = listener.local_addr().expect("its address").port();
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                use std::io::{Read, Write};
                let _ = stream.read(&mut [0u8; 256]);
                let _ = stream.write_all(b"k");
            }
        });
        port
    })
}

/// The scenario for `Faulty`, with short limits so the tests stay quick.
fn scenario() -> Scenario {
    Scenario::new(r#"{"port": {{blackhole_port}}}"#)
        .unreachable(r#"{"port": {{closed_port}}}"#)
        .black_hole(r#"{"port": {{blackhole_port}}}"#)
        .delivering(format!(r#"{{"port": {}}}"#, acknowledging_port()))
        .invalid(r#"{"port": 0}"#)
        .process_timeout(Duration::from_millis(200))
        .grace(Duration::from_millis(300))
        .call_bound(Duration::from_secs(5))
        .random_inputs(60)
}

/// Runs the suite on `D` and asserts that exactly `failing` failed, each detail containing the
/// matching `needle`.
fn check<D: Driver>(scenario: &Scenario, failing: &[(Check, &str)]) -> Report {
    let report = check_driver::<D>(scenario);
    let expected: Vec<Check> = failing.iter().map(|(c, _)| *c).collect();
    assert_eq!(report.failed(), expected, "{report}");
    for (check, needle) in failing {
        let detail = &report.result(*check).expect("every check runs").detail;
        assert!(detail.contains(needle), "{check}: expected '{needle}' in '{detail}'\n{report}");
    }
    report
}

#[test]
fn a_conforming_driver_passes_every_check() {
    let report = check::<Faulty<NONE>>(&scenario(), &[]);
    assert!(report.results.iter().all(|r| r.verdict == Verdict::Pass), "{report}");
    assert_eq!(report.results.len(), Check::ALL.len());
    assert!(report.driver.starts_with("FAULTY_1 (faulty 0.0.1, plugin-api 1."), "{}", report.driver);
    assert_conforms::<Faulty<NONE>>(&scenario());
}

#[test]
fn batches_collected_out_of_order_fail_the_pipelining_check() {
    check::<Faulty<COLLECTS_NEWEST_FIRST>>(
        &scenario(),
        &[(Check::PipelinedBatchesInOrder, "returned 3 outcomes where the oldest pending batch has 1")],
    );
}

#[test]
fn missing_configurations_skip_their_checks_without_failing() {
    let scenario = Scenario::new(r#"{"port": 1}"#).random_inputs(10);
    let report = check::<Faulty<NONE>>(&scenario, &[]);
    assert_eq!(report.verdict(Check::CheckConnectionUnreachable), Verdict::Skip);
    assert_eq!(report.verdict(Check::ProcessAgainstBlackHole), Verdict::Skip);
    assert_eq!(report.verdict(Check::PipelinedBatchesInOrder), Verdict::Skip);
    assert_eq!(report.verdict(Check::StopIsIdempotent), Verdict::Pass);
}

#[test]
fn two_outcomes_per_message_fail_both_process_checks() {
    check::<Faulty<TWO_OUTCOMES>>(
        &scenario(),
        &[
            (Check::ProcessBeforeStart, "driver returned 4 outcomes for 2 messages"),
            (Check::ProcessAgainstBlackHole, "driver returned 6 outcomes for 3 messages"),
            (Check::PipelinedBatchesInOrder, "collect returned 2 outcomes where the oldest pending batch has 1"),
        ],
    );
}

#[test]
fn a_panic_in_validate_is_found_by_the_corpus() {
    check::<Faulty<PANIC_IN_VALIDATE>>(&scenario(), &[(Check::ValidateNeverPanics, ": port is a number")]);
}

#[test]
fn delivering_before_start_fails() {
    check::<Faulty<DELIVERS_BEFORE_START>>(
        &scenario(),
        &[(Check::ProcessBeforeStart, "delivered without being started")],
    );
}

#[test]
fn a_second_stop_that_panics_fails() {
    check::<Faulty<STOP_PANICS_TWICE>>(
        &scenario(),
        &[(Check::StopIsIdempotent, "second stop without start failed: PANIC")],
    );
}

#[test]
fn overrunning_the_deadline_fails_and_says_by_how_much() {
    let report = check::<Faulty<IGNORES_DEADLINE>>(
        &scenario(),
        &[
            (Check::ProcessAgainstBlackHole, "for a 200 ms timeout"),
            // Its submit sleeps past the batch's deadline too.
            (Check::PipelinedBatchesInOrder, "did not return within"),
        ],
    );
    let detail = &report.result(Check::ProcessAgainstBlackHole).expect("ran").detail;
    assert!(detail.starts_with("returned after ") && detail.ends_with("(grace 300 ms)"), "{detail}");
}

#[test]
fn a_connection_check_that_always_succeeds_fails() {
    check::<Faulty<CHECK_ALWAYS_OK>>(
        &scenario(),
        &[(Check::CheckConnectionUnreachable, "succeeded against an unreachable target")],
    );
}

#[test]
fn a_lower_case_type_fails_metadata() {
    check::<Faulty<LOWER_CASE_TYPE>>(&scenario(), &[(Check::Metadata, "integration type 'faulty' is not upper-case")]);
}

#[test]
fn accepting_any_configuration_at_start_fails() {
    check::<Faulty<START_ACCEPTS_ANYTHING>>(
        &scenario(),
        &[(Check::StartRejectsInvalidConfiguration, "start(`not json`) succeeded")],
    );
}

#[test]
fn a_hanging_call_fails_at_the_bound_instead_of_hanging_the_test() {
    let scenario = scenario().call_bound(HANG / 3);
    let started = std::time::Instant::now();
    check::<Faulty<HANGING_CHECK>>(&scenario, &[(Check::CheckConnectionUnreachable, "did not return within 500 ms")]);
    assert!(started.elapsed() < HANG * 4, "the suite waited for the hanging call");
}

#[test]
fn an_unreachable_target_that_answers_is_caught() {
    // A scenario mistake (the "unreachable" port is open) fails the check rather than passing it.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let scenario = scenario().unreachable(format!(r#"{{"port": {port}}}"#));
    check::<Faulty<NONE>>(&scenario, &[(Check::CheckConnectionUnreachable, "succeeded against an unreachable")]);
}
