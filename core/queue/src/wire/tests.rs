//! One test per top-level message: fixed bytes (written out field by field) decode to the
//! expected value, and encoding the value gives the same bytes back.

use prost::Message;

use super::*;

fn check<M: Message + Default + PartialEq + std::fmt::Debug>(bytes: &[u8], expected: M) {
    let decoded = M::decode(bytes).expect("decode");
    assert_eq!(decoded, expected);
    assert_eq!(expected.encode_to_vec(), bytes, "re-encoding differs");
}

#[test]
fn publish_integration_msg() {
    check(
        &[
            0x0a, 0x17, // field 1 publishMsgProto, 23 bytes
            0x0a, 0x02, b'd', b'1', // clientId "d1"
            0x1a, 0x02, b'h', b'i', // payload "hi"
            0x28, 0x01, // qos 1
            0x32, 0x03, b'a', b'/', b'b', // topicName "a/b"
            0x3a, 0x06, // userProperties[0], 6 bytes
            0x0a, 0x01, b'k', // key "k"
            0x12, 0x01, b'v', // value "v"
            0x12, 0x02, b'n', b'1', // tbmqNode "n1"
            0x18, 0x05, // timestamp 5
            0x78, 0x01, // wire_version 1 (field 15)
        ],
        PublishIntegrationMsgProto {
            publish_msg_proto: Some(PublishMsgProto {
                client_id: "d1".into(),
                payload: bytes::Bytes::from_static(b"hi"),
                qos: 1,
                topic_name: "a/b".into(),
                user_properties: vec![UserPropertyProto { key: "k".into(), value: "v".into() }],
                ..Default::default()
            }),
            tbmq_node: "n1".into(),
            timestamp: 5,
            wire_version: 1,
        },
    );
}

#[test]
fn downlink_deleted_msg_carries_only_id_type_event() {
    check(
        &[
            0x0a, 0x0c, // field 1 integrationMsg, 12 bytes
            0x08, 0x01, // integrationIdMSB 1
            0x10, 0x02, // integrationIdLSB 2
            0x1a, 0x04, b'H', b'T', b'T', b'P', // type "HTTP"
            0x38, 0x02, // event DELETED
            0x78, 0x01, // wire_version 1
        ],
        DownlinkIntegrationMsgProto {
            integration_msg: Some(IntegrationMsgProto {
                integration_id_msb: 1,
                integration_id_lsb: 2,
                r#type: "HTTP".into(),
                event: ComponentLifecycleEvent::Deleted as i32,
                ..Default::default()
            }),
            validation_request_msg: None,
            wire_version: 1,
        },
    );
}

#[test]
fn downlink_updated_msg() {
    check(
        &[
            0x0a, 0x0e, // field 1 integrationMsg, 14 bytes
            0x1a, 0x01, b'X', // type "X"
            0x22, 0x01, b'n', // name "n"
            0x28, 0x01, // enabled true
            0x32, 0x02, b'{', b'}', // configuration "{}"
            0x38, 0x01, // event UPDATED
        ],
        DownlinkIntegrationMsgProto {
            integration_msg: Some(IntegrationMsgProto {
                r#type: "X".into(),
                name: Some("n".into()),
                enabled: Some(true),
                configuration: Some("{}".into()),
                event: ComponentLifecycleEvent::Updated as i32,
                ..Default::default()
            }),
            ..Default::default()
        },
    );
}

#[test]
fn downlink_validation_request() {
    check(
        &[
            0x12, 0x16, // field 2 validationRequestMsg, 22 bytes
            0x08, 0x07, // idMSB 7
            0x1a, 0x02, b'b', b'1', // serviceId "b1"
            0x22, 0x02, 0x30, 0x01, // configuration {enabled: true}
            0x2a, 0x08, b'V', b'A', b'L', b'I', b'D', b'A', b'T', b'E', // type "VALIDATE"
            0x48, 0x64, // deadline 100 (field 9)
        ],
        DownlinkIntegrationMsgProto {
            validation_request_msg: Some(IntegrationValidationRequestProto {
                id_msb: 7,
                service_id: "b1".into(),
                configuration: Some(IntegrationProto { enabled: true, ..Default::default() }),
                r#type: "VALIDATE".into(),
                deadline: 100,
                ..Default::default()
            }),
            ..Default::default()
        },
    );
}

