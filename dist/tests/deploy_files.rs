//! The deployment files of `dist/deploy/` held against what they describe, since Docker cannot
//! run here: the Dockerfile builds with a command CI runs and copies files that this build
//! produces, into the place the binary looks for its drivers; the compose file builds that
//! Dockerfile and runs two broker nodes behind the load balancer whose configuration exists; the
//! systemd examples describe two broker nodes; every variable set anywhere is one the binary
//! reads (`${NAME:...}` in `dist/config/*.yml`).
//!
//! The copy check runs the Dockerfile's build command itself, as `tests/src/first_run.rs` runs
//! README's: `.ci/run` makes that build before the tests, so there it only checks freshness; on a
//! bare machine the first run of this test includes the release build.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    process::Command,
};

use yaml_rust2::{Yaml, YamlLoader};

#[test]
fn dockerfile_builds_with_a_command_ci_runs_before_the_tests() {
    let ci = read(&repo_root().join(".ci/run"));
    let ci_lines: Vec<&str> = ci.lines().map(str::trim).collect();
    let ci_builds: Vec<&str> = ci_lines.iter().copied().filter(|l| l.starts_with("cargo build")).collect();
    let builds = dockerfile().cargo_builds();
    assert!(!builds.is_empty(), "the Dockerfile's build stage runs no `cargo build`");
    for build in &builds {
        assert!(
            ci_builds.contains(&build.as_str()),
            "the Dockerfile runs `{build}`, which .ci/run does not: {ci_builds:?}"
        );
        let built_at = ci_lines.iter().position(|l| l == build).expect("found above");
        let tested_at = ci_lines.iter().position(|l| l.starts_with("cargo test")).expect(".ci/run runs cargo test");
        assert!(built_at < tested_at, ".ci/run must run `{build}` before its tests (deploy_files.rs relies on it)");
    }
}

#[test]
fn dockerfile_copies_what_the_release_build_produces_where_the_binary_looks() {
    let dockerfile = dockerfile();
    let build = dockerfile.cargo_builds().into_iter().next().expect("a cargo build in the Dockerfile");
    run_build(&build);
    let target = target_dir();
    let copies = dockerfile.copies_from_builder();
    assert!(!copies.is_empty(), "the runtime stage copies nothing from the build stage");
    let mut shipped: BTreeMap<String, PathBuf> = BTreeMap::new();
    for copy in &copies {
        for source in &copy.sources {
            let relative = source
                .strip_prefix(&dockerfile.builder_target_dir())
                .unwrap_or_else(|| panic!("COPY source {source} is not under the build stage's target/ directory"));
            let files = glob(&target, relative);
            assert!(!files.is_empty(), "COPY source {source}: no {} after `{build}`", target.join(relative).display());
            for file in files {
                let name = file.file_name().and_then(|n| n.to_str()).expect("file name").to_string();
                let destination = if copy.destination.ends_with('/') {
                    format!("{}{name}", copy.destination)
                } else {
                    copy.destination.clone()
                };
                shipped.insert(destination, file);
            }
        }
    }
    let binary =
        shipped.keys().find(|d| d.ends_with("/tributary")).expect("the image ships the tributary binary").clone();
    let plugins = format!("{}/plugins/", binary.rsplit_once('/').expect("absolute path").0);
    for driver in first_party_drivers() {
        let library = format!("{plugins}lib{}.so", driver.replace('-', "_"));
        assert!(
            shipped.contains_key(&library),
            "{driver} is not shipped as {library} (beside the binary, where it looks)"
        );
    }
}

#[test]
fn dockerfile_runs_as_a_user_with_a_health_check_on_ready_endpoints() {
    let dockerfile = dockerfile();
    let runtime = dockerfile.stages.last().expect("a runtime stage");
    assert!(runtime.from.starts_with("debian:") && runtime.from.ends_with("-slim"), "runtime base {}", runtime.from);
    let user = runtime.last("USER").expect("the runtime stage sets USER");
    assert!(user != "root" && user != "0", "the image runs as root");
    let health = runtime.last("HEALTHCHECK").expect("a HEALTHCHECK");
    assert!(health.contains("/health/ready"), "{health}");
    for (config, route_file) in
        [("tbmq.yml", "broker/management/src/api.rs"), ("tbmq-integration-executor.yml", "core/src/service.rs")]
    {
        let port = default_of(&read(&repo_root().join("dist/config").join(config)), "HTTP_BIND_PORT");
        assert!(health.contains(&format!("HTTP_BIND_PORT:-{port}")), "the health check misses {config}'s port {port}");
        assert!(
            read(&repo_root().join(route_file)).contains(".at(\"/health/ready\""),
            "{route_file} serves no /health/ready"
        );
    }
    assert!(runtime.last("VOLUME").is_some(), "no VOLUME for the data directory");
}

