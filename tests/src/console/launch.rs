//! What differs between the browsers the console test runs in: where each browser and its
//! WebDriver server are installed, how the server starts, the new session's capabilities, and
//! where the page's console errors come from. Chromium keeps them for chromedriver's `/se/log`;
//! Firefox prints them to its own output (with `devtools.console.stdout.content`), which
//! geckodriver passes through to the log file read here. The WebDriver commands, the same for
//! both, are in `webdriver.rs`.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use serde_json::{json, Value};

/// The geckodriver release the tests and `.ci/run` install from crates.io.
pub const GECKODRIVER_VERSION: &str = "0.37.1";

/// A browser the console is tested in, with its WebDriver server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Chromium through chromedriver (Debian's `chromium` and `chromium-driver`).
    Chromium,
    /// Firefox ESR through geckodriver (Debian's `firefox-esr`; geckodriver from crates.io).
    Firefox,
}

impl Kind {
    /// The name used in screenshot file names and messages.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Chromium => "chromium",
            Kind::Firefox => "firefox",
        }
    }

    /// How to install the browser and its driver.
    pub fn install(self) -> String {
        match self {
            Kind::Chromium => "apt-get install chromium chromium-driver".into(),
            Kind::Firefox => {
                format!(
                    "apt-get install firefox-esr; cargo install geckodriver --version {GECKODRIVER_VERSION} --locked"
                )
            }
        }
    }
}

/// The browser's and its WebDriver server's programs, as installed here.
pub struct Programs {
    pub browser: PathBuf,
    pub driver: PathBuf,
}

/// Finds the browser and its driver, or says which one is missing.
pub fn find(kind: Kind) -> Result<Programs, String> {
    let (browsers, drivers): (&[&str], &[&str]) = match kind {
        Kind::Chromium => (&["chromium", "chromium-browser", "google-chrome"], &["chromedriver"]),
        Kind::Firefox => (&["firefox-esr", "firefox"], &["geckodriver"]),
    };
    let browser = browsers.iter().find_map(|p| installed(p)).ok_or_else(|| format!("no {}", browsers[0]))?;
    let driver = drivers.iter().find_map(|p| installed(p)).ok_or_else(|| format!("no {}", drivers[0]))?;
    Ok(Programs { browser, driver })
}

/// The WebDriver server on `port`; its output (and Firefox's, passed through) goes to `log`.
pub fn driver_command(kind: Kind, programs: &Programs, port: u16, log: &Path) -> Result<Command, String> {
    let mut command = Command::new(&programs.driver);
    match kind {
        Kind::Chromium => command.arg(format!("--port={port}")),
        // Port 0 for BiDi's WebSocket: its default (9222) would be shared with any other session.
        Kind::Firefox => command.args(["--port", &port.to_string(), "--websocket-port", "0"]),
    };
    let output = std::fs::File::create(log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let errors = output.try_clone().map_err(|e| format!("cannot share {}: {e}", log.display()))?;
    command.stdin(std::process::Stdio::null()).stdout(output).stderr(errors);
    Ok(command)
}

/// The new session's capabilities: headless, in English, with a fresh `profile` directory and the
/// page's console messages kept where [`Browser::log`](super::webdriver::Browser::log) finds them.
pub fn capabilities(kind: Kind, programs: &Programs, profile: &Path) -> Value {
    let capabilities = match kind {
        Kind::Chromium => json!({
            "browserName": "chrome",
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {"binary": programs.browser, "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,800",
                "--no-first-run", "--disable-extensions", "--lang=en-US",
                format!("--user-data-dir={}", profile.display())
            ]}
        }),
        Kind::Firefox => json!({
            "browserName": "firefox",
            "moz:firefoxOptions": {
                "binary": programs.browser,
                "args": ["-headless", "-profile", profile],
                "prefs": {
                    // The page's console messages on Firefox's output, the browser's own not.
                    "devtools.console.stdout.content": true,
                    "devtools.console.stdout.chrome": false,
                    "intl.accept_languages": "en-US",
                    "intl.locale.requested": "en-US"
                }
            }
        }),
    };
    json!({"capabilities": {"alwaysMatch": capabilities}})
}

/// The page's console errors and warnings and its uncaught exceptions in Firefox's output, as
/// `(level, source, message)` with Chromium's levels and sources. Errors of Firefox's own
/// scripts (`resource://`, `chrome://`) are left out, as Chromium leaves out its own.
pub fn firefox_log(output: &str) -> Vec<(String, String, String)> {
    let entry = |level: &str, source: &str, message: &str| (level.to_string(), source.to_string(), message.to_string());
    output
        .lines()
        .filter_map(|line| {
            if let Some(message) = line.strip_prefix("console.error: ") {
                (!firefox_own(message)).then(|| entry("SEVERE", "console-api", message))
            } else if let Some(message) = line.strip_prefix("console.warn: ") {
                (!firefox_own(message)).then(|| entry("WARNING", "console-api", message))
            } else if let Some(message) = line.strip_prefix("JavaScript error: ") {
                message.starts_with("http").then(|| entry("SEVERE", "javascript", message))
            } else {
                None
            }
        })
        .collect()
}

/// Whether a console message is one of Firefox's own modules': those log through console
/// instances named by a prefix (`RSLoader: `, Remote Settings failing to reach its server from a
/// machine without Internet), printed bare, where a page's string arguments are printed quoted.
fn firefox_own(message: &str) -> bool {
    message.split_once(": ").is_some_and(|(prefix, _)| {
        !prefix.is_empty() && prefix.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    })
}

/// The first `program` on `PATH`, in Debian's places (`/usr/lib/chromium` holds chromedriver on
/// some releases) or in Cargo's `bin` directory (where `cargo install geckodriver` puts it).
fn installed(program: &str) -> Option<PathBuf> {
    let cargo_bin = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")))
        .map(|home| home.join("bin"));
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin".into(), "/usr/lib/chromium".into()])
        .chain(cargo_bin)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

#[test]
fn firefox_output_gives_the_pages_errors_and_warnings_only() {
    let output = "\
1733300000000\tgeckodriver\tINFO\tListening on 127.0.0.1:4444
console.error: \"boom\" http://127.0.0.1:8083/app.js:10
console.warn: \"careful\"
console.error: RSLoader: 
console.warn: RemoteSettings.sys.mjs: no server
console.log: \"fine\"
JavaScript error: http://127.0.0.1:8083/app.js, line 3: TypeError: x is undefined
JavaScript error: resource://gre/modules/Foo.sys.mjs, line 1: NS_ERROR_FAILURE
";
    let entry = |l: &str, s: &str, m: &str| (l.to_string(), s.to_string(), m.to_string());
    assert_eq!(
        firefox_log(output),
        vec![
            entry("SEVERE", "console-api", "\"boom\" http://127.0.0.1:8083/app.js:10"),
            entry("WARNING", "console-api", "\"careful\""),
            entry("SEVERE", "javascript", "http://127.0.0.1:8083/app.js, line 3: TypeError: x is undefined"),
        ]
    );
}
