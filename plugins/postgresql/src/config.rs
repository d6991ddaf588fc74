//! The POSTGRESQL integration's `clientConfiguration`: field names, defaults and validation
//! messages, parsed into the checked [`PostgresqlConfig`] that the rest of the driver uses.
//!
//! Reading goes field by field ([`trib_plugin_api::support::fields`]) so that every problem is
//! reported with its JSON path, and all of them at once. Unknown top-level fields are ignored, as
//! TBMQ's UI sends extra ones. Table and column names are parsed in [`names`], the column mapping
//! in [`columns`], the CA certificate in [`tls`]. Whether the table really has the mapped
//! columns is a question for the database: [`crate::request::Plan`] answers it.

pub mod columns;
pub mod names;
pub mod tls;

use std::{fmt, time::Duration};

use trib_plugin_api::{
    driver::FieldError,
    support::fields::{self, Fields},
};

pub use self::{
    columns::{ColumnMapping, JsonPath, Source, Step},
    names::TableName,
    tls::CaCertificates,
};

/// Default of `port`.
pub fn default_port() -> u16 {
    5432
}
/// Default of `sslMode`: libpq's default.
pub fn default_ssl_mode() -> SslMode {
    SslMode::Prefer
}
/// Default of `connectTimeoutMs`.
pub fn default_connect_timeout_ms() -> u64 {
    10_000
}
/// The largest `connectTimeoutMs` and `statementTimeoutMs`: one hour.
pub const MAX_TIMEOUT_MS: i64 = 3_600_000;

/// `sslMode`: libpq's modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plain TCP only.
    Disable,
    /// TLS when the server offers it, else plain; the certificate is not verified.
    Prefer,
    /// TLS or nothing; the certificate is not verified (unless a CA is given: then as `VerifyCa`).
    Require,
    /// TLS, and the server's certificate chain must lead to a trusted CA.
    VerifyCa,
    /// As `VerifyCa`, and the certificate must name the host connected to.
    VerifyFull,
}

impl SslMode {
    /// The configuration's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    fn parse(text: &str) -> Option<SslMode> {
        [SslMode::Disable, SslMode::Prefer, SslMode::Require, SslMode::VerifyCa, SslMode::VerifyFull]
            .into_iter()
            .find(|m| m.as_str() == text)
    }
}

/// `writeMode`: which statement writes a pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// One `INSERT ... SELECT * FROM unnest($1, ..)` per pack, with `ON CONFLICT DO NOTHING`
    /// when an idempotency key is configured.
    Insert,
    /// One `COPY ... FROM STDIN (FORMAT binary)` per pack; no `ON CONFLICT` is possible.
    Copy,
}

impl WriteMode {
    /// The configuration's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            WriteMode::Insert => "insert",
            WriteMode::Copy => "copy",
        }
    }
}

/// A password that never shows up in `Debug` output or logs.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "\"***\"" })
    }
}

/// A checked `clientConfiguration`; only [`PostgresqlConfig::parse`] builds one.
#[derive(Debug, Clone)]
pub struct PostgresqlConfig {
    /// `host`: a host name, an IP address, or the directory of a Unix socket (starts with `/`).
    pub host: String,
    /// `port`.
    pub port: u16,
    /// `database`.
    pub database: String,
    /// `username`.
    pub username: String,
    /// `password`; may be empty (trust or peer authentication).
    pub password: Secret,
    /// `sslMode`.
    pub ssl_mode: SslMode,
    /// `caCertificate`, parsed; empty when not given.
    pub ca_certificate: CaCertificates,
    /// `table`.
    pub table: TableName,
    /// `columns`, in the order given; at least one.
    pub columns: Vec<ColumnMapping>,
    /// `writeMode`.
    pub write_mode: WriteMode,
    /// `idempotencyKeyColumn`: one of the mapped columns, only with [`WriteMode::Insert`].
    pub idempotency_key_column: Option<String>,
    /// `connectTimeoutMs`: TCP connect, TLS and login together.
    pub connect_timeout: Duration,
    /// `statementTimeoutMs`; `None` (0) = only the pack deadline limits a statement.
    pub statement_timeout: Option<Duration>,
}

