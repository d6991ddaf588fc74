//! The I/O: one PostgreSQL session per integration instance (tokio-postgres on a
//! current-thread runtime the instance owns), opened lazily and reopened after a failure.
//!
//! Opening a session connects (TLS per `sslMode`, [`tls`]), describes the table ([`catalog`]),
//! checks the mapping against it ([`Plan::new`]) and prepares the statements. A pack is written
//! in one transaction: `BEGIN; SET LOCAL statement_timeout`, one `INSERT ... unnest(..)` or one
//! binary `COPY`, `COMMIT`; rows can also be written one by one, pipelined, each in its own
//! transaction, to find the rows the database refuses. Every call is bounded by the pack
//! deadline on the client side as well: when it passes, the session is dropped, which also ends
//! the server's transaction. What a failure means for the messages is [`crate::retry`]'s
//! business, and the order of the steps [`crate::driver`]'s.

pub mod catalog;
pub mod tls;
mod write;

use std::{future::Future, time::Instant};

use serde_json::{Map, Value};
use tokio::{runtime::Runtime, task::JoinHandle};
use tokio_postgres::{types::Type, Client, Statement};
use tokio_postgres_rustls::MakeRustlsConnect;
use trib_plugin_api::support::target_policy;

use crate::{
    config::{PostgresqlConfig, SslMode, WriteMode},
    error::Error,
    request::{sql, Plan, Rows},
    retry::{self, Failure},
};

/// Why a session could not be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenError {
    /// Connecting or logging in failed (or took too long).
    Connect(Failure),
    /// The table does not exist (or the user cannot see it).
    NoTable(String),
    /// The table does not match the mapping: one line per problem.
    Mapping(Vec<String>),
}

impl OpenError {
    /// The failure the messages of a pack get while the session cannot be opened.
    pub fn failure(&self) -> Failure {
        match self {
            OpenError::Connect(failure) => failure.clone(),
            other => Failure::Schema(other.to_string()),
        }
    }

    /// The error a connection check or a start reports.
    pub fn into_error(self, target: &str) -> Error {
        match self {
            OpenError::Connect(failure) => Error::Connect(failure.reason().to_string()),
            other => Error::Table(format!("{other} (PostgreSQL at {target})")),
        }
    }
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Connect(failure) => f.write_str(failure.reason()),
            OpenError::NoTable(table) => write!(f, "table {table} does not exist or is not visible to the user"),
            OpenError::Mapping(problems) => f.write_str(&problems.join("; ")),
        }
    }
}

/// Where a pack write failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackFailure {
    /// What went wrong.
    pub failure: Failure,
    /// Whether it failed on `BEGIN`, before any row was sent (so sending again cannot duplicate).
    pub before_rows: bool,
}

/// The instance's runtime, TLS client and session.
pub struct Service {
    runtime: Runtime,
    config: PostgresqlConfig,
    tls: MakeRustlsConnect,
    metadata: Map<String, Value>,
    application_name: String,
    session: Option<Session>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service").field("target", &self.config.target()).field("open", &self.session.is_some()).finish()
    }
}

/// An open session with its plan and prepared statements.
struct Session {
    client: Client,
    connection: JoinHandle<()>,
    plan: Plan,
    pack: Statement,
    row: Statement,
    /// Whether a pack was written on this session (a failed `BEGIN` then means a stale session).
    used: bool,
}

