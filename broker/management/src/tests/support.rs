//! Test environment: a management plane on a fresh embedded queue and database, a logged-in
//! HTTP client, a recording subscription sink and real executors with the scripted plugin.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use parking_lot::Mutex;
use reqwest::StatusCode;
use serde_json::{json, Value};
use trib_core::{
    config::ExecutorConfig,
    executor::Executor,
    loader::{load_dir, LoadReport},
    queue::{embedded::EmbeddedQueue, Queue},
};
use uuid::Uuid;

use crate::{config::AdminCredentials, db::Db, ManagementConfig, ManagementHandle, SubscriptionSink};

pub const ADMIN: &str = "admin@test.local";
pub const PASSWORD: &str = "correct horse battery staple";
pub const JWT_KEY: &str = "test-signing-key-of-enough-length-0123456789";
pub const WAIT: Duration = Duration::from_secs(20);

/// Runs a scenario `async fn name(backend: Backend)` on SQLite and, when configured, PostgreSQL.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(crate::tests::support::Backend::Sqlite).await
            }

            /// Runs only when `TRIB_TEST_POSTGRES_URL` names a server (the CI's second tier).
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(backend) = crate::tests::support::Backend::postgres() {
                    super::$name(backend).await
                }
            }
        }
    )*};
}
pub(crate) use on_both_backends;

/// Which database.
#[derive(Debug, Clone)]
pub enum Backend {
    /// A file in the test's temporary directory.
    Sqlite,
    /// A fresh database on this server (admin URL).
    Postgres(String),
}

impl Backend {
    pub fn postgres() -> Option<Backend> {
        std::env::var("TRIB_TEST_POSTGRES_URL").ok().filter(|u| !u.is_empty()).map(Backend::Postgres)
    }
}

/// A database that exists for one test; a PostgreSQL one is dropped on drop, even after a panic.
pub struct TestDb {
    pub url: String,
    drop_with: Option<(String, String)>,
}

