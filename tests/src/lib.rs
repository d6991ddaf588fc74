//! End-to-end tests of Tributary: every test starts the real `tributary` binary as child
//! processes and talks to them over the network only (MQTT, the REST API, and the targets the
//! integrations deliver to). One module per scenario; the support modules own the processes
//! (`node`), the REST client (`rest`), the MQTT devices and subscribers (`devices`) and the
//! recording HTTP target (`http_target`).
//!
//! Nothing here links the project's crates: the binary is built with `cargo build -p trib-dist`
//! on first use (a dependency without a library target is ignored by Cargo, so it cannot be
//! built as a dependency of this crate).
//!
//! By default everything runs on the embedded backends (in-process queue, SQLite, in-test
//! MQTT broker (our own), HTTP server and rdkafka mock cluster). `TRIB_TEST_MQTT_BROKER`,
//! `TRIB_TEST_KAFKA_BOOTSTRAP` and `TRIB_TEST_POSTGRES_URL` add real services.

#[cfg(test)]
mod devices;
#[cfg(test)]
mod http_target;
#[cfg(test)]
mod node;
#[cfg(test)]
mod rest;

#[cfg(test)]
mod console;
#[cfg(test)]
mod distributed;
#[cfg(test)]
mod faults;
#[cfg(test)]
mod first_run;
#[cfg(test)]
mod mqtt_to_http;
#[cfg(test)]
mod mqtt_to_kafka;
#[cfg(test)]
mod mqtt_to_mqtt;
#[cfg(test)]
mod mqtt_to_postgresql;
#[cfg(test)]
mod walkthrough;

/// Prints a finding of a test (duplicates, skipped tiers); shown with `--nocapture`.
#[cfg(test)]
#[allow(clippy::print_stderr)]
fn report(text: &str) {
    eprintln!("[trib-tests] {text}");
}
