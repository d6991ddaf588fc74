//! Delivery against the server: one transaction per pack, order and one outcome per message,
//! redelivery under an idempotency key, `COPY`, every column type read back, a session that
//! went stale while idle, and one closed for idleness.

use std::time::{Duration, Instant};

use serde_json::json;
use trib_plugin_api::driver::{Connectivity, Driver, Host, Outcome};
use trib_plugin_testkit::{FakeHost, TestMessage};

use super::{all_delivered, numbered, pg, process, started, GENEROUS};

#[test]
fn a_pack_is_written_in_one_transaction_in_order() {
    let Some(pg) = pg("a_pack_is_written_in_one_transaction_in_order") else { return };
    let table = pg.table(
        "pack",
        "seq int, topic text, device text, time timestamptz, temperature double precision, doc jsonb, \
         created timestamptz DEFAULT now()",
    );
    let columns = json!({
        "seq": {"source": "jsonPath", "path": "$.seq"},
        "topic": {"source": "topic"},
        "device": {"source": "clientId"},
        "time": {"source": "ts"},
        "temperature": {"source": "jsonPath", "path": "payload.t"},
        "doc": {"source": "payloadJson"}
    });
    let fake = FakeHost::new();
    let mut driver = started(&pg.config(&table, columns, json!({})), fake.host());
    let messages = numbered(0..50, json!({"t": 20.5}));
    let (outcomes, _) = process(&mut driver, &messages, GENEROUS);
    all_delivered(&outcomes, 50);
    assert_eq!(
        pg.rows(&format!("SELECT count(*), count(DISTINCT xmin::text), min(seq), max(seq) FROM {table}")),
        [[Some("50".into()), Some("1".into()), Some("0".into()), Some("49".into())]],
        "50 rows, written by one transaction"
    );
    assert_eq!(
        pg.rows(&format!(
            "SELECT topic, device, to_char(time, 'YYYY-MM-DD\"T\"HH24:MI:SS.MS'), temperature, doc->>'seq' \
             FROM {table} WHERE seq = 7"
        )),
        [[
            Some("sensors/1".into()),
            Some("device-1".into()),
            Some("2024-05-29T16:26:40.007".into()),
            Some("20.5".into()),
            Some("7".into())
        ]]
    );
    assert_eq!(fake.counter("postgresql_rows_written_total"), 50);
    assert_eq!(driver.process(&[], std::time::Instant::now() + GENEROUS), Vec::new(), "an empty pack");
    driver.stop();
}

#[test]
fn redelivery_with_an_idempotency_key_stores_each_message_once() {
    let Some(pg) = pg("redelivery_with_an_idempotency_key_stores_each_message_once") else { return };
    // As on a TimescaleDB hypertable, whose unique indexes must include the time column.
    let table = pg.table("idem", "k uuid NOT NULL, time timestamptz NOT NULL, v int, UNIQUE (k, time)");
    let columns = json!({
        "k": {"source": "messageKey"},
        "time": {"source": "ts"},
        "v": {"source": "jsonPath", "path": "$.seq"}
    });
    let config = pg.config(&table, columns, json!({"idempotencyKeyColumn": "k"}));
    let mut driver = started(&config, Host::detached());
    let first = numbered(0..10, json!({}));
    all_delivered(&process(&mut driver, &first, GENEROUS).0, 10);
    // The executor delivers the same pack again (no commit reached it), then an overlapping one.
    all_delivered(&process(&mut driver, &first, GENEROUS).0, 10);
    let overlapping = numbered(5..15, json!({}));
    all_delivered(&process(&mut driver, &overlapping, GENEROUS).0, 10);
    assert_eq!(pg.value(&format!("SELECT count(*) || '/' || count(DISTINCT v) FROM {table}")), "15/15");
    // A second instance (a restarted executor) agrees on the keys.
    let mut other = started(&config, Host::detached());
    all_delivered(&process(&mut other, &first, GENEROUS).0, 10);
    assert_eq!(pg.value(&format!("SELECT count(*) FROM {table}")), "15");
}

