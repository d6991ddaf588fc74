//! A minimal W3C WebDriver client over ureq: starts a WebDriver server (chromedriver or
//! geckodriver) on a free loopback port and a headless browser session, and offers the few
//! commands the console test needs (go to a URL, find, click, type, press keys, read text, run a
//! script, take a screenshot, read the page's console errors). Lookups poll until the element is
//! there, so the test reads like what a person does. What differs per browser is in `launch.rs`.

use std::{
    cell::Cell,
    path::Path,
    process::Child,
    time::{Duration, Instant},
};

use serde_json::{json, Value};

use super::launch::{self, Kind};
use crate::node::{free_port, PATIENCE};

/// The key W3C uses for an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Keys of W3C WebDriver's key table that are not characters, for [`Browser::press`].
pub mod key {
    pub const TAB: &str = "\u{E004}";
    pub const ENTER: &str = "\u{E007}";
    pub const SHIFT: &str = "\u{E008}";
    pub const CONTROL: &str = "\u{E009}";
    pub const ESCAPE: &str = "\u{E00C}";
    pub const SPACE: &str = "\u{E00D}";
    pub const END: &str = "\u{E010}";
    pub const HOME: &str = "\u{E011}";
    pub const ARROW_LEFT: &str = "\u{E012}";
    pub const ARROW_UP: &str = "\u{E013}";
    pub const ARROW_RIGHT: &str = "\u{E014}";
}

/// A headless browser session driven through its WebDriver server; both end on drop.
pub struct Browser {
    kind: Kind,
    agent: ureq::Agent,
    session: String,
    driver: Child,
    /// The browser profile (`profile/`) and the driver's output (`driver.log`).
    scratch: tempfile::TempDir,
    /// How much of `driver.log` [`Browser::log`] has read.
    log_read: Cell<usize>,
}

