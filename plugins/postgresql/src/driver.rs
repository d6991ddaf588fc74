//! The [`Driver`] implementation: the order of the steps for a pack, and what the host hears
//! about it (logs and counters).
//!
//! A pack: open the session if needed; encode every message (a message that cannot be encoded
//! is rejected on the spot); write all rows in one transaction. When that fails:
//! * on `BEGIN` of a session that served packs before (it went stale while idle): reopen and
//!   write once more;
//! * because the database refused data: write the rows one by one, so that the good ones are
//!   delivered and only the refused ones rejected;
//! * because the table changed: describe it again, and write row by row if it still matches;
//! * otherwise: every row gets the failure's outcome (retry, or timeout).
//!
//! Host counters: `postgresql_rows_written_total`, `postgresql_rows_rejected_total`,
//! `postgresql_rows_not_written_total` (retry or timeout), `postgresql_packs_isolated_total`
//! (packs written row by row) and `postgresql_sessions_opened_total`.
//!
//! An idle integration holds no session: once the instance has written nothing for
//! [`IDLE_CLOSE`], the next connectivity question (the executor asks about once a second, also
//! while the integration is parked) closes its session, and the next pack opens one again. A
//! database serves a limited number of sessions (`max_connections`, 100 by default), each a
//! server process: 1,000 integrations that mostly wait must not hold 1,000 of them.

use std::{
    cell::RefCell,
    time::{Duration, Instant},
};

use trib_plugin_api::{
    abi::capabilities,
    driver::{
        config_errors_to_result, Connectivity, Driver, Error as DriverError, FieldError, Host, Message, Metadata,
        Outcome, StartConfig,
    },
};

use crate::{
    config::{self, PostgresqlConfig},
    error::Error,
    request::Rows,
    retry::Failure,
    schema,
    service::{OpenError, Service},
};

/// How long a session may go unused before it is closed.
pub const IDLE_CLOSE: Duration = Duration::from_secs(30);

#[cfg(test)]
thread_local! {
    /// [`IDLE_CLOSE`] for drivers created on this thread (tests).
    pub static IDLE_CLOSE_FOR_TESTS: std::cell::Cell<Option<Duration>> = const { std::cell::Cell::new(None) };
}

/// The PostgreSQL integration driver (type `POSTGRESQL`).
#[derive(Debug)]
pub struct PostgresqlDriver {
    host: Host,
    /// In a cell: [`Driver::connectivity`] (`&self`) closes an idle session.
    running: RefCell<Option<Running>>,
    /// How long a session may go unused before it is closed ([`IDLE_CLOSE`]).
    idle_close: Duration,
}

/// A started instance.
#[derive(Debug)]
struct Running {
    service: Service,
    /// The last reason a session could not be opened or broke, so that it is logged once, not
    /// per pack, and reported as the connectivity until a session opens again.
    open_problem: Option<String>,
    /// When the instance last started or processed a pack.
    last_used: Instant,
}

impl PostgresqlDriver {
    /// Whether the started instance holds a session to the server right now.
    pub fn has_session(&self) -> bool {
        self.running.borrow().as_ref().is_some_and(|r| r.service.is_open())
    }
}

impl Driver for PostgresqlDriver {
    fn metadata() -> Metadata {
        Metadata {
            name: "postgresql",
            integration_type: "POSTGRESQL",
            version: env!("CARGO_PKG_VERSION"),
            description: "Inserts each message as a row of a PostgreSQL or TimescaleDB table.",
            capabilities: capabilities::CHECK_CONNECTION | capabilities::TARGET_POLICY | capabilities::CONNECTIVITY,
        }
    }

    fn create(host: Host) -> Result<Self, DriverError> {
        #[cfg(test)]
        let idle_close = IDLE_CLOSE_FOR_TESTS.get().unwrap_or(IDLE_CLOSE);
        #[cfg(not(test))]
        let idle_close = IDLE_CLOSE;
        Ok(PostgresqlDriver { host, running: RefCell::new(None), idle_close })
    }

    fn validate(&self, client_configuration: &str) -> Vec<FieldError> {
        config::validate(client_configuration)
    }

    fn check_connection(&mut self, start: &StartConfig<'_>) -> Result<(), DriverError> {
        let config = parse(start)?;
        let target = config.target();
        let deadline = Instant::now() + config.connect_timeout;
        let mut service = Service::new(config, start.metadata.as_str(), start.integration_name.as_str())?;
        let opened = service.open(deadline).map(|_| ()).map_err(|e| e.into_error(&target).into());
        service.close();
        opened
    }

