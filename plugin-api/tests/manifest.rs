//! The crate must build and publish on its own: its manifest inherits nothing from a workspace,
//! carries the metadata a registry needs, and (inside the repository) still states the same
//! dependency versions and lint levels as the workspace root, so that the copy does not drift.
//!
//! Manifests are read line by line (`key = value` on one line, `[section]` headers): that is all
//! these files use, and it keeps the crate free of a TOML dependency.

use std::{collections::BTreeMap, path::Path};

const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");

/// `section -> key -> value text` of a manifest; lines that are not `key = value` are skipped.
fn entries(text: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut section = String::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().to_string();
            continue;
        }
        let Some((key, value)) = line.split_once('=') else { continue };
        let key = key.trim();
        if !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            out.entry(section.clone()).or_default().insert(key.to_string(), value.trim().to_string());
        }
    }
    out
}

fn own_manifest() -> String {
    std::fs::read_to_string(Path::new(MANIFEST_DIR).join("Cargo.toml")).expect("read own Cargo.toml")
}

#[test]
fn manifest_inherits_nothing_from_a_workspace() {
    let manifest = own_manifest();
    for (section, keys) in entries(&manifest) {
        for (key, value) in keys {
            let inherits = key.ends_with(".workspace") || key == "workspace" || value.contains("workspace = true");
            assert!(!inherits, "[{section}] {key} = {value} inherits from the workspace; write the value out");
        }
    }
}

#[test]
fn manifest_has_publishing_metadata() {
    let text = own_manifest();
    let manifest = entries(&text);
    let package = &manifest["package"];
    for key in ["description", "repository", "keywords", "categories", "include", "edition"] {
        assert!(package.contains_key(key), "[package] has no {key}");
    }
    assert_eq!(package["license"], r#""Apache-2.0""#);
    assert_eq!(package["rust-version"], r#""1.89""#);
    assert_eq!(package["readme"], r#""README.md""#);
    for file in ["README.md", "CHANGELOG.md"] {
        assert!(Path::new(MANIFEST_DIR).join(file).is_file(), "{file} is missing");
        // The include list may span lines (as in a packaged, normalized manifest).
        assert!(text.contains(&format!("\"/{file}\"")), "{file} is not in the include list");
    }
}

/// The version policy: the crate's major version is the ABI's major version.
#[test]
fn crate_major_is_abi_major() {
    let major = |v: &str| v.split('.').next().unwrap_or_default().to_string();
    assert_eq!(major(env!("CARGO_PKG_VERSION")), major(trib_plugin_api::abi::ABI_VERSION));
}

#[test]
fn changelog_has_unreleased_and_current_version_entries() {
    let changelog = std::fs::read_to_string(Path::new(MANIFEST_DIR).join("CHANGELOG.md")).expect("read CHANGELOG.md");
    assert!(changelog.lines().any(|l| l == "## Unreleased"), "CHANGELOG.md has no '## Unreleased' section");
    let current = format!("## {} ", env!("CARGO_PKG_VERSION"));
    assert!(changelog.lines().any(|l| l.starts_with(&current)), "CHANGELOG.md has no '{current}' entry");
}

/// Inside the repository, the written-out values must equal the workspace's: a dependency bump or
/// a lint change at the root has to be made here too. A packaged copy has no root and skips this.
#[test]
fn dependencies_and_lints_match_the_workspace_root() {
    let Ok(root_text) = std::fs::read_to_string(Path::new(MANIFEST_DIR).join("../Cargo.toml")) else { return };
    let root = entries(&root_text);
    if !root_text.lines().any(|l| l.trim() == "[workspace]") {
        return;
    }
    let own = entries(&own_manifest());
    let shared = &root["workspace.dependencies"];
    for (name, value) in &own["dependencies"] {
        assert_eq!(shared.get(name), Some(value), "dependency {name} differs from [workspace.dependencies]");
    }
    for table in ["rust", "clippy"] {
        let ours = own.get(&format!("lints.{table}"));
        assert_eq!(ours, root.get(&format!("workspace.lints.{table}")), "[lints.{table}] differs from the root");
    }
    for key in ["edition", "license", "rust-version", "repository"] {
        assert_eq!(own["package"].get(key), root["workspace.package"].get(key), "[package] {key} differs");
    }
}
