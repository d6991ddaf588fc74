//! SQLSTATE codes to failures, and failures to outcomes.

use trib_plugin_api::driver::Outcome;

use crate::retry::{classify_code, Failure};

#[test]
fn sqlstates_are_classified() {
    let r = String::new;
    for (code, expected) in [
        ("08006", Failure::Connection(r())),
        ("08001", Failure::Connection(r())),
        ("57P01", Failure::Connection(r())),
        ("57P03", Failure::Connection(r())),
        ("25006", Failure::Connection(r())),
        ("40001", Failure::Transient(r())),
        ("40P01", Failure::Transient(r())),
        ("53100", Failure::Transient(r())),
        ("55P03", Failure::Transient(r())),
        ("58030", Failure::Transient(r())),
        ("XX000", Failure::Transient(r())),
        ("42501", Failure::Transient(r())),
        ("57014", Failure::Timeout(r())),
        ("42703", Failure::Schema(r())),
        ("42P01", Failure::Schema(r())),
        ("3F000", Failure::Schema(r())),
        ("42804", Failure::Schema(r())),
        ("42P10", Failure::Schema(r())),
        ("22001", Failure::Refused(r())),
        ("22P02", Failure::Refused(r())),
        ("23502", Failure::Refused(r())),
        ("23505", Failure::Refused(r())),
        ("23514", Failure::Refused(r())),
        ("54000", Failure::Refused(r())),
        ("?", Failure::Transient(r())),
    ] {
        assert_eq!(classify_code(code, String::new()), expected, "{code}");
    }
}

#[test]
fn failures_become_outcomes() {
    let why = || "why".to_string();
    for (failure, outcome, breaks) in [
        (Failure::Connection(why()), Outcome::Retry(why()), true),
        (Failure::Transient(why()), Outcome::Retry(why()), false),
        (Failure::Timeout(why()), Outcome::Timeout(why()), true),
        (Failure::Schema(why()), Outcome::Retry(why()), false),
        (Failure::Refused(why()), Outcome::Rejected(why()), false),
    ] {
        assert_eq!((failure.outcome(), failure.breaks_session()), (outcome, breaks), "{failure:?}");
        assert_eq!(failure.reason(), "why");
    }
}
