use std::{collections::BTreeSet, fmt::Write};

use abi_stable::{
    std_types::{RResult, RSlice, RStr},
    type_layout::{TLData, TypeLayout},
    StableAbi,
};

use crate::{
    abi::{self, error_kind, Message, StartConfig, UserProperty},
    driver::{Driver, Error, FieldError, Host, Metadata, Outcome},
    support::envelope::{EnvelopeContext, PayloadField},
};

/// Walks a type layout: names, sizes, alignments, fields and function signatures, without the
/// addresses and line numbers that abi_stable's Debug output carries.
fn describe(layout: &'static TypeLayout, seen: &mut BTreeSet<usize>, out: &mut String) {
    // Dedup by identity (within this build), so that `RResult<A, E>` and `RResult<B, E>` are
    // both walked even though abi_stable prints both as `RResult`.
    if !seen.insert(layout as *const TypeLayout as usize) {
        return;
    }
    let key = format!("{}", layout.full_type());
    let _ = writeln!(out, "type {key} size={} align={}", layout.size(), layout.alignment());
    // Pointees of pointers and references, and generic arguments, live in the shared type list.
    for nested in layout.shared_vars().type_layouts() {
        describe(nested(), seen, out);
    }
    let fields = match layout.data() {
        TLData::Primitive(p) => {
            let _ = writeln!(out, "  primitive {p:?}");
            return;
        }
        TLData::Opaque => {
            let _ = writeln!(out, "  opaque");
            return;
        }
        TLData::Struct { fields } | TLData::Union { fields } => fields,
        TLData::Enum(e) => {
            let _ = writeln!(out, "  enum variants {} field counts {:?}", e.variant_names, e.field_count.as_slice());
            e.fields
        }
        TLData::PrefixType(p) => {
            let _ = writeln!(out, "  prefix type, accessible fields {:?}", p.accessible_fields);
            p.fields
        }
    };
    let mut nested = Vec::new();
    for field in fields.iter() {
        let _ = writeln!(out, "  field {}: {}", field.name(), field.full_type());
        for function in field.function_range().iter() {
            let _ = writeln!(out, "    fn {function}");
            for param in function.param_type_layouts.iter() {
                let _ = writeln!(out, "      param {}", param().full_type());
                nested.push(param());
            }
            if let Some(ret) = function.return_type_layout() {
                let _ = writeln!(out, "      returns {}", ret().full_type());
                nested.push(ret());
            }
        }
        nested.push(field.layout());
    }
    for field in layout.phantom_fields().iter() {
        nested.push(field.layout());
    }
    for layout in nested {
        describe(layout, seen, out);
    }
}

const SNAPSHOT_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/abi-1.0.layout");

/// The 1.0 layout is frozen: this fails when any type reachable from the root module changes.
/// Regenerate (only for a new major version) with `TRIB_WRITE_ABI_SNAPSHOT=1 cargo test -p trib-plugin-api`.
#[test]
fn layout_snapshot() {
    let mut text = String::new();
    describe(<abi::DriverModuleRef as StableAbi>::LAYOUT, &mut BTreeSet::new(), &mut text);
    if std::env::var_os("TRIB_WRITE_ABI_SNAPSHOT").is_some() {
        std::fs::write(SNAPSHOT_PATH, &text).expect("write snapshot");
    }
    let frozen = std::fs::read_to_string(SNAPSHOT_PATH).expect("abi-1.0.layout is committed");
    assert!(text.contains("field control"), "the walker must reach the module's fields");
    assert_eq!(text, frozen, "the frozen 1.0 ABI layout changed; see the crate docs on compatibility");
}

#[test]
fn root_module_symbol_name() {
    // export_driver! hard-codes this name so that drivers need no direct abi_stable dependency.
    assert_eq!(abi_stable::library::ROOT_MODULE_LOADER_NAME, "_1as_0lib_1header_0root_bmodule_bloader");
}

fn message<'a>(payload: &'a [u8], props: &'a [UserProperty<'a>]) -> Message<'a> {
    Message {
        qos: 1,
        client_id: RStr::from_str("device-1"),
        broker_node: RStr::from_str("tbmq1"),
        timestamp_ms: 1717000000000,
        user_properties: RSlice::from_slice(props),
        ..Message::new("sensors/1/temp", payload)
    }
}

