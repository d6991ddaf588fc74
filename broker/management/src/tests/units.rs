//! Small pure pieces, as data.

use std::time::Duration;

use trib_core::wire::ServiceInfo;

use crate::{api::error::iso8601, executors::Executors, service::validate_topic_filter, uplink::truncate_chars};

fn check_filter(filter: &str, ok: bool) {
    assert_eq!(validate_topic_filter(filter).is_ok(), ok, "{filter:?}");
}

#[test]
fn topic_filters() {
    for f in ["#", "+", "a/b", "a/+/c", "a/#", "+/+/#", "/", "$share/g/a/#", "a//b"] {
        check_filter(f, true);
    }
    for f in ["", "a/#/b", "a#", "a/b#", "a+/b", "a/+b", "a\0b", &"x".repeat(65_536)] {
        check_filter(f, false);
    }
}

#[test]
fn timestamps_are_iso8601() {
    assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(iso8601(951_782_400_123), "2000-02-29T00:00:00.123Z");
    assert_eq!(iso8601(1_764_126_000_000), "2025-11-26T03:00:00.000Z");
}

#[test]
fn truncation_counts_characters() {
    assert_eq!(truncate_chars("héllo".into(), 2), "hé");
    assert_eq!(truncate_chars("abc".into(), 3), "abc");
    assert_eq!(truncate_chars("abc".into(), 10), "abc");
}

#[test]
fn executors_expire_after_three_intervals() {
    let executors = Executors::new(Duration::from_secs(30));
    let info = ServiceInfo {
        service_id: "ie-1".into(),
        integration_types: vec!["HTTP@1.0.0".into(), "scripted@0.1".into()],
        plugin_errors: vec!["libbad.so: missing symbol".into()],
        ..Default::default()
    };
    executors.announce(&info, 1_000);
    assert!(executors.serves("http", 31_000));
    assert!(executors.serves("SCRIPTED", 31_000));
    assert!(!executors.serves("KAFKA", 31_000));
    assert!(!executors.serves("HTTP", 31_001));
    assert_eq!(executors.live_types(2_000), ["HTTP", "SCRIPTED"]);
    let all = executors.all(40_000);
    assert_eq!((all.len(), all[0].live, all[0].plugin_errors.len()), (1, false, 1));
}
