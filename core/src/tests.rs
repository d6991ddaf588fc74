//! Tests of the loader and registry against real plugin files.

mod executor;
mod faulty_driver;
mod hot_plug;
mod loader;
mod parking;
mod pipelined;
mod retry_policy;
mod support;
