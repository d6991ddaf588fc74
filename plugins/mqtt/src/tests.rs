//! Unit tests of the MQTT driver, called through the `Driver` trait against real brokers: the
//! embedded one (our own `trib-broker`, see `support::embedded`) always, and the broker named by
//! `TRIB_TEST_MQTT_BROKER` as well when set.

mod config_cases;
mod conformance;
mod delivery;
mod failures;
mod fake_broker;
mod proxy;
mod recorder;
mod request_cases;
mod shared_runtime;
mod support;
mod target_policy;
mod tls_cases;
