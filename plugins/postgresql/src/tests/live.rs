//! Tests against a real PostgreSQL: the server named by `TRIB_TEST_POSTGRES_URL` (for example
//! `postgres://postgres@127.0.0.1:5432/test`). Without it each test reports one line and
//! passes, so that plain `cargo test` passes on a bare machine. Every test creates its own
//! uniquely named table and drops it at the end, so tests run in parallel and leave nothing.
//!
//! [`Pg`] is the tests' own session (to create tables and read rows back, as text); the driver
//! under test gets a configuration pointing at the same server ([`Pg::config`]).

mod checks;
mod delivery;
mod failures;

use std::{
    cell::RefCell,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use serde_json::{json, Value};
use tokio_postgres::{config::Host as PgHost, Client, SimpleQueryMessage};
use trib_plugin_api::{
    abi_stable::std_types::RStr,
    driver::{Driver, Host, Outcome, StartConfig},
};
use trib_plugin_testkit::{Batch, TestMessage};

use super::{report, start_config};
use crate::{config::PostgresqlConfig, driver::PostgresqlDriver};

/// The variable naming the server.
const URL_VAR: &str = "TRIB_TEST_POSTGRES_URL";

/// The deadline of packs expected to finish well before it.
const GENEROUS: Duration = Duration::from_secs(20);

/// The tests' own session to the server, and the tables to drop at the end.
struct Pg {
    runtime: tokio::runtime::Runtime,
    client: Client,
    server: tokio_postgres::Config,
    tables: RefCell<Vec<String>>,
}

/// The server of `TRIB_TEST_POSTGRES_URL`, or `None` after reporting that `test` is skipped.
fn pg(test: &str) -> Option<Pg> {
    let Some(url) = std::env::var(URL_VAR).ok().filter(|u| !u.trim().is_empty()) else {
        report(&format!("{test}: skipped, {URL_VAR} is not set"));
        return None;
    };
    let server: tokio_postgres::Config =
        url.parse().unwrap_or_else(|e| panic!("{URL_VAR} is not a PostgreSQL URL: {e}"));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let tls = crate::service::tls::connector(&driver_config(&server, json!({}))).expect("tls");
    let client = runtime.block_on(async {
        let (client, connection) = server.connect(tls).await.unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"));
        tokio::spawn(connection);
        client
    });
    let pg = Pg { runtime, client, server, tables: RefCell::new(Vec::new()) };
    pg.exec("SET TimeZone = 'UTC'");
    Some(pg)
}

/// A driver configuration for `server` with `extra` merged in.
fn driver_config(server: &tokio_postgres::Config, extra: Value) -> PostgresqlConfig {
    PostgresqlConfig::parse(&connection_fields(server, extra).to_string()).expect("valid configuration")
}

/// The connection fields of `server` (host, port, database, user, password, sslMode) plus `extra`.
fn connection_fields(server: &tokio_postgres::Config, extra: Value) -> Value {
    let host = match server.get_hosts().first() {
        Some(PgHost::Tcp(host)) => host.clone(),
        Some(PgHost::Unix(path)) => path.display().to_string(),
        None => "127.0.0.1".to_string(),
    };
    let ssl_mode = match server.get_ssl_mode() {
        tokio_postgres::config::SslMode::Disable => "disable",
        tokio_postgres::config::SslMode::Require => "require",
        _ => "prefer",
    };
    let mut config = json!({
        "host": host,
        "port": server.get_ports().first().copied().unwrap_or(5432),
        "database": server.get_dbname().unwrap_or("postgres"),
        "username": server.get_user().unwrap_or("postgres"),
        "password": server.get_password().map(|p| String::from_utf8_lossy(p).into_owned()).unwrap_or_default(),
        "sslMode": if host.starts_with('/') { "disable" } else { ssl_mode },
        "table": "unset",
        "columns": {"unset": {"source": "topic"}}
    });
    if let (Some(target), Value::Object(fields)) = (config.as_object_mut(), extra) {
        target.extend(fields);
    }
    config
}

impl Pg {
    /// Runs SQL (one or more statements); fails the test on an error.
    fn exec(&self, sql: &str) {
        self.runtime.block_on(self.client.batch_execute(sql)).unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    }

    /// The rows of a query, every value as text (`None` for NULL).
    fn rows(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        let messages = self.runtime.block_on(self.client.simple_query(sql)).unwrap_or_else(|e| panic!("{sql}: {e:?}"));
        messages
            .into_iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(row) => Some((0..row.len()).map(|i| row.get(i).map(str::to_string)).collect()),
                _ => None,
            })
            .collect()
    }

    /// The single value of a query, as text.
    fn value(&self, sql: &str) -> String {
        let rows = self.rows(sql);
        rows.first().and_then(|r| r.first().cloned().flatten()).unwrap_or_else(|| panic!("{sql}: no value in {rows:?}"))
    }

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
        let mut config = connection_fields(&self.server, json!({"table": table, "columns": columns}));
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
