//! The names every stats enum sends to logs and Prometheus (TBMQ's spelling, pinned one value per
//! line), and the arithmetic of tallies and activity counters.

use uuid::Uuid;

use super::{Activity, ActivityState, Counter, ProcessorStats, State, Stats, Tally};
use crate::wire::ComponentLifecycleEvent as Lc;

fn check_counter(counter: Counter, name: &str) {
    assert_eq!(counter.name(), name, "{counter:?}");
}

#[test]
fn total_msgs() {
    check_counter(Counter::TotalMsgs, "totalMsgs");
}

#[test]
fn successful_msgs() {
    check_counter(Counter::SuccessfulMsgs, "successfulMsgs");
}

#[test]
fn tmp_timeout() {
    check_counter(Counter::TmpTimeout, "tmpTimeout");
}

#[test]
fn tmp_failed() {
    check_counter(Counter::TmpFailed, "tmpFailed");
}

#[test]
fn timeout_msgs() {
    check_counter(Counter::TimeoutMsgs, "timeoutMsgs");
}

#[test]
fn failed_msgs() {
    check_counter(Counter::FailedMsgs, "failedMsgs");
}

#[test]
fn successful_iterations() {
    check_counter(Counter::SuccessfulIterations, "successfulIterations");
}

#[test]
fn failed_iterations() {
    check_counter(Counter::FailedIterations, "failedIterations");
}

#[test]
fn counters_are_listed_in_tbmq_print_order_and_index_their_slot() {
    let names: Vec<&str> = Counter::ALL.iter().map(|c| c.name()).collect();
    let tbmq = [
        "totalMsgs",
        "successfulMsgs",
        "tmpTimeout",
        "tmpFailed",
        "timeoutMsgs",
        "failedMsgs",
        "successfulIterations",
        "failedIterations",
    ];
    assert_eq!(names, tbmq);
    for (i, c) in Counter::ALL.iter().enumerate() {
        assert_eq!(*c as usize, i, "{c:?}");
    }
}

#[test]
fn activity_names() {
    for (activity, name) in [(Activity::Start, "start"), (Activity::Stop, "stop"), (Activity::MsgUplink, "msgUplink")] {
        assert_eq!(activity.name(), name, "{activity:?}");
    }
}

#[test]
fn activity_state_names() {
    assert_eq!(ActivityState::Success.name(), "success");
    assert_eq!(ActivityState::Failed.name(), "failed");
}

#[test]
fn state_names_in_the_summary_and_the_gauge() {
    assert_eq!((State::Started.summary_name(), State::Started.gauge_state().name()), ("started", "success"));
    assert_eq!((State::Failed.summary_name(), State::Failed.gauge_state().name()), ("failed", "failed"));
}

fn check_lifecycle(event: Lc, expected: Option<(&str, &str)>) {
    let got = Activity::of_lifecycle(event).map(|(a, s)| (a.name(), s.name()));
    assert_eq!(got, expected, "{event:?}");
}

#[test]
fn started_counts_a_successful_start() {
    check_lifecycle(Lc::Started, Some(("start", "success")));
}

#[test]
fn failed_counts_a_failed_start() {
    check_lifecycle(Lc::Failed, Some(("start", "failed")));
}

#[test]
fn stopped_counts_a_stop() {
    check_lifecycle(Lc::Stopped, Some(("stop", "success")));
}

#[test]
fn other_lifecycle_events_count_nothing() {
    for event in [Lc::Created, Lc::Updated, Lc::Deleted, Lc::Reinit, Lc::Activated, Lc::Suspended, Lc::Deactivated] {
        check_lifecycle(event, None);
    }
}

#[test]
fn a_tally_is_recorded_in_one_step_and_taken_in_print_order() {
    let stats = ProcessorStats::default();
    let mut tally = Tally::default();
    tally.add(Counter::TotalMsgs, 3);
    tally.add(Counter::SuccessfulMsgs, 2);
    tally.add(Counter::FailedMsgs, 1);
    tally.add(Counter::FailedMsgs, 0);
    tally.add(Counter::FailedIterations, 1);
    stats.record(&tally);
    stats.record(&tally);
    let nonzero: Vec<(&str, u64)> = stats.snapshot().into_iter().filter(|(_, v)| *v > 0).collect();
    assert_eq!(nonzero, [("failedIterations", 2), ("failedMsgs", 2), ("successfulMsgs", 4), ("totalMsgs", 6)]);
    let taken = stats.take();
    assert_eq!(taken.iter().map(|(n, _)| *n).collect::<Vec<_>>(), Counter::ALL.map(Counter::name));
    assert_eq!(taken[0], ("totalMsgs", 6));
    assert!(stats.snapshot().values().all(|v| *v == 0), "take resets");
}

#[test]
fn activities_add_up_and_a_zero_count_leaves_no_entry() {
    let stats = Stats::default();
    stats.activity("HTTP", Activity::MsgUplink, ActivityState::Success, 3);
    stats.activity("HTTP", Activity::MsgUplink, ActivityState::Success, 2);
    stats.activity("HTTP", Activity::MsgUplink, ActivityState::Failed, 0);
    stats.activity("HTTP", Activity::Start, ActivityState::Failed, 1);
    let entries: Vec<_> = stats.activity.lock().clone().into_iter().collect();
    assert_eq!(
        entries,
        [(("HTTP".to_string(), "msgUplink", "success"), 5), (("HTTP".to_string(), "start", "failed"), 1)]
    );
}

#[test]
fn the_summary_counts_integrations_per_type_and_state() {
    let stats = Stats::default();
    let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    stats.set_state(a, "HTTP", Some(State::Started));
    stats.set_state(b, "HTTP", Some(State::Failed));
    stats.set_state(c, "HTTP", Some(State::Started));
    stats.set_state(c, "HTTP", None);
    let summary: Vec<_> = stats.state_summary().into_iter().collect();
    assert_eq!(summary, [(("HTTP".to_string(), "failed"), 1), (("HTTP".to_string(), "started"), 1)]);
}

#[test]
fn a_run_of_failures_starts_with_a_call_that_delivers_nothing_and_ends_with_a_delivery() {
    let stats = ProcessorStats::default();
    stats.observe_call(1_000, 3, Some("one rejected"));
    let h = stats.health();
    assert_eq!(
        (h.last_delivered_ms, h.last_error_ms, h.consecutive_failures, h.failing_since_ms),
        (1_000, 1_000, 0, 0)
    );
    stats.observe_call(2_000, 0, Some("down"));
    stats.observe_call(3_000, 0, Some("still down"));
    let h = stats.health();
    assert_eq!((h.consecutive_failures, h.failing_since_ms, h.last_error.as_deref()), (2, 2_000, Some("still down")));
    stats.observe_call(4_000, 1, None);
    let h = stats.health();
    assert_eq!(
        (h.last_delivered_ms, h.consecutive_failures, h.failing_since_ms, h.last_error_ms),
        (4_000, 0, 0, 3_000)
    );
    stats.set_connected(false, Some("refused"));
    assert_eq!((stats.health().connected, stats.health().disconnect_reason.as_deref()), (Some(false), Some("refused")));
    stats.clear_connected();
    assert_eq!(stats.health().connected, None);
}