impl PostgresqlConfig {
    /// Parses and checks a `clientConfiguration` JSON text.
    pub fn parse(json: &str) -> Result<PostgresqlConfig, Vec<FieldError>> {
        let root = fields::object(json)?;
        let mut f = Fields::new(&root);
        let host = required(&mut f, "host", "Host is required");
        if !host.trim().is_empty() && host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            f.error("host", "Host must not contain spaces or control characters");
        }
        let port = match f.integer_opt("port") {
            None => default_port(),
            Some(p) => u16::try_from(p).ok().filter(|p| *p > 0).unwrap_or_else(|| {
                f.error("port", "Port must be between 1 and 65535");
                default_port()
            }),
        };
        let database = required(&mut f, "database", "Database is required");
        let username = required(&mut f, "username", "Username is required");
        let password = Secret(f.string("password").unwrap_or_default());
        let ssl_mode = match f.string("sslMode").filter(|m| !m.is_empty()) {
            None => default_ssl_mode(),
            Some(text) => SslMode::parse(&text).unwrap_or_else(|| {
                f.error(
                    "sslMode",
                    "Invalid SSL mode. Allowed values: disable, prefer, require, verify-ca, verify-full",
                );
                default_ssl_mode()
            }),
        };
        if ssl_mode != SslMode::Disable && host.starts_with('/') {
            f.error("sslMode", "A Unix socket (host starting with /) needs sslMode disable");
        }
        let ca_text = f.string("caCertificate").unwrap_or_default();
        let ca_certificate = CaCertificates::parse(&ca_text).unwrap_or_else(|message| {
            f.error("caCertificate", message);
            CaCertificates::default()
        });
        let table_text = required(&mut f, "table", "Table is required");
        let table = match TableName::parse(&table_text) {
            _ if table_text.is_empty() => None,
            Ok(table) => Some(table),
            Err(message) => {
                f.error("table", format!("Table: {message}"));
                None
            }
        };
        let columns = columns::read(&mut f);
        let write_mode = match f.string("writeMode").filter(|m| !m.is_empty()).as_deref() {
            None | Some("insert") => WriteMode::Insert,
            Some("copy") => WriteMode::Copy,
            Some(_) => {
                f.error("writeMode", "Invalid write mode. Allowed values: insert, copy");
                WriteMode::Insert
            }
        };
        let idempotency_key_column = f.string("idempotencyKeyColumn").filter(|c| !c.is_empty());
        if let Some(key) = &idempotency_key_column {
            if write_mode == WriteMode::Copy {
                f.error(
                    "idempotencyKeyColumn",
                    "Cannot be used with writeMode copy: COPY has no ON CONFLICT; use writeMode insert",
                );
            } else if !f.failed("columns") && !columns.iter().any(|c| &c.column == key) {
                f.error(
                    "idempotencyKeyColumn",
                    format!("Must name one of the mapped columns; \"{key}\" is not mapped"),
                );
            }
        }
        let connect_timeout_ms =
            timeout(&mut f, "connectTimeoutMs", "Connect timeout", 1).unwrap_or(default_connect_timeout_ms() as i64);
        let statement_timeout_ms = timeout(&mut f, "statementTimeoutMs", "Statement timeout", 0).unwrap_or(0);
        f.finish(()).and_then(|()| {
            let table = table.ok_or_else(|| vec![FieldError::new("table", "Table is required")])?;
            Ok(PostgresqlConfig {
                host,
                port,
                database,
                username,
                password,
                ssl_mode,
                ca_certificate,
                table,
                columns,
                write_mode,
                idempotency_key_column,
                connect_timeout: Duration::from_millis(connect_timeout_ms.unsigned_abs()),
                statement_timeout: (statement_timeout_ms > 0)
                    .then(|| Duration::from_millis(statement_timeout_ms.unsigned_abs())),
            })
        })
    }

    /// `host:port/database`, for logs and messages (no user name, no password).
    pub fn target(&self) -> String {
        format!("{}:{}/{}", self.host, self.port, self.database)
    }
}

/// Field errors of a `clientConfiguration` JSON text (empty = valid).
pub fn validate(json: &str) -> Vec<FieldError> {
    PostgresqlConfig::parse(json).err().unwrap_or_default()
}

/// A string field that must be present and not blank; empty when missing (an error is recorded).
fn required(f: &mut Fields<'_>, field: &str, missing: &str) -> String {
    let value = f.string(field).unwrap_or_default();
    if value.trim().is_empty() && !f.failed(field) {
        f.error(field, missing);
    }
    value
}

/// A millisecond field between `min` and [`MAX_TIMEOUT_MS`]; `None` when absent or invalid.
fn timeout(f: &mut Fields<'_>, field: &str, label: &str, min: i64) -> Option<i64> {
    let value = f.integer_opt(field)?;
    if value < min {
        let bound = if min == 0 { "less than 0" } else { "less than 1" };
        f.error(field, format!("{label} (milliseconds) must not be {bound}"));
        return None;
    }
    if value > MAX_TIMEOUT_MS {
        f.error(field, format!("{label} (milliseconds) must not exceed {MAX_TIMEOUT_MS}"));
        return None;
    }
    Some(value)
}
