//! `tributary new-driver NAME`: writes a new driver crate, a copy of `plugin-api/template` with
//! its names substituted, as a standalone crate (a workspace of its own) that builds, passes the
//! conformance suite and produces a loadable `.so` as it is.
//!
//! The template's files are embedded in the binary, so the command works from an installed
//! binary without the repository. The template itself (and what it teaches) lives in
//! `plugin-api/template/`; this file only copies and renames.

use std::{
    fmt,
    path::{Path, PathBuf},
};

use anyhow::{bail, ensure, Context};

/// The template's files, by path inside the crate.
const TEMPLATE: &[(&str, &str)] = &[
    ("Cargo.toml", include_str!("../../plugin-api/template/Cargo.toml")),
    (".gitignore", include_str!("../../plugin-api/template/.gitignore")),
    ("README.md", include_str!("../../plugin-api/template/README.md")),
    ("src/lib.rs", include_str!("../../plugin-api/template/src/lib.rs")),
    ("src/config.rs", include_str!("../../plugin-api/template/src/config.rs")),
    ("src/driver.rs", include_str!("../../plugin-api/template/src/driver.rs")),
    ("src/request.rs", include_str!("../../plugin-api/template/src/request.rs")),
    ("src/service.rs", include_str!("../../plugin-api/template/src/service.rs")),
    ("src/retry.rs", include_str!("../../plugin-api/template/src/retry.rs")),
    ("src/error.rs", include_str!("../../plugin-api/template/src/error.rs")),
    ("src/tests.rs", include_str!("../../plugin-api/template/src/tests.rs")),
];

/// Integration types the first-party drivers serve; the loader refuses a second library for one.
const TAKEN: &[&str] = &["http", "mqtt", "kafka", "postgresql"];

/// Where the new crate gets `trib-plugin-api` and `trib-plugin-testkit` from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiSource {
    /// crates.io, version 1.
    Registry,
    /// A local checkout: the `plugin-api` directory (the test kit is its `testkit/`).
    Path(PathBuf),
    /// A git repository holding both crates.
    Git(String),
}

impl ApiSource {
    /// The source named by the command's flags (at most one is given; neither means crates.io).
    pub fn from_flags(path: Option<PathBuf>, git: Option<String>) -> ApiSource {
        match (path, git) {
            (Some(path), _) => ApiSource::Path(path),
            (None, Some(url)) => ApiSource::Git(url),
            (None, None) => ApiSource::Registry,
        }
    }
}

/// The spellings of a driver name that the template's names become.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// `my-sink`: the package name's suffix.
    pub kebab: String,
    /// `my_sink`: the driver name and the library's name suffix.
    pub snake: String,
    /// `MY_SINK`: the integration type.
    pub upper: String,
    /// `MySink`: the type names (`MySinkDriver`, `MySinkConfig`).
    pub camel: String,
}

impl Names {
    /// Checks `name` (lower-case words of letters and digits joined by `-` or `_`) and spells it.
    pub fn new(name: &str) -> anyhow::Result<Names> {
        ensure!(
            !name.starts_with("trib-driver") && !name.starts_with("trib_driver"),
            "give the name without the trib-driver- prefix: it is added"
        );
        let words: Vec<&str> = name.split(['-', '_']).collect();
        let valid_word = |w: &str| !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        ensure!(
            name.len() <= 40 && name.starts_with(|c: char| c.is_ascii_lowercase()) && words.iter().all(|w| valid_word(w)),
            "'{name}' is not a driver name: use lower-case letters and digits, words joined by - or _, at most 40 characters, starting with a letter"
        );
        let snake = words.join("_");
        ensure!(
            !TAKEN.contains(&snake.as_str()),
            "integration type {} is served by a first-party driver",
            snake.to_uppercase()
        );
        let camel = words.iter().map(|w| w[..1].to_uppercase() + &w[1..]).collect();
        Ok(Names { kebab: words.join("-"), upper: snake.to_uppercase(), snake, camel })
    }

    /// The package name: `trib-driver-my-sink`.
    pub fn package(&self) -> String {
        format!("trib-driver-{}", self.kebab)
    }

    /// The library file `cargo build` produces on Linux: `libtrib_driver_my_sink.so`.
    pub fn library_file(&self) -> String {
        format!("libtrib_driver_{}.so", self.snake)
    }
}

/// What `new-driver` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    /// The crate's directory.
    pub dir: PathBuf,
    /// The names used.
    pub names: Names,
    /// Files written, relative to `dir`.
    pub files: Vec<String>,
}