    fn start(&mut self, start: &StartConfig<'_>) -> Result<(), DriverError> {
        self.stop();
        let config = parse(start)?;
        let deadline = Instant::now() + config.connect_timeout;
        let mut service = Service::new(config, start.metadata.as_str(), start.integration_name.as_str())?;
        let summary = format!(
            "{} into {} ({} columns) at {}",
            service.config().write_mode.as_str(),
            service.config().table,
            service.config().columns.len(),
            service.config().target()
        );
        let mut open_problem = None;
        match service.open(deadline) {
            Ok(_) => self.host.count("postgresql_sessions_opened_total", 1),
            Err(OpenError::Connect(failure)) => {
                // Not fatal: the executor keeps the messages, and every pack tries again.
                self.host.warn(format!(
                    "PostgreSQL integration '{}': cannot connect yet, will retry with each pack: {}.",
                    start.integration_name.as_str(),
                    failure.reason()
                ));
                open_problem = Some(failure.reason().to_string());
            }
            Err(table_problem) => return Err(table_problem.into_error(&service.config().target()).into()),
        }
        self.host.info(format!("PostgreSQL integration '{}' started: {summary}.", start.integration_name.as_str()));
        *self.running.get_mut() = Some(Running { service, open_problem, last_used: Instant::now() });
        Ok(())
    }

    fn process(&mut self, batch: &[Message<'_>], deadline: Instant) -> Vec<Outcome> {
        let Some(running) = self.running.get_mut().as_mut() else {
            let reason = Error::State("PostgreSQL driver is not started").to_string();
            return batch.iter().map(|_| Outcome::Retry(reason.clone())).collect();
        };
        if batch.is_empty() {
            return Vec::new();
        }
        let outcomes = running.process(&self.host, batch, deadline);
        running.last_used = Instant::now();
        report(&self.host, &outcomes);
        outcomes
    }

    /// Disconnected while sessions cannot be opened (or the last one broke), with the reason;
    /// connected once one opened. A session closed for idleness leaves the last state as it
    /// was. Also closes a session unused for the idle period.
    fn connectivity(&self) -> Option<Connectivity> {
        let mut slot = self.running.try_borrow_mut().ok()?;
        let running = slot.as_mut()?;
        if running.service.is_open() && running.last_used.elapsed() >= self.idle_close {
            running.service.close();
            self.host.debug(format!(
                "PostgreSQL session to {} unused for {} s; closed it.",
                running.service.config().target(),
                self.idle_close.as_secs_f32()
            ));
        }
        Some(match &running.open_problem {
            Some(reason) => Connectivity::Disconnected(reason.clone()),
            None => Connectivity::Connected,
        })
    }

    fn stop(&mut self) {
        if let Some(mut running) = self.running.get_mut().take() {
            running.service.close();
            self.host.info(format!("PostgreSQL integration stopped: {}.", running.service.config().target()));
        }
    }

    fn config_schema() -> Option<&'static str> {
        Some(schema::SCHEMA)
    }
}

