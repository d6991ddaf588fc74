//! Unit tests of the Kafka driver, calling it through the [`Driver`](trib_plugin_api::driver::Driver)
//! trait. Delivery tests run against rdkafka's in-process mock cluster, and also against a real
//! broker when `TRIB_TEST_KAFKA_BOOTSTRAP=host:port` is set (Tansu in CI).

mod conformance;
mod delivery;
mod errors;
mod idle;
mod pure;
mod support;
mod target_policy;
mod validation;
