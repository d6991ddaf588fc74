//! A small client of the REST API (ureq, blocking): log in as the administrator, create, enable
//! and disable integrations, and wait for the states and executors the API reports. Statuses
//! other than the expected one fail the test with the response body.

use std::time::Duration;

use serde_json::Value;

use crate::node::{wait_for, ADMIN_PASSWORD};

/// An enabled HTTP integration of `filter` posting TBMQ's envelope (JSON payload embedded) to `url`,
/// one request at a time (so that arrival order is delivery order).
pub fn http_integration(name: &str, url: &str, filter: &str) -> Value {
    serde_json::json!({
        "name": name,
        "type": "HTTP",
        "enabled": true,
        "configuration": {
            "clientConfiguration": {
                "restEndpointUrl": url,
                "requestMethod": "POST",
                "headers": {},
                "payloadContentType": "JSON",
                "sendOnlyMsgPayload": false,
                "maxParallelRequestsCount": 1,
                "readTimeoutMs": 5000
            },
            "topicFilters": [filter],
            "metadata": {}
        }
    })
}

/// A logged-in administrator of one node.
pub struct Rest {
    base: String,
    agent: ureq::Agent,
    token: String,
}

impl Rest {
    /// Logs in at `base` (`http://127.0.0.1:port`).
    pub fn login(base: &str) -> Rest {
        Rest::login_with(base, ADMIN_PASSWORD)
    }

    /// Logs in at `base` with the administrator's `password`.
    pub fn login_with(base: &str, password: &str) -> Rest {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let mut rest = Rest { base: base.to_string(), agent, token: String::new() };
        let body = serde_json::json!({"username": "sysadmin@thingsboard.org", "password": password});
        let (status, answer) = rest.call("POST", "/api/auth/login", Some(&body));
        assert_eq!(status, 200, "login failed: {answer}");
        rest.token = answer["token"].as_str().expect("a token").to_string();
        rest
    }

    /// `GET path` -> (status, JSON body or Null).
    pub fn get(&self, path: &str) -> (u16, Value) {
        self.call("GET", path, None)
    }

    /// A sample of the Prometheus series `name` (without labels) on `/metrics`, if it is there.
    pub fn metric(&self, name: &str) -> Option<f64> {
        let text = self.agent.get(format!("{}/metrics", self.base)).call().ok()?.body_mut().read_to_string().ok()?;
        text.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
    }

    /// `POST path` with a JSON body -> (status, JSON body or Null).
    pub fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.call("POST", path, Some(body))
    }

    /// Creates an integration and returns its id; anything but 200 fails the test.
    pub fn create_integration(&self, body: &Value) -> String {
        let (status, answer) = self.post("/api/integration", body);
        assert_eq!(status, 200, "creating the integration failed: {answer}");
        answer["id"].as_str().expect("the saved integration has an id").to_string()
    }

    /// Waits until the integration's derived state (`/status`) is `state`.
    pub fn wait_state(&self, id: &str, state: &str) -> Value {
        let mut last = Value::Null;
        let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wait_for(&format!("integration {id} to be {state}"), || {
                let (code, answer) = self.get(&format!("/api/integration/{id}/status"));
                let hit = code == 200 && answer["state"] == state;
                last = answer.clone();
                hit.then_some(answer)
            })
        }));
        found.unwrap_or_else(|_| panic!("integration {id} never became {state}; last status: {last}"))
    }

    /// Waits until live executors serve every type in `types`, `count` of them for each.
    pub fn wait_executors(&self, types: &[&str], count: usize) {
        wait_for(&format!("{count} live executor(s) serving {types:?}"), || {
            let (code, answer) = self.get("/api/executors");
            let executors = answer.as_array().cloned().unwrap_or_default();
            let serving = |t: &str| {
                executors
                    .iter()
                    .filter(|e| e["live"] == true)
                    .filter(|e| {
                        e["integrationTypes"].as_array().is_some_and(|ts| {
                            ts.iter().any(|x| x.as_str().is_some_and(|x| x.split('@').next() == Some(t)))
                        })
                    })
                    .count()
            };
            (code == 200 && types.iter().all(|t| serving(t) >= count)).then_some(())
        })
    }

    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let auth = format!("Bearer {}", self.token);
        let result = match (method, body) {
            ("GET", _) => self.agent.get(&url).header("X-Authorization", &auth).call(),
            ("DELETE", _) => self.agent.delete(&url).header("X-Authorization", &auth).call(),
            (_, body) => self
                .agent
                .post(&url)
                .header("X-Authorization", &auth)
                .header("Content-Type", "application/json")
                .send(body.map(Value::to_string).unwrap_or_default()),
        };
        let mut response = result.unwrap_or_else(|e| panic!("{method} {url} failed: {e}"));
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}
