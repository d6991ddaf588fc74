//! The JSON Schema of the MQTT integration's `clientConfiguration`, declared to the executor
//! through `Driver::config_schema` (conventions: the "Configuration schema" section of
//! `trib_plugin_api::driver`). The schema itself lives in `schema.json` next to this file, so
//! that it reads as the document it is.
//!
//! It must list exactly the fields [`crate::config`] reads and the README's field table names,
//! with the defaults the reader applies: the tests in `schema/tests.rs` hold the three together.

/// The schema, as JSON text.
pub const SCHEMA: &str = include_str!("schema.json");

#[cfg(test)]
mod tests;
