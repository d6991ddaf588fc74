//! Small pure pieces, as data.

use std::time::Duration;

use trib_core::wire::ServiceInfo;

use crate::{api::error::iso8601, executors::Executors, service::validate_topic_filter, uplink::truncate_chars};

fn check_filter(filter: &str, ok: bool) {
    assert_eq!(validate_topic_filter(filter).is_ok(), ok, "{filter:?}");
}

#[test]
fn topic_filters() {
    for f in ["#", "+", "a/b", "a/+/c", "a/#", "+/+/#", "/", "$share/g/a/#", "a//b"] {
        check_filter(f, true);
    }
    for f in ["", "a/#/b", "a#", "a/b#", "a+/b", "a/+b", "a\0b", &"x".repeat(65_536)] {
        check_filter(f, false);
    }
}

#[test]
fn timestamps_are_iso8601() {
    assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(iso8601(951_782_400_123), "2000-02-29T00:00:00.123Z");
    assert_eq!(iso8601(1_764_126_000_000), "2025-11-26T03:00:00.000Z");
}

#[test]
fn truncation_counts_characters() {
    assert_eq!(truncate_chars("héllo".into(), 2), "hé");
    assert_eq!(truncate_chars("abc".into(), 3), "abc");
    assert_eq!(truncate_chars("abc".into(), 10), "abc");
}

#[test]
fn executors_expire_after_three_intervals() {
    let executors = Executors::new(Duration::from_secs(30));
    let info = ServiceInfo {
        service_id: "ie-1".into(),
        integration_types: vec!["HTTP@1.0.0".into(), "scripted@0.1".into()],
        plugin_errors: vec!["libbad.so: missing symbol".into()],
        ..Default::default()
    };
    executors.announce(&info, 1_000);
    assert!(executors.serves("http", 31_000));
    assert!(executors.serves("SCRIPTED", 31_000));
    assert!(!executors.serves("KAFKA", 31_000));
    assert!(!executors.serves("HTTP", 31_001));
    assert_eq!(executors.live_types(2_000), ["HTTP", "SCRIPTED"]);
    let all = executors.all(40_000);
    assert_eq!((all.len(), all[0].live, all[0].plugin_errors.len()), (1, false, 1));
}

/// The `Allow` table read from an OpenAPI document prefers literal segments, as the router does.
#[test]
fn allowed_methods_from_the_document() {
    let spec = serde_json::json!({"paths": {
        "/integration/{integrationId}": {"get": {}, "post": {}, "delete": {}},
        "/integration/check": {"post": {}},
        "/integration/{integrationId}/enable": {"post": {}, "parameters": []},
    }});
    let allowed = crate::api::AllowedMethods::from_spec(&spec.to_string());
    let get = |path: &str| allowed.lookup(path).map(|v| v.to_str().expect("ascii").to_string());
    assert_eq!(get("/api/integration/check").as_deref(), Some("POST"));
    let mut methods = get("/api/integration/abc").expect("route");
    methods = {
        let mut m: Vec<&str> = methods.split(", ").collect();
        m.sort_unstable();
        m.join(", ")
    };
    assert_eq!(methods, "DELETE, GET, POST");
    assert_eq!(get("/api/integration/abc/enable").as_deref(), Some("POST"), "`parameters` is not a method");
    assert_eq!(get("/api/health/live"), None);
    assert_eq!(get("/health/live").as_deref(), Some("GET, HEAD"));
    assert_eq!(get("/api/integration/a/b/c"), None);
}

/// The served document closes the request bodies and names a save's required fields.
#[test]
fn openapi_document_patch() {
    let generated = serde_json::json!({"components": {"schemas": {
        "IntegrationRequest": {"type": "object", "properties": {}},
        "LoginRequest": {"type": "object"},
        "IntegrationDto": {"type": "object"},
    }}});
    let patched: serde_json::Value =
        serde_json::from_str(&crate::api::openapi_document(&generated.to_string())).expect("json");
    let schemas = &patched["components"]["schemas"];
    assert_eq!(schemas["IntegrationRequest"]["additionalProperties"], false);
    assert_eq!(schemas["LoginRequest"]["additionalProperties"], false);
    assert!(schemas["IntegrationDto"].get("additionalProperties").is_none(), "responses stay open");
    assert_eq!(schemas["IntegrationRequest"]["required"], serde_json::json!(["name", "type", "configuration"]));
    assert_eq!(crate::api::openapi_document("not json"), "not json");
}

/// Request bodies accept only the JSON type their schema names.
#[test]
fn strict_json_field_types() {
    use poem_openapi::types::ParseFromJSON;
    use serde_json::json;

    use crate::api::json::{JsonObject, Text};

    assert_eq!(Text::parse_from_json(Some(json!("x"))).expect("string").0, "x");
    assert_eq!(Option::<Text>::parse_from_json(Some(json!(null))).expect("null").map(|t| t.0), None);
    for wrong in [json!(true), json!(1), json!(1.5), json!([]), json!({})] {
        assert!(Text::parse_from_json(Some(wrong.clone())).is_err(), "{wrong}");
        assert!(Option::<Text>::parse_from_json(Some(wrong.clone())).is_err(), "{wrong}");
    }
    assert!(Text::parse_from_json(None).is_err());
    assert!(JsonObject::parse_from_json(Some(json!({"a": 1}))).is_ok());
    for wrong in [json!("x"), json!(1), json!(true), json!([{}])] {
        assert!(JsonObject::parse_from_json(Some(wrong.clone())).is_err(), "{wrong}");
    }
}

#[test]
fn integration_types_carry_the_newest_declared_schema() {
    use trib_queue::wire::DriverInfoProto;
    let executors = Executors::new(Duration::from_secs(30));
    let driver = |version: &str, schema: Option<&str>| DriverInfoProto {
        integration_type: "HTTP".into(),
        driver_version: version.into(),
        file: format!("/opt/plugins/libtrib_driver_http-{version}.so"),
        config_schema: schema.map(str::to_string),
        capabilities: 8,
        description: "HTTP driver".into(),
    };
    for (id, version, schema) in [
        ("ie-old", "1.9.0", Some(r#"{"type":"object","title":"old"}"#)),
        ("ie-new", "1.10.0", Some(r#"{"type":"object","title":"new"}"#)),
        ("ie-none", "1.11.0", None),
    ] {
        let info = ServiceInfo {
            service_id: id.into(),
            integration_types: vec![format!("HTTP@{version}"), "MQTT@1.0.0".into()],
            drivers: vec![driver(version, schema)],
            ..Default::default()
        };
        executors.announce(&info, 1_000);
    }
    let types = executors.types(2_000);
    assert_eq!(types.iter().map(|t| t.integration_type.as_str()).collect::<Vec<_>>(), ["HTTP", "MQTT"]);
    let http = &types[0];
    assert_eq!(http.driver_versions, ["1.10.0", "1.11.0", "1.9.0"]);
    assert_eq!(http.executors, ["ie-new", "ie-none", "ie-old"]);
    assert_eq!(http.description, "HTTP driver");
    assert_eq!(http.config_schema.as_ref().map(|s| s["title"].clone()), Some(serde_json::json!("new")), "1.10 > 1.9");
    // An executor that says nothing of its drivers still lists the type, without a schema.
    assert_eq!(types[1].driver_versions, ["1.0.0"]);
    assert!(types[1].config_schema.is_none());
    // Expired executors serve nothing.
    assert!(executors.types(40_000).is_empty());
}
