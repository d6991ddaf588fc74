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
