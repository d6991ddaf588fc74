//! # trib-template-driver: the `TEMPLATE` integration driver
//!
//! Appends every message of an integration of type `TEMPLATE` to a file, as one line of JSON
//! (TBMQ's message envelope), and reports it delivered once the line is written (and, with
//! `syncEveryBatch`, on disk). A connection check opens the file for appending.
//!
//! Layout, the same in every driver: [`config`] parses and checks `clientConfiguration`;
//! [`request`] turns a message into the line to write (pure); [`service`] owns the file (the
//! IO); [`retry`] classifies what went wrong into an outcome; [`error`] is the driver's error
//! type; [`driver`] ties them to the plugin API. The README lists the fields.

pub mod config;
pub mod driver;
pub mod error;
pub mod request;
pub mod retry;
pub mod service;

trib_plugin_api::export_driver!(driver::TemplateDriver);

#[cfg(test)]
mod tests;