impl Browser {
    /// Starts the WebDriver server and a 1280×800 headless browser of `kind`, or says why not (a
    /// program is not installed, or the session did not start).
    pub fn start(kind: Kind) -> Result<Browser, String> {
        let programs = launch::find(kind)?;
        let scratch = tempfile::tempdir().expect("a browser scratch directory");
        let profile = scratch.path().join("profile");
        std::fs::create_dir(&profile).expect("a browser profile directory");
        let port = free_port();
        let driver = launch::driver_command(kind, &programs, port, &scratch.path().join("driver.log"))?
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", programs.driver.display()))?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let mut browser = Browser {
            kind,
            agent,
            session: format!("http://127.0.0.1:{port}"),
            driver,
            scratch,
            log_read: Cell::new(0),
        };
        crate::node::wait_for("the WebDriver server to answer", || {
            browser.agent.get(&format!("{}/status", browser.session)).call().ok().filter(|r| r.status() == 200)
        });
        let answer = browser.raw("POST", "/session", Some(&launch::capabilities(kind, &programs, &profile)));
        let id = answer["value"]["sessionId"].as_str().ok_or_else(|| format!("no session: {answer}"))?.to_string();
        browser.session = format!("{}/session/{id}", browser.session);
        // The same size in both (Chromium also gets it as an argument, for its first page).
        browser.resize(1280, 800);
        Ok(browser)
    }

    /// Which browser this is.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Loads `url` and waits for the page.
    pub fn goto(&self, url: &str) {
        self.command("POST", "/url", json!({ "url": url }));
    }

    /// The current URL.
    pub fn url(&self) -> String {
        self.command("GET", "/url", Value::Null).as_str().unwrap_or_default().to_string()
    }

    /// Resizes the window (CSS pixels).
    pub fn resize(&self, width: u32, height: u32) {
        self.command("POST", "/window/rect", json!({ "width": width, "height": height }));
    }

    /// Clicks the element `css` once it exists and can be clicked.
    pub fn click(&self, css: &str) {
        self.retry(&format!("click {css}"), || {
            let id = self.find(css)?;
            self.try_command("POST", &format!("/element/{id}/click"), json!({}))
        });
    }

    /// Replaces the value of the input `css` with `text`.
    pub fn type_into(&self, css: &str, text: &str) {
        self.retry(&format!("type into {css}"), || {
            let id = self.find(css)?;
            self.try_command("POST", &format!("/element/{id}/clear"), json!({}))?;
            self.try_command("POST", &format!("/element/{id}/value"), json!({ "text": text }))
        });
    }

    /// The visible text of `css`, once it exists.
    pub fn text(&self, css: &str) -> String {
        self.retry(&format!("read {css}"), || {
            let id = self.find(css)?;
            self.try_command("GET", &format!("/element/{id}/text"), Value::Null)
        })
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    /// Waits until the visible text of `css` contains `expected`; returns the text.
    pub fn wait_text(&self, css: &str, expected: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let text = self
                .find(css)
                .ok()
                .and_then(|id| self.try_command("GET", &format!("/element/{id}/text"), Value::Null).ok());
            let text = text.and_then(|t| t.as_str().map(str::to_string)).unwrap_or_default();
            if text.contains(expected) {
                return text;
            }
            if Instant::now() >= deadline {
                panic!("{css} never showed {expected:?}; it shows {text:?}\n{}", self.describe());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Presses and releases `key` (a character or one of [`key`]'s), as a person at a keyboard
    /// does: to whatever has the focus.
    pub fn press(&self, key: &str) {
        self.keys(&[key], &[]);
    }

    /// Presses `key` while `modifier` (e.g. [`key::SHIFT`]) is held down.
    pub fn press_with(&self, modifier: &str, key: &str) {
        self.keys(&[key], &[modifier]);
    }

    /// Types `text` key by key into whatever has the focus.
    pub fn type_keys(&self, text: &str) {
        let keys: Vec<String> = text.chars().map(String::from).collect();
        self.keys(&keys.iter().map(String::as_str).collect::<Vec<_>>(), &[]);
    }

    /// Whether `css` matches an element now.
    pub fn exists(&self, css: &str) -> bool {
        self.find(css).is_ok()
    }

    /// Runs `script` in the page; returns its result.
    pub fn script(&self, script: &str) -> Value {
        self.command("POST", "/execute/sync", json!({ "script": script, "args": [] }))
    }

    /// Saves a PNG of the window to `path`.
    pub fn screenshot(&self, path: &Path) {
        use base64::Engine as _;
        let png = self.command("GET", "/screenshot", Value::Null);
        let bytes =
            base64::engine::general_purpose::STANDARD.decode(png.as_str().unwrap_or_default()).expect("base64 PNG");
        std::fs::create_dir_all(path.parent().expect("a directory")).expect("create the screenshot directory");
        std::fs::write(path, bytes).expect("write the screenshot");
    }

    /// The page's console messages and script errors since the last call, as
    /// `(level, source, message)` in Chromium's terms for both browsers (`SEVERE` and `WARNING`;
    /// `javascript`, `console-api`, and in Chromium `network`).
    pub fn log(&self) -> Vec<(String, String, String)> {
        match self.kind {
            Kind::Chromium => {
                let url = self.session.clone() + "/se/log";
                let answer = self.raw_url("POST", &url, Some(&json!({"type": "browser"})));
                answer["value"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|e| {
                        let field = |k: &str| e[k].as_str().unwrap_or_default().to_string();
                        (field("level"), field("source"), field("message"))
                    })
                    .collect()
            }
            Kind::Firefox => {
                let output = std::fs::read(self.scratch.path().join("driver.log")).unwrap_or_default();
                let unread = output.get(self.log_read.get()..).unwrap_or_default();
                // Only whole lines: the browser may be writing the last one.
                let whole = unread.iter().rposition(|b| *b == b'\n').map_or(0, |end| end + 1);
                self.log_read.set(self.log_read.get() + whole);
                launch::firefox_log(&String::from_utf8_lossy(&unread[..whole]))
            }
        }
    }

    /// The URL, the page's markup and the browser's log, for failure messages.
    fn describe(&self) -> String {
        let html =
            self.try_command("POST", "/execute/sync", json!({"script": "return document.body.outerHTML", "args": []}));
        let html = html.ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        let html: String = html.chars().take(4000).collect();
        format!("at {}\npage: {html}\nlog: {:?}", self.url(), self.log())
    }

    /// One W3C key action sequence: `held` pressed, each of `keys` pressed and released, `held`
    /// released.
    fn keys(&self, keys: &[&str], held: &[&str]) {
        let mut actions = Vec::new();
        actions.extend(held.iter().map(|k| json!({"type": "keyDown", "value": k})));
        for k in keys {
            actions.push(json!({"type": "keyDown", "value": k}));
            actions.push(json!({"type": "keyUp", "value": k}));
        }
        actions.extend(held.iter().rev().map(|k| json!({"type": "keyUp", "value": k})));
        let body = json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]});
        self.command("POST", "/actions", body);
    }

    fn find(&self, css: &str) -> Result<String, String> {
        let value = self.try_command("POST", "/element", json!({"using": "css selector", "value": css}))?;
        value[ELEMENT].as_str().map(str::to_string).ok_or_else(|| format!("no element: {value}"))
    }

    /// Repeats `attempt` until it succeeds (elements are re-rendered while the page refreshes).
    fn retry(&self, what: &str, mut attempt: impl FnMut() -> Result<Value, String>) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            match attempt() {
                Ok(value) => return value,
                Err(e) if Instant::now() >= deadline => panic!("cannot {what}: {e}\n{}", self.describe()),
                Err(_) => {}
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn command(&self, method: &str, path: &str, body: Value) -> Value {
        self.try_command(method, path, body).unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"))
    }

    fn try_command(&self, method: &str, path: &str, body: Value) -> Result<Value, String> {
        let answer = self.raw_url(method, &format!("{}{path}", self.session), (!body.is_null()).then_some(&body));
        match answer["value"].get("error") {
            Some(error) => Err(format!("{error}: {}", answer["value"]["message"].as_str().unwrap_or_default())),
            None => Ok(answer["value"].clone()),
        }
    }

    fn raw(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let url = format!("{}{path}", self.session);
        self.raw_url(method, &url, body)
    }

    fn raw_url(&self, method: &str, url: &str, body: Option<&Value>) -> Value {
        let result = match method {
            "GET" => self.agent.get(url).call(),
            "DELETE" => self.agent.delete(url).call(),
            _ => self
                .agent
                .post(url)
                .header("Content-Type", "application/json")
                .send(body.map(Value::to_string).unwrap_or_else(|| "{}".into())),
        };
        let mut response = result.unwrap_or_else(|e| panic!("WebDriver {method} {url} failed: {e}"));
        let text = response.body_mut().read_to_string().unwrap_or_default();
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if self.session.contains("/session/") {
            let _ = self.agent.delete(&self.session).call();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