#[test]
fn uplink_lifecycle_event() {
    check(
        &[
            0x0a, 0x0e, // field 1 eventProto, 14 bytes
            0x10, 0x01, // eventSourceIdMSB 1
            0x22, 0x02, b'i', b'e', // serviceId "ie"
            0x2a, 0x06, // lifecycle, 6 bytes
            0x0a, 0x02, b'O', b'K', // lcEventType "OK"
            0x10, 0x01, // success true
        ],
        UplinkIntegrationMsgProto {
            event_proto: Some(IntegrationEventProto {
                event_source_id_msb: 1,
                service_id: "ie".into(),
                lifecycle: Some(LifecycleEventProto { lc_event_type: "OK".into(), success: true, error: None }),
                ..Default::default()
            }),
            ..Default::default()
        },
    );
}

#[test]
fn uplink_service_info() {
    check(
        &[
            0x12, 0x0a, // field 2 serviceInfoProto, 10 bytes
            0x0a, 0x02, b'i', b'e', // serviceId "ie"
            0x82, 0x01, 0x03, b'H', b'T', b'T', // field 16 integrationTypes ["HTT"]
        ],
        UplinkIntegrationMsgProto {
            service_info_proto: Some(ServiceInfo {
                service_id: "ie".into(),
                integration_types: vec!["HTT".into()],
                ..Default::default()
            }),
            ..Default::default()
        },
    );
}

#[test]
fn notification_with_field_errors() {
    check(
        &[
            0x0a, 0x0d, // field 1 response, 13 bytes
            0x1a, 0x01, b'e', // error "e"
            0x22, 0x08, // fieldErrors[0], 8 bytes
            0x0a, 0x01, b'f', // field "f"
            0x12, 0x03, b'b', b'a', b'd', // message "bad"
        ],
        UplinkIntegrationNotificationMsgProto {
            integration_validation_response_msg: Some(IntegrationValidationResponseProto {
                error: Some("e".into()),
                field_errors: vec![FieldErrorProto { field: "f".into(), message: "bad".into() }],
                ..Default::default()
            }),
            ..Default::default()
        },
    );
}

#[test]
fn uuid_bits_match_java() {
    // java.util.UUID.fromString("123e4567-e89b-12d3-a456-426614174000"):
    // getMostSignificantBits() = 1314564453825188563, getLeastSignificantBits() = -6605018797301088256.
    let id = Uuid::parse_str("123e4567-e89b-12d3-a456-426614174000").unwrap();
    assert_eq!(uuid_to_bits(id), (1314564453825188563, -6605018797301088256));
    assert_eq!(uuid_from_bits(1314564453825188563, -6605018797301088256), id);
}

#[test]
fn dead_letter() {
    check(
        &[
            0x0a, 0x02, 0x01, 0x02, // record, 2 bytes
            0x10, 0x07, // offset 7
            0x1a, 0x03, b'w', b'h', b'y', // reason "why"
            0x20, 0x03, // attempts 3
            0x28, 0x09, // failedAt 9
            0x32, 0x02, b'i', b'e', // serviceId "ie"
            0x78, 0x01, // wire_version 1 (field 15)
        ],
        DeadLetterProto {
            record: vec![1, 2],
            offset: 7,
            reason: "why".into(),
            attempts: 3,
            failed_at: 9,
            service_id: "ie".into(),
            wire_version: 1,
        },
    );
}

/// `proto/tributary.proto` and the prost attributes of `wire.rs` describe the same messages.
mod proto_file {
    use std::collections::BTreeMap;

    const PROTO: &str = include_str!("../../proto/tributary.proto");
    const RUST: &str = include_str!("../wire.rs");

    /// Message or enum name -> its fields (`label type name = number`) or values (`NAME = number`).
    type Schema = BTreeMap<String, Vec<String>>;

    /// Differences between the two schemas, one line each.
    fn differences(proto: &Schema, rust: &Schema) -> Vec<String> {
        let mut out = Vec::new();
        for (name, entries) in proto {
            match rust.get(name) {
                None => out.push(format!("{name}: in the .proto file, not in wire.rs")),
                Some(other) if other != entries => {
                    out.push(format!("{name}: .proto has {entries:?}, wire.rs has {other:?}"))
                }
                Some(_) => {}
            }
        }
        for name in rust.keys().filter(|n| !proto.contains_key(*n)) {
            out.push(format!("{name}: in wire.rs, not in the .proto file"));
        }
        out
    }

    fn parse_proto(text: &str) -> Schema {
        let mut schema = Schema::new();
        let mut current: Option<String> = None;
        for line in text.lines().map(|l| l.split("//").next().unwrap_or("").trim()).filter(|l| !l.is_empty()) {
            if let Some(rest) = line.strip_prefix("message ").or_else(|| line.strip_prefix("enum ")) {
                let name = rest.trim_end_matches('{').trim().to_string();
                schema.insert(name.clone(), Vec::new());
                current = Some(name);
            } else if line == "}" {
                current = None;
            } else if let Some(name) = &current {
                let entry = line.trim_end_matches(';').split_whitespace().collect::<Vec<_>>().join(" ");
                schema.get_mut(name).expect("current entry").push(entry);
            }
        }
        schema
    }

