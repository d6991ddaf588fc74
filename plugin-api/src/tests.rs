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
        topic: RStr::from_str("sensors/1/temp"),
        payload: RSlice::from_slice(payload),
        qos: 1,
        retain: false,
        client_id: RStr::from_str("device-1"),
        broker_node: RStr::from_str("tbmq1"),
        timestamp_ms: 1717000000000,
        user_properties: RSlice::from_slice(props),
        content_type: abi_stable::std_types::ROption::RNone,
        correlation_data: abi_stable::std_types::ROption::RNone,
        response_topic: abi_stable::std_types::ROption::RNone,
        message_expiry_secs: abi_stable::std_types::ROption::RNone,
        payload_is_utf8: abi_stable::std_types::ROption::RNone,
        client_cert_cn: abi_stable::std_types::ROption::RNone,
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
        assert_eq!(err.message, "driver panicked: boom");
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
