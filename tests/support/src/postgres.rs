//! A test's own session to a real PostgreSQL (feature `postgres`): the server named by
//! [`URL_VAR`], for the PostgreSQL driver's tests and the end-to-end test and benchmark.
//!
//! [`Postgres`] is a connected `tokio-postgres` client with the runtime it runs on, for
//! creating tables and reading rows back as text; [`connection_fields`] turns the same server
//! into the connection fields of the driver's configuration, so the code under test writes
//! where the test reads. Each caller decides what to do without a server (report a skip line).

use serde_json::{json, Value};
use tokio::runtime::Runtime;
use tokio_postgres::{
    config::{Host, SslMode},
    tls::MakeTlsConnect,
    Client, Config, NoTls, SimpleQueryMessage, Socket,
};

/// The variable naming the server, as a URL such as `postgres://postgres@127.0.0.1:5432/test`.
pub const URL_VAR: &str = "TRIB_TEST_POSTGRES_URL";

/// The URL in [`URL_VAR`], or `None` when it is unset or blank.
pub fn url() -> Option<String> {
    std::env::var(URL_VAR).ok().filter(|u| !u.trim().is_empty())
}

/// `url` as a client configuration; fails the test when it is not a PostgreSQL URL.
pub fn parse(url: &str) -> Config {
    url.parse().unwrap_or_else(|e| panic!("{url} is not a PostgreSQL URL: {e}"))
}

/// The connection fields of the driver's configuration for `server`: `host`, `port`,
/// `database`, `username`, `password` and `sslMode` (`disable` for a Unix socket, else the
/// URL's `sslmode`: `disable`, `require`, or `prefer` for anything else).
pub fn connection_fields(server: &Config) -> Value {
    let host = match server.get_hosts().first() {
        Some(Host::Tcp(host)) => host.clone(),
        Some(Host::Unix(path)) => path.display().to_string(),
        None => "127.0.0.1".to_string(),
    };
    let ssl_mode = match server.get_ssl_mode() {
        SslMode::Disable => "disable",
        SslMode::Require => "require",
        _ => "prefer",
    };
    json!({
        "host": host,
        "port": server.get_ports().first().copied().unwrap_or(5432),
        "database": server.get_dbname().unwrap_or("postgres"),
        "username": server.get_user().unwrap_or("postgres"),
        "password": server.get_password().map(|p| String::from_utf8_lossy(p).into_owned()).unwrap_or_default(),
        "sslMode": if host.starts_with('/') { "disable" } else { ssl_mode }
    })
}

/// A connected session: the client, the server's configuration and the runtime the connection
/// runs on (also free for the test's own async work). Every call blocks on that runtime.
pub struct Postgres {
    pub runtime: Runtime,
    pub client: Client,
    pub config: Config,
}

impl Postgres {
    /// Connects to `url` without TLS, on a current-thread runtime of its own.
    pub fn connect(url: &str) -> Postgres {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a test runtime");
        Postgres::connect_with(parse(url), runtime, NoTls)
    }

    /// Connects to `config` through `tls` (the driver's own connector, or [`NoTls`]), with the
    /// connection running on `runtime`; fails the test when the server cannot be reached.
    pub fn connect_with<T>(config: Config, runtime: Runtime, tls: T) -> Postgres
    where
        T: MakeTlsConnect<Socket>,
        T::Stream: Send + 'static,
    {
        let client = runtime.block_on(async {
            let (client, connection) = config.connect(tls).await.unwrap_or_else(|e| {
                let (hosts, ports, database) = (config.get_hosts(), config.get_ports(), config.get_dbname());
                panic!("cannot connect to PostgreSQL {hosts:?} port {ports:?} database {database:?}: {e}")
            });
            tokio::spawn(connection);
            client
        });
        Postgres { runtime, client, config }
    }

    /// Runs SQL (one or more statements); fails the test on an error.
    pub fn exec(&self, sql: &str) {
        self.runtime.block_on(self.client.batch_execute(sql)).unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    }

    /// The rows of a query, every value as text (`None` for NULL).
    pub fn rows(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        let messages = self.runtime.block_on(self.client.simple_query(sql)).unwrap_or_else(|e| panic!("{sql}: {e:?}"));
        messages
            .into_iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(row) => Some((0..row.len()).map(|i| row.get(i).map(str::to_string)).collect()),
                _ => None,
            })
            .collect()
    }

    /// The single value of a query (first column of the first row), as text; fails the test
    /// when there is none (no row, or NULL).
    pub fn value(&self, sql: &str) -> String {
        let rows = self.rows(sql);
        rows.first().and_then(|r| r.first().cloned().flatten()).unwrap_or_else(|| panic!("{sql}: no value in {rows:?}"))
    }

    /// [`connection_fields`] of this session's server.
    pub fn connection_fields(&self) -> Value {
        connection_fields(&self.config)
    }
}