impl TestDb {
    pub async fn new(backend: &Backend, dir: &std::path::Path) -> TestDb {
        match backend {
            Backend::Sqlite => {
                TestDb { url: format!("sqlite://{}?mode=rwc", dir.join("mgmt.db").display()), drop_with: None }
            }
            Backend::Postgres(admin) => {
                let name = format!("trib_test_{}", Uuid::new_v4().simple());
                let base = admin.split('?').next().unwrap_or(admin);
                let server = &base[..base.rfind('/').expect("database URL has a path")];
                let create = format!("CREATE DATABASE {name}");
                // The named database may not exist yet on a fresh server; `postgres` always does.
                let admin = match crate::db::postgres_admin(admin, &create).await {
                    Ok(()) => admin.clone(),
                    Err(_) => {
                        let fallback = format!("{server}/postgres");
                        crate::db::postgres_admin(&fallback, &create).await.expect("create test database");
                        fallback
                    }
                };
                TestDb { url: format!("{server}/{name}"), drop_with: Some((admin, name)) }
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.drop_with.take() {
            // Drop runs inside the test's runtime, so use a thread with its own.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
                rt.block_on(crate::db::postgres_admin(&admin, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
            })
            .join();
        }
    }
}

/// Records what the management plane told the broker.
#[derive(Default)]
pub struct RecordingSink {
    pub current: Mutex<HashMap<Uuid, Vec<String>>>,
    pub calls: Mutex<Vec<String>>,
}

impl SubscriptionSink for RecordingSink {
    fn set_integration_subscriptions(&self, integration_id: Uuid, filters: &[String]) {
        self.current.lock().insert(integration_id, filters.to_vec());
        self.calls.lock().push(format!("set {integration_id} {filters:?}"));
    }

    fn remove_integration_subscriptions(&self, integration_id: Uuid) {
        self.current.lock().remove(&integration_id);
        self.calls.lock().push(format!("remove {integration_id}"));
    }
}

impl RecordingSink {
    pub fn filters(&self, id: Uuid) -> Option<Vec<String>> {
        self.current.lock().get(&id).cloned()
    }
}

/// One management plane with everything around it.
pub struct Env {
    pub handle: Option<ManagementHandle>,
    pub base: String,
    pub client: reqwest::Client,
    pub token: String,
    pub queue: Arc<dyn Queue>,
    pub sink: Arc<RecordingSink>,
    pub config: ManagementConfig,
    pub db: TestDb,
    pub report: LoadReport,
    pub _dir: tempfile::TempDir,
}

/// The test's management settings: short timeouts, known admin and key.
pub fn test_config(url: &str) -> ManagementConfig {
    ManagementConfig {
        service_id: format!("broker-{}", &Uuid::new_v4().simple().to_string()[..8]),
        bind: "127.0.0.1:0".parse().expect("address"),
        database_url: url.to_string(),
        admin: Some(AdminCredentials { username: ADMIN.into(), password: PASSWORD.into() }),
        jwt_signing_key: JWT_KEY.into(),
        validation_timeout: Duration::from_secs(10),
        executor_announce_interval: Duration::from_secs(2),
        uplink_poll_interval: Duration::from_millis(20),
        ..ManagementConfig::default()
    }
}

impl Env {
    pub async fn start(backend: Backend) -> Env {
        Env::start_with(backend, |_| {}).await
    }

    pub async fn start_with(backend: Backend, tweak: impl FnOnce(&mut ManagementConfig)) -> Env {
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter(std::env::var("TEST_LOG").unwrap_or_else(|_| "warn".into()))
            .try_init();
        let dir = tempfile::tempdir().expect("tempdir");
        let db = TestDb::new(&backend, dir.path()).await;
        let mut config = test_config(&db.url);
        tweak(&mut config);
        Env::launch(config, Arc::new(EmbeddedQueue::new()), db, dir).await
    }

    /// A second broker node of this one's cluster: the same queue and database, its own
    /// service id, sink and HTTP port.
    pub async fn join(&self) -> Env {
        let config = ManagementConfig { service_id: test_config(&self.db.url).service_id, ..self.config.clone() };
        let db = TestDb { url: self.db.url.clone(), drop_with: None };
        Env::launch(config, self.queue.clone(), db, tempfile::tempdir().expect("tempdir")).await
    }

    /// Stops this node and starts it again with `config`, on the same queue and database; the
    /// new node logs in as `config`'s administrator.
    pub async fn restart_with(mut self, config: ManagementConfig) -> Env {
        if let Some(h) = self.handle.take() {
            h.shutdown().await;
        }
        Env::launch(config, self.queue, self.db, self._dir).await
    }

    async fn launch(config: ManagementConfig, queue: Arc<dyn Queue>, db: TestDb, dir: tempfile::TempDir) -> Env {
        let sink = Arc::new(RecordingSink::default());
        let handle =
            crate::Management::start(config.clone(), queue.clone(), sink.clone()).await.expect("management starts");
        let base = format!("http://{}", handle.local_addr());
        // A directory per launch: a restarted node must not overwrite a library still loaded.
        let plugins = dir.path().join(format!("plugins-{}", Uuid::new_v4().simple()));
        std::fs::create_dir(&plugins).expect("plugins dir");
        std::fs::copy(plugin_file("trib_fixture_scripted"), plugins.join("libscripted.so")).expect("copy plugin");
        let report = load_dir(&plugins);
        assert!(report.failures.is_empty(), "{:?}", report.failures);
        let mut env = Env {
            handle: Some(handle),
            base,
            client: reqwest::Client::new(),
            token: String::new(),
            queue,
            sink,
            config,
            db,
            report,
            _dir: dir,
        };
        let (user, password) = env
            .config
            .admin
            .as_ref()
            .map_or((ADMIN.to_string(), PASSWORD.to_string()), |a| (a.username.clone(), a.password.clone()));
        env.token = env.login(&user, &password).await.1["token"].as_str().expect("token").to_string();
        env
    }

    pub async fn login(&self, user: &str, password: &str) -> (StatusCode, Value) {
        let r = self
            .client
            .post(self.url("/api/auth/login"))
            .json(&json!({"username": user, "password": password}))
            .send()
            .await;
        read(r.expect("login request")).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a request with the admin token.
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut rb =
            self.client.request(method, self.url(path)).header("X-Authorization", format!("Bearer {}", self.token));
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        read(rb.send().await.expect("request")).await
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn post_empty(&self, path: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::POST, path, None).await
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::DELETE, path, None).await
    }

    /// Starts a real executor serving SCRIPTED and waits until this node has heard of it.
    pub async fn start_executor(&self, service_id: &str) -> Executor {
        let config = ExecutorConfig {
            service_id: service_id.into(),
            downlink_poll_interval: Duration::from_millis(50),
            msg_poll_interval: Duration::from_millis(50),
            service_info_interval: Duration::from_millis(300),
            stats_enabled: false,
            topics: self.config.topics.clone(),
            ..ExecutorConfig::default()
        };
        let executor = Executor::start(config, self.queue.clone(), &self.report).expect("executor starts");
        self.wait_until("executor announced", || async {
            let (_, list) = self.get("/api/executors").await;
            list.as_array().is_some_and(|l| l.iter().any(|e| e["serviceId"] == service_id && e["live"] == true))
        })
        .await;
        // Let its downlink consumer finish restoring, so that it answers requests in real time.
        tokio::time::sleep(Duration::from_millis(300)).await;
        executor
    }

    pub async fn wait_until<F, Fut>(&self, what: &str, check: F)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + WAIT;
        while !check().await {
            assert!(Instant::now() < deadline, "timed out waiting for: {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Writes `info` to the uplink topic as an executor's announcement (a stand-in executor that
    /// announces what a test needs and then, like a SIGKILLed one, falls silent).
    pub async fn announce_executor(&self, info: trib_queue::wire::ServiceInfo) {
        use prost::Message as _;
        let record = trib_queue::wire::UplinkIntegrationMsgProto {
            event_proto: None,
            service_info_proto: Some(info),
            wire_version: trib_queue::wire::WIRE_VERSION,
        };
        let topic = self.config.topics.uplink();
        let sent = self.queue.producer().send(
            &topic,
            trib_queue::queue::Partitioning::ByKey,
            Some(b"announce"),
            &record.encode_to_vec(),
        );
        sent.await.expect("answered").expect("stored");
    }

    /// Waits until the status endpoint shows `state`.
    pub async fn wait_state(&self, id: &str, state: &str) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let (code, body) = self.get(&format!("/api/integration/{id}/status")).await;
            assert_eq!(code, StatusCode::OK, "{body}");
            if body["state"] == state {
                return body;
            }
            assert!(Instant::now() < deadline, "state never became {state}: {body}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Saves an integration and expects success.
    pub async fn create(&self, name: &str, enabled: bool, client: Value) -> Value {
        let (code, body) = self.post("/api/integration", integration(name, enabled, client)).await;
        assert_eq!(code, StatusCode::OK, "{body}");
        body
    }

    /// Saves an integration body and expects success.
    pub async fn create_body(&self, body: Value) -> Value {
        let (code, saved) = self.post("/api/integration", body).await;
        assert_eq!(code, StatusCode::OK, "{saved}");
        saved
    }

    /// The database, opened a second time (to seed data quickly).
    pub async fn db(&self) -> Db {
        Db::connect(&self.db.url, 2).await.expect("second connection")
    }

    pub async fn stop(mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown().await;
        }
    }
}

/// An integration body of the scripted type.
pub fn integration(name: &str, enabled: bool, client: Value) -> Value {
    json!({
        "name": name,
        "type": "SCRIPTED",
        "enabled": enabled,
        "configuration": {"clientConfiguration": client, "topicFilters": ["sensors/+/temp", "alarms/#"], "metadata": {"site": "a"}},
        "additionalInfo": {"description": "test"}
    })
}

pub async fn read(r: reqwest::Response) -> (StatusCode, Value) {
    let code = r.status();
    let text = r.text().await.unwrap_or_default();
    (code, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// Stops an executor from async code (its shutdown joins threads).
pub fn stop_executor(executor: Executor) {
    tokio::task::block_in_place(|| executor.shutdown());
}

/// The cdylib cargo built for a dev-dependency, next to the test binary.
pub fn plugin_file(crate_name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let name = format!("{}{crate_name}{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX);
    let path = exe.parent().expect("deps dir").join(name);
    assert!(path.exists(), "{} was not built; it is a dev-dependency", path.display());
    path
}

/// Asserts TBMQ's error shape and returns the message.
pub fn assert_error(code: StatusCode, body: &Value, status: u16, error_code: i64) -> String {
    assert_eq!(code.as_u16(), status, "{body}");
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["errorCode"], error_code, "{body}");
    assert!(body["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')), "{body}");
    body["message"].as_str().expect("message").to_string()
}
