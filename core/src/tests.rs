//! Tests of the loader and registry against real plugin files.

mod executor;
mod loader;
mod support;
