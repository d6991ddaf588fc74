//! Tests of the loader and registry against real plugin files.

mod loader;
mod support;
