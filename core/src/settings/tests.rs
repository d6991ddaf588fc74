use std::collections::BTreeMap;

use super::{Settings, SettingsError};

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn check(yaml: &str, environment: &[(&str, &str)], name: &str, expected: Option<&str>) {
    let s = Settings::parse(yaml, env(environment)).unwrap();
    assert_eq!(s.lookup(name).as_deref(), expected, "{yaml}");
}

#[test]
fn default_from_the_file() {
    check("a:\n  b: \"${A_B:1883}\"\n", &[], "A_B", Some("1883"));
}

#[test]
fn environment_wins() {
    check("a:\n  b: \"${A_B:1883}\"\n", &[("A_B", "1884")], "A_B", Some("1884"));
}

#[test]
fn empty_default_and_colons_in_defaults() {
    check("x: \"${X:}\"\n", &[], "X", Some(""));
    check("x: \"${X:key:value;k2:v2}\"\n", &[], "X", Some("key:value;k2:v2"));
}

#[test]
fn unknown_variable_is_none() {
    check("x: \"${X:1}\"\n", &[], "Y", None);
}

#[test]
fn plain_leaves_have_no_variable() {
    let s = Settings::parse("a: 5\nb: true\n", BTreeMap::new()).unwrap();
    assert!(s.settings().iter().all(|s| s.env.is_none()));
    assert_eq!(s.settings()[0].key, "a");
}

#[test]
fn malformed_placeholders_are_refused() {
    assert!(matches!(Settings::parse("a: \"${lower:1}\"\n", BTreeMap::new()), Err(SettingsError::Placeholder { .. })));
    assert!(matches!(Settings::parse("a: \"${A:1\"\n", BTreeMap::new()), Err(SettingsError::Placeholder { .. })));
    assert!(matches!(Settings::parse("a: [\n", BTreeMap::new()), Err(SettingsError::Yaml(_))));
}

#[test]
fn conflicting_defaults_are_refused() {
    let err = Settings::parse("a: \"${A:1}\"\nb: \"${A:2}\"\n", BTreeMap::new()).unwrap_err();
    assert!(matches!(err, SettingsError::Conflict { .. }));
}

#[test]
fn effective_rendering_masks_secrets() {
    let s = Settings::parse("p: \"${ADMIN_PASSWORD:x}\"\nq: \"${Q:1}\"\n", env(&[("Q", "2")])).unwrap();
    let text = s.render_effective();
    assert!(text.contains("p = \"******\"  # ADMIN_PASSWORD, default"), "{text}");
    assert!(text.contains("q = \"2\"  # Q, from the environment"), "{text}");
}