impl fmt::Display for Created {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dir = self.dir.display();
        let (package, files) = (self.names.package(), self.files.len());
        writeln!(f, "Created {package} (integration type {}) in {dir} ({files} files).", self.names.upper)?;
        writeln!(f, "Next: cd {dir} && cargo test")?;
        write!(f, "Then: cargo build --release && cp target/release/{} \"$TB_PLUGINS_DIR\"/", self.names.library_file())
    }
}

/// Writes the crate for `name` into `dir` (default `./trib-driver-<name>`), which must not exist
/// or be empty.
pub fn create(name: &str, dir: Option<&Path>, api: &ApiSource) -> anyhow::Result<Created> {
    let names = Names::new(name)?;
    let dir = dir.map_or_else(|| PathBuf::from(names.package()), Path::to_path_buf);
    if dir.exists() {
        let mut entries = std::fs::read_dir(&dir).with_context(|| format!("{} is not a directory", dir.display()))?;
        ensure!(entries.next().is_none(), "{} exists and is not empty", dir.display());
    }
    let api = match api {
        ApiSource::Path(path) => ApiSource::Path(plugin_api_dir(path)?),
        other => other.clone(),
    };
    let mut files = Vec::new();
    for (file, text) in render(&names, &api) {
        let target = dir.join(file);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&target, text).with_context(|| format!("cannot write {}", target.display()))?;
        files.push(file.to_string());
    }
    Ok(Created { dir, names, files })
}

/// The crate's files for `names`, with its dependencies taken from `api`.
pub fn render(names: &Names, api: &ApiSource) -> Vec<(&'static str, String)> {
    TEMPLATE
        .iter()
        .map(|(file, text)| {
            let renamed = rename(text, names);
            let text = if *file == "Cargo.toml" { manifest(&renamed, names, api) } else { renamed };
            (*file, text)
        })
        .collect()
}

/// The template's names, most specific first, replaced by `names`' spellings.
fn rename(text: &str, names: &Names) -> String {
    text.replace("trib-template-driver", &names.package())
        .replace("trib_template_driver", &format!("trib_driver_{}", names.snake))
        .replace("TEMPLATE", &names.upper)
        .replace("Template", &names.camel)
        .replace("template", &names.snake)
}

/// The template's manifest as a standalone crate's: a header instead of the in-repository
/// comment, the dependencies from `api`, and a `[workspace]` of its own.
fn manifest(text: &str, names: &Names, api: &ApiSource) -> String {
    let (api_dep, testkit_dep) = match api {
        ApiSource::Registry => (r#""1""#.to_string(), r#""1""#.to_string()),
        ApiSource::Path(dir) => (
            format!(r#"{{ path = "{}", version = "1" }}"#, toml_text(dir)),
            format!(r#"{{ path = "{}", version = "1" }}"#, toml_text(&dir.join("testkit"))),
        ),
        ApiSource::Git(url) => (format!(r#"{{ git = "{url}" }}"#), format!(r#"{{ git = "{url}" }}"#)),
    };
    let mut out = format!("# Generated by `tributary new-driver {}`.\n", names.kebab);
    for line in text.lines().skip_while(|l| l.starts_with('#')) {
        let line = match line.split_once(" = ") {
            Some(("trib-plugin-api", _)) => format!("trib-plugin-api = {api_dep}"),
            Some(("trib-plugin-testkit", _)) => format!("trib-plugin-testkit = {testkit_dep}"),
            _ => line.to_string(),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out.push_str("\n# A workspace of its own, so that the crate builds wherever it is put; remove this table\n");
    out.push_str("# when adding the crate to another workspace.\n[workspace]\n");
    out
}

/// `dir` made absolute, after checking that it holds `trib-plugin-api` and its test kit.
fn plugin_api_dir(dir: &Path) -> anyhow::Result<PathBuf> {
    let dir = dir.canonicalize().with_context(|| format!("--plugin-api-path {}", dir.display()))?;
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap_or_default();
    if !manifest.lines().any(|l| l.trim() == r#"name = "trib-plugin-api""#) {
        bail!("{} is not the trib-plugin-api crate (no Cargo.toml naming it)", dir.display());
    }
    ensure!(dir.join("testkit/Cargo.toml").is_file(), "{} has no testkit/ crate", dir.display());
    Ok(dir)
}

/// A path as the inside of a TOML basic string.
fn toml_text(path: &Path) -> String {
    path.display().to_string().replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests;