fn check_envelope(payload: PayloadField<'_>, props: &[UserProperty<'_>], expected: &str) {
    let ctx = EnvelopeContext::new("tbmq-ie1", r#"{"integrationName":"My HTTP","site":"A"}"#);
    let msg = message(br#"{"t":25}"#, props);
    let mut out = Vec::new();
    ctx.write(&msg, payload, &mut out);
    assert_eq!(String::from_utf8(out).unwrap(), expected);
}

#[test]
fn envelope_base64_is_tbmq_field_order() {
    check_envelope(
        PayloadField::Base64(br#"{"t":25}"#),
        &[],
        r#"{"payload":"eyJ0IjoyNX0=","topicName":"sensors/1/temp","clientId":"device-1","eventType":"PUBLISH_MSG","qos":1,"retain":false,"tbmqIeNode":"tbmq-ie1","tbmqNode":"tbmq1","ts":1717000000000,"props":{},"metadata":{"integrationName":"My HTTP","site":"A"}}"#,
    );
}

#[test]
fn envelope_json_payload_is_embedded() {
    let value = serde_json::json!({"t": 25});
    check_envelope(
        PayloadField::Json(&value),
        &[],
        r#"{"payload":{"t":25},"topicName":"sensors/1/temp","clientId":"device-1","eventType":"PUBLISH_MSG","qos":1,"retain":false,"tbmqIeNode":"tbmq-ie1","tbmqNode":"tbmq1","ts":1717000000000,"props":{},"metadata":{"integrationName":"My HTTP","site":"A"}}"#,
    );
}

#[test]
fn envelope_text_payload_and_duplicate_props_last_wins() {
    let props = [
        UserProperty { key: RStr::from_str("k1"), value: RStr::from_str("a") },
        UserProperty { key: RStr::from_str("k2"), value: RStr::from_str("b") },
        UserProperty { key: RStr::from_str("k1"), value: RStr::from_str("c") },
    ];
    check_envelope(
        PayloadField::Text(r#"{"t":25}"#),
        &props,
        r#"{"payload":"{\"t\":25}","topicName":"sensors/1/temp","clientId":"device-1","eventType":"PUBLISH_MSG","qos":1,"retain":false,"tbmqIeNode":"tbmq-ie1","tbmqNode":"tbmq1","ts":1717000000000,"props":{"k1":"c","k2":"b"},"metadata":{"integrationName":"My HTTP","site":"A"}}"#,
    );
}

#[test]
fn envelope_includes_client_cert_cn_when_present() {
    let ctx = EnvelopeContext::new("ie", "not json");
    let mut msg = message(b"x", &[]);
    msg.client_cert_cn = abi_stable::std_types::ROption::RSome(RStr::from_str("CN1"));
    let text = String::from_utf8(ctx.to_vec_base64(&msg)).unwrap();
    assert!(text.contains(r#""ts":1717000000000,"clientCertCn":"CN1","props":{},"metadata":{}}"#), "{text}");
}

/// A driver whose behaviour is chosen by the payload, to exercise the export layer.
struct Scripted;

impl Driver for Scripted {
    fn metadata() -> Metadata {
        Metadata {
            name: "scripted",
            integration_type: "SCRIPTED",
            version: "9.9.9",
            description: "test",
            capabilities: 0,
        }
    }
    fn create(_host: Host) -> Result<Self, Error> {
        Ok(Scripted)
    }
    fn validate(&self, config: &str) -> Vec<FieldError> {
        if config == "{}" {
            Vec::new()
        } else {
            vec![FieldError::new("x", "bad")]
        }
    }
    fn start(&mut self, _config: &StartConfig<'_>) -> Result<(), Error> {
        Ok(())
    }
    fn process(&mut self, batch: &[Message<'_>], _deadline: std::time::Instant) -> Vec<Outcome> {
        match batch.first().map(|m| m.payload()) {
            Some(b"panic") => panic!("boom"),
            Some(b"short") => Vec::new(),
            _ => batch
                .iter()
                .map(|m| match m.payload() {
                    b"retry" => Outcome::Retry("later".into()),
                    b"reject" => Outcome::Rejected("never".into()),
                    b"timeout" => Outcome::Timeout("no answer".into()),
                    _ => Outcome::Delivered,
                })
                .collect(),
        }
    }
    fn stop(&mut self) {}
}

fn with_instance(f: impl FnOnce(&abi::DriverInstance)) {
    let module = crate::export::module::<Scripted>();
    let meta = (module.metadata())();
    assert_eq!(meta.integration_type.as_str(), "SCRIPTED");
    assert_eq!(meta.api_version.as_str(), env!("CARGO_PKG_VERSION"));
    let host = Host::detached();
    let services = abi::HostServices {
        ctx: std::ptr::null(),
        vtable: crate::host::host_vtable(noop_log, noop_enabled, noop_count),
    };
    let _ = host;
    let instance = match (module.create())(services) {
        RResult::ROk(i) => i,
        RResult::RErr(e) => panic!("create failed: {e:?}"),
    };
    f(&instance);
    (instance.vtable.destroy())(instance.state);
}

extern "C" fn noop_log(_: *const std::ffi::c_void, _: u8, _: RStr<'_>) {}
extern "C" fn noop_enabled(_: *const std::ffi::c_void, _: u8) -> bool {
    false
}
extern "C" fn noop_count(_: *const std::ffi::c_void, _: RStr<'_>, _: u64) {}

fn process(instance: &abi::DriverInstance, payloads: &[&'static [u8]]) -> Result<Vec<Outcome>, Error> {
    let msgs: Vec<Message<'_>> = payloads.iter().map(|p| message(p, &[])).collect();
    match (instance.vtable.process())(instance.state, RSlice::from_slice(&msgs), 1000) {
        RResult::ROk(v) => Ok(v.iter().map(Outcome::from_abi).collect()),
        RResult::RErr(e) => Err(Error::from_abi(&e)),
    }
}

#[test]
fn outcomes_cross_the_boundary_in_order() {
    with_instance(|i| {
        let got = process(i, &[b"ok", b"retry", b"reject", b"ok"]).unwrap();
        assert_eq!(
            got,
            vec![
                Outcome::Delivered,
                Outcome::Retry("later".into()),
                Outcome::Rejected("never".into()),
                Outcome::Delivered
            ]
        );
    });
}

#[test]
fn a_panic_in_process_becomes_a_panic_error() {
    with_instance(|i| {
        let err = process(i, &[b"panic"]).unwrap_err();
        assert_eq!(err.kind, crate::driver::ErrorKind::Panic);
        // The text and where it happened, on one line, and nothing printed by the default hook.
        assert!(err.message.starts_with("driver panicked at plugin-api/src/tests.rs:"), "{}", err.message);
        assert!(err.message.ends_with(": boom") && !err.message.contains('\n'), "{}", err.message);
        // The instance keeps answering after the panic.
        assert_eq!(process(i, &[b"ok"]).unwrap(), vec![Outcome::Delivered]);
    });
}

#[test]
fn a_wrong_outcome_count_is_an_error_not_a_misalignment() {
    with_instance(|i| {
        let err = process(i, &[b"short", b"x"]).unwrap_err();
        assert_eq!(err.message, "driver returned 0 outcomes for 2 messages");
    });
}

#[test]
fn validate_returns_field_errors() {
    with_instance(|i| {
        let ok = (i.vtable.validate())(i.state, RStr::from_str("{}"));
        assert!(matches!(ok, RResult::ROk(ref v) if v.is_empty()));
        let bad = (i.vtable.validate())(i.state, RStr::from_str("[]"));
        assert!(matches!(bad, RResult::ROk(ref v) if v.len() == 1 && v[0].field.as_str() == "x"));
    });
}

#[test]
fn unknown_control_is_unsupported() {
    with_instance(|i| match (i.vtable.control())(i.state, RStr::from_str("frobnicate"), RStr::from_str("")) {
        RResult::RErr(e) => assert_eq!(e.kind, error_kind::UNSUPPORTED),
        RResult::ROk(_) => panic!("control must refuse unknown operations"),
    });
}

#[test]
fn a_timeout_crosses_the_boundary_as_its_own_status() {
    with_instance(|i| {
        let got = process(i, &[b"timeout", b"retry"]).unwrap();
        assert_eq!(got, vec![Outcome::Timeout("no answer".into()), Outcome::Retry("later".into())]);
    });
}

fn check_round_trip(outcome: Outcome, status: u8) {
    let abi = outcome.clone().into_abi();
    assert_eq!(abi.status, status, "{outcome:?}");
    assert_eq!(Outcome::from_abi(&abi), outcome);
}

#[test]
fn every_outcome_round_trips_with_its_status_value() {
    // The values are frozen: hosts and drivers built against different 1.x releases agree on them.
    check_round_trip(Outcome::Delivered, 0);
    check_round_trip(Outcome::Retry("down".into()), 1);
    check_round_trip(Outcome::Rejected("404".into()), 2);
    check_round_trip(Outcome::Timeout("no PUBACK".into()), 3);
    assert_eq!(abi::outcome_status::TIMEOUT, 3);
}

#[test]
fn an_unknown_status_reads_as_retry_with_its_value_in_the_reason() {
    let future = abi::Outcome { status: 200, reason: "from a later release".into() };
    assert_eq!(Outcome::from_abi(&future), Outcome::Retry("unknown outcome status 200: from a later release".into()));
}

#[test]
fn reason_is_the_text_of_every_undelivered_outcome() {
    assert_eq!(Outcome::Delivered.reason(), None);
    for outcome in [Outcome::Retry("a".into()), Outcome::Rejected("a".into()), Outcome::Timeout("a".into())] {
        assert_eq!(outcome.reason(), Some("a"), "{outcome:?}");
    }
}

const SCHEMA: &str = r#"{"type":"object","properties":{}}"#;

/// A driver that declares [`SCHEMA`] and answers one module operation of its own.
struct Described;

impl Driver for Described {
    fn metadata() -> Metadata {
        Metadata { capabilities: abi::capabilities::CHECK_CONNECTION, ..Scripted::metadata() }
    }
    fn create(_host: Host) -> Result<Self, Error> {
        Ok(Described)
    }
    fn validate(&self, _config: &str) -> Vec<FieldError> {
        Vec::new()
    }
    fn start(&mut self, _config: &StartConfig<'_>) -> Result<(), Error> {
        Ok(())
    }
    fn process(&mut self, batch: &[Message<'_>], _deadline: std::time::Instant) -> Vec<Outcome> {
        batch.iter().map(|_| Outcome::Delivered).collect()
    }
    fn stop(&mut self) {}
    fn module_control(op: &str, arg: &str) -> Result<String, Error> {
        match op {
            "echo" => Ok(arg.to_string()),
            _ => Err(Error::unsupported(op)),
        }
    }
    fn config_schema() -> Option<&'static str> {
        Some(SCHEMA)
    }
}

/// A driver whose schema getter panics.
struct Broken;

impl Driver for Broken {
    fn metadata() -> Metadata {
        Scripted::metadata()
    }
    fn create(_host: Host) -> Result<Self, Error> {
        Ok(Broken)
    }
    fn validate(&self, _config: &str) -> Vec<FieldError> {
        Vec::new()
    }
    fn start(&mut self, _config: &StartConfig<'_>) -> Result<(), Error> {
        Ok(())
    }
    fn process(&mut self, batch: &[Message<'_>], _deadline: std::time::Instant) -> Vec<Outcome> {
        batch.iter().map(|_| Outcome::Delivered).collect()
    }
    fn stop(&mut self) {}
    fn config_schema() -> Option<&'static str> {
        panic!("no schema today")
    }
}

fn module_call(module: abi::DriverModuleRef, op: &str, arg: &str) -> Result<String, Error> {
    match (module.control())(RStr::from_str(op), RStr::from_str(arg)) {
        RResult::ROk(text) => Ok(text.into_string()),
        RResult::RErr(e) => Err(Error::from_abi(&e)),
    }
}

#[test]
fn a_declared_schema_sets_its_capability_and_answers_the_operation() {
    let module = crate::export::module::<Described>();
    let capabilities = (module.metadata())().capabilities;
    assert_eq!(capabilities, abi::capabilities::CHECK_CONNECTION | abi::capabilities::CONFIG_SCHEMA);
    assert_eq!(module_call(module, abi::control_op::CONFIG_SCHEMA, "").as_deref(), Ok(SCHEMA));
    assert_eq!(module_call(module, "echo", "x").as_deref(), Ok("x"), "the driver's own operations still arrive");
}

#[test]
fn without_a_schema_there_is_no_capability_and_the_operation_is_unsupported() {
    let module = crate::export::module::<Scripted>();
    assert_eq!((module.metadata())().capabilities & abi::capabilities::CONFIG_SCHEMA, 0);
    let err = module_call(module, abi::control_op::CONFIG_SCHEMA, "").unwrap_err();
    assert_eq!(
        (err.kind, err.message.as_str()),
        (crate::driver::ErrorKind::Unsupported, "operation 'config_schema' is not supported")
    );
}

#[test]
fn a_panicking_schema_getter_is_caught_in_metadata_and_in_control() {
    let module = crate::export::module::<Broken>();
    let metadata = (module.metadata())();
    assert_eq!((metadata.capabilities, metadata.description.as_str()), (0, "metadata() panicked"));
    let err = module_call(module, abi::control_op::CONFIG_SCHEMA, "").unwrap_err();
    assert_eq!(err.kind, crate::driver::ErrorKind::Panic);
    assert!(
        err.message.starts_with("driver panicked at ") && err.message.ends_with(": no schema today"),
        "{}",
        err.message
    );
}

#[test]
fn the_new_capability_bit_is_distinct_from_the_1_0_bits() {
    use abi::capabilities::*;
    assert_eq!(CONFIG_SCHEMA, 8);
    assert_eq!(CONFIG_SCHEMA & (CHECK_CONNECTION | INSTANCE_CONTROL | MODULE_CONTROL), 0);
}

/// A driver that announces [`abi::capabilities::TARGET_POLICY`].
struct Guarded;

impl Driver for Guarded {
    fn metadata() -> Metadata {
        Metadata { capabilities: abi::capabilities::TARGET_POLICY, ..Scripted::metadata() }
    }
    fn create(_host: Host) -> Result<Self, Error> {
        Ok(Guarded)
    }
    fn validate(&self, _config: &str) -> Vec<FieldError> {
        Vec::new()
    }
    fn start(&mut self, _config: &StartConfig<'_>) -> Result<(), Error> {
        Ok(())
    }
    fn process(&mut self, batch: &[Message<'_>], _deadline: std::time::Instant) -> Vec<Outcome> {
        batch.iter().map(|_| Outcome::Delivered).collect()
    }
    fn stop(&mut self) {}
}

#[test]
fn a_driver_announcing_the_target_policy_takes_the_hosts_policy() {
    use crate::support::target_policy::{self, Rule, TargetPolicy};
    // The defaults stay in the installed policy, so that tests running beside this one in the
    // same binary still see them.
    let denied: std::net::SocketAddr = "192.0.2.77:4242".parse().unwrap();
    assert_eq!(target_policy::check(denied), Ok(()));
    let mut policy = TargetPolicy::default();
    policy.deny(Rule::parse("192.0.2.77:4242").unwrap().with_source("test"));
    let module = crate::export::module::<Guarded>();
    assert_eq!(module_call(module, abi::control_op::TARGET_POLICY, &policy.to_json()).as_deref(), Ok("ok"));
    let refused = target_policy::check(denied).expect_err("installed rule");
    assert_eq!((refused.rule.as_str(), refused.source.as_str()), ("192.0.2.77/32:4242", "test"));
    // A bad policy is a CONFIG error and leaves the installed one in force.
    let err = module_call(module, abi::control_op::TARGET_POLICY, r#"{"deny":[{"rule":"nope"}]}"#).unwrap_err();
    assert_eq!(err.kind, crate::driver::ErrorKind::Config);
    assert!(err.message.contains("'nope'"), "{}", err.message);
    assert!(target_policy::check(denied).is_err());
}

#[test]
fn a_driver_not_announcing_the_target_policy_refuses_it_as_unsupported() {
    let module = crate::export::module::<Scripted>();
    let policy = crate::support::target_policy::TargetPolicy::default().to_json();
    let err = module_call(module, abi::control_op::TARGET_POLICY, &policy).unwrap_err();
    assert_eq!(err.kind, crate::driver::ErrorKind::Unsupported);
}
