//! One test per class of bad plugin file, plus the happy path and type selection.

use std::path::Path;

use abi_stable::std_types::{RSlice, RStr};
use trib_plugin_api::{
    abi::{Message, StartConfig},
    driver::{ErrorKind, Outcome},
};

use super::support::{compile_c_library, install, plugin_file};
use crate::{
    loader::{load_dir, LoadError, LoadReport},
    registry::{Registry, TypeSelection},
};

fn scan(dir: &Path) -> LoadReport {
    load_dir(dir)
}

fn only_failure(report: &LoadReport) -> &LoadError {
    assert_eq!(report.failures.len(), 1, "failures: {:?}", report.failures);
    &report.failures[0].error
}

#[test]
fn loads_a_driver_and_reads_its_metadata() {
    let dir = tempfile::tempdir().unwrap();
    install(&plugin_file("trib_fixture_scripted"), dir.path(), "libscripted.so");
    let report = scan(dir.path());
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(report.drivers.len(), 1);
    let m = &report.drivers[0].metadata;
    assert_eq!(m.integration_type.as_str(), "SCRIPTED");
    assert_eq!(m.api_version.as_str(), "1.0.0");
}

#[test]
fn a_text_file_is_not_a_shared_library() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("libbogus.so"), "this is not ELF").unwrap();
    let report = scan(dir.path());
    assert!(
        matches!(only_failure(&report), LoadError::NotSharedLibrary(m) if m.contains("ELF") || m.contains("too short"))
    );
}

#[test]
fn a_shared_library_without_a_driver_module_is_not_a_driver() {
    let dir = tempfile::tempdir().unwrap();
    compile_c_library(dir.path(), "plain", "int plain(void) { return 42; }\n", &[]);
    let report = scan(dir.path());
    assert_eq!(only_failure(&report), &LoadError::NotADriver);
    assert!(report.failures[0]
        .to_string()
        .ends_with("a shared library, but not a Tributary driver (it exports no driver root module)"));
}

#[test]
fn a_library_with_another_module_layout_is_incompatible() {
    let dir = tempfile::tempdir().unwrap();
    install(&plugin_file("trib_fixture_old_layout"), dir.path(), "libold.so");
    let report = scan(dir.path());
    match only_failure(&report) {
        LoadError::IncompatibleApi(m) => assert!(m.contains("layout differs"), "{m}"),
        other => panic!("expected IncompatibleApi, got {other:?}"),
    }
    assert_eq!(report.failures[0].to_string().lines().count(), 1, "one line per refusal");
}

#[test]
fn a_missing_system_library_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let build = tempfile::tempdir().unwrap();
    compile_c_library(build.path(), "tribgone", "int gone(void) { return 1; }\n", &[]);
    let lib_dir = format!("-L{}", build.path().display());
    compile_c_library(
        dir.path(),
        "needsgone",
        "int gone(void);\nint f(void) { return gone(); }\n",
        &[&lib_dir, "-ltribgone"],
    );
    drop(build); // the dependency disappears, as an uninstalled system library would
    let report = scan(dir.path());
    match only_failure(&report) {
        LoadError::MissingSystemLibrary(m) => assert!(m.contains("libtribgone.so"), "{m}"),
        other => panic!("expected MissingSystemLibrary, got {other:?}"),
    }
}

#[test]
fn two_plugins_for_one_type_keep_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let src = plugin_file("trib_fixture_scripted");
    let first = install(&src, dir.path(), "liba.so");
    install(&src, dir.path(), "libb.so");
    let report = scan(dir.path());
    assert_eq!(report.drivers.len(), 1);
    assert_eq!(report.drivers[0].path, first);
    assert_eq!(
        only_failure(&report),
        &LoadError::DuplicateType { integration_type: "SCRIPTED".into(), first: first.clone() }
    );
}

#[test]
fn bad_files_do_not_stop_good_ones() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("liba_bogus.so"), "x").unwrap();
    install(&plugin_file("trib_fixture_old_layout"), dir.path(), "libb_old.so");
    install(&plugin_file("trib_fixture_scripted"), dir.path(), "libc_good.so");
    std::fs::write(dir.path().join("README.txt"), "ignored: not a library name").unwrap();
    let report = scan(dir.path());
    assert_eq!(report.drivers.len(), 1);
    assert_eq!(report.failures.len(), 2);
}

#[test]
fn a_missing_directory_is_reported() {
    let report = scan(Path::new("/nonexistent/trib-plugins"));
    assert!(report.drivers.is_empty());
    assert!(matches!(only_failure(&report), LoadError::Io(_)));
}

fn check_selection(supported: &str, excluded: &str, ty: &str, expected: bool) {
    let s = TypeSelection::parse(supported, excluded).unwrap();
    assert_eq!(s.selects(ty), expected, "supported={supported} excluded={excluded} type={ty}");
}

#[test]
fn selection_all() {
    check_selection("ALL", "NONE", "HTTP", true);
    check_selection("all", "", "KAFKA", true);
}

#[test]
fn selection_all_minus_excluded() {
    check_selection("ALL", "MQTT", "MQTT", false);
    check_selection("ALL", "MQTT", "HTTP", true);
}

#[test]
fn selection_list() {
    check_selection("HTTP,KAFKA", "NONE", "HTTP", true);
    check_selection(" HTTP , KAFKA ", "NONE", "kafka", true);
    check_selection("HTTP,KAFKA", "NONE", "MQTT", false);
}

#[test]
fn selection_none() {
    check_selection("NONE", "", "HTTP", false);
    check_selection("", "", "HTTP", false);
}

