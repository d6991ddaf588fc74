//! `tributary new-driver` end to end, the way the plugin-api README tells a driver author to use
//! it: the binary writes a crate that depends on this repository's `plugin-api/` by path;
//! `cargo test` in that crate passes its unit tests and the conformance suite; the `.so` that
//! `cargo build` produces is accepted by the executor's loader.
//!
//! The generated crate builds in `target/new-driver/` (a target directory of its own, kept
//! between runs, so that only the first run compiles its dependencies).

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

/// The workspace root.
fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().expect("repository root")
}

/// Runs `command`, failing the test with its output when it fails.
fn run(command: &mut Command) -> Output {
    let output = command.output().unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed with {}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
fn a_generated_driver_builds_conforms_and_loads() {
    let repository = repository();
    let target = repository.join("target/new-driver");
    let dir = target.join("crate/trib-driver-conformance-probe");
    // Left over from an earlier run; new-driver refuses a directory that is not empty.
    let _ = std::fs::remove_dir_all(&dir);

    let created = run(Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(["new-driver", "conformance-probe", "--dir"])
        .arg(&dir)
        .arg("--plugin-api-path")
        .arg(repository.join("plugin-api"))
        .env_remove("TB_SERVICE_TYPE"));
    let said = String::from_utf8_lossy(&created.stdout);
    assert!(said.starts_with("Created trib-driver-conformance-probe (integration type CONFORMANCE_PROBE)"), "{said}");

    // The workspace's lock file pins the same dependency versions, so nothing new is fetched.
    std::fs::copy(repository.join("Cargo.lock"), dir.join("Cargo.lock")).expect("copy Cargo.lock");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let cargo = |args: &[&str]| {
        let mut command = Command::new(&cargo);
        command.args(args).current_dir(&dir).env("CARGO_TARGET_DIR", &target);
        run(&mut command)
    };
    cargo(&["build"]);
    let tested = cargo(&["test"]);
    let report = String::from_utf8_lossy(&tested.stdout);
    assert!(report.contains("test tests::driver_conforms ... ok"), "{report}");

    let library = target.join("debug/libtrib_driver_conformance_probe.so");
    let loaded = trib_core::loader::load_file(&library).unwrap_or_else(|e| panic!("{}: {e}", library.display()));
    assert_eq!(loaded.integration_type(), "CONFORMANCE_PROBE");
    assert_eq!(loaded.metadata.name.as_str(), "conformance_probe");
    assert_eq!(loaded.metadata.api_version.as_str(), trib_plugin_api_version());
}

/// The version of the plugin-api the generated crate was built against: this repository's.
fn trib_plugin_api_version() -> String {
    let manifest = std::fs::read_to_string(repository().join("plugin-api/Cargo.toml")).expect("plugin-api manifest");
    let line = manifest.lines().find(|l| l.starts_with("version = ")).expect("a version line");
    line.trim_start_matches("version = ").trim_matches('"').to_string()
}
