//! Hot plugging: a driver library dropped into the plugins directory of a running executor is
//! served within a few scans and announced to brokers; a loaded library changed in place or
//! replaced, and a second library of a served type, are refused with one line each.

use std::{
    io::Write,
    time::{Duration, Instant},
};

use super::{
    executor::Harness,
    support::{install, plugin_file},
};
use crate::{config::AckStrategy, executor::Executor};

const WAIT: Duration = Duration::from_secs(20);

fn start(h: &Harness) -> Executor {
    let mut config = h.config("ie-hot", AckStrategy::SkipAll);
    config.plugins_dir = h.dir.path().join("plugins");
    config.plugins_scan_interval = Duration::from_millis(100);
    Executor::start(config, h.queue.clone(), &h.report).unwrap()
}

fn wait_status(executor: &Executor, what: &str, pred: impl Fn(&crate::executor::ExecutorStatus) -> bool) {
    let deadline = Instant::now() + WAIT;
    while !pred(&executor.status()) {
        assert!(Instant::now() < deadline, "{what}; status: {:?}", executor.status());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_driver_dropped_into_the_plugins_directory_is_served_and_announced() {
    let mut h = Harness::new();
    let executor = start(&h);
    assert_eq!(executor.status().integration_types.len(), 1, "{:?}", executor.status());
    let plugins = h.dir.path().join("plugins");
    // Written under a name the loader ignores, then renamed: what an operator should do.
    let staged = plugins.join("libtrib_driver_http.so.part");
    std::fs::copy(plugin_file("trib_driver_http"), &staged).unwrap();
    std::fs::rename(&staged, plugins.join("libtrib_driver_http.so")).unwrap();
    wait_status(&executor, "HTTP served", |s| s.integration_types.iter().any(|t| t.starts_with("HTTP@")));
    let status = executor.status();
    assert!(status.plugin_errors.is_empty(), "{:?}", status.plugin_errors);
    let http = status.drivers.iter().find(|d| d.integration_type == "HTTP").expect("HTTP driver described");
    assert!(http.config_schema.as_deref().is_some_and(|s| s.contains("restEndpointUrl")), "{http:?}");
    // Brokers hear of it with the next service info, schema included.
    h.wait_event("service info with HTTP", |m| {
        m.service_info_proto.as_ref().is_some_and(|i| {
            i.integration_types.iter().any(|t| t.starts_with("HTTP@"))
                && i.drivers.iter().any(|d| d.integration_type == "HTTP" && d.config_schema.is_some())
        })
    });
    executor.shutdown();
}

#[test]
fn changed_replaced_and_duplicate_libraries_are_refused_in_one_line() {
    let h = Harness::new();
    let executor = start(&h);
    let plugins = h.dir.path().join("plugins");
    let loaded = plugins.join("libscripted.so");

    // A second library of the served type.
    install(&plugin_file("trib_fixture_scripted"), &plugins, "libscripted_copy.so");
    wait_status(&executor, "duplicate refused", |s| s.plugin_errors.iter().any(|e| e.contains("libscripted_copy.so")));
    let line = executor.status().plugin_errors.join("\n");
    assert!(
        line.contains("integration type SCRIPTED is already provided by") && line.contains("libscripted.so"),
        "{line}"
    );

    // The loaded library changed in place (appending leaves the mapped pages alone).
    std::fs::OpenOptions::new().append(true).open(&loaded).unwrap().write_all(b"\0").unwrap();
    wait_status(&executor, "in-place change refused", |s| {
        s.plugin_errors.iter().any(|e| e.contains("changed in place"))
    });
    let line = executor.status().plugin_errors.iter().find(|e| e.contains("changed in place")).cloned().unwrap();
    assert!(line.contains("rename it over") && line.contains("restart the executor"), "{line}");
    assert_eq!(line.lines().count(), 1);

    // The loaded library renamed over: noted, used after a restart.
    let staged = plugins.join("libscripted.so.new");
    std::fs::copy(plugin_file("trib_fixture_scripted"), &staged).unwrap();
    std::fs::rename(&staged, &loaded).unwrap();
    wait_status(&executor, "replacement noted", |s| {
        s.plugin_errors.iter().any(|e| e.contains("replaced by a new file"))
    });
    // Nothing of this stopped the served type.
    assert_eq!(executor.status().integration_types.len(), 1);
    assert!(executor.status().integration_types[0].starts_with("SCRIPTED@"));
    executor.shutdown();
}

#[test]
fn a_scan_interval_of_zero_turns_hot_plugging_off() {
    let h = Harness::new();
    let mut config = h.config("ie-cold", AckStrategy::SkipAll);
    config.plugins_dir = h.dir.path().join("plugins");
    config.plugins_scan_interval = Duration::ZERO;
    let executor = Executor::start(config, h.queue.clone(), &h.report).unwrap();
    install(&plugin_file("trib_driver_http"), &h.dir.path().join("plugins"), "libtrib_driver_http.so");
    // Five times the interval the other tests use: a watch, had it run, would have loaded it.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(executor.status().integration_types.len(), 1, "{:?}", executor.status());
    executor.shutdown();
}