    /// Reads `#[prost(..)]` attributes and `pub field: Type` lines of structs, and the values of
    /// `prost::Enumeration` enums, as the .proto file would state them.
    fn parse_rust(text: &str) -> Schema {
        let mut schema = Schema::new();
        let mut current: Option<(String, bool)> = None;
        let mut attribute: Option<String> = None;
        let mut enumeration = false;
        for line in text.lines().map(str::trim) {
            if line.starts_with("#[derive(") {
                enumeration = line.contains("Enumeration");
            } else if let Some(rest) = line.strip_prefix("pub struct ") {
                let name = rest.trim_end_matches('{').trim().to_string();
                schema.insert(name.clone(), Vec::new());
                current = Some((name, false));
            } else if let Some(rest) = line.strip_prefix("pub enum ").filter(|_| enumeration) {
                let name = rest.trim_end_matches('{').trim().to_string();
                schema.insert(name.clone(), Vec::new());
                current = Some((name, true));
            } else if line == "}" {
                current = None;
            } else if let Some(attr) = line.strip_prefix("#[prost(").and_then(|l| l.strip_suffix(")]")) {
                attribute = Some(attr.to_string());
            } else if let Some((name, is_enum)) = &current {
                let entries = schema.get_mut(name).expect("current entry");
                if *is_enum {
                    if let Some((variant, number)) = line.trim_end_matches(',').split_once(" = ") {
                        entries.push(format!("{} = {number}", upper_snake(variant)));
                    }
                } else if let (Some(attr), Some(field)) = (attribute.take(), line.strip_prefix("pub ")) {
                    let (field, ty) = field.trim_end_matches(',').split_once(": ").expect("pub name: Type");
                    entries.push(proto_field(&attr, field.trim_start_matches("r#"), ty));
                }
            }
        }
        schema
    }

    /// `string, optional, tag = "2"` + `content_type` -> `optional string content_type = 2`.
    fn proto_field(attr: &str, name: &str, rust_type: &str) -> String {
        let parts: Vec<&str> = attr.split(',').map(str::trim).collect();
        let number = parts.iter().find_map(|p| p.strip_prefix("tag = ")).expect("a tag").trim_matches('"');
        let inner = rust_type.trim_start_matches("Option<").trim_start_matches("Vec<").trim_end_matches('>');
        let (ty, message) = match parts[0] {
            "message" => (inner.to_string(), true),
            t if t.starts_with("bytes") => ("bytes".to_string(), false),
            t if t.starts_with("enumeration") => (t.split('"').nth(1).expect("enum name").to_string(), false),
            t => (t.to_string(), false),
        };
        // proto3 message fields are always optional; the label is only written for scalars.
        let label = if parts.contains(&"repeated") {
            "repeated "
        } else if parts.contains(&"optional") && !message {
            "optional "
        } else {
            ""
        };
        format!("{label}{ty} {name} = {number}")
    }

    fn upper_snake(camel: &str) -> String {
        let mut out = String::new();
        for (i, c) in camel.chars().enumerate() {
            if c.is_ascii_uppercase() && i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_uppercase());
        }
        out
    }

    #[test]
    fn the_proto_file_matches_the_rust_types() {
        let (proto, rust) = (parse_proto(PROTO), parse_rust(RUST));
        assert!(proto.len() >= 19, "every message and enum is read: {:?}", proto.keys());
        assert_eq!(differences(&proto, &rust), Vec::<String>::new());
    }

    #[test]
    fn a_renumbered_renamed_or_missing_field_is_found() {
        let rust = parse_rust(RUST);
        for (from, to) in [
            ("string tbmq_node = 2;", "string tbmq_node = 3;"),
            ("string tbmq_node = 2;", "string broker_node = 2;"),
            ("string tbmq_node = 2;", "optional string tbmq_node = 2;"),
            ("string tbmq_node = 2;", ""),
            ("  STARTED = 3;", "  STARTED = 4;"),
            ("message ServiceInfo {", "message ServiceInfoV2 {"),
        ] {
            assert!(PROTO.contains(from), "{from}");
            let changed = parse_proto(&PROTO.replacen(from, to, 1));
            assert!(!differences(&changed, &rust).is_empty(), "{from} -> {to} was not noticed");
        }
    }
}
