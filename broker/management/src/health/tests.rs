use std::time::Duration;

use serde_json::json;
use trib_queue::wire::{uuid_to_bits, IntegrationStatusProto, ServiceInfo};
use uuid::Uuid;

use super::{derive, Reason};
use crate::{
    executors::Executors,
    model::{Integration, IntegrationState},
};

fn integration(id: Uuid, enabled: bool, status: Option<serde_json::Value>) -> Integration {
    Integration {
        id,
        created_time: 1,
        disconnected_time: 0,
        name: "i".into(),
        integration_type: "HTTP".into(),
        enabled,
        configuration: json!({}),
        additional_info: None,
        status,
    }
}

fn running(id: Uuid, f: impl FnOnce(&mut IntegrationStatusProto)) -> IntegrationStatusProto {
    let (msb, lsb) = uuid_to_bits(id);
    let mut s = IntegrationStatusProto {
        integration_id_msb: msb,
        integration_id_lsb: lsb,
        started: true,
        ..Default::default()
    };
    f(&mut s);
    s
}

fn announce(executors: &Executors, service: &str, at: i64, integrations: Vec<IntegrationStatusProto>) {
    let info = ServiceInfo {
        service_id: service.into(),
        integration_types: vec!["HTTP@1.0.0".into()],
        timestamp: at,
        integrations,
        ..Default::default()
    };
    executors.announce(&info, at);
}

fn health_at(executors: &Executors, i: &Integration, now: i64) -> (IntegrationState, Option<Reason>, String) {
    let h = derive(i, executors.delivery(i.id, now), executors.serves(&i.integration_type, now), now);
    let text = h.reason.as_ref().map(|(_, t)| t.clone()).unwrap_or_default();
    (h.state, h.reason.map(|(r, _)| r), text)
}

#[test]
fn active_only_while_a_live_executor_runs_it_and_delivers() {
    let executors = Executors::new(Duration::from_secs(30));
    let id = Uuid::new_v4();
    let started = integration(id, true, Some(json!({"success": true})));

    // The lifecycle event says started, but no executor serves the type any more.
    assert_eq!(health_at(&executors, &started, 1_000).1, Some(Reason::NoExecutor));
    // Executors serve the type; none announced running it.
    announce(&executors, "ie-1", 1_000, vec![]);
    let (state, reason, _) = health_at(&executors, &started, 1_000);
    assert_eq!((state, reason), (IntegrationState::Pending, Some(Reason::WaitingForExecutor)));

    announce(&executors, "ie-1", 2_000, vec![running(id, |s| s.delivered_msgs = 10)]);
    assert_eq!(health_at(&executors, &started, 2_000), (IntegrationState::Active, None, String::new()));

    // Messages per second between two announcements.
    announce(&executors, "ie-1", 4_000, vec![running(id, |s| s.delivered_msgs = 110)]);
    let rate = executors.delivery(id, 4_000).and_then(|d| d.delivered_per_sec);
    assert_eq!(rate, Some(50.0));

    // The executor is SIGKILLed: no STOPPED event, no more announcements.
    let (state, reason, text) = health_at(&executors, &started, 40_000);
    assert_eq!((state, reason), (IntegrationState::Failed, Some(Reason::ExecutorLost)));
    assert!(text.contains("ie-1") && text.contains("36 s") && text.contains("no running executor"), "{text}");

    // Another executor of the type is running: it will take it over.
    announce(&executors, "ie-2", 40_000, vec![]);
    let (_, reason, text) = health_at(&executors, &started, 40_000);
    assert_eq!(reason, Some(Reason::ExecutorLost));
    assert!(text.contains("another executor of type HTTP should take it over"), "{text}");

    // It did.
    announce(&executors, "ie-2", 41_000, vec![running(id, |_| {})]);
    assert_eq!(health_at(&executors, &started, 41_000).0, IntegrationState::Active);
    assert_eq!(executors.delivery(id, 41_000).map(|d| d.service_id).as_deref(), Some("ie-2"));

    // Disabled wins over everything.
    let disabled = integration(id, false, Some(json!({"success": true})));
    assert_eq!(health_at(&executors, &disabled, 41_000).1, Some(Reason::Disabled));
}

