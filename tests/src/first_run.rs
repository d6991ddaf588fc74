//! The README's first command, run as a newcomer runs it: the command line of the "Quick start"
//! block, exactly as written, under `bash` with the repository root as working directory (where
//! `plugins/` is the drivers' source folder, not a folder of built drivers). The only additions
//! are the environment variables that keep a test off the machine's real ports and off the
//! repository's `data/` (other ports, a temporary database and queue directory); the command
//! itself, the working directory and the plugin discovery are the user's.
//!
//! It checks what a newcomer needs next: the REST port says ready, the administrator logs in with
//! the password the command set, executors serve HTTP, MQTT and KAFKA, and an HTTP integration
//! created over REST delivers a published message.
//!
//! The command builds the release profile; `.ci/run` builds it beforehand, so here it only checks
//! that the build is fresh. Without that, the first run of this test includes the release build.

use std::{
    os::unix::process::CommandExt,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::{
    devices::publish_all,
    http_target::HttpTarget,
    node::{free_port, repo_root, unique},
    rest::{http_integration, Rest},
};

/// How long the command may take to answer, release build included (a cold build on two cores
/// takes about a quarter of an hour).
const BUILD_AND_START: Duration = Duration::from_secs(45 * 60);

#[test]
fn readme_first_command_from_the_repository_root_serves_every_first_party_type() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("read README.md");
    let command = quick_start_command(&readme);
    assert!(command.contains("cargo run"), "the quick start runs the binary with cargo: {command}");
    let password = command
        .split_whitespace()
        .find_map(|w| w.strip_prefix("TB_ADMIN_PASSWORD="))
        .expect("the quick start sets TB_ADMIN_PASSWORD")
        .to_string();

    let data = tempfile::tempdir().expect("temp dir");
    let (mqtt_port, http_port) = (free_port(), free_port());
    let log = data.path().join("first-run.log");
    let out = std::fs::File::create(&log).expect("create the log");
    let child = Command::new("bash")
        .args(["-c", &command])
        .current_dir(repo_root())
        .env("LISTENER_TCP_BIND_ADDRESS", "127.0.0.1")
        .env("LISTENER_TCP_BIND_PORT", mqtt_port.to_string())
        .env("HTTP_BIND_ADDRESS", "127.0.0.1")
        .env("HTTP_BIND_PORT", http_port.to_string())
        .env("SPRING_DATASOURCE_URL", format!("sqlite://{}/tributary.db?mode=rwc", data.path().display()))
        .env("TB_QUEUE_IN_MEMORY_DIR", data.path().join("queue"))
        .env("NO_COLOR", "1")
        .env_remove("TB_PLUGINS_DIR")
        .env_remove("TB_SERVICE_TYPE")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("log handle"))
        .stderr(out)
        // Its own process group: the group (bash, cargo, tributary) is stopped at the end.
        .process_group(0)
        .spawn()
        .expect("run bash");
    let mut process = Group { child, log: log.clone() };

    let api = format!("http://127.0.0.1:{http_port}");
    process.wait_ready(&api);
    let rest = Rest::login_with(&api, &password);
    rest.wait_executors(&["HTTP", "MQTT", "KAFKA"], 1);

    let target = HttpTarget::start();
    let topic = format!("{}/temp", unique("first-run"));
    let id = rest.create_integration(&http_integration(&unique("first-run"), &target.url("/ingest"), &topic));
    rest.wait_state(&id, "Active");
    publish_all(mqtt_port, &unique("first-run-device"), &[(topic.clone(), b"{\"t\":21.5}".to_vec())]);
    let got = target.wait_delivered("the published message", |d| !d.is_empty());
    assert_eq!(got[0].json()["topicName"], topic.as_str(), "{}", process.log_tail());
    assert_eq!(got[0].json()["payload"]["t"], 21.5);
    process.stop();
}

#[test]
fn the_quick_start_command_is_the_first_bash_block_of_its_section() {
    let text = "# T\n```bash\nnot this\n```\n## Quick start\nText.\n```bash\nA=1 cargo run -p x\n```\n\
                ```bash\ncargo test\n```\n## Next\n";
    assert_eq!(quick_start_command(text), "A=1 cargo run -p x");
}

/// The one command line of the first ```bash block under "## Quick start".
fn quick_start_command(readme: &str) -> String {
    let start = readme.find("\n## Quick start\n").expect("README has a ## Quick start section");
    let section = &readme[start..];
    let block = section.find("```bash\n").expect("the quick start has a bash block") + "```bash\n".len();
    let end = section[block..].find("```").expect("the bash block ends") + block;
    let lines: Vec<&str> = section[block..end].lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "the quick start's first block is one command: {lines:?}");
    lines[0].trim().to_string()
}

/// The command's process group, stopped on drop.
struct Group {
    child: Child,
    log: std::path::PathBuf,
}

impl Group {
    /// Waits until `/health/ready` answers 200 (the build, then the start).
    fn wait_ready(&mut self, api: &str) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(5)))
            .build()
            .into();
        let deadline = Instant::now() + BUILD_AND_START;
        let mut last = String::from("no answer");
        loop {
            if let Ok(mut response) = agent.get(&format!("{api}/health/ready")).call() {
                let status = response.status().as_u16();
                let body = response.body_mut().read_to_string().unwrap_or_default();
                if status == 200 {
                    return;
                }
                last = format!("{status} {body}");
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the quick-start command exited ({status})\n{}", self.log_tail());
            }
            assert!(Instant::now() < deadline, "not ready: {last}\n{}", self.log_tail());
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        format!("--- {} ---\n{}", self.log.display(), lines[lines.len().saturating_sub(200)..].join("\n"))
    }

    /// SIGTERM to the group, then SIGKILL if it has not exited within 30 s.
    fn stop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if std::thread::panicking() {
            crate::report(&self.log_tail());
        }
        self.stop();
    }
}