#[test]
fn selection_rejects_garbage() {
    assert!(TypeSelection::parse("HTTP,,KAFKA", "").is_err());
    assert!(TypeSelection::parse("ALL", "HT TP").is_err());
}

#[test]
fn registry_keeps_only_selected_types() {
    let dir = tempfile::tempdir().unwrap();
    install(&plugin_file("trib_fixture_scripted"), dir.path(), "libscripted.so");
    let report = scan(dir.path());
    let all = Registry::new(&report, &TypeSelection::all());
    assert_eq!(all.types().collect::<Vec<_>>(), vec!["SCRIPTED"]);
    let none = Registry::new(&report, &TypeSelection::parse("ALL", "SCRIPTED").unwrap());
    assert_eq!(none.types().count(), 0);
    assert_eq!(none.create("SCRIPTED", "id").unwrap_err().kind, ErrorKind::Unsupported);
}

fn msg(payload: &'static [u8]) -> Message<'static> {
    Message {
        topic: RStr::from_str("t"),
        payload: RSlice::from_slice(payload),
        qos: 1,
        retain: false,
        client_id: RStr::from_str("c"),
        broker_node: RStr::from_str("b"),
        timestamp_ms: 0,
        user_properties: RSlice::from_slice(&[]),
        content_type: abi_stable::std_types::ROption::RNone,
        correlation_data: abi_stable::std_types::ROption::RNone,
        response_topic: abi_stable::std_types::ROption::RNone,
        message_expiry_secs: abi_stable::std_types::ROption::RNone,
        payload_is_utf8: abi_stable::std_types::ROption::RNone,
        client_cert_cn: abi_stable::std_types::ROption::RNone,
    }
}

fn start_config(client_configuration: &str) -> StartConfig<'_> {
    StartConfig {
        integration_id: RStr::from_str("00000000-0000-0000-0000-000000000001"),
        integration_name: RStr::from_str("scripted"),
        service_id: RStr::from_str("ie-test"),
        client_configuration: RStr::from_str(client_configuration),
        metadata: RStr::from_str("{}"),
    }
}

#[test]
fn a_driver_panic_is_an_error_and_the_executor_keeps_going() {
    let dir = tempfile::tempdir().unwrap();
    install(&plugin_file("trib_fixture_scripted"), dir.path(), "libscripted.so");
    let registry = Registry::new(&scan(dir.path()), &TypeSelection::all());
    let mut handle = registry.create("SCRIPTED", "i1").unwrap();
    handle.start(&start_config("{}")).unwrap();
    let timeout = std::time::Duration::from_secs(5);
    let outcomes = handle.process(&[msg(b"a"), msg(b"retry"), msg(b"reject")], timeout).unwrap();
    assert_eq!(
        outcomes,
        vec![Outcome::Delivered, Outcome::Retry("scripted retry".into()), Outcome::Rejected("scripted reject".into())]
    );
    let err = handle.process(&[msg(b"b"), msg(b"panic")], timeout).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Panic);
    assert_eq!(err.message, "driver panicked: scripted panic");
    // The same process (this test) is alive, and a fresh instance works.
    drop(handle);
    let mut again = registry.create("SCRIPTED", "i1").unwrap();
    again.start(&start_config("{}")).unwrap();
    assert_eq!(again.process(&[msg(b"c")], timeout).unwrap(), vec![Outcome::Delivered]);
    assert_eq!(again.control("delivered", "").unwrap(), r#"["c"]"#);
}

#[test]
fn a_panic_during_start_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    install(&plugin_file("trib_fixture_scripted"), dir.path(), "libscripted.so");
    let registry = Registry::new(&scan(dir.path()), &TypeSelection::all());
    let mut handle = registry.create("SCRIPTED", "i2").unwrap();
    let err = handle.start(&start_config(r#"{"panicOnStart":true}"#)).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Panic);
    let mut handle = registry.create("SCRIPTED", "i3").unwrap();
    assert_eq!(handle.start(&start_config(r#"{"failStart":true}"#)).unwrap_err().kind, ErrorKind::Connection);
    let errors = handle.validate(r#"{"invalid":true}"#).unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].field.as_str(), "invalid");
}

#[test]
fn the_three_first_party_drivers_load_side_by_side() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["trib_driver_http", "trib_driver_mqtt", "trib_driver_kafka"] {
        install(&plugin_file(name), dir.path(), &format!("lib{name}.so"));
    }
    let report = scan(dir.path());
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    let types: Vec<&str> = report.drivers.iter().map(|d| d.integration_type()).collect();
    assert_eq!(types, vec!["HTTP", "KAFKA", "MQTT"]);
    let registry = Registry::new(&report, &TypeSelection::parse("ALL", "KAFKA").unwrap());
    assert_eq!(registry.types().collect::<Vec<_>>(), vec!["HTTP", "MQTT"]);
    // Each validates a configuration through its loaded library, with field-level errors.
    let mut http = registry.create("HTTP", "i-http").unwrap();
    let errors = http.validate(r#"{"requestMethod":"PATCH"}"#).unwrap();
    assert!(errors.iter().any(|e| e.field.as_str() == "restEndpointUrl"), "{errors:?}");
    assert!(errors.iter().any(|e| e.field.as_str() == "requestMethod"), "{errors:?}");
    let mut mqtt = registry.create("MQTT", "i-mqtt").unwrap();
    assert!(!mqtt.validate(r#"{"port":0}"#).unwrap().is_empty());
    assert!(mqtt.validate(r#"{"host":"localhost","port":1883,"clientId":"c","topicName":"t"}"#).unwrap().is_empty());
}