#[test]
fn failing_deliveries_and_a_lost_target_say_why() {
    let executors = Executors::new(Duration::from_secs(30));
    let id = Uuid::new_v4();
    let i = integration(id, true, Some(json!({"success": true})));
    let failing_since = 1_764_774_245_123; // 2025-12-03T15:04:05.123Z
    announce(
        &executors,
        "ie-1",
        1_000,
        vec![running(id, |s| {
            s.consecutive_failures = 3;
            s.failing_since_ts = failing_since;
            s.last_error = Some("HTTP 503 Service Unavailable".into());
        })],
    );
    let (state, reason, text) = health_at(&executors, &i, 1_000);
    assert_eq!((state, reason), (IntegrationState::Failed, Some(Reason::Failing)));
    assert_eq!(
        text,
        "Failing since 2025-12-03T15:04:05.123Z (3 driver calls in a row delivered nothing): HTTP 503 Service Unavailable"
    );

    announce(
        &executors,
        "ie-1",
        2_000,
        vec![running(id, |s| {
            s.connected = Some(false);
            s.disconnect_reason = Some("connection refused".into());
        })],
    );
    let (state, reason, text) = health_at(&executors, &i, 2_000);
    assert_eq!((state, reason), (IntegrationState::Failed, Some(Reason::TargetUnreachable)));
    assert_eq!(text, "The target is unreachable: connection refused.");

    // A start failure: the error of the FAILED lifecycle event.
    let failed = integration(id, true, Some(json!({"success": false, "error": "bad URL"})));
    announce(&executors, "ie-1", 3_000, vec![running(id, |s| s.started = false)]);
    let (state, reason, text) = health_at(&executors, &failed, 3_000);
    assert_eq!(
        (state, reason, text.as_str()),
        (IntegrationState::Failed, Some(Reason::StartFailed), "The driver failed to start: bad URL")
    );

    // The executor no longer lists it (stopped there): waiting again.
    announce(&executors, "ie-1", 4_000, vec![]);
    assert_eq!(executors.delivery(id, 4_000), None);
    assert_eq!(health_at(&executors, &i, 4_000).1, Some(Reason::WaitingForExecutor));
}

#[test]
fn an_old_announcement_does_not_take_an_integration_back() {
    let executors = Executors::new(Duration::from_secs(30));
    let id = Uuid::new_v4();
    announce(&executors, "ie-1", 100_000, vec![running(id, |_| {})]);
    // A node reading the uplink topic from the beginning meets a long-gone executor's announcement.
    let stale = ServiceInfo {
        service_id: "ie-0".into(),
        integration_types: vec!["HTTP@1.0.0".into()],
        timestamp: 1_000,
        integrations: vec![running(id, |_| {})],
        ..Default::default()
    };
    executors.announce(&stale, 100_000);
    assert_eq!(executors.delivery(id, 100_000).map(|d| d.service_id).as_deref(), Some("ie-1"));
}

#[test]
fn history_gives_rates_between_announcements_and_forgets_after_fifteen_minutes() {
    let executors = Executors::new(Duration::from_secs(30));
    let id = Uuid::new_v4();
    announce(&executors, "ie-1", 10_000, vec![running(id, |s| s.delivered_msgs = 100)]);
    announce(
        &executors,
        "ie-1",
        20_000,
        vec![running(id, |s| {
            s.delivered_msgs = 600;
            s.failed_msgs = 10;
            s.retried_msgs = 20;
            s.backlog = Some(7);
        })],
    );
    // Another executor took over: its counts start again.
    announce(&executors, "ie-2", 25_000, vec![running(id, |s| s.delivered_msgs = 5)]);
    let points = super::rates(&executors.history(id, 25_000));
    let point = |time: i64, service: &str, rates: Option<(f64, f64, f64)>, backlog: Option<i64>| super::Point {
        time,
        service_id: service.into(),
        delivered_per_sec: rates.map(|r| r.0),
        failed_per_sec: rates.map(|r| r.1),
        retried_per_sec: rates.map(|r| r.2),
        backlog,
    };
    assert_eq!(
        points,
        [
            point(10_000, "ie-1", None, None),
            point(20_000, "ie-1", Some((50.0, 1.0, 2.0)), Some(7)),
            point(25_000, "ie-2", None, None),
        ]
    );
    // Fifteen minutes later only what came since is kept; an integration nobody announces goes.
    let later = 25_000 + 15 * 60 * 1000;
    assert_eq!(executors.history(id, later).len(), 1);
    let other = Uuid::new_v4();
    announce(&executors, "ie-3", later + 1, vec![running(other, |_| {})]);
    assert!(executors.history(id, later + 1).is_empty());
    assert_eq!(executors.history(other, later + 1).len(), 1);
}
