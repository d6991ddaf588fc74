//! # trib-driver-mqtt: TBMQ's MQTT integration as a Tributary driver plugin
//!
//! Integration type `MQTT`, driver name `mqtt`. Every message that matched the integration's
//! topic filters is published to another MQTT broker (MQTT 3.1.1 or 5, plain TCP or TLS with an
//! optional client certificate), either as its raw payload or as TBMQ's JSON envelope.
//!
//! A message is `Delivered` only once the target broker acknowledged it (PUBACK for QoS 1,
//! PUBCOMP for QoS 2; written to the socket for QoS 0). See `README.md` for the configuration,
//! the outcome classification and the differences from TBMQ.
//!
//! Layout: `config` (fields, defaults, validation), `request` (message to PUBLISH, pure),
//! `service` (the connection thread), `link` (rumqttc's v4 and v5 clients behind one face),
//! `tracker` (which acknowledgement belongs to which message), `topic` (topic templates), `tls`,
//! `retry` (outcomes), `schema` (the configuration's JSON Schema), `error`, `driver` (the
//! `Driver` implementation).

trib_plugin_api::export_driver!(driver::MqttDriver);

pub mod config;
pub mod driver;
pub mod error;
mod link;
pub mod request;
pub mod retry;
pub mod schema;
mod service;
mod tls;
pub mod topic;
mod tracker;

#[cfg(test)]
mod tests;