#[test]
fn compose_builds_the_dockerfile_and_runs_two_broker_nodes_behind_the_load_balancer() {
    let compose = compose();
    let services = compose["services"].as_hash().expect("services");
    let mut brokers: Vec<(String, &Yaml)> = Vec::new();
    let mut balancer_configs = Vec::new();
    for (name, service) in services {
        let name = name.as_str().expect("service name").to_string();
        if service["image"].as_str().is_some_and(|i| i.starts_with("tributary")) {
            let build = &service["build"];
            assert!(!build.is_badvalue(), "{name} uses the tributary image but does not build it");
            let context = deploy_dir().join(build["context"].as_str().expect("build context"));
            let context = context.canonicalize().expect("the build context exists");
            assert_eq!(
                context,
                repo_root().canonicalize().expect("root"),
                "{name}: the context is the repository root"
            );
            let dockerfile = context.join(build["dockerfile"].as_str().expect("build dockerfile"));
            assert_eq!(dockerfile.canonicalize().ok(), deploy_dir().join("Dockerfile").canonicalize().ok(), "{name}");
            if service["environment"]["TB_SERVICE_TYPE"].as_str() == Some("tbmq") {
                brokers.push((name.clone(), &service["environment"]));
            }
        }
        for volume in service["volumes"].as_vec().into_iter().flatten() {
            let host = volume.as_str().and_then(|v| v.split(':').next()).unwrap_or_default();
            if host.starts_with("./") {
                let file = deploy_dir().join(host);
                assert!(file.is_file(), "{name} mounts {host}, which does not exist in dist/deploy/");
                if host.ends_with("haproxy.cfg") {
                    balancer_configs.push((name.clone(), file, &service["ports"]));
                }
            }
        }
    }
    assert_eq!(brokers.len(), 2, "two broker nodes (TB_SERVICE_TYPE=tbmq)");
    let ids: BTreeSet<&str> =
        brokers.iter().map(|(_, env)| env["TB_SERVICE_ID"].as_str().expect("TB_SERVICE_ID")).collect();
    assert_eq!(ids.len(), 2, "broker nodes need distinct TB_SERVICE_ID: {ids:?}");
    for shared in ["TB_QUEUE_TYPE", "TB_KAFKA_SERVERS", "SPRING_DATASOURCE_URL", "JWT_TOKEN_SIGNING_KEY"] {
        let values: BTreeSet<Option<&str>> = brokers.iter().map(|(_, env)| env[shared].as_str()).collect();
        assert_eq!(values.len(), 1, "broker nodes of one cluster share {shared}: {values:?}");
    }
    let [(balancer, config, ports)] = balancer_configs.as_slice() else {
        panic!("one service mounts haproxy.cfg: {balancer_configs:?}")
    };
    let ports: Vec<&str> =
        ports.as_vec().expect("the load balancer publishes ports").iter().filter_map(Yaml::as_str).collect();
    let servers = haproxy_servers(&read(config));
    for port in ["1883", "8083"] {
        assert!(ports.iter().any(|p| p.ends_with(&format!(":{port}"))), "{balancer} does not publish {port}");
        for (name, _) in &brokers {
            assert!(
                servers.contains(&format!("{name}:{port}")),
                "haproxy.cfg does not send {port} to {name}: {servers:?}"
            );
        }
    }
}

#[test]
fn systemd_examples_describe_two_broker_nodes() {
    let unit = read(&deploy_dir().join("systemd/tributary-broker@.service"));
    assert!(unit.contains("EnvironmentFile=/etc/tributary/broker-%i.env"), "one env file per broker node");
    let mut ids = BTreeSet::new();
    for (name, text) in env_examples() {
        if let Some(node) = name.strip_prefix("broker-").and_then(|n| n.strip_suffix(".env.example")) {
            assert!(text.contains(&format!("/etc/tributary/broker-{node}.env")), "{name} names its installed path");
            ids.insert(env_lines(&text).find(|(k, _)| k == "TB_SERVICE_ID").expect("TB_SERVICE_ID").1);
        }
    }
    assert_eq!(ids.len(), 2, "two broker env examples with distinct TB_SERVICE_ID: {ids:?}");
}