impl Service {
    /// Builds the runtime and the TLS client; connects nothing yet. Sessions show up in
    /// `pg_stat_activity` as `tributary: <integration name>`.
    pub fn new(config: PostgresqlConfig, metadata_json: &str, integration_name: &str) -> Result<Service, Error> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Runtime(e.to_string()))?;
        let tls = tls::connector(&config)?;
        let metadata = serde_json::from_str::<Map<String, Value>>(metadata_json).unwrap_or_default();
        Ok(Service {
            runtime,
            config,
            tls,
            metadata,
            application_name: application_name(integration_name),
            session: None,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &PostgresqlConfig {
        &self.config
    }

    /// Whether a session is open.
    pub fn is_open(&self) -> bool {
        self.session.as_ref().is_some_and(|s| !s.client.is_closed())
    }

    /// Whether the open session has written a pack before.
    pub fn is_used(&self) -> bool {
        self.session.as_ref().is_some_and(|s| s.used)
    }

    /// The plan of the open session.
    pub fn plan(&self) -> Option<&Plan> {
        self.session.as_ref().map(|s| &s.plan)
    }

    /// Opens a session unless one is open, within `connectTimeoutMs` and `deadline`.
    pub fn open(&mut self, deadline: Instant) -> Result<&Plan, OpenError> {
        if !self.is_open() {
            self.close();
            let now = Instant::now();
            let budget = self.config.connect_timeout.min(deadline.saturating_duration_since(now));
            let (limit, budget_ms) = (now + budget, budget.as_micros().div_ceil(1000));
            let Service { runtime, config, tls, metadata, application_name, .. } = self;
            let session = run(runtime, limit, open(config, tls, metadata, application_name), || {
                OpenError::Connect(Failure::Timeout(format!(
                    "connecting to PostgreSQL at {} took longer than {budget_ms} ms",
                    config.target()
                )))
            })?;
            self.session = Some(session);
        }
        Ok(&self.session.as_ref().expect("a session was just opened or is open").plan)
    }

    /// Drops the session, if any: the connection is closed, which ends an open transaction.
    pub fn close(&mut self) {
        if let Some(session) = self.session.take() {
            session.connection.abort();
            let Session { client, connection, .. } = session;
            drop(client);
            // Drive the abort so that the socket is closed now, not at the next call.
            let _ = self.runtime.block_on(connection);
        }
    }

    /// Writes all `rows` in one transaction; `Ok` only after `COMMIT` succeeded.
    pub fn write_pack(&mut self, rows: &Rows, deadline: Instant) -> Result<(), PackFailure> {
        let statement_timeout = self.statement_timeout(deadline);
        let Some(session) = self.session.as_mut() else {
            let failure = Failure::Connection("no session to PostgreSQL".to_string());
            return Err(PackFailure { failure, before_rows: true });
        };
        let result = run(&self.runtime, deadline, write::pack(session, rows, statement_timeout), || {
            let failure = Failure::Timeout("no answer from PostgreSQL by the pack deadline".to_string());
            PackFailure { failure, before_rows: false }
        });
        session.used = true;
        if let Err(e) = &result {
            self.after_failure(&e.failure, deadline);
        }
        result
    }

    /// Writes each row in its own transaction, pipelined; one result per row, in order.
    pub fn write_rows(&mut self, rows: &Rows, deadline: Instant) -> Vec<Result<(), Failure>> {
        let Some(session) = self.session.as_ref() else {
            let failure = Failure::Connection("no session to PostgreSQL".to_string());
            return (0..rows.len()).map(|_| Err(failure.clone())).collect();
        };
        let results = self.runtime.block_on(Box::pin(write::each_row(session, rows, deadline)));
        if let Some(Err(failure)) = results.iter().find(|r| matches!(r, Err(f) if f.breaks_session())) {
            let failure = failure.clone();
            self.after_failure(&failure, deadline);
        }
        results
    }

    /// `statementTimeoutMs`, cut to what is left until `deadline`, in milliseconds.
    fn statement_timeout(&self, deadline: Instant) -> u64 {
        let left = deadline.saturating_duration_since(Instant::now());
        let limit = self.config.statement_timeout.map_or(left, |t| t.min(left));
        u64::try_from(limit.as_millis()).unwrap_or(u64::MAX).max(1)
    }

    /// After a failed write: close a broken session; roll back an aborted transaction.
    fn after_failure(&mut self, failure: &Failure, deadline: Instant) {
        if failure.breaks_session() {
            self.close();
            return;
        }
        // Within the deadline too; past it, closing the session rolls back just as well.
        let rolled_back = match &self.session {
            Some(session) => run(&self.runtime, deadline, write::rollback(session), || ()).is_ok(),
            None => true,
        };
        if !rolled_back {
            self.close();
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.close();
    }
}

/// `tributary: <name>`, cut to the 63 bytes the server keeps (it shows other than printable
/// ASCII as `?`).
fn application_name(integration_name: &str) -> String {
    let mut name = format!("tributary: {integration_name}");
    while name.len() > crate::config::names::MAX_IDENTIFIER_BYTES {
        name.pop();
    }
    name
}

/// Runs `future` on `runtime` until `deadline`; `timeout()` is the error when it passes. The
/// future is boxed: the executor's worker threads have small stacks.
fn run<T, E>(
    runtime: &Runtime,
    deadline: Instant,
    future: impl Future<Output = Result<T, E>>,
    timeout: impl FnOnce() -> E,
) -> Result<T, E> {
    // The timer must be created inside the runtime, hence the async block.
    let bounded = async move { tokio::time::timeout_at(tokio::time::Instant::from_std(deadline), future).await };
    match runtime.block_on(Box::pin(bounded)) {
        Ok(result) => result,
        Err(_elapsed) => Err(timeout()),
    }
}

async fn open(
    config: &PostgresqlConfig,
    tls: &MakeRustlsConnect,
    metadata: &Map<String, Value>,
    application_name: &str,
) -> Result<Session, OpenError> {
    let mut pg = tokio_postgres::Config::new();
    match allowed_addresses(config).await? {
        // The name stays the host (TLS verifies it); the connection goes to the checked address.
        Some(addrs) => addrs.iter().for_each(|addr| {
            pg.host(&config.host).hostaddr(addr.ip());
        }),
        None => {
            pg.host(&config.host);
        }
    }
    pg.port(config.port)
        .dbname(&config.database)
        .user(&config.username)
        .application_name(application_name)
        .connect_timeout(config.connect_timeout)
        .ssl_mode(match config.ssl_mode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => tokio_postgres::config::SslMode::Require,
        });
    if !config.password.0.is_empty() {
        pg.password(config.password.0.as_bytes());
    }
    let connect_error = |e: tokio_postgres::Error| {
        OpenError::Connect(Failure::Connection(format!(
            "cannot connect to PostgreSQL at {} as {}: {}",
            config.target(),
            config.username,
            retry::describe(&e)
        )))
    };
    let (client, connection) = pg.connect(tls.clone()).await.map_err(connect_error)?;
    let connection = tokio::spawn(async move {
        // The error, if any, reaches the client as a closed connection; it has nothing to add.
        let _ = connection.await;
    });
    let session = prepare(client, config, metadata).await;
    if session.is_err() {
        connection.abort();
    }
    let (client, plan, pack, row) = session?;
    Ok(Session { client, connection, plan, pack, row, used: false })
}

/// The addresses of the configured host that the host's target policy allows, looked up now;
/// the connection is pinned to them, so the policy applies to the address actually connected to
/// (DNS rebinding included). `None` leaves the lookup to tokio-postgres: a Unix socket directory
/// (no network address) or a name that does not resolve (tokio-postgres reports it as before).
async fn allowed_addresses(config: &PostgresqlConfig) -> Result<Option<Vec<std::net::SocketAddr>>, OpenError> {
    if config.host.starts_with('/') {
        return Ok(None);
    }
    let host = config.host.trim_start_matches('[').trim_end_matches(']');
    let Ok(addrs) = tokio::net::lookup_host((host, config.port)).await else {
        return Ok(None);
    };
    target_policy::allowed(addrs).map(Some).map_err(|refused| {
        OpenError::Connect(Failure::Connection(format!(
            "cannot connect to PostgreSQL at {}: {refused}",
            config.target()
        )))
    })
}

/// Describes the table, plans and prepares the statements on a new connection.
async fn prepare(
    client: Client,
    config: &PostgresqlConfig,
    metadata: &Map<String, Value>,
) -> Result<(Client, Plan, Statement, Statement), OpenError> {
    let failed = |e: tokio_postgres::Error| OpenError::Connect(retry::classify(&e));
    if let Some(timeout) = config.statement_timeout {
        let millis = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        client.batch_execute(&sql::set_statement_timeout(millis)).await.map_err(failed)?;
    }
    let table = catalog::describe(&client, &config.table)
        .await
        .map_err(failed)?
        .ok_or_else(|| OpenError::NoTable(config.table.to_string()))?;
    let plan = Plan::new(config, &table, metadata).map_err(OpenError::Mapping)?;
    let element_types: Vec<Type> = plan.columns.iter().map(|c| c.ty.postgres_type()).collect();
    let pack = match plan.write_mode {
        WriteMode::Insert => {
            let array_types: Vec<Type> = plan.columns.iter().map(|c| c.ty.array_type()).collect();
            client.prepare_typed(&plan.insert_pack_sql, &array_types).await
        }
        WriteMode::Copy => client.prepare(&plan.copy_sql).await,
    }
    .map_err(|e| OpenError::Mapping(vec![retry::classify(&e).reason().to_string()]))?;
    let row = client
        .prepare_typed(&plan.insert_row_sql, &element_types)
        .await
        .map_err(|e| OpenError::Mapping(vec![retry::classify(&e).reason().to_string()]))?;
    Ok((client, plan, pack, row))
}
