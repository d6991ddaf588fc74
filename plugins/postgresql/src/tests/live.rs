//! Tests against a real PostgreSQL: the server named by `TRIB_TEST_POSTGRES_URL` (for example
//! `postgres://postgres@127.0.0.1:5432/test`). Without it each test reports one line and
//! passes, so that plain `cargo test` passes on a bare machine. Every test creates its own
//! uniquely named table and drops it at the end, so tests run in parallel and leave nothing.
//!
//! [`Pg`] is the tests' own session (to create tables and read rows back, as text: a
//! `trib_test_support::postgres` session over the driver's TLS connector); the driver under test
//! gets a configuration pointing at the same server ([`Pg::config`]).

mod checks;
mod delivery;
mod failures;

use std::{
    cell::RefCell,
    ops::Deref,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use serde_json::{json, Value};
use trib_plugin_api::{
    abi_stable::std_types::RStr,
    driver::{Driver, Host, Outcome, StartConfig},
};
use trib_plugin_testkit::{Batch, TestMessage};
use trib_test_support::postgres::{self, Postgres, URL_VAR};

use super::{report, start_config};
use crate::{config::PostgresqlConfig, driver::PostgresqlDriver};

/// The deadline of packs expected to finish well before it.
const GENEROUS: Duration = Duration::from_secs(20);

/// The tests' own session to the server, and the tables to drop at the end.
struct Pg {
    db: Postgres,
    tables: RefCell<Vec<String>>,
}

/// `exec`, `rows` and `value` of the session.
impl Deref for Pg {
    type Target = Postgres;

    fn deref(&self) -> &Postgres {
        &self.db
    }
}

/// The server of `TRIB_TEST_POSTGRES_URL`, or `None` after reporting that `test` is skipped.
fn pg(test: &str) -> Option<Pg> {
    let Some(url) = postgres::url() else {
        report(&format!("{test}: skipped, {URL_VAR} is not set"));
        return None;
    };
    let server: tokio_postgres::Config =
        url.parse().unwrap_or_else(|e| panic!("{URL_VAR} is not a PostgreSQL URL: {e}"));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let tls = crate::service::tls::connector(&driver_config(&server, json!({}))).expect("tls");
    let pg = Pg { db: Postgres::connect_with(server, runtime, tls), tables: RefCell::new(Vec::new()) };
    pg.exec("SET TimeZone = 'UTC'");
    Some(pg)
}

/// A driver configuration for `server` with `extra` merged in.
fn driver_config(server: &tokio_postgres::Config, extra: Value) -> PostgresqlConfig {
    PostgresqlConfig::parse(&connection_fields(server, extra).to_string()).expect("valid configuration")
}

/// The connection fields of `server` (host, port, database, user, password, sslMode), a
/// placeholder table and columns (a valid configuration needs them), then `extra`.
fn connection_fields(server: &tokio_postgres::Config, extra: Value) -> Value {
    let mut config = postgres::connection_fields(server);
    let placeholders = json!({"table": "unset", "columns": {"unset": {"source": "topic"}}});
    for fields in [placeholders, extra] {
        if let (Some(target), Value::Object(fields)) = (config.as_object_mut(), fields) {
            target.extend(fields);
        }
    }
    config
}

impl Pg {
    /// Creates a table named after `test` with the column definitions `columns`; returns its
    /// name (plain lower case, so it needs no quoting). Dropped when `self` is.
    fn table(&self, test: &str, columns: &str) -> String {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let name = format!("trib_pg_{test}_{}_{nanos:x}", std::process::id());
        self.exec(&format!("CREATE TABLE {name} ({columns})"));
        self.tables.borrow_mut().push(name.clone());
        name
    }

    /// A driver configuration for `table` and the `columns` mapping, plus `extra`.
    fn config(&self, table: &str, columns: Value, extra: Value) -> Value {
        let mut config = connection_fields(&self.db.config, json!({"table": table, "columns": columns}));
        if let (Some(target), Value::Object(fields)) = (config.as_object_mut(), extra) {
            target.extend(fields);
        }
        config
    }

    /// Terminates the sessions of the driver started by [`started`] for `table`; returns how many.
    fn terminate_driver_sessions(&self, table: &str) -> String {
        self.value(&format!(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'tributary: {table}'"
        ))
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        for table in self.tables.borrow().iter() {
            let _ = self.runtime.block_on(self.client.batch_execute(&format!("DROP TABLE IF EXISTS {table}")));
        }
    }
}

/// A started driver for `config`, reporting to `host`; the integration is named after the
/// table, so that its sessions are `tributary: <table>` in `pg_stat_activity`.
fn started(config: &Value, host: Host) -> PostgresqlDriver {
    let mut driver = PostgresqlDriver::create(host).expect("create");
    let text = config.to_string();
    let name = config["table"].as_str().unwrap_or("unnamed");
    let start = StartConfig { integration_name: RStr::from_str(name), ..start_config(&text) };
    driver.start(&start).unwrap_or_else(|e| panic!("start: {e:?}"));
    driver
}

/// Processes `messages` with a deadline `budget` from now; the outcomes and the time taken.
fn process(driver: &mut PostgresqlDriver, messages: &[TestMessage], budget: Duration) -> (Vec<Outcome>, Duration) {
    let batch = Batch::new(messages);
    let started = Instant::now();
    let outcomes = driver.process(&batch.messages(), started + budget);
    (outcomes, started.elapsed())
}

/// `count` messages `{"seq": n, ...extra}` on `sensors/<n % 3>` from `device-1`, one ms apart.
fn numbered(range: std::ops::Range<i64>, extra: Value) -> Vec<TestMessage> {
    range
        .map(|n| {
            let mut payload = json!({"seq": n});
            if let (Some(target), Value::Object(fields)) = (payload.as_object_mut(), extra.clone()) {
                target.extend(fields);
            }
            TestMessage::json(format!("sensors/{}", n % 3), &payload)
                .client_id("device-1")
                .timestamp_ms(1_717_000_000_000 + n)
        })
        .collect()
}

/// Asserts that every outcome is `Delivered`.
fn all_delivered(outcomes: &[Outcome], count: usize) {
    assert_eq!(outcomes.len(), count);
    assert!(outcomes.iter().all(|o| *o == Outcome::Delivered), "{outcomes:?}");
}
