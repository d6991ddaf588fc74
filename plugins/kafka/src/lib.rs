//! # trib-driver-kafka: the KAFKA integration driver
//!
//! Delivers MQTT messages to one Kafka topic with a librdkafka producer (the `rdkafka` crate),
//! following TBMQ's Kafka integration: the same `clientConfiguration` fields, defaults and
//! validation messages, the same record value (JSON envelope or the payload alone), a static or
//! message-derived record key and static headers encoded in a configurable charset.
//! A message counts as delivered only when its delivery report says the broker acknowledged it
//! (per `acks`). See `README.md` next to `Cargo.toml` for the field table and the differences
//! from TBMQ.
//!
//! Module map: [`config`] parses and checks the configuration, [`properties`] turns it into
//! librdkafka properties, [`charset`] encodes header values, [`request`] builds the record of
//! one message, [`service`] owns the producer, [`retry`] sorts delivery results into outcomes,
//! [`schema`] declares the configuration's JSON Schema, [`driver`] implements the plugin
//! interface.

pub mod charset;
pub mod config;
pub mod driver;
pub mod error;
pub mod key;
pub mod properties;
pub mod request;
pub mod retry;
pub mod schema;
pub mod service;

trib_plugin_api::export_driver!(driver::KafkaDriver);

#[cfg(test)]
mod tests;
