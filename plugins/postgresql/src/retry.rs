//! Classifies what went wrong with a statement into a [`Failure`], by SQLSTATE class first and
//! then by code, and turns a failure into the [`Outcome`] of the messages it hit.
//!
//! | SQLSTATE | failure | outcome |
//! |---|---|---|
//! | no code (I/O, closed connection), `08` connection, `25` transaction state (a read-only standby), `57P01`-`57P03` shutdown | Connection: the session is dropped and reopened | Retry |
//! | `40` serialization failure, deadlock; `53` insufficient resources; `55` lock not available; `58` system; `XX` internal; anything else | Transient | Retry |
//! | `57014` statement timeout (or the pack deadline on the client) | Timeout | Timeout |
//! | `42703` undefined column, `42P01` undefined table, `3F000` undefined schema, `42804` datatype mismatch, `42P10` no unique index for `ON CONFLICT` | Schema: the table is described again; rows are isolated when it still matches | Retry, or per row |
//! | `22` data exception, `23` constraint violation, `54` program limit (a row too big) | Refused: rows are isolated | Rejected for the rows the database refuses |
//!
//! A unique violation on the idempotency key cannot happen: `ON CONFLICT DO NOTHING` skips it.

use trib_plugin_api::driver::Outcome;

/// What went wrong, and so what to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The connection is gone or unusable: drop it, retry the messages.
    Connection(String),
    /// A condition that passes (a deadlock, a full disk, a lock): retry the messages.
    Transient(String),
    /// Time ran out (the statement timeout or the pack deadline): retry, counted as a timeout.
    Timeout(String),
    /// The table no longer matches the mapping: describe it again.
    Schema(String),
    /// The database refused the data: find the rows it refuses.
    Refused(String),
}

impl Failure {
    /// The reason text.
    pub fn reason(&self) -> &str {
        match self {
            Failure::Connection(r)
            | Failure::Transient(r)
            | Failure::Timeout(r)
            | Failure::Schema(r)
            | Failure::Refused(r) => r,
        }
    }

    /// The outcome of a message this failure hit, when it is final for the message: `Refused`
    /// means rejected, `Schema` means retry (the table must be fixed first).
    pub fn outcome(&self) -> Outcome {
        match self {
            Failure::Timeout(r) => Outcome::Timeout(r.clone()),
            Failure::Refused(r) => Outcome::Rejected(r.clone()),
            Failure::Connection(r) | Failure::Transient(r) | Failure::Schema(r) => Outcome::Retry(r.clone()),
        }
    }

    /// Whether the session must be dropped.
    pub fn breaks_session(&self) -> bool {
        matches!(self, Failure::Connection(_) | Failure::Timeout(_))
    }
}

/// Classifies a client library error.
pub fn classify(error: &tokio_postgres::Error) -> Failure {
    match error.as_db_error() {
        Some(db) => {
            let mut reason = format!("PostgreSQL error {}: {}", db.code().code(), db.message());
            if let Some(detail) = db.detail() {
                reason.push_str(&format!(" ({detail})"));
            }
            classify_code(db.code().code(), reason)
        }
        None if error.is_closed() => Failure::Connection("the connection to PostgreSQL is closed".to_string()),
        None => Failure::Connection(format!("PostgreSQL connection failed: {}", describe(error))),
    }
}

/// Classifies a SQLSTATE `code` with the reason text to carry.
pub fn classify_code(code: &str, reason: String) -> Failure {
    match code {
        "57014" => Failure::Timeout(reason),
        "57P01" | "57P02" | "57P03" => Failure::Connection(reason),
        "42703" | "42P01" | "3F000" | "42804" | "42P10" => Failure::Schema(reason),
        _ => match code.get(..2).unwrap_or_default() {
            "08" | "25" => Failure::Connection(reason),
            "22" | "23" | "54" => Failure::Refused(reason),
            _ => Failure::Transient(reason),
        },
    }
}

/// The error with its sources, on one line (the library's own text is often just "db error").
pub fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
