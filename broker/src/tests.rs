//! End-to-end tests: a real broker bound to 127.0.0.1:0, driven by real clients (rumqttc v4 and
//! v5, the Mosquitto command-line clients) and by raw bytes for malformed input.
//!
//! Waits use generous timeouts only to turn a hang into a failure; no test asserts a duration.
//! Where a test must show that something did not happen, it sends a later sentinel message and
//! checks that the sentinel arrives first.

mod acl;
#[cfg(feature = "service")]
mod cluster;
#[cfg(feature = "service")]
mod cluster_clients;
mod connect;
#[cfg(feature = "service")]
mod credentials;
#[cfg(feature = "service")]
mod forward;
mod integration;
mod logging;
mod malformed;
mod mosquitto;
mod persistent_sessions;
mod pubsub;
mod raw;
#[cfg(feature = "service")]
mod retained;
mod sessions;
mod support;
mod tls;
mod v5_features;
mod websocket;
mod x509;
