//! `trib-plugin-api` and this kit must build and publish on their own: each manifest inherits
//! nothing from a workspace, carries the metadata a registry needs, and (inside the repository)
//! still states the same dependency versions and lint levels as the workspace root, so that the
//! copies do not drift; the kit also names the version of the `trib-plugin-api` next to it.
//!
//! One file checks both manifests, from the kit: the kit sits in `trib-plugin-api`'s directory
//! (`..`), so inside the repository it sees both crates and the root. A packaged kit has neither
//! beside it and checks its own manifest only; the root checks skip where there is no root.
//!
//! Manifests are read line by line (`key = value` on one line, `[section]` headers): that is all
//! these files use, and it keeps the crates free of a TOML dependency.

use std::{collections::BTreeMap, path::PathBuf};

/// `section -> key -> value text`.
type Entries = BTreeMap<String, BTreeMap<String, String>>;

/// One crate whose manifest is checked.
struct Crate {
    dir: PathBuf,
    /// Files the crate must ship, each named in its `include` list.
    shipped: &'static [&'static str],
}

impl Crate {
    fn read(&self, file: &str) -> String {
        let path = self.dir.join(file);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
    }

    fn manifest(&self) -> String {
        self.read("Cargo.toml")
    }

    fn name(&self) -> String {
        entries(&self.manifest())["package"]["name"].trim_matches('"').to_string()
    }

    fn version(&self) -> String {
        entries(&self.manifest())["package"]["version"].trim_matches('"').to_string()
    }
}

/// This kit.
fn kit() -> Crate {
    Crate { dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")), shipped: &["README.md"] }
}

/// The `trib-plugin-api` the kit sits in (`..`), when there is one: inside the repository, not
/// in a packaged kit.
fn plugin_api() -> Option<Crate> {
    let api = Crate { dir: kit().dir.join(".."), shipped: &["README.md", "CHANGELOG.md"] };
    let text = std::fs::read_to_string(api.dir.join("Cargo.toml")).ok()?;
    let named = entries(&text).get("package").and_then(|p| p.get("name")).cloned();
    (named.as_deref() == Some(r#""trib-plugin-api""#)).then_some(api)
}

/// The crates to check: the kit, and `trib-plugin-api` when it is next to it.
fn crates() -> Vec<Crate> {
    std::iter::once(kit()).chain(plugin_api()).collect()
}

/// The workspace root's manifest text, inside the repository (`../..` from the kit, `..` from
/// `trib-plugin-api`); `None` in a packaged copy.
fn workspace_root() -> Option<String> {
    let text = std::fs::read_to_string(kit().dir.join("../../Cargo.toml")).ok()?;
    text.lines().any(|l| l.trim() == "[workspace]").then_some(text)
}

/// `section -> key -> value text` of a manifest; lines that are not `key = value` are skipped.
fn entries(text: &str) -> Entries {
    let mut out = Entries::new();
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

/// The `version = "x"` inside an inline table.
fn version_of(value: &str) -> String {
    let after = value.split("version = \"").nth(1).unwrap_or_default();
    after.split('"').next().unwrap_or_default().to_string()
}

fn major(version: &str) -> &str {
    version.split('.').next().unwrap_or_default()
}

#[test]
fn manifests_inherit_nothing_from_a_workspace() {
    for krate in crates() {
        let name = krate.name();
        for (section, keys) in entries(&krate.manifest()) {
            for (key, value) in keys {
                let inherits = key.ends_with(".workspace") || key == "workspace" || value.contains("workspace = true");
                assert!(
                    !inherits,
                    "{name}: [{section}] {key} = {value} inherits from the workspace; write the value out"
                );
            }
        }
    }
}

#[test]
fn manifests_have_publishing_metadata() {
    for krate in crates() {
        let name = krate.name();
        let text = krate.manifest();
        let manifest = entries(&text);
        let package = &manifest["package"];
        for key in ["description", "repository", "keywords", "categories", "include", "edition"] {
            assert!(package.contains_key(key), "{name}: [package] has no {key}");
        }
        assert_eq!(package["license"], r#""Apache-2.0""#, "{name}");
        assert_eq!(package["rust-version"], r#""1.89""#, "{name}");
        assert_eq!(package["readme"], r#""README.md""#, "{name}");
        for file in krate.shipped {
            assert!(krate.dir.join(file).is_file(), "{name}: {file} is missing");
            // The include list may span lines (as in a packaged, normalized manifest).
            assert!(text.contains(&format!("\"/{file}\"")), "{name}: {file} is not in the include list");
        }
    }
}

/// The version policy: the plugin API's major version is the ABI's, and the kit's is the plugin
/// API's.
#[test]
fn crate_major_is_abi_major() {
    for krate in crates() {
        assert_eq!(major(&krate.version()), major(trib_plugin_api::abi::ABI_VERSION), "{}", krate.name());
    }
}

#[test]
fn plugin_api_changelog_has_unreleased_and_current_version_entries() {
    let Some(api) = plugin_api() else { return };
    let changelog = api.read("CHANGELOG.md");
    assert!(changelog.lines().any(|l| l == "## Unreleased"), "CHANGELOG.md has no '## Unreleased' section");
    let current = format!("## {} ", api.version());
    assert!(changelog.lines().any(|l| l.starts_with(&current)), "CHANGELOG.md has no '{current}' entry");
}

/// Inside the repository, the written-out values must equal the workspace's: a dependency bump or
/// a lint change at the root has to be made here too. A packaged copy has no root and skips this.
#[test]
fn dependencies_and_lints_match_the_workspace_root() {
    let Some(root_text) = workspace_root() else { return };
    let root = entries(&root_text);
    let shared = &root["workspace.dependencies"];
    for krate in crates() {
        let name = krate.name();
        let own = entries(&krate.manifest());
        for (dependency, value) in own.get("dependencies").into_iter().flatten() {
            // Path dependencies name the path from the crate, the root from the root: compare
            // versions.
            let (ours, theirs) = if value.contains("path = ") {
                (version_of(value), shared.get(dependency).map(|v| version_of(v)))
            } else {
                (value.clone(), shared.get(dependency).cloned())
            };
            assert_eq!(Some(ours), theirs, "{name}: dependency {dependency} differs from [workspace.dependencies]");
        }
        for table in ["rust", "clippy"] {
            let ours = own.get(&format!("lints.{table}"));
            let theirs = root.get(&format!("workspace.lints.{table}"));
            assert_eq!(ours, theirs, "{name}: [lints.{table}] differs from the root");
        }
        for key in ["edition", "license", "rust-version", "repository"] {
            assert_eq!(own["package"].get(key), root["workspace.package"].get(key), "{name}: [package] {key} differs");
        }
    }
}

/// The kit depends on exactly the version of the `trib-plugin-api` it sits in.
#[test]
fn depends_on_the_plugin_api_next_to_it() {
    let Some(api) = plugin_api() else { return };
    let own = entries(&kit().manifest());
    let dependency = &own["dependencies"]["trib-plugin-api"];
    assert!(dependency.contains(r#"path = "..""#), "{dependency}");
    assert_eq!(version_of(dependency), api.version());
}

/// The checks above have something to check inside the repository: a moved kit or a renamed
/// plugin API would otherwise turn them into silent skips.
#[test]
fn inside_the_repository_both_crates_are_checked() {
    if workspace_root().is_some() {
        let dir = kit().dir.join("..");
        assert!(plugin_api().is_some(), "no trib-plugin-api in {}", dir.display());
    }
}
