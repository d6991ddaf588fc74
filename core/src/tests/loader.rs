//! One test per class of bad plugin file, plus the happy path and type selection.

use std::path::Path;

use abi_stable::std_types::RStr;
use trib_plugin_api::{
    abi::{Message, StartConfig},
    driver::{ErrorKind, Outcome},
};

use super::support::{compile_c_library, install, plugin_file};
use crate::{
    loader::{bundled_driver_files, load_bundled_and_dir, load_dir, LoadError, LoadReport},
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
    assert_eq!(all.types(), vec!["SCRIPTED"]);
    let none = Registry::new(&report, &TypeSelection::parse("ALL", "SCRIPTED").unwrap());
    assert!(none.types().is_empty());
    assert_eq!(none.create("SCRIPTED", "id").unwrap_err().kind, ErrorKind::Unsupported);
}

fn msg(payload: &'static [u8]) -> Message<'static> {
    Message { qos: 1, client_id: RStr::from_str("c"), broker_node: RStr::from_str("b"), ..Message::new("t", payload) }
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
    assert!(err.message.starts_with("driver panicked at plugins/fixtures/scripted/src/lib.rs:"), "{}", err.message);
    assert!(err.message.ends_with(": scripted panic"), "{}", err.message);
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
    assert_eq!(registry.types(), vec!["HTTP", "MQTT"]);
    // Each validates a configuration through its loaded library, with field-level errors.
    let mut http = registry.create("HTTP", "i-http").unwrap();
    let errors = http.validate(r#"{"requestMethod":"PATCH"}"#).unwrap();
    assert!(errors.iter().any(|e| e.field.as_str() == "restEndpointUrl"), "{errors:?}");
    assert!(errors.iter().any(|e| e.field.as_str() == "requestMethod"), "{errors:?}");
    let mut mqtt = registry.create("MQTT", "i-mqtt").unwrap();
    assert!(!mqtt.validate(r#"{"port":0}"#).unwrap().is_empty());
    assert!(mqtt.validate(r#"{"host":"localhost","port":1883,"clientId":"c","topicName":"t"}"#).unwrap().is_empty());
}

/// A binary's directory laid out as cargo builds it: `deps/libtrib_driver_<name>.so` for each
/// given name, a copy of the scripted fixture (the names differ, the type does not).
fn cargo_layout(names: &[&str]) -> tempfile::TempDir {
    let exe_dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(exe_dir.path().join("deps")).unwrap();
    for name in names {
        install(
            &plugin_file("trib_fixture_scripted"),
            &exe_dir.path().join("deps"),
            &format!("libtrib_driver_{name}.so"),
        );
    }
    // Other libraries cargo leaves in deps/ are not drivers shipped with the binary.
    install(&plugin_file("trib_fixture_old_layout"), &exe_dir.path().join("deps"), "libtrib_fixture_old_layout.so");
    exe_dir
}

#[test]
fn a_plugins_directory_adds_to_the_bundled_drivers() {
    let exe_dir = cargo_layout(&[]);
    install(&plugin_file("trib_driver_http"), &exe_dir.path().join("deps"), "libtrib_driver_http.so");
    let bundled = bundled_driver_files(exe_dir.path());
    assert_eq!(bundled, vec![exe_dir.path().join("deps/libtrib_driver_http.so")]);
    let plugins = tempfile::tempdir().unwrap();
    install(&plugin_file("trib_fixture_scripted"), plugins.path(), "libthird_party.so");
    let report = load_bundled_and_dir(&bundled, plugins.path());
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    let types: Vec<&str> = report.drivers.iter().map(|d| d.integration_type()).collect();
    assert_eq!(types, vec!["HTTP", "SCRIPTED"]);
}

#[test]
fn a_type_provided_twice_is_refused_in_one_line_naming_both_files() {
    let exe_dir = cargo_layout(&["scripted"]);
    let bundled = bundled_driver_files(exe_dir.path());
    let plugins = tempfile::tempdir().unwrap();
    let second = install(&plugin_file("trib_fixture_scripted"), plugins.path(), "libscripted_again.so");
    let report = load_bundled_and_dir(&bundled, plugins.path());
    assert_eq!(report.drivers.len(), 1);
    assert_eq!(report.drivers[0].path, bundled[0], "the bundled driver wins");
    let line = report.failures.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n");
    assert_eq!(report.failures.len(), 1, "{line}");
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(line.starts_with(&second.display().to_string()), "{line}");
    assert!(line.contains(&bundled[0].display().to_string()), "{line}");
    assert!(line.contains("integration type SCRIPTED is already provided by"), "{line}");
}

#[test]
fn the_installed_plugins_folder_is_bundled_and_loaded_once_when_also_configured() {
    let exe_dir = cargo_layout(&["ignored_when_installed"]);
    let installed = exe_dir.path().join("plugins");
    std::fs::create_dir(&installed).unwrap();
    install(&plugin_file("trib_fixture_scripted"), &installed, "libscripted.so");
    let bundled = bundled_driver_files(exe_dir.path());
    assert_eq!(bundled, vec![installed.join("libscripted.so")], "plugins/ beside the binary wins over deps/");
    // TB_PLUGINS_DIR naming the same folder (the compose file does) loads nothing twice.
    let report = load_bundled_and_dir(&bundled, &installed);
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(report.drivers.len(), 1);
}

#[test]
fn a_plugins_directory_without_libraries_or_missing_adds_nothing() {
    let exe_dir = cargo_layout(&["scripted"]);
    let bundled = bundled_driver_files(exe_dir.path());
    // The repository's plugins/ source folder: sub-folders and sources, no library.
    let sources = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(sources.path().join("http/src")).unwrap();
    std::fs::write(sources.path().join("http/Cargo.toml"), "[package]\n").unwrap();
    for dir in [sources.path(), Path::new("/nonexistent/trib-plugins")] {
        let report = load_bundled_and_dir(&bundled, dir);
        assert!(report.failures.is_empty(), "{:?}", report.failures);
        assert_eq!(report.drivers.len(), 1);
    }
}

/// The schema a first-party driver declares, read through its loaded library.
fn declared_schema(crate_name: &str) -> serde_json::Value {
    let driver = crate::loader::load_file(&plugin_file(crate_name)).unwrap();
    assert_ne!(driver.metadata.capabilities & trib_plugin_api::abi::capabilities::CONFIG_SCHEMA, 0, "{crate_name}");
    match driver.config_schema() {
        Some(Ok(schema)) => schema,
        other => panic!("{crate_name}: expected a schema, got {other:?}"),
    }
}

/// The dotted paths of a schema's secret fields.
fn secrets(schema: &serde_json::Value) -> Vec<String> {
    trib_plugin_api::support::schema::secret_paths(schema).iter().map(|p| p.join(".")).collect()
}

#[test]
fn the_first_party_drivers_declare_their_configuration_schemas() {
    let http = declared_schema("trib_driver_http");
    assert_eq!(http["required"], serde_json::json!(["restEndpointUrl"]));
    assert_eq!(secrets(&http), ["credentials.password", "credentials.privateKey", "credentials.privateKeyPassword"]);
    let mqtt = declared_schema("trib_driver_mqtt");
    assert_eq!(mqtt["required"], serde_json::json!(["host", "clientId"]));
    assert_eq!(secrets(&mqtt), secrets(&http), "the same TBMQ credentials object");
    let kafka = declared_schema("trib_driver_kafka");
    assert_eq!(kafka["required"], serde_json::json!(["bootstrapServers", "topic"]));
    assert!(secrets(&kafka).contains(&"otherProperties.sasl.password".to_string()), "{:?}", secrets(&kafka));
}

#[test]
fn a_driver_without_the_schema_capability_is_not_asked() {
    let dir = tempfile::tempdir().unwrap();
    install(&plugin_file("trib_fixture_scripted"), dir.path(), "libscripted.so");
    let report = scan(dir.path());
    assert_eq!(report.drivers[0].config_schema(), None);
    // Not asked even when it would answer: the capability bit alone decides.
    assert_eq!(in_process::<Answers<{ SCHEMA_WITHOUT_BIT }>>().config_schema(), None);
}

fn check_schema_refusal<T: trib_plugin_api::driver::Driver>(expected_start: &str) {
    let reason = match in_process::<T>().config_schema() {
        Some(Err(reason)) => reason,
        other => panic!("expected a refusal starting {expected_start:?}, got {other:?}"),
    };
    assert!(reason.starts_with(expected_start), "{reason}");
    assert_eq!(reason.lines().count(), 1, "{reason}");
}

#[test]
fn text_that_is_not_json_is_a_one_line_reason() {
    check_schema_refusal::<Answers<{ NOT_JSON }>>("configuration schema is not valid JSON: ");
}

#[test]
fn json_that_is_not_an_object_schema_is_a_one_line_reason() {
    check_schema_refusal::<Answers<{ NOT_AN_OBJECT_SCHEMA }>>("configuration schema is not an object schema");
}

#[test]
fn an_error_or_a_panic_instead_of_a_schema_is_a_one_line_reason() {
    check_schema_refusal::<Answers<{ UNSUPPORTED }>>(
        "the driver did not return its configuration schema: operation 'config_schema' is not supported",
    );
    check_schema_refusal::<Answers<{ MULTI_LINE_ERROR }>>(
        "the driver did not return its configuration schema: first line",
    );
    check_schema_refusal::<Answers<{ PANICS }>>("the driver did not return its configuration schema: driver panicked");
}

#[test]
fn a_good_answer_is_parsed() {
    let schema = in_process::<Answers<{ GOOD }>>().config_schema();
    assert_eq!(schema, Some(Ok(serde_json::json!({"type": "object", "properties": {}}))));
}

/// How [`Answers`] answers the schema operation.
const GOOD: u8 = 0;
const NOT_JSON: u8 = 1;
const NOT_AN_OBJECT_SCHEMA: u8 = 2;
const UNSUPPORTED: u8 = 3;
const MULTI_LINE_ERROR: u8 = 4;
const PANICS: u8 = 5;
const SCHEMA_WITHOUT_BIT: u8 = 6;

/// A driver that answers the schema operation by hand, as one written against the raw ABI
/// would: it sets the capability bit itself (except for [`SCHEMA_WITHOUT_BIT`]) and answers in
/// `module_control`, so the export layer passes its answer through unchecked.
struct Answers<const HOW: u8>;

impl<const HOW: u8> trib_plugin_api::driver::Driver for Answers<HOW> {
    fn metadata() -> trib_plugin_api::driver::Metadata {
        let capabilities =
            if HOW == SCHEMA_WITHOUT_BIT { 0 } else { trib_plugin_api::abi::capabilities::CONFIG_SCHEMA };
        trib_plugin_api::driver::Metadata {
            name: "answers",
            integration_type: "ANSWERS",
            version: "0.0.0",
            description: "answers the schema operation by hand",
            capabilities,
        }
    }
    fn create(_host: trib_plugin_api::driver::Host) -> Result<Self, trib_plugin_api::driver::Error> {
        Ok(Answers)
    }
    fn validate(&self, _config: &str) -> Vec<trib_plugin_api::driver::FieldError> {
        Vec::new()
    }
    fn start(&mut self, _config: &StartConfig<'_>) -> Result<(), trib_plugin_api::driver::Error> {
        Ok(())
    }
    fn process(&mut self, batch: &[Message<'_>], _deadline: std::time::Instant) -> Vec<Outcome> {
        batch.iter().map(|_| Outcome::Delivered).collect()
    }
    fn stop(&mut self) {}
    fn module_control(op: &str, _arg: &str) -> Result<String, trib_plugin_api::driver::Error> {
        use trib_plugin_api::driver::{Error, ErrorKind};
        match HOW {
            GOOD | SCHEMA_WITHOUT_BIT => Ok(r#"{"type": "object", "properties": {}}"#.to_string()),
            NOT_JSON => Ok("{type: object}".to_string()),
            NOT_AN_OBJECT_SCHEMA => Ok(r#"{"type": "string"}"#.to_string()),
            MULTI_LINE_ERROR => Err(Error::new(ErrorKind::Internal, "first line\nsecond line")),
            PANICS => panic!("no schema here"),
            _ => Err(Error::unsupported(op)),
        }
    }
}

/// A [`LoadedDriver`](crate::loader::LoadedDriver) around driver `T`'s module, built in this
/// process (no library file): the host side sees exactly what a loaded library gives it.
fn in_process<T: trib_plugin_api::driver::Driver>() -> crate::loader::LoadedDriver {
    let module = trib_plugin_api::export::module::<T>();
    let metadata = (module.metadata())();
    crate::loader::LoadedDriver { path: "in-process".into(), metadata, module }
}

#[test]
fn an_executor_serving_no_type_is_not_ready_and_says_why() {
    let status = crate::executor::ExecutorStatus {
        plugin_errors: vec!["/p/libx.so: not a shared library: file too short".into()],
        ..Default::default()
    };
    let reason = status.readiness().unwrap_err();
    assert!(reason.starts_with("no integration type served: check TB_PLUGINS_DIR"), "{reason}");
    assert!(reason.contains("libx.so: not a shared library"), "{reason}");
    let serving = crate::executor::ExecutorStatus { integration_types: vec!["HTTP@1.0.0".into()], ..status };
    assert_eq!(serving.readiness(), Ok(()));
}