impl Running {
    fn process(&mut self, host: &Host, batch: &[Message<'_>], deadline: Instant) -> Vec<Outcome> {
        if Instant::now() >= deadline {
            // Keep the session: nothing was sent, so it is still good for the next pack.
            let reason = "the pack deadline passed before the pack was sent".to_string();
            return batch.iter().map(|_| Outcome::Timeout(reason.clone())).collect();
        }
        let mut outcomes: Vec<Option<Outcome>> = vec![None; batch.len()];
        let mut reopened = false;
        loop {
            let reused = self.service.is_open() && self.service.is_used();
            let (rows, slots) = match self.open_and_encode(host, batch, deadline, &mut outcomes) {
                Ok(encoded) => encoded,
                Err(failure) => {
                    let all: Vec<usize> = (0..batch.len()).filter(|i| outcomes[*i].is_none()).collect();
                    fill(&mut outcomes, &all, || failure.outcome());
                    return finish(outcomes);
                }
            };
            if rows.is_empty() {
                return finish(outcomes);
            }
            let failure = match self.service.write_pack(&rows, deadline) {
                Ok(()) => {
                    fill(&mut outcomes, &slots, || Outcome::Delivered);
                    return finish(outcomes);
                }
                Err(e) if e.before_rows && reused && !reopened && matches!(e.failure, Failure::Connection(_)) => {
                    host.info(format!("PostgreSQL session went stale ({}); reconnecting.", e.failure.reason()));
                    reopened = true;
                    continue;
                }
                Err(e) => e.failure,
            };
            match &failure {
                Failure::Refused(_) => self.isolate(host, &rows, &slots, deadline, &mut outcomes),
                Failure::Schema(reason) => {
                    host.warn(format!("PostgreSQL refused the pack ({reason}); describing the table again."));
                    let before = self.service.plan().cloned();
                    self.service.close();
                    let unchanged = self.service.open(deadline).map(|plan| Some(plan) == before.as_ref());
                    match unchanged {
                        Ok(true) => self.isolate(host, &rows, &slots, deadline, &mut outcomes),
                        Ok(false) => fill(&mut outcomes, &slots, || {
                            Outcome::Retry(format!("{reason}; the table changed, the pack will be written again"))
                        }),
                        Err(e) => fill(&mut outcomes, &slots, || e.failure().outcome()),
                    }
                }
                other => {
                    if let Failure::Connection(reason) = other {
                        // Reported as the connectivity until a session opens again.
                        self.open_problem = Some(reason.clone());
                    }
                    fill(&mut outcomes, &slots, || other.outcome())
                }
            }
            return finish(outcomes);
        }
    }

    /// Opens the session if needed and encodes every message; a message that cannot be encoded
    /// gets its `Rejected` outcome. Returns the rows and, for each row, its message's index.
    fn open_and_encode(
        &mut self,
        host: &Host,
        batch: &[Message<'_>],
        deadline: Instant,
        outcomes: &mut [Option<Outcome>],
    ) -> Result<(Rows, Vec<usize>), Failure> {
        let was_open = self.service.is_open();
        let plan = match self.service.open(deadline) {
            Ok(plan) => plan,
            Err(e) => {
                let reason = e.to_string();
                if self.open_problem.as_deref() != Some(reason.as_str()) {
                    host.warn(format!("PostgreSQL is not available: {reason}."));
                    self.open_problem = Some(reason);
                }
                return Err(e.failure());
            }
        };
        if !was_open {
            host.count("postgresql_sessions_opened_total", 1);
            if self.open_problem.take().is_some() {
                host.info("PostgreSQL is available again.");
            }
        }
        let mut rows = Rows::new(plan.columns.len());
        let mut slots = Vec::with_capacity(batch.len());
        for (i, msg) in batch.iter().enumerate() {
            match plan.encode(msg, &mut rows) {
                Ok(()) => {
                    slots.push(i);
                    outcomes[i] = None;
                }
                Err(reason) => {
                    host.debug(format!("PostgreSQL: message on topic {} rejected: {reason}.", msg.topic()));
                    outcomes[i] = Some(Outcome::Rejected(reason));
                }
            }
        }
        Ok((rows, slots))
    }

    /// Writes the rows one by one: the database's verdict per row.
    fn isolate(
        &mut self,
        host: &Host,
        rows: &Rows,
        slots: &[usize],
        deadline: Instant,
        outcomes: &mut [Option<Outcome>],
    ) {
        host.count("postgresql_packs_isolated_total", 1);
        let results = self.service.write_rows(rows, deadline);
        for (slot, result) in slots.iter().zip(results) {
            outcomes[*slot] = Some(match result {
                Ok(()) => Outcome::Delivered,
                // The table matched the mapping a moment ago: what still fails is about the row.
                Err(Failure::Schema(reason) | Failure::Refused(reason)) => Outcome::Rejected(reason),
                Err(other) => other.outcome(),
            });
        }
    }
}

/// Sets the outcome of every message in `slots`.
fn fill(outcomes: &mut [Option<Outcome>], slots: &[usize], outcome: impl Fn() -> Outcome) {
    for &slot in slots {
        outcomes[slot] = Some(outcome());
    }
}

/// One outcome per message. Every path above decides every message; the fallback only keeps
/// the promise of one outcome per message if one did not.
fn finish(outcomes: Vec<Option<Outcome>>) -> Vec<Outcome> {
    outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|| Outcome::Retry("internal error: no outcome".to_string())))
        .collect()
}

/// Counters, and one WARN line for a pack with messages not written.
fn report(host: &Host, outcomes: &[Outcome]) {
    let (mut written, mut rejected, mut not_written) = (0u64, 0u64, 0u64);
    let mut first = None;
    for outcome in outcomes {
        match outcome {
            Outcome::Delivered => written += 1,
            Outcome::Rejected(_) => rejected += 1,
            Outcome::Retry(_) | Outcome::Timeout(_) => not_written += 1,
        }
        if first.is_none() {
            first = outcome.reason();
        }
    }
    for (name, value) in [
        ("postgresql_rows_written_total", written),
        ("postgresql_rows_rejected_total", rejected),
        ("postgresql_rows_not_written_total", not_written),
    ] {
        if value > 0 {
            host.count(name, value);
        }
    }
    if let Some(first) = first {
        host.warn(format!(
            "PostgreSQL pack: {} of {} messages not written ({rejected} rejected); first: {first}.",
            rejected + not_written,
            outcomes.len()
        ));
    }
}

fn parse(start: &StartConfig<'_>) -> Result<PostgresqlConfig, DriverError> {
    PostgresqlConfig::parse(start.client_configuration.as_str()).map_err(|errors| {
        match config_errors_to_result(errors) {
            Err(e) => e,
            Ok(()) => Error::Config("invalid configuration".to_string()).into(),
        }
    })
}
