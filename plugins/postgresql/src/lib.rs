//! # trib-driver-postgresql: PostgreSQL and TimescaleDB as integration targets
//!
//! Writes every message of a pack as one row of a table, in one transaction: one
//! `INSERT ... SELECT * FROM unnest($1, ..)` with an array parameter per column (optionally with
//! `ON CONFLICT DO NOTHING` on an idempotency key, which makes redelivery harmless), or one
//! binary `COPY`. A message is reported delivered only after `COMMIT` succeeded. Columns are
//! filled from the message (topic, client id, broker timestamp, QoS, the payload as JSON, text
//! or bytes, a JSON path into the payload, a user property, a deterministic message key), from
//! the integration's metadata or from constants. When the database refuses the pack because of
//! some rows, the rows are written one by one so that only the refused ones are rejected.
//!
//! Layout: [`config`] parses and checks `clientConfiguration`; [`request`] plans the statements
//! against the table's description and encodes messages as rows (pure); [`service`] owns the
//! connection (tokio-postgres on the instance's own current-thread runtime, TLS through rustls)
//! and writes packs; [`retry`] classifies database errors into outcomes; [`schema`] declares the
//! configuration's JSON Schema; [`driver`] ties them to the plugin API.
//! The user-facing documentation (fields, mapping, delivery guarantee) is the crate's README.

pub mod config;
pub mod driver;
pub mod error;
pub mod request;
pub mod retry;
pub mod schema;
pub mod service;

trib_plugin_api::export_driver!(driver::PostgresqlDriver);

#[cfg(test)]
mod tests;
