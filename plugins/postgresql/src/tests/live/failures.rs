//! What the server refuses or holds up: rows it refuses are rejected while the rest of the pack
//! is delivered, a locked table gives timeouts by the deadline, and a column dropped under the
//! driver gives retries until it is back.

use std::time::Duration;

use serde_json::json;
use trib_plugin_api::driver::{Host, Outcome};
use trib_plugin_testkit::{FakeHost, TestMessage};

use super::{all_delivered, numbered, pg, process, started, GENEROUS};

#[test]
fn refused_rows_are_rejected_and_the_rest_of_the_pack_delivered() {
    let Some(pg) = pg("refused_rows_are_rejected_and_the_rest_of_the_pack_delivered") else { return };
    let table = pg.table(
        "refused",
        "seq int PRIMARY KEY, temperature double precision NOT NULL CHECK (temperature < 100), label varchar(5)",
    );
    let columns = json!({
        "seq": {"source": "jsonPath", "path": "$.seq"},
        "temperature": {"source": "jsonPath", "path": "$.t"},
        "label": {"source": "jsonPath", "path": "$.label"}
    });
    let fake = FakeHost::new();
    let mut driver = started(&pg.config(&table, columns, json!({})), fake.host());
    let payloads = [
        json!({"seq": 0, "t": 20, "label": "ok"}),
        json!({"seq": 1, "t": 200}),
        json!({"seq": 2}),
        json!({"seq": 3, "t": 1, "label": "too long"}),
        json!({"seq": 4, "t": "warm"}),
        json!({"seq": 0, "t": 21}),
        json!({"seq": 6, "t": 22}),
    ];
    let messages: Vec<TestMessage> = payloads.iter().map(|p| TestMessage::json("plant/t", p)).collect();
    let (outcomes, _) = process(&mut driver, &messages, GENEROUS);
    let summary: Vec<String> = outcomes
        .iter()
        .map(|o| match o {
            Outcome::Delivered => "delivered".to_string(),
            Outcome::Rejected(r) => format!("rejected {}", r.split(':').next().unwrap_or_default()),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        summary,
        [
            "delivered",
            "rejected PostgreSQL error 23514",
            "rejected PostgreSQL error 23502",
            "rejected PostgreSQL error 22001",
            "rejected column \"temperature\" (double precision)",
            "rejected PostgreSQL error 23505",
            "delivered",
        ]
    );
    assert_eq!(pg.value(&format!("SELECT string_agg(seq::text, ',' ORDER BY seq) FROM {table}")), "0,6");
    assert_eq!(fake.counter("postgresql_packs_isolated_total"), 1);
    assert_eq!(fake.counter("postgresql_rows_rejected_total"), 5);
    // The session is still good for the next pack.
    all_delivered(&process(&mut driver, &numbered(10..12, json!({"t": 1})), GENEROUS).0, 2);
}

#[test]
fn a_locked_table_gives_timeouts_by_the_deadline_then_delivery() {
    let Some(pg) = pg("a_locked_table_gives_timeouts_by_the_deadline_then_delivery") else { return };
    let table = pg.table("locked", "seq int");
    let mut driver = started(
        &pg.config(&table, json!({"seq": {"source": "jsonPath", "path": "$.seq"}}), json!({})),
        Host::detached(),
    );
    all_delivered(&process(&mut driver, &numbered(0..2, json!({})), GENEROUS).0, 2);
    pg.exec(&format!("BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"));
    let budget = Duration::from_millis(600);
    let (outcomes, took) = process(&mut driver, &numbered(2..5, json!({})), budget);
    pg.exec("ROLLBACK");
    assert!(took < budget + Duration::from_millis(400), "took {took:?}");
    assert!(outcomes.iter().all(|o| matches!(o, Outcome::Timeout(_))), "{outcomes:?}");
    all_delivered(&process(&mut driver, &numbered(2..5, json!({})), GENEROUS).0, 3);
    assert_eq!(pg.value(&format!("SELECT count(*) FROM {table}")), "5", "nothing of the timed-out pack was kept");
}

#[test]
fn a_column_dropped_under_the_driver_gives_retries_until_it_is_back() {
    let Some(pg) = pg("a_column_dropped_under_the_driver_gives_retries_until_it_is_back") else { return };
    let table = pg.table("dropped", "seq int, v int");
    let columns = json!({"seq": {"source": "jsonPath", "path": "$.seq"}, "v": {"source": "jsonPath", "path": "$.seq"}});
    let mut driver = started(&pg.config(&table, columns, json!({})), Host::detached());
    all_delivered(&process(&mut driver, &numbered(0..2, json!({})), GENEROUS).0, 2);
    pg.exec(&format!("ALTER TABLE {table} DROP COLUMN v"));
    for _ in 0..2 {
        let (outcomes, _) = process(&mut driver, &numbered(2..4, json!({})), GENEROUS);
        assert!(
            outcomes.iter().all(|o| matches!(o, Outcome::Retry(r) if r.contains(&format!("column \"v\" does not exist in table \"{table}\"")))),
            "{outcomes:?}"
        );
    }
    pg.exec(&format!("ALTER TABLE {table} ADD COLUMN v int"));
    all_delivered(&process(&mut driver, &numbered(2..4, json!({})), GENEROUS).0, 2);
    assert_eq!(pg.value(&format!("SELECT count(*) || '/' || count(v) FROM {table}")), "4/2");
}
