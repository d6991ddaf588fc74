//! `tributary` child processes: building the binary once, starting it in one of its three modes
//! with its own working directory, free ports and short intervals, waiting until it answers,
//! stopping it (SIGTERM or SIGKILL) and restarting it on the same directory. Children are killed
//! on drop, so a failing test leaves no process behind.
//!
//! What a process does is observed over the network only; its log file is read just to make
//! failure messages useful.

use std::{
    fs::OpenOptions,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::OnceLock,
    time::{Duration, Instant},
};

/// How long a test waits for something that should happen soon; reaching it fails the test.
pub const PATIENCE: Duration = Duration::from_secs(60);
/// The administrator's password of every process.
pub const ADMIN_PASSWORD: &str = "e2e-admin-secret";
/// A fixed JWT key, so that a token stays valid across a restart of the same node.
const JWT_KEY: &str = "e2e-jwt-signing-key-0123456789abcdef0123456789abcdef";

/// The three ways to run the binary (`TB_SERVICE_TYPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Unset: broker, REST API and executor in one process, in-memory queue, SQLite.
    AllInOne,
    /// `tbmq`: broker and REST API.
    Broker,
    /// `tbmq-integration-executor`.
    Executor,
}

/// A running (or stopped) `tributary` process.
pub struct Node {
    pub service_id: String,
    pub mqtt_port: u16,
    pub http_port: u16,
    pub dir: PathBuf,
    env: Vec<(String, String)>,
    child: Option<Child>,
    log: PathBuf,
}

impl Node {
    /// Starts a process in `dir` (created if missing) with the test defaults plus `extra` (which
    /// wins), and waits until it answers on its HTTP port.
    pub fn start(mode: Mode, dir: &Path, extra: &[(&str, &str)]) -> Node {
        std::fs::create_dir_all(dir).expect("create the node directory");
        let service_id = unique(match mode {
            Mode::AllInOne => "aio",
            Mode::Broker => "tbmq",
            Mode::Executor => "ie",
        });
        let (mqtt_port, http_port) = (free_port(), free_port());
        let mut env: Vec<(String, String)> = [
            ("TB_SERVICE_ID", service_id.as_str()),
            ("LISTENER_TCP_BIND_ADDRESS", "127.0.0.1"),
            ("LISTENER_TCP_BIND_PORT", &mqtt_port.to_string()),
            ("HTTP_BIND_ADDRESS", "127.0.0.1"),
            ("HTTP_BIND_PORT", &http_port.to_string()),
            ("TB_ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("JWT_TOKEN_SIGNING_KEY", JWT_KEY),
            ("TB_IE_SERVICE_INFO_INTERVAL_MS", "500"),
            ("TB_IE_MSG_POLL_INTERVAL", "100"),
            ("TB_IE_DOWNLINK_POLL_INTERVAL", "100"),
            ("TB_IE_UPLINK_POLL_INTERVAL", "100"),
            ("TB_IE_MSG_ACK_STRATEGY_TYPE", "RETRY_ALL"),
            // 0 = retry forever: the only setting under which RETRY_ALL never gives a message up.
            ("TB_IE_MSG_ACK_STRATEGY_RETRIES", "0"),
            ("TB_IE_MSG_ACK_STRATEGY_PAUSE_BETWEEN_RETRIES", "1"),
            ("INTEGRATIONS_REINIT_FREQUENCY_MS", "1000"),
            ("TB_LOG_LEVEL", "info"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        match mode {
            Mode::AllInOne => {}
            Mode::Broker => env.push(("TB_SERVICE_TYPE".into(), "tbmq".into())),
            Mode::Executor => env.push(("TB_SERVICE_TYPE".into(), "tbmq-integration-executor".into())),
        }
        for (k, v) in extra {
            env.retain(|(name, _)| name != k);
            env.push((k.to_string(), v.to_string()));
        }
        let mut node = Node {
            service_id,
            mqtt_port,
            http_port,
            dir: dir.to_path_buf(),
            env,
            child: None,
            log: dir.join(format!("{}.log", unique("node"))),
        };
        node.spawn();
        node
    }

    /// Starts the stopped process again: same directory, ports, service id and settings.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "restart of a running node");
        self.spawn();
    }

    /// The REST API's (or, for an executor, the operations endpoints') base URL.
    pub fn api(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let child = self.child.as_mut().expect("node is running");
        let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("run kill");
        assert!(status.success(), "kill -TERM failed");
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = child.try_wait().expect("wait for the node") {
                self.child = None;
                return status;
            }
            assert!(Instant::now() < deadline, "node did not stop after SIGTERM\n{}", self.log_tail());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL, as a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The end of the process's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let start = lines.len().saturating_sub(400);
        format!("--- last lines of {} ({}) ---\n{}", self.service_id, self.log.display(), lines[start..].join("\n"))
    }

    fn spawn(&mut self) {
        let log = OpenOptions::new().create(true).append(true).open(&self.log).expect("open the node log");
        let mut command = Command::new(binary());
        command.current_dir(&self.dir).env_clear().stdin(Stdio::null());
        for name in ["PATH", "HOME", "TMPDIR"] {
            if let Some(value) = std::env::var_os(name) {
                command.env(name, value);
            }
        }
        command.env("NO_COLOR", "1").envs(self.env.iter().map(|(k, v)| (k, v)));
        command.stdout(log.try_clone().expect("log handle")).stderr(log);
        self.child = Some(command.spawn().expect("start tributary"));
        self.wait_answering();
    }

    fn wait_answering(&mut self) {
        // Ready, not merely answering: a broker's REST port answers before its MQTT listeners
        // open, and a client connecting in between is refused.
        let url = format!("{}/health/ready", self.api());
        let agent: ureq::Agent =
            ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(5))).build().into();
        let deadline = Instant::now() + PATIENCE;
        loop {
            if agent.get(&url).call().is_ok() {
                return;
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("tributary exited at start ({status})\n{}", self.log_tail());
            }
            assert!(Instant::now() < deadline, "tributary did not answer on {url}\n{}", self.log_tail());
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if std::thread::panicking() {
            crate::report(&self.log_tail());
        }
        self.kill();
    }
}

/// The `tributary` binary next to this test executable (`target/<profile>/`), built once per
/// test run with the same profile and target directory.
pub fn binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        // A binary built beforehand (e.g. while the workspace does not build as a whole).
        if let Some(path) = std::env::var_os("TRIB_TEST_BINARY").filter(|p| !p.is_empty()) {
            return PathBuf::from(path);
        }
        let exe = std::env::current_exe().expect("path of the test executable");
        let profile_dir = exe.parent().and_then(Path::parent).expect("the test executable is in target/<profile>/deps");
        let target_dir = profile_dir.parent().expect("target/<profile> has a parent");
        let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => "dev",
            Some(other) => other,
        };
        let cargo = option_env!("CARGO").unwrap_or("cargo");
        let output = Command::new(cargo)
            .args(["build", "-p", "trib-dist", "--bin", "tributary", "--profile", profile, "--target-dir"])
            .arg(target_dir)
            .current_dir(repo_root())
            .output()
            .expect("run cargo build");
        assert!(
            output.status.success(),
            "cargo build -p trib-dist failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let binary = profile_dir.join("tributary");
        assert!(binary.exists(), "{} was not built", binary.display());
        binary
    })
}

pub use trib_test_support::{free_port, unique};

/// The repository root (the walkthrough runs there).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ is inside the repository").to_path_buf()
}

/// Polls `probe` every 100 ms until it returns `Some`, or fails the test with `what` after
/// [`PATIENCE`].
pub fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