#[test]
fn copy_mode_writes_a_pack_and_isolates_refused_rows() {
    let Some(pg) = pg("copy_mode_writes_a_pack_and_isolates_refused_rows") else { return };
    let table = pg.table("copy", "seq int CHECK (seq >= 0), raw bytea, topic varchar(20), at bigint");
    let columns = json!({
        "seq": {"source": "jsonPath", "path": "$.seq"},
        "raw": {"source": "payloadBytes"},
        "topic": {"source": "topic"},
        "at": {"source": "ts"}
    });
    let mut driver = started(&pg.config(&table, columns, json!({"writeMode": "copy"})), Host::detached());
    let messages = numbered(0..20, json!({}));
    all_delivered(&process(&mut driver, &messages, GENEROUS).0, 20);
    assert_eq!(
        pg.rows(&format!("SELECT count(*), count(DISTINCT xmin::text), sum(at - 1717000000000) FROM {table}")),
        [[Some("20".into()), Some("1".into()), Some("190".into())]]
    );
    assert_eq!(pg.value(&format!("SELECT convert_from(raw, 'UTF8') FROM {table} WHERE seq = 3")), r#"{"seq":3}"#);
    let mut mixed = numbered(20..23, json!({}));
    mixed.insert(1, TestMessage::json("sensors/x", &json!({"seq": -1})));
    let (outcomes, _) = process(&mut driver, &mixed, GENEROUS);
    assert_eq!(outcomes[0], Outcome::Delivered);
    assert!(matches!(&outcomes[1], Outcome::Rejected(r) if r.contains("23514")), "{outcomes:?}");
    assert_eq!(outcomes[2..], [Outcome::Delivered, Outcome::Delivered]);
    assert_eq!(pg.value(&format!("SELECT count(*) FROM {table}")), "23");
}

#[test]
fn every_column_type_reads_back_as_written() {
    let Some(pg) = pg("every_column_type_reads_back_as_written") else { return };
    let table = pg.table(
        "types",
        "n int, t text, vc varchar(12), ch char(3), nm name, js json, jb jsonb, by bytea, tz timestamptz, \
         tsp timestamp, i2 smallint, i4 integer, i8 bigint, f4 real, f8 double precision, nu numeric, \
         b boolean, u uuid, uk uuid, k text, site text",
    );
    let columns = json!({
        "n": {"source": "jsonPath", "path": "$.n"},
        "t": {"source": "topic"},
        "vc": {"source": "clientId"},
        "ch": {"source": "constant", "value": "ab"},
        "nm": {"source": "userProperty", "key": "unit"},
        "js": {"source": "jsonPath", "path": "$.obj"},
        "jb": {"source": "payloadJson"},
        "by": {"source": "payloadBytes"},
        "tz": {"source": "ts"},
        "tsp": {"source": "jsonPath", "path": "$.when"},
        "i2": {"source": "qos"},
        "i4": {"source": "jsonPath", "path": "$.i"},
        "i8": {"source": "ts"},
        "f4": {"source": "jsonPath", "path": "$.f"},
        "f8": {"source": "jsonPath", "path": "$.f"},
        "nu": {"source": "jsonPath", "path": "$.nu"},
        "b": {"source": "retain"},
        "u": {"source": "jsonPath", "path": "$.uuid"},
        "uk": {"source": "messageKey"},
        "k": {"source": "messageKey"},
        "site": {"source": "metadata", "key": "site"}
    });
    let mut driver = started(&pg.config(&table, columns, json!({})), Host::detached());
    let numerics =
        [json!("0"), json!("123.45"), json!("-0.001"), json!(1e5), json!("1.5E-3"), json!(12345678.9), json!("NaN")];
    let messages: Vec<TestMessage> = numerics
        .iter()
        .enumerate()
        .map(|(n, nu)| {
            let payload = json!({
                "n": n, "obj": {"a": [1, "x"]}, "when": "2024-05-01T12:00:00.5+02:00", "i": -7, "f": 0.25,
                "nu": nu, "uuid": "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11"
            });
            TestMessage::json("plant/line-1", &payload)
                .client_id("dev-ü")
                .user_property("unit", "°C")
                .qos(2)
                .retain(true)
                .timestamp_ms(1_717_000_000_123 + n as i64)
        })
        .collect();
    all_delivered(&process(&mut driver, &messages, GENEROUS).0, numerics.len());
    let row = &pg.rows(&format!(
        "SELECT t, vc, ch::text || octet_length(ch), nm, js::text, jb->'obj'->'a'->>1, \
                convert_from(by, 'UTF8')::jsonb->>'i', tz::text, tsp::text, i2, i4, i8, f4, f8, b, u, \
                replace(uk::text, '-', '') = k \
         FROM {table} WHERE n = 0"
    ))[0];
    let row: Vec<&str> = row.iter().map(|v| v.as_deref().unwrap_or("NULL")).collect();
    assert_eq!(
        row,
        [
            "plant/line-1",
            "dev-ü",
            "ab3",
            "°C",
            r#"{"a":[1,"x"]}"#,
            "x",
            "-7",
            "2024-05-29 16:26:40.123+00",
            "2024-05-01 10:00:00.5",
            "2",
            "-7",
            "1717000000123",
            "0.25",
            "0.25",
            "t",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "t"
        ]
    );
    let numerics_back: Vec<String> = pg
        .rows(&format!("SELECT nu::text FROM {table} ORDER BY n"))
        .into_iter()
        .map(|r| r[0].clone().unwrap_or_default())
        .collect();
    // numeric keeps the scale as written: the payload holds 1e5 as 100000.0 (serde_json's float).
    assert_eq!(numerics_back, ["0", "123.45", "-0.001", "100000.0", "0.0015", "12345678.9", "NaN"]);
    assert_eq!(pg.value(&format!("SELECT DISTINCT site FROM {table}")), "plant-7");
    assert_eq!(pg.value(&format!("SELECT length(k) FROM {table} WHERE n = 1")), "32");
}

#[test]
fn a_stale_session_is_reopened_without_losing_the_pack() {
    let Some(pg) = pg("a_stale_session_is_reopened_without_losing_the_pack") else { return };
    let table = pg.table("stale", "seq int");
    let fake = FakeHost::new();
    let config = pg.config(&table, json!({"seq": {"source": "jsonPath", "path": "$.seq"}}), json!({}));
    let mut driver = started(&config, fake.host());
    all_delivered(&process(&mut driver, &numbered(0..5, json!({})), GENEROUS).0, 5);
    assert_eq!(pg.terminate_driver_sessions(&table), "1", "the driver's session");
    all_delivered(&process(&mut driver, &numbered(5..10, json!({})), GENEROUS).0, 5);
    assert_eq!(pg.value(&format!("SELECT count(DISTINCT seq) FROM {table}")), "10");
    assert_eq!(fake.counter("postgresql_sessions_opened_total"), 2);
}

#[test]
fn an_unused_session_is_closed_and_the_next_pack_opens_one() {
    let Some(pg) = pg("an_unused_session_is_closed_and_the_next_pack_opens_one") else { return };
    let table = pg.table("idle", "seq int");
    crate::driver::IDLE_CLOSE_FOR_TESTS.set(Some(Duration::from_millis(300)));
    let fake = FakeHost::new();
    let config = pg.config(&table, json!({"seq": {"source": "jsonPath", "path": "$.seq"}}), json!({}));
    let mut driver = started(&config, fake.host());
    all_delivered(&process(&mut driver, &numbered(0..5, json!({})), GENEROUS).0, 5);
    assert_eq!(driver.connectivity(), Some(Connectivity::Connected));
    assert!(driver.has_session(), "used a moment ago");
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(driver.connectivity(), Some(Connectivity::Connected), "closing an unused session is no disconnection");
    assert!(!driver.has_session(), "unused for longer than the idle period");
    let sessions = format!("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'tributary: {table}'");
    let deadline = Instant::now() + GENEROUS;
    while pg.value(&sessions) != "0" {
        assert!(Instant::now() < deadline, "the server still lists the driver's session");
        std::thread::sleep(Duration::from_millis(50));
    }
    all_delivered(&process(&mut driver, &numbered(5..10, json!({})), GENEROUS).0, 5);
    assert!(driver.has_session());
    assert_eq!(pg.value(&format!("SELECT count(DISTINCT seq) FROM {table}")), "10");
    assert_eq!(fake.counter("postgresql_sessions_opened_total"), 2);
}
