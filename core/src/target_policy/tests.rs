//! Reading the settings, the own-listener rules, and the policy reaching a real driver library.

use std::{
    net::{SocketAddr, TcpListener},
    sync::Arc,
};

use abi_stable::std_types::RStr;
use trib_plugin_api::abi::StartConfig;

use super::*;
use crate::{
    config::ExecutorConfig,
    loader::load_file,
    queue::{embedded::EmbeddedQueue, Queue},
    registry::DriverHandle,
    service::ExecutorService,
};

fn lookup_of<'a>(vars: &'a [(&'a str, String)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone())
}

fn config(vars: &[(&str, &str)]) -> Result<ExecutorConfig, ConfigError> {
    let vars: Vec<(&str, String)> = vars.iter().map(|(k, v)| (*k, v.to_string())).collect();
    let lookup = lookup_of(&vars);
    ExecutorConfig::from_lookup(&lookup)
}

fn refused_by(policy: &TargetPolicy, addr: &str) -> Option<String> {
    policy.check(addr.parse().expect("test address")).err().map(|r| format!("{} ({})", r.rule, r.source))
}

/// A cdylib cargo built beside this test binary.
fn plugin_file(crate_name: &str) -> std::path::PathBuf {
    let deps = std::env::current_exe().expect("test binary").parent().expect("deps").to_path_buf();
    deps.join(format!("{}{crate_name}{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX))
}

#[test]
fn without_settings_the_policy_is_the_default() {
    assert_eq!(config(&[]).expect("valid").target_policy, TargetPolicy::default());
}

#[test]
fn settings_add_deny_and_allow_rules_to_the_defaults() {
    let c = config(&[(DENY_VAR, "10.0.0.0/8:80-443, [::1]:8083"), (ALLOW_VAR, "10.1.0.0/16,169.254.169.254")])
        .expect("valid");
    let policy = &c.target_policy;
    assert_eq!(refused_by(policy, "10.2.0.1:80").as_deref(), Some("10.0.0.0/8:80-443 (TB_IE_TARGET_DENY)"));
    assert_eq!(refused_by(policy, "[::1]:8083").as_deref(), Some("[::1/128]:8083 (TB_IE_TARGET_DENY)"));
    assert_eq!(refused_by(policy, "10.2.0.1:8080"), None);
    // Allow wins over the deny rules, the defaults included.
    assert_eq!(refused_by(policy, "10.1.0.1:80"), None);
    assert_eq!(refused_by(policy, "169.254.169.254:80"), None);
    let other_link_local = refused_by(policy, "169.254.1.1:80").expect("still denied");
    assert!(other_link_local.starts_with("169.254.0.0/16 (default"), "{other_link_local}");
}

#[test]
fn a_bad_rule_is_an_error_naming_the_variable_and_the_rule() {
    let e = config(&[(DENY_VAR, "10.0.0.0/8,10.0.0.0/40")]).expect_err("bad prefix");
    assert_eq!((e.name.as_str(), e.value.as_str()), (DENY_VAR, "10.0.0.0/8,10.0.0.0/40"));
    assert!(e.reason.contains("'10.0.0.0/40'") && e.reason.contains("at most 32"), "{}", e.reason);
    let e = config(&[(ALLOW_VAR, "metadata.internal")]).expect_err("a name");
    assert_eq!(e.name, ALLOW_VAR);
    assert!(e.reason.contains("not an IP address"), "{}", e.reason);
}

#[test]
fn own_listeners_are_denied_on_their_address_or_on_every_local_address() {
    let mut policy = TargetPolicy::allow_all();
    let rest: SocketAddr = "0.0.0.0:8083".parse().unwrap();
    let ops: SocketAddr = "127.0.0.1:8082".parse().unwrap();
    let unbound: SocketAddr = "0.0.0.0:0".parse().unwrap();
    deny_own_listeners(&mut policy, &[("REST API", rest), ("ops", ops), ("unbound", unbound)]);
    assert_eq!(
        refused_by(&policy, "127.0.0.1:8083").as_deref(),
        Some("local:8083 (own listener: REST API on 0.0.0.0:8083)")
    );
    assert_eq!(
        refused_by(&policy, "[::1]:8083").as_deref(),
        Some("local:8083 (own listener: REST API on 0.0.0.0:8083)")
    );
    assert_eq!(
        refused_by(&policy, "127.0.0.1:8082").as_deref(),
        Some("127.0.0.1/32:8082 (own listener: ops on 127.0.0.1:8082)")
    );
    assert_eq!(refused_by(&policy, "127.0.0.2:8082"), None);
    // A connection to the unspecified address reaches a loopback listener.
    assert_eq!(
        refused_by(&policy, "0.0.0.0:8082").as_deref(),
        Some("0.0.0.0/32:8082 (own listener: ops on 127.0.0.1:8082)")
    );
    assert_eq!(policy.deny_rules().len(), 3, "port 0 is skipped");
}

#[test]
fn a_driver_without_the_capability_is_named_as_not_applying_it() {
    let driver = load_file(&plugin_file("trib_fixture_scripted")).expect("scripted fixture");
    assert_eq!(hand_to(&driver, &TargetPolicy::default()), Handed::NotSupported);
}

/// A listener nothing should reach, and its address.
fn quiet_listener() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let addr = listener.local_addr().expect("addr");
    (listener, addr)
}

/// An executor service on `plugins` with `vars` (plus a unique service id and no stats
/// printing), the process's `listeners`, and the runtime it runs on.
fn service(
    plugins: &std::path::Path,
    vars: &[(&'static str, String)],
    listeners: &[(&str, SocketAddr)],
) -> (tokio::runtime::Runtime, ExecutorService) {
    let mut vars = vars.to_vec();
    vars.push(("TB_PLUGINS_DIR", plugins.display().to_string()));
    vars.push(("TB_SERVICE_ID", format!("policy-test-{}", uuid::Uuid::new_v4().simple())));
    vars.push(("STATS_IE_ENABLED", "false".to_string()));
    let lookup = lookup_of(&vars);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let queue: Arc<dyn Queue> = Arc::new(EmbeddedQueue::new());
    let service = runtime
        .block_on(ExecutorService::start_with_listeners(&lookup, queue, false, listeners))
        .expect("executor starts");
    (runtime, service)
}

/// The error of a connection check to `url` by a new instance of the HTTP driver `library`
/// (already loaded by the service: a library is loaded once per process, so this is the
/// instance of the library the service handed its policy to).
fn http_check_error(library: &std::path::Path, url: &str) -> String {
    let http = load_file(library).expect("HTTP driver");
    let id = "3f1c2d4e-0000-4000-8000-00000000aaaa";
    let mut instance = DriverHandle::create(&http, id).expect("instance");
    let configuration = serde_json::json!({ "restEndpointUrl": url }).to_string();
    let start = StartConfig {
        integration_id: RStr::from_str(id),
        integration_name: RStr::from_str("policy"),
        service_id: RStr::from_str("policy-test"),
        client_configuration: RStr::from_str(&configuration),
        metadata: RStr::from_str("{}"),
    };
    instance.check_connection(&start).expect_err("refused by the policy").to_string()
}

/// The all-in-one path: the service reads the settings, adds the process's own listeners and
/// hands the policy to the drivers it loads (from `TB_PLUGINS_DIR`); a driver of that library
/// then refuses to connect to the listener, naming it, and nothing reaches the listener.
#[test]
fn the_service_hands_the_policy_with_its_own_listeners_to_the_drivers_it_loads() {
    let (rest, rest_addr) = quiet_listener();
    // A copy is a library of its own (its own policy), shared with no other test.
    let plugins = tempfile::tempdir().expect("tempdir");
    let library = plugins.path().join("libpolicy_http.so");
    std::fs::copy(plugin_file("trib_driver_http"), &library).expect("copy the HTTP driver");
    let vars = [("TB_PLUGINS_SCAN_INTERVAL_MS", "0".to_string()), (DENY_VAR, "192.0.2.0/24".to_string())];
    let (runtime, service) = service(plugins.path(), &vars, &[("REST API", rest_addr)]);
    let served = service.status().expect("status").integration_types;
    assert!(served.iter().any(|t| t.starts_with("HTTP@")), "the service serves the copied HTTP driver: {served:?}");
    for (url, rule) in [
        (format!("http://{rest_addr}/api/integration"), format!("own listener: REST API on {rest_addr}")),
        ("http://192.0.2.10/".to_string(), DENY_VAR.to_string()),
    ] {
        let error = http_check_error(&library, &url);
        assert!(error.contains(&rule) && error.contains("target policy"), "{url}: {error}");
    }
    assert!(rest.accept().is_err(), "nothing may reach the process's own listener");
    runtime.block_on(service.shutdown());
}

/// Hot plugging: a driver library copied into the plugins directory while the executor runs
/// gets the policy before its type is served.
#[test]
fn a_hot_plugged_driver_gets_the_policy_before_it_is_served() {
    let (denied, denied_addr) = quiet_listener();
    let plugins = tempfile::tempdir().expect("tempdir");
    let vars = [("TB_PLUGINS_SCAN_INTERVAL_MS", "50".to_string()), (DENY_VAR, denied_addr.to_string())];
    let (runtime, service) = service(plugins.path(), &vars, &[]);
    // Written under another name and renamed into place, as the README says to.
    let library = plugins.path().join("libpolicy_hot_http.so");
    let part = plugins.path().join("libpolicy_hot_http.so.part");
    std::fs::copy(plugin_file("trib_driver_http"), &part).expect("copy the HTTP driver");
    std::fs::rename(&part, &library).expect("rename into place");
    let served =
        |s: &ExecutorService| s.status().is_some_and(|s| s.integration_types.iter().any(|t| t.starts_with("HTTP@")));
    let waited = std::time::Instant::now();
    while !served(&service) {
        assert!(waited.elapsed() < std::time::Duration::from_secs(30), "the copied driver was never served");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let error = http_check_error(&library, &format!("http://{denied_addr}/"));
    assert!(error.contains(DENY_VAR) && error.contains(&denied_addr.to_string()), "{error}");
    assert!(denied.accept().is_err(), "nothing may reach a denied target");
    runtime.block_on(service.shutdown());
}