/// Every variable the compose file, the env examples and the systemd units set for our services
/// must be one the binary reads, so that deployment files cannot rot.
#[test]
fn deployment_files_only_use_variables_the_binary_reads() {
    let known = known_variables();
    assert!(known.contains("TB_SERVICE_TYPE") && known.len() > 50, "{known:?}");
    let compose = compose();
    let mut checked = 0;
    for (name, service) in compose["services"].as_hash().expect("services") {
        if service["image"].as_str().is_some_and(|i| i.starts_with("tributary")) {
            for (key, _) in service["environment"].as_hash().expect("environment map") {
                let key = key.as_str().expect("variable name");
                assert!(known.contains(key), "{name:?} sets {key}, which the binary does not read");
                checked += 1;
            }
        }
    }
    for (name, text) in env_examples() {
        for (key, _) in env_lines(&text) {
            assert!(known.contains(&key), "{name} sets {key}, which the binary does not read");
            checked += 1;
        }
    }
    for entry in std::fs::read_dir(deploy_dir().join("systemd")).expect("systemd/") {
        let path = entry.expect("entry").path();
        for line in read(&path).lines() {
            if let Some((key, _)) = line.strip_prefix("Environment=").and_then(|l| l.split_once('=')) {
                assert!(known.contains(key), "{} sets {key}, which the binary does not read", path.display());
                checked += 1;
            }
        }
    }
    assert!(checked > 40, "only {checked} variables found: the files were not read");
}

// ---- Reading the files ----

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("dist/ is in the repository").to_path_buf()
}

fn deploy_dir() -> PathBuf {
    repo_root().join("dist/deploy")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn compose() -> Yaml {
    let docs = YamlLoader::load_from_str(&read(&deploy_dir().join("docker-compose.yml"))).expect("compose is YAML");
    docs.into_iter().next().expect("one document")
}

/// `(file name, text)` of every `*.env.example` in dist/deploy/.
fn env_examples() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(deploy_dir()).expect("dist/deploy/") {
        let path = entry.expect("entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        if name.ends_with(".env.example") {
            out.push((name, read(&path)));
        }
    }
    assert!(out.len() >= 3, "env examples: {out:?}");
    out
}

/// The `NAME=value` lines of an env file.
fn env_lines(text: &str) -> impl Iterator<Item = (String, String)> + '_ {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
}

/// Every `${NAME` of `dist/config/*.yml`: the variables the binary reads.
fn known_variables() -> BTreeSet<String> {
    let mut known = BTreeSet::new();
    for entry in std::fs::read_dir(repo_root().join("dist/config")).expect("dist/config/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "yml") {
            let text = read(&path);
            for piece in text.split("${").skip(1) {
                let end = piece.find([':', '}']).unwrap_or(piece.len());
                known.insert(piece[..end].to_string());
            }
        }
    }
    known
}

/// The default of `${name:default}` in a settings file.
fn default_of(text: &str, name: &str) -> String {
    let start =
        text.find(&format!("${{{name}:")).unwrap_or_else(|| panic!("{name} is not in the file")) + name.len() + 3;
    text[start..].split('}').next().expect("closing brace").to_string()
}

/// The `host:port` of every `server` line of an HAProxy configuration.
fn haproxy_servers(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(str::split_whitespace)
        .filter_map(|mut words| (words.next() == Some("server")).then(|| words.nth(1)).flatten())
        .map(str::to_string)
        .collect()
}

/// The `trib-driver-*` packages `dist/Cargo.toml` builds with the binary.
fn first_party_drivers() -> Vec<String> {
    let manifest = read(&repo_root().join("dist/Cargo.toml"));
    let drivers: Vec<String> = manifest
        .lines()
        .filter_map(|l| l.trim().split_once(' ').map(|(name, _)| name))
        .filter(|name| name.starts_with("trib-driver-"))
        .map(str::to_string)
        .collect();
    assert!(drivers.len() >= 4, "first-party drivers in dist/Cargo.toml: {drivers:?}");
    drivers
}

/// The directory cargo builds into: `CARGO_TARGET_DIR` (relative to the repository root, where
/// the build runs) or the workspace's `target/`.
fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => repo_root().join(dir),
        None => repo_root().join("target"),
    }
}

