//! Config tests: defaults, strict parsing, environment overrides and rate-limit syntax.

use std::collections::HashMap;
use std::time::Duration;

use super::*;

#[test]
fn defaults_follow_tbmq() {
    let c = BrokerConfig::default();
    assert_eq!((c.listener.tcp.bind_port, c.listener.tcp.max_payload_size), (1883, 65536));
    assert_eq!((c.mqtt.max_in_flight_msgs, c.mqtt.max_keep_alive_sec, c.mqtt.topic_alias_max), (1000, 600, 10));
    assert!(!c.listener.ssl.enabled);
    assert!(c.validate().is_ok());
}

#[test]
fn partial_json_fills_defaults_and_unknown_keys_fail() {
    let c: BrokerConfig = serde_json::from_str(r#"{"mqtt": {"topic_alias_max": 3}}"#).expect("parses");
    assert_eq!((c.mqtt.topic_alias_max, c.mqtt.max_in_flight_msgs), (3, 1000));
    let err = serde_json::from_str::<BrokerConfig>(r#"{"mqtt": {"topic_alias": 3}}"#);
    assert!(err.is_err());
}

#[test]
fn env_overrides_use_tbmq_names() {
    let env: HashMap<&str, &str> = [
        ("LISTENER_TCP_BIND_PORT", "1999"),
        ("MQTT_MAX_IN_FLIGHT_MSGS", "5"),
        ("TCP_NETTY_MAX_PAYLOAD_SIZE", "1024"),
        ("MQTT_KEEP_ALIVE_MAX_KEEP_ALIVE_SEC", "30"),
        ("MQTT_TOPIC_ALIAS_MAX", "0"),
    ]
    .into_iter()
    .collect();
    let mut c = BrokerConfig::default();
    c.apply_env(|k| env.get(k).map(|v| (*v).to_owned())).expect("valid");
    assert_eq!((c.listener.tcp.bind_port, c.listener.tcp.max_payload_size), (1999, 1024));
    assert_eq!((c.mqtt.max_in_flight_msgs, c.mqtt.max_keep_alive_sec, c.mqtt.topic_alias_max), (5, 30, 0));
    let bad = c.apply_env(|k| (k == "MQTT_MAX_IN_FLIGHT_MSGS").then(|| "many".to_owned()));
    assert_eq!(bad, Err(ConfigError::Env { name: "MQTT_MAX_IN_FLIGHT_MSGS", value: "many".to_owned() }));
}

#[test]
fn rate_limit_syntax() {
    assert_eq!(
        parse_rate_limit("10:1, 300:60"),
        Ok(vec![(10, Duration::from_secs(1)), (300, Duration::from_secs(60))])
    );
    for bad in ["", "10", "10:0", "x:1", "10:1,"] {
        assert_eq!(parse_rate_limit(bad), Err(ConfigError::RateLimit(bad.to_owned())), "{bad}");
    }
}

#[test]
fn invalid_values_are_refused() {
    let mut c = BrokerConfig::default();
    c.listener.tcp.bind_address = "localhost:1".to_owned();
    assert_eq!(c.validate().err(), Some(ConfigError::BindAddress("localhost:1".to_owned())));
    let mut c = BrokerConfig::default();
    c.listener.ssl.enabled = true;
    assert_eq!(c.validate().err(), Some(ConfigError::MissingTlsFiles));
    let mut c = BrokerConfig::default();
    c.mqtt.max_in_flight_msgs = 0;
    assert!(matches!(c.validate(), Err(ConfigError::OutOfRange { .. })));
}

#[test]
fn new_listener_and_security_keys_from_the_environment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acl_file = dir.path().join("acl");
    std::fs::write(&acl_file, "user carol\ntopic read c/#\n").expect("write");
    let acl_path = acl_file.to_str().expect("utf-8 path").to_owned();
    let env: HashMap<&str, &str> = [
        ("LISTENER_SSL_CLIENT_AUTH", "Required"),
        ("LISTENER_SSL_PEM_CLIENT_CA", "/etc/ca.pem"),
        ("LISTENER_SSL_PEM_CERT", ""),
        ("LISTENER_WS_ENABLED", "true"),
        ("LISTENER_WS_BIND_PORT", "0"),
        ("WS_NETTY_SUB_PROTOCOLS", "mqtt"),
        ("WS_NETTY_MAX_PAYLOAD_SIZE", "2048"),
        ("SECURITY_MQTT_ACL", "user bob; topic write b/#"),
        ("SECURITY_MQTT_ACL_FILE", acl_path.as_str()),
    ]
    .into_iter()
    .collect();
    let mut c = BrokerConfig::default();
    c.apply_env(|k| env.get(k).map(|v| (*v).to_owned())).expect("valid");
    assert_eq!(c.listener.ssl.client_auth, ClientAuth::Required);
    assert_eq!(c.listener.ssl.client_ca_file, Some(PathBuf::from("/etc/ca.pem")));
    assert_eq!(c.listener.ssl.cert_file, None, "an empty path is no file");
    assert_eq!((c.listener.ws.enabled, c.listener.ws.bind_port, c.listener.ws.max_payload_size), (true, 0, 2048));
    let s = c.validate().expect("valid");
    assert_eq!(s.ws.expect("ws").sub_protocols, ["mqtt"]);
    let acl = s.acl.expect("acl on");
    use crate::acl::Principal;
    assert!(acl.for_client(Principal::User("bob"), "x").can_publish("b/1"));
    assert!(acl.for_client(Principal::User("carol"), "x").can_subscribe("c/1"));
    let bad = c.apply_env(|k| (k == "LISTENER_SSL_CLIENT_AUTH").then(|| "sometimes".to_owned()));
    assert!(matches!(bad, Err(ConfigError::Env { name: "LISTENER_SSL_CLIENT_AUTH", .. })));
}

#[test]
fn acl_errors_and_defaults() {
    let c = BrokerConfig::default();
    assert!(c.validate().expect("valid").acl.is_none(), "no rules: no ACL");
    assert!(c.validate().expect("valid").ws.is_none(), "WebSocket is off by default");
    let mut c = BrokerConfig::default();
    c.security.acl = "topic read a\nbogus".to_owned();
    assert!(matches!(c.validate(), Err(ConfigError::Acl(crate::acl::AclError { line: 2, .. }))));
    let mut c = BrokerConfig::default();
    c.security.acl_file = Some(PathBuf::from("/nonexistent/acl"));
    assert!(matches!(c.validate(), Err(ConfigError::AclFile { .. })));
    let mut c = BrokerConfig::default();
    c.listener.ws.enabled = true;
    c.listener.ws.sub_protocols = " , ".to_owned();
    assert_eq!(c.validate().err(), Some(ConfigError::NoSubProtocols));
}

/// The distribution's config file names the broker's keys with the broker's own defaults.
#[cfg(feature = "service")]
#[test]
fn distribution_file_defaults_are_the_broker_defaults() {
    let text = include_str!("../../../dist/config/tbmq.yml");
    let settings = trib_ops::settings::Settings::parse(text, Default::default()).expect("file parses");
    for key in [
        "LISTENER_SSL_CLIENT_AUTH",
        "LISTENER_SSL_PEM_CLIENT_CA",
        "LISTENER_WS_ENABLED",
        "LISTENER_WS_BIND_PORT",
        "WS_NETTY_SUB_PROTOCOLS",
        "WS_NETTY_MAX_PAYLOAD_SIZE",
        "SECURITY_MQTT_ACL",
        "SECURITY_MQTT_ACL_FILE",
        "MQTT_TOPIC_MIN_LENGTH_FOR_ALIAS_REPLACEMENT",
        "INTEGRATIONS_MAX_TOPIC_FILTERS",
        "TB_KAFKA_RETAINED_MSG_TOPIC",
        "TB_KAFKA_RETAINED_MSG_TOPIC_PROPERTIES",
        "TB_KAFKA_BASIC_DL_MSG_TOPIC_PREFIX",
        "TB_KAFKA_BASIC_DL_MSG_TOPIC_PROPERTIES",
        "TB_KAFKA_PERSISTED_MSG_TOPIC_PROPERTIES",
    ] {
        assert!(settings.lookup(key).is_some(), "{key} is missing from dist/config/tbmq.yml");
    }
    let mut c = BrokerConfig::default();
    c.apply_env(|k| settings.lookup(k)).expect("valid");
    let defaults = BrokerConfig::default();
    assert_eq!(c.listener, defaults.listener);
    assert_eq!(c.security, defaults.security);
    assert_eq!(c.mqtt.min_length_for_alias_replacement, defaults.mqtt.min_length_for_alias_replacement);
    let management = crate::service::management_config(&|k| settings.lookup(k)).expect("valid");
    assert_eq!(management.max_topic_filters, trib_management::ManagementConfig::default().max_topic_filters);
    let capped = crate::service::management_config(&|k| {
        if k == "INTEGRATIONS_MAX_TOPIC_FILTERS" {
            Some("5".to_owned())
        } else {
            settings.lookup(k)
        }
    });
    assert_eq!(capped.expect("valid").max_topic_filters, 5);
    assert_eq!(management.node_heartbeat_interval, std::time::Duration::from_secs(10), "tbmq.yml's default");
    assert_eq!(
        management.topics.basic_downlink_properties,
        trib_queue::topics::DEFAULT_BASIC_DOWNLINK_TOPIC_PROPERTIES
    );
    let settings = &settings;
    let heartbeat = |value: &'static str| {
        crate::service::management_config(&move |k: &str| {
            if k == "TB_SERVICE_INFO_INTERVAL_MS" {
                Some(value.to_owned())
            } else {
                settings.lookup(k)
            }
        })
    };
    assert_eq!(heartbeat("250").expect("valid").node_heartbeat_interval, std::time::Duration::from_millis(250));
    let zero = heartbeat("0").expect_err("a zero interval would spin");
    assert_eq!((zero.name.as_str(), zero.reason.as_str()), ("TB_SERVICE_INFO_INTERVAL_MS", "must be above zero"));
}
