//! # trib-driver-http: TBMQ's HTTP integration as a Tributary driver
//!
//! Delivers every message of a batch as one HTTP request (POST, PUT, GET or DELETE) to the
//! integration's `restEndpointUrl`, with the body TBMQ sends: the JSON envelope or the payload
//! alone, rendered as JSON, text or binary. Requests run over keep-alive connections on a fixed
//! pool of worker threads owned by the instance, so a batch is sent concurrently but never with
//! more than `maxParallelRequestsCount` requests in flight. HTTPS supports a private CA, client
//! certificates (mTLS) and, on request, no certificate verification at all.
//!
//! Layout: [`config`] parses and checks `clientConfiguration`; [`request`] turns a message into
//! the body and headers to send (pure); [`service`] owns the HTTP agent and sends one request;
//! [`pool`] runs requests on the worker threads under the batch deadline; [`retry`] classifies a
//! response or an error into an outcome; [`schema`] declares the configuration's JSON Schema;
//! [`driver`] ties them to the plugin API.
//! The user-facing documentation (fields, outcomes, differences from TBMQ) is the crate's README.

pub mod config;
pub mod driver;
pub mod error;
pub mod pool;
pub mod request;
pub mod retry;
pub mod schema;
pub mod service;

trib_plugin_api::export_driver!(driver::HttpDriver);

#[cfg(test)]
mod test_server;
#[cfg(test)]
mod tests;
