//! MQTT -> PostgreSQL on the all-in-one process: a POSTGRESQL integration created over REST
//! writes every QoS 1 message a device publishes as one row of a table on the server named by
//! `TRIB_TEST_POSTGRES_URL` (skipped with a report line when it is not set). Reading the table
//! back shows every message once, with the columns the mapping fills from the topic, the client
//! id, the broker timestamp, the JSON payload, the integration's metadata and the message key.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;
use trib_test_support::postgres::{self, Postgres};

use crate::{
    devices::publish_all,
    node::{unique, wait_for, Mode, Node},
    rest::Rest,
};

const COUNT: usize = 40;

#[test]
fn every_message_becomes_one_row() {
    let Some(url) = postgres::url() else {
        crate::report("TRIB_TEST_POSTGRES_URL is not set: MQTT -> PostgreSQL skipped.");
        return;
    };
    let db = Postgres::connect(&url);
    let name = format!("e2e_readings_{}", unique("t").replace('-', "_"));
    let table = format!("public.{name}");
    db.exec(&format!(
        "CREATE TABLE {table} (time timestamptz NOT NULL, device text NOT NULL, topic text NOT NULL, \
         seq int, temperature double precision, data jsonb, site text, msg_key uuid NOT NULL, UNIQUE (msg_key, time))"
    ));
    let _drop = DropTable(&db, &table);

    let dir = tempfile::tempdir().expect("temp dir");
    let node = Node::start(Mode::AllInOne, dir.path(), &[]);
    let rest = Rest::login(&node.api());
    rest.wait_executors(&["POSTGRESQL"], 1);
    let root = unique("plant");
    let mut client_configuration = db.connection_fields();
    client_configuration["table"] = json!(table);
    client_configuration["columns"] = json!({
        "time": {"source": "ts"},
        "device": {"source": "clientId"},
        "topic": {"source": "topic"},
        "seq": {"source": "jsonPath", "path": "$.seq"},
        "temperature": {"source": "jsonPath", "path": "$.reading.t"},
        "data": {"source": "payloadJson"},
        "site": {"source": "metadata", "key": "site"},
        "msg_key": {"source": "messageKey"}
    });
    client_configuration["idempotencyKeyColumn"] = json!("msg_key");
    let id = rest.create_integration(&json!({
        "name": unique("to-postgresql"), "type": "POSTGRESQL", "enabled": true,
        "configuration": {
            "clientConfiguration": client_configuration,
            "topicFilters": [format!("{root}/+/temp")],
            "metadata": {"site": "north"}
        }
    }));
    rest.wait_state(&id, "Active");

    let device = unique("dev");
    let before = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_millis() as i64;
    let mut messages: Vec<(String, Vec<u8>)> = (0..COUNT)
        .map(|i| {
            let payload = json!({"seq": i, "reading": {"t": 20.0 + i as f64 / 4.0}});
            (format!("{root}/{}/temp", i % 4), payload.to_string().into_bytes())
        })
        .collect();
    // Not matching the filter: must never arrive.
    messages.insert(5, (format!("{root}/1/humidity"), br#"{"seq": 999}"#.to_vec()));
    publish_all(node.mqtt_port, &device, &messages);
    let count = |db: &Postgres| db.value(&format!("SELECT count(*) FROM {table}")).parse::<usize>().unwrap_or(0);
    wait_for(&format!("{COUNT} rows in {table}"), || (count(&db) >= COUNT).then_some(()));
    // A short look for rows that should not be there (a duplicate, the humidity reading).
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(count(&db), COUNT, "{}", node.log_tail());

    let rows = db.rows(&format!(
        "SELECT seq, device, topic, temperature, data->'reading'->>'t', site, \
                (extract(epoch FROM time) * 1000)::bigint, count(*) OVER (PARTITION BY msg_key) \
         FROM {table} ORDER BY seq"
    ));
    for (i, row) in rows.iter().enumerate() {
        let field = |n: usize| row[n].clone().unwrap_or_default();
        assert_eq!(field(0), i.to_string(), "one row per message: {rows:?}");
        assert_eq!(field(1), device);
        assert_eq!(field(2), format!("{root}/{}/temp", i % 4));
        assert_eq!(field(3).parse::<f64>().ok(), Some(20.0 + i as f64 / 4.0));
        assert_eq!(field(4).parse::<f64>().ok(), Some(20.0 + i as f64 / 4.0));
        assert_eq!(field(5), "north");
        let ts: i64 = field(6).parse().expect("epoch ms");
        assert!(ts >= before - 5_000 && ts <= before + 120_000, "broker time {ts}, published after {before}");
        assert_eq!(field(7), "1", "a distinct message key per message");
    }
}

/// Drops the test's table at the end, also when the test fails.
struct DropTable<'a>(&'a Postgres, &'a str);

impl Drop for DropTable<'_> {
    fn drop(&mut self) {
        let _ = self.0.runtime.block_on(self.0.client.batch_execute(&format!("DROP TABLE IF EXISTS {}", self.1)));
    }
}