/// Runs `command` (a `cargo build ...` line) from the repository root with this test's cargo.
fn run_build(command: &str) {
    let mut words = command.split_whitespace();
    assert_eq!(words.next(), Some("cargo"), "{command}");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args(words)
        .current_dir(repo_root())
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{command}`: {e}"));
    assert!(
        output.status.success(),
        "`{command}` failed (run it from the repository root to see why):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The files under `dir` matching `pattern` (a relative path whose last part may hold `*`).
fn glob(dir: &Path, pattern: &str) -> Vec<PathBuf> {
    let (parent, name) = pattern.rsplit_once('/').map_or(("", pattern), |(p, n)| (p, n));
    let parent = dir.join(parent);
    let Some((prefix, suffix)) = name.split_once('*') else {
        let path = parent.join(name);
        return if path.is_file() { vec![path] } else { Vec::new() };
    };
    let mut found: Vec<PathBuf> = std::fs::read_dir(&parent)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            p.is_file() && n.len() >= prefix.len() + suffix.len() && n.starts_with(prefix) && n.ends_with(suffix)
        })
        .collect();
    found.sort();
    found
}

// ---- The Dockerfile ----

fn dockerfile() -> Dockerfile {
    Dockerfile::parse(&read(&deploy_dir().join("Dockerfile")))
}

/// A Dockerfile as a list of stages of instructions (continuation lines joined, comments out).
#[derive(Debug)]
struct Dockerfile {
    stages: Vec<Stage>,
}

#[derive(Debug)]
struct Stage {
    from: String,
    name: Option<String>,
    instructions: Vec<(String, String)>,
}

/// One `COPY --from=<build stage> SOURCES... DESTINATION`.
#[derive(Debug)]
struct Copy {
    sources: Vec<String>,
    destination: String,
}

impl Dockerfile {
    fn parse(text: &str) -> Dockerfile {
        let mut instructions = Vec::new();
        let mut current = String::new();
        for line in text.lines() {
            let trimmed = line.trim();
            if trimmed.starts_with('#') || trimmed.is_empty() {
                continue;
            }
            match trimmed.strip_suffix('\\') {
                Some(part) => current.push_str(part),
                None => {
                    current.push_str(trimmed);
                    let (keyword, args) = current.split_once(char::is_whitespace).expect("instruction with arguments");
                    instructions.push((keyword.to_ascii_uppercase(), args.trim().to_string()));
                    current.clear();
                }
            }
        }
        let mut stages: Vec<Stage> = Vec::new();
        for (keyword, args) in instructions {
            if keyword == "FROM" {
                let words: Vec<&str> = args.split_whitespace().collect();
                let name = match words.as_slice() {
                    [_, as_, name] if as_.eq_ignore_ascii_case("as") => Some(name.to_string()),
                    [_] => None,
                    _ => panic!("FROM {args}: expected `image [AS name]`"),
                };
                stages.push(Stage { from: words[0].to_string(), name, instructions: Vec::new() });
            } else {
                stages.last_mut().expect("FROM comes first").instructions.push((keyword, args));
            }
        }
        assert!(stages.len() >= 2, "a multi-stage Dockerfile");
        Dockerfile { stages }
    }

    /// The build stage: the one the runtime stage copies from.
    fn builder(&self) -> &Stage {
        let copies = self.copies_from_builder();
        assert!(!copies.is_empty(), "the runtime stage copies nothing from a build stage");
        let runtime = self.stages.last().expect("stages");
        let from = runtime
            .all("COPY")
            .find_map(|a| a.strip_prefix("--from=").map(|r| r.split_whitespace().next().unwrap_or_default()))
            .expect("COPY --from");
        self.stages.iter().find(|s| s.name.as_deref() == Some(from)).unwrap_or_else(|| panic!("no stage named {from}"))
    }

    /// The `cargo build` commands the build stage runs.
    fn cargo_builds(&self) -> Vec<String> {
        self.builder()
            .all("RUN")
            .flat_map(|run| run.split("&&"))
            .map(|c| c.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|c| c.starts_with("cargo build"))
            .collect()
    }

    /// The build stage's `target/` directory, as COPY sources name it (`<WORKDIR>/target/`).
    fn builder_target_dir(&self) -> String {
        let workdir = self.builder().last("WORKDIR").expect("the build stage sets WORKDIR");
        format!("{}/target/", workdir.trim_end_matches('/'))
    }

    /// The runtime stage's copies from another stage.
    fn copies_from_builder(&self) -> Vec<Copy> {
        let runtime = self.stages.last().expect("stages");
        runtime
            .all("COPY")
            .filter(|a| a.starts_with("--from="))
            .map(|args| {
                let mut words: Vec<String> =
                    args.split_whitespace().filter(|w| !w.starts_with("--")).map(str::to_string).collect();
                let destination = words.pop().expect("COPY destination");
                assert!(!words.is_empty(), "COPY {args}: no source");
                Copy { sources: words, destination }
            })
            .collect()
    }
}

impl Stage {
    fn all<'a>(&'a self, keyword: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.instructions.iter().filter(move |(k, _)| k == keyword).map(|(_, a)| a.as_str())
    }

    fn last<'a>(&'a self, keyword: &'a str) -> Option<&'a str> {
        self.all(keyword).last()
    }
}
