//! trib-queue: the contract between the broker and the integration executors.
//!
//! Everything both sides must agree on, and nothing else:
//!
//! * [`queue`]: the queue abstraction, with the in-process durable backend of the all-in-one
//!   mode ([`queue::embedded`]) and Kafka ([`queue::kafka`], the only place that imports rdkafka);
//!   [`open`] opens the one the settings name.
//! * [`wire`]: the protobuf messages on the queue topics (mirrors `proto/tributary.proto`).
//! * [`topics`]: topic names and properties (TBMQ's `tbmq.msg.ie.<id>`, `tbmq.ie.downlink.<type>`...).
//! * [`config`]: the settings values both sides read (the error type, parsing helpers and the
//!   service-id rule).
//! * [`now_ms`]: the clock stamped on messages and events.
//!
//! This crate never loads a driver and knows nothing of plugins: the broker depends on it and on
//! nothing of the executor, so "the broker never loads a driver" is a fact of the crate graph.

pub mod config;
pub mod open;
pub mod queue;
pub mod topics;
pub mod wire;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}
