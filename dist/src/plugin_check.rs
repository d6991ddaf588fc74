//! `tributary plugin check FILE.so`: loads a driver library the way the executor does and tells
//! its author what the executor will see: the metadata, ABI version, capabilities and
//! configuration schema, then the conformance checks that need no target (from
//! `trib-plugin-testkit`). The checks that need a target run when `--unreachable` or
//! `--black-hole` configurations are given.

use std::{fmt::Write as _, path::Path};

use trib_core::loader::{load_file, LoadedDriver};
use trib_plugin_api::{
    abi::{capabilities, ABI_VERSION},
    support::schema,
};
use trib_plugin_testkit::conformance::{check_module, Report, Scenario, Verdict};

/// Configurations given on the command line (JSON texts; `{{closed_port}}` and
/// `{{blackhole_port}}` are substituted).
#[derive(Debug, Default)]
pub struct Configurations {
    /// A valid `clientConfiguration`; default: built from the driver's schema.
    pub valid: Option<String>,
    /// A valid configuration whose target is unreachable.
    pub unreachable: Option<String>,
    /// A valid configuration whose target never answers.
    pub black_hole: Option<String>,
}

/// Loads `file`, describes it and runs the checks; the text to print and whether it passed.
pub fn run(file: &Path, configurations: &Configurations) -> (String, bool) {
    let driver = match load_file(file) {
        Ok(driver) => driver,
        Err(e) => return (format!("{}: refused: {e}\n", file.display()), false),
    };
    let mut out = describe(&driver);
    let schema = driver.config_schema();
    let valid = match (&configurations.valid, &schema) {
        (Some(valid), _) => Some(valid.clone()),
        (None, Some(Ok(schema))) => Some(serde_json::Value::Object(schema::example(schema)).to_string()),
        (None, _) => None,
    };
    let Some(valid) = valid else {
        out.push_str(
            "\nconformance: not run: the driver declares no configuration schema to build a valid configuration \
             from; give one with --configuration '{...}'\n",
        );
        return (out, schema.is_none_or(|s| s.is_ok()));
    };
    let mut scenario = Scenario::new(valid.as_str());
    if let Some(c) = &configurations.unreachable {
        scenario = scenario.unreachable(c.as_str());
    }
    if let Some(c) = &configurations.black_hole {
        scenario = scenario.black_hole(c.as_str());
    }
    let report = check_module(driver.module, &scenario);
    let _ = writeln!(out, "\nconformance (valid configuration: {valid}):");
    out.push_str(&render(&report));
    let schema_ok = schema.is_none_or(|s| s.is_ok());
    (out, report.passed() && schema_ok)
}

fn describe(driver: &LoadedDriver) -> String {
    let m = &driver.metadata;
    let mut out = String::new();
    let _ = writeln!(out, "file:             {}", driver.path.display());
    let _ = writeln!(out, "integration type: {}", m.integration_type);
    let _ = writeln!(out, "driver:           {} {}", m.name, m.driver_version);
    let _ = writeln!(out, "description:      {}", m.description);
    let _ = writeln!(out, "plugin-api:       {} (this executor's ABI: {ABI_VERSION})", m.api_version);
    let _ = writeln!(out, "capabilities:     {}", capability_names(m.capabilities));
    match driver.config_schema() {
        None => out.push_str("config schema:    none declared\n"),
        Some(Err(reason)) => {
            let _ = writeln!(out, "config schema:    INVALID: {reason}");
        }
        Some(Ok(schema)) => {
            let pretty = serde_json::to_string_pretty(&schema).unwrap_or_default();
            let _ = writeln!(out, "config schema:\n{pretty}");
        }
    }
    out
}

/// `CHECK_CONNECTION | CONFIG_SCHEMA | 0x40` for the known bits and the rest in hex.
fn capability_names(bits: u64) -> String {
    let known = [
        (capabilities::CHECK_CONNECTION, "CHECK_CONNECTION"),
        (capabilities::INSTANCE_CONTROL, "INSTANCE_CONTROL"),
        (capabilities::MODULE_CONTROL, "MODULE_CONTROL"),
        (capabilities::CONFIG_SCHEMA, "CONFIG_SCHEMA"),
        (capabilities::PIPELINE, "PIPELINE"),
        (capabilities::CONNECTIVITY, "CONNECTIVITY"),
        (capabilities::TARGET_POLICY, "TARGET_POLICY"),
    ];
    let mut names: Vec<String> = known.iter().filter(|(bit, _)| bits & bit != 0).map(|(_, n)| n.to_string()).collect();
    let rest = known.iter().fold(bits, |b, (bit, _)| b & !bit);
    if rest != 0 {
        names.push(format!("{rest:#x}"));
    }
    if names.is_empty() {
        "none".into()
    } else {
        names.join(" | ")
    }
}

fn render(report: &Report) -> String {
    let mut out = String::new();
    for r in &report.results {
        let verdict = match r.verdict {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Skip => "SKIP",
        };
        let _ = writeln!(out, "  {verdict} {:<38} {} ({} ms)", r.check.name(), r.detail, r.elapsed.as_millis());
    }
    let failed = report.failed();
    let _ = writeln!(
        out,
        "{}",
        if failed.is_empty() {
            "result: conforms".to_string()
        } else {
            format!("result: {} check(s) failed", failed.len())
        }
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn built(name: &str) -> std::path::PathBuf {
        // The drivers are dependencies of this crate, so cargo built them beside the test binary.
        let exe = std::env::current_exe().expect("test binary path");
        let deps = exe.parent().expect("target/<profile>/deps");
        deps.join(format!("lib{name}.so"))
    }

    #[test]
    fn a_first_party_driver_is_described_and_conforms() {
        let (out, ok) = run(&built("trib_driver_http"), &Configurations::default());
        assert!(ok, "{out}");
        assert!(out.contains("integration type: HTTP"), "{out}");
        assert!(out.contains("CONFIG_SCHEMA"), "{out}");
        assert!(out.contains("\"restEndpointUrl\""), "{out}");
        assert!(out.contains("PASS metadata"), "{out}");
        assert!(out.contains("PASS validate_never_panics"), "{out}");
        assert!(out.contains("SKIP check_connection_unreachable"), "{out}");
        assert!(out.contains("result: conforms"), "{out}");
    }

    #[test]
    fn a_file_that_is_not_a_driver_is_refused_in_one_line() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("libnot.so");
        std::fs::write(&file, "not a library").expect("write");
        let (out, ok) = run(&file, &Configurations::default());
        assert!(!ok);
        assert_eq!(out.lines().count(), 1, "{out}");
        assert!(out.contains("refused: not a shared library"), "{out}");
    }

    #[test]
    fn a_check_that_fails_fails_the_command() {
        // "unreachable" pointing at a port that answers nothing does not make a connection check
        // of the HTTP driver fail when the URL is invalid for it: give a valid configuration that
        // validate refuses instead, which the suite reports as a failure.
        let configurations =
            Configurations { valid: Some(r#"{"restEndpointUrl":"not a url"}"#.into()), ..Default::default() };
        let (out, ok) = run(&built("trib_driver_http"), &configurations);
        assert!(!ok, "{out}");
        assert!(out.contains("FAIL valid_configuration"), "{out}");
    }

    #[test]
    fn capability_bits_are_named() {
        assert_eq!(capability_names(0), "none");
        assert_eq!(capability_names(capabilities::CHECK_CONNECTION | 1 << 40), "CHECK_CONNECTION | 0x10000000000");
        assert_eq!(capability_names(capabilities::PIPELINE | capabilities::TARGET_POLICY), "PIPELINE | TARGET_POLICY");
    }
}
