//! The plan (the mapping checked against a table's description) and the row a message becomes,
//! as tables of mappings, column types and the values or problems they must give.

use serde_json::{json, Map, Value};
use trib_plugin_testkit::{Batch, TestMessage};

use super::config;
use crate::{
    config::PostgresqlConfig,
    request::{key, types::PgType, ColumnInfo, ColumnValue, Plan, Rows, TableDescription},
};

/// A table of `(name, type)` columns, spelled like the catalog (`PgType` for the wire type).
fn table(columns: &[(&str, Option<PgType>, &str)], unique_indexes: &[&[&str]]) -> TableDescription {
    TableDescription {
        columns: columns
            .iter()
            .map(|(name, ty, type_name)| ColumnInfo {
                name: name.to_string(),
                ty: *ty,
                type_name: type_name.to_string(),
            })
            .collect(),
        unique_indexes: unique_indexes.iter().map(|i| i.iter().map(|c| c.to_string()).collect()).collect(),
    }
}

fn metadata() -> Map<String, Value> {
    serde_json::from_str(super::METADATA).expect("metadata")
}

/// The plan of `columns` (plus `extra` configuration) against `table`.
fn plan(columns: Value, extra: Value, table: &TableDescription) -> Result<Plan, Vec<String>> {
    let mut fields = json!({"columns": columns});
    if let (Some(target), Value::Object(more)) = (fields.as_object_mut(), extra) {
        target.extend(more);
    }
    let config = PostgresqlConfig::parse(&config(fields).to_string()).expect("valid configuration");
    Plan::new(&config, table, &metadata())
}

/// The single column `c` of type `ty` mapped by `mapping` must plan with `expected` problems.
fn check_fit(mapping: Value, ty: Option<PgType>, type_name: &str, expected: Option<&str>) {
    let got = plan(json!({"c": mapping}), json!({}), &table(&[("c", ty, type_name)], &[])).err();
    let expected = expected.map(|e| vec![e.to_string()]);
    assert_eq!(got, expected, "{mapping} into {type_name}");
}

#[test]
fn sources_fit_their_column_types() {
    use PgType::*;
    let ok = None;
    for (mapping, ty, name, expected) in [
        (json!({"source": "topic"}), Some(Text), "text", ok),
        (json!({"source": "clientId"}), Some(Varchar), "character varying(64)", ok),
        (json!({"source": "ts"}), Some(Timestamptz), "timestamp with time zone", ok),
        (json!({"source": "ts"}), Some(Timestamp), "timestamp without time zone", ok),
        (json!({"source": "ts"}), Some(Int8), "bigint", ok),
        (json!({"source": "qos"}), Some(Int2), "smallint", ok),
        (json!({"source": "retain"}), Some(Bool), "boolean", ok),
        (json!({"source": "payloadJson"}), Some(Jsonb), "jsonb", ok),
        (json!({"source": "payloadJson"}), Some(Text), "text", ok),
        (json!({"source": "payloadBytes"}), Some(Bytea), "bytea", ok),
        (json!({"source": "messageKey"}), Some(Uuid), "uuid", ok),
        (json!({"source": "jsonPath", "path": "$.x"}), Some(Numeric), "numeric(6,2)", ok),
        (
            json!({"source": "topic"}),
            Some(Int4),
            "integer",
            Some("column \"c\" has type integer, which cannot hold text; use text, varchar, char or name"),
        ),
        (
            json!({"source": "ts"}),
            Some(Int4),
            "integer",
            Some("column \"c\" has type integer, which cannot hold the broker timestamp; use timestamptz, timestamp or bigint (epoch milliseconds)"),
        ),
        (
            json!({"source": "payloadBytes"}),
            Some(Text),
            "text",
            Some("column \"c\" has type text, which cannot hold the payload bytes; use bytea"),
        ),
        (
            json!({"source": "payloadJson"}),
            Some(Bytea),
            "bytea",
            Some("column \"c\" has type bytea, which cannot hold the JSON payload; use jsonb, json or text"),
        ),
        (
            json!({"source": "retain"}),
            Some(Int2),
            "smallint",
            Some("column \"c\" has type smallint, which cannot hold the retain flag; use boolean"),
        ),
        (
            json!({"source": "messageKey"}),
            Some(Int8),
            "bigint",
            Some("column \"c\" has type bigint, which cannot hold the message key; use text, uuid or bytea"),
        ),
        (
            json!({"source": "jsonPath", "path": "$.x"}),
            None,
            "integer[]",
            Some(&*format!("column \"c\" has type integer[], which the driver cannot write; {}", crate::request::types::SUPPORTED)),
        ),
        (
            json!({"source": "constant", "value": "abc"}),
            Some(Int4),
            "integer",
            Some("column \"c\" has type integer; its constant cannot be stored: \"abc\" is not an integer"),
        ),
    ] {
        check_fit(mapping, ty, name, expected);
    }
}

#[test]
fn every_missing_column_is_named() {
    let described = table(&[("time", Some(PgType::Timestamptz), "timestamp with time zone")], &[]);
    let problems = plan(
        json!({"time": {"source": "ts"}, "Temperature": {"source": "jsonPath", "path": "$.t"}, "site": {"source": "topic"}}),
        json!({"table": "public.Readings"}),
        &described,
    )
    .unwrap_err();
    assert_eq!(
        problems,
        [
            "column \"Temperature\" does not exist in table \"public\".\"Readings\"",
            "column \"site\" does not exist in table \"public\".\"Readings\"",
        ]
    );
}

#[test]
fn constants_and_metadata_are_encoded_once() {
    let described = table(
        &[
            ("kind", Some(PgType::Text), "text"),
            ("site", Some(PgType::Text), "text"),
            ("line", Some(PgType::Int4), "integer"),
            ("absent", Some(PgType::Text), "text"),
            ("doc", Some(PgType::Jsonb), "jsonb"),
        ],
        &[],
    );
    let plan = plan(
        json!({
            "kind": {"source": "constant", "value": "reading"},
            "site": {"source": "metadata", "key": "site"},
            "line": {"source": "metadata", "key": "line"},
            "absent": {"source": "metadata", "key": "nope"},
            "doc": {"source": "constant", "value": {"v": 1}}
        }),
        json!({}),
        &described,
    )
    .expect("plan");
    let values: Vec<&ColumnValue> = plan.columns.iter().map(|c| &c.value).collect();
    assert_eq!(
        values,
        [
            &ColumnValue::Fixed(Some(b"reading".to_vec())),
            &ColumnValue::Fixed(Some(b"plant-7".to_vec())),
            &ColumnValue::Fixed(Some(3i32.to_be_bytes().to_vec())),
            &ColumnValue::Fixed(None),
            &ColumnValue::Fixed(Some(b"\x01{\"v\":1}".to_vec())),
        ]
    );
}

#[test]
fn the_conflict_target_is_the_smallest_unique_index_of_mapped_columns() {
    let columns = [
        ("id", Some(PgType::Int8), "bigint"),
        ("k", Some(PgType::Text), "text"),
        ("time", Some(PgType::Timestamptz), "timestamp with time zone"),
    ];
    let keyed = json!({"k": {"source": "messageKey"}, "time": {"source": "ts"}});
    let extra = json!({"idempotencyKeyColumn": "k"});
    let target =
        |indexes: &[&[&str]]| plan(keyed.clone(), extra.clone(), &table(&columns, indexes)).map(|p| p.conflict_target);
    let owned = |names: &[&str]| Some(names.iter().map(|n| n.to_string()).collect::<Vec<_>>());
    assert_eq!(target(&[&["id"], &["k", "time"], &["k"]]), Ok(owned(&["k"])));
    assert_eq!(target(&[&["k", "time"]]), Ok(owned(&["k", "time"])));
    assert_eq!(
        target(&[&["id", "k"]]).unwrap_err(),
        ["the unique index on (\"id\", \"k\") of table \"readings\" also covers \"id\", which the mapping does not fill; \
          redelivered rows would not conflict"]
    );
    assert_eq!(
        target(&[&["id"]]).unwrap_err(),
        ["idempotency key column \"k\" is in no unique index or constraint of table \"readings\"; \
          create one, e.g. CREATE UNIQUE INDEX ON \"readings\" (\"k\")"]
    );
    let plain = plan(keyed, json!({}), &table(&columns, &[])).expect("plan");
    assert_eq!(plain.conflict_target, None);
    assert!(!plain.insert_pack_sql.contains("ON CONFLICT"), "{}", plain.insert_pack_sql);
}

#[test]
fn the_plan_carries_the_statements() {
    let described = table(&[("b", Some(PgType::Text), "text"), ("a\"x", Some(PgType::Int4), "integer")], &[&["b"]]);
    let plan = plan(
        json!({"b": {"source": "topic"}, "a\"x": {"source": "qos"}}),
        json!({"table": "iot.Readings", "idempotencyKeyColumn": "b"}),
        &described,
    )
    .expect("plan");
    assert_eq!(
        plan.insert_pack_sql,
        "INSERT INTO \"iot\".\"Readings\" (\"b\", \"a\"\"x\") SELECT * FROM unnest($1, $2) ON CONFLICT (\"b\") DO NOTHING"
    );
    assert_eq!(
        plan.insert_row_sql,
        "INSERT INTO \"iot\".\"Readings\" (\"b\", \"a\"\"x\") VALUES ($1, $2) ON CONFLICT (\"b\") DO NOTHING"
    );
    assert_eq!(plan.copy_sql, "COPY \"iot\".\"Readings\" (\"b\", \"a\"\"x\") FROM STDIN (FORMAT binary)");
}

/// A plan over one column per source, for encoding tests.
fn wide_plan() -> Plan {
    use PgType::*;
    let described = table(
        &[
            ("topic", Some(Text), "text"),
            ("client", Some(Varchar), "character varying"),
            ("time", Some(Timestamptz), "timestamp with time zone"),
            ("ts_ms", Some(Int8), "bigint"),
            ("qos", Some(Int2), "smallint"),
            ("retain", Some(Bool), "boolean"),
            ("doc", Some(Jsonb), "jsonb"),
            ("temperature", Some(Float8), "double precision"),
            ("n", Some(Numeric), "numeric"),
            ("missing", Some(Text), "text"),
            ("unit", Some(Text), "text"),
            ("key", Some(Uuid), "uuid"),
        ],
        &[],
    );
    plan(
        json!({
            "topic": {"source": "topic"},
            "client": {"source": "clientId"},
            "time": {"source": "ts"},
            "ts_ms": {"source": "ts"},
            "qos": {"source": "qos"},
            "retain": {"source": "retain"},
            "doc": {"source": "payloadJson"},
            "temperature": {"source": "jsonPath", "path": "$.temperature"},
            "n": {"source": "jsonPath", "path": "$.values[1]"},
            "missing": {"source": "jsonPath", "path": "$.nope.deeper"},
            "unit": {"source": "userProperty", "key": "unit"},
            "key": {"source": "messageKey"}
        }),
        json!({}),
        &described,
    )
    .expect("plan")
}

/// Encodes `messages` with `plan`: the rows and each message's result.
fn encode(plan: &Plan, messages: &[TestMessage]) -> (Rows, Vec<Result<(), String>>) {
    let batch = Batch::new(messages);
    let mut rows = Rows::new(plan.columns.len());
    let results = batch.messages().iter().map(|m| plan.encode(m, &mut rows)).collect();
    (rows, results)
}

#[test]
fn a_message_becomes_a_row_of_binary_values() {
    let plan = wide_plan();
    let payload = r#"{"temperature": 21.5, "values": [1, 12.50]}"#;
    let message =
        TestMessage::new("sensors/1", payload).client_id("dev-1").user_property("unit", "C").user_property("unit", "K");
    let (rows, results) = encode(&plan, std::slice::from_ref(&message));
    assert_eq!(results, [Ok(())]);
    let micros = (message.timestamp_ms - 946_684_800_000) * 1000;
    let key = message.with_abi(key::message_key);
    let mut doc = vec![1u8];
    doc.extend_from_slice(payload.as_bytes());
    let expected: Vec<Option<Vec<u8>>> = vec![
        Some(b"sensors/1".to_vec()),
        Some(b"dev-1".to_vec()),
        Some(micros.to_be_bytes().to_vec()),
        Some(message.timestamp_ms.to_be_bytes().to_vec()),
        Some(1i16.to_be_bytes().to_vec()),
        Some(vec![0]),
        Some(doc),
        Some(21.5f64.to_be_bytes().to_vec()),
        // 12.5: one base-10000 digit 12, weight 0, positive, scale 1, then 5000.
        Some([0, 2, 0, 0, 0, 0, 0, 1, 0, 12, 0x13, 0x88].to_vec()),
        None,
        Some(b"K".to_vec()),
        Some(key.to_vec()),
    ];
    let got: Vec<Option<Vec<u8>>> = rows.row(0).map(|c| c.map(<[u8]>::to_vec)).collect();
    assert_eq!(got, expected);
}

#[test]
fn a_message_that_cannot_be_encoded_is_rejected_and_leaves_no_trace() {
    let plan = wide_plan();
    let messages = [
        TestMessage::new("a", r#"{"temperature": 1}"#),
        TestMessage::new("b", "not json"),
        TestMessage::new("c", r#"{"temperature": "warm"}"#),
        TestMessage::new("d", r#"{"values": [0, "1.2.3"]}"#),
        TestMessage::new("e", r#"{"temperature": "2.5"}"#),
    ];
    let (rows, results) = encode(&plan, &messages);
    assert_eq!(
        results,
        [
            Ok(()),
            Err("payload is not JSON: expected ident at line 1 column 2".to_string()),
            Err("column \"temperature\" (double precision): \"warm\" is not a number".to_string()),
            Err("column \"n\" (numeric): \"1.2.3\" is not a number".to_string()),
            Ok(()),
        ]
    );
    assert_eq!(rows.len(), 2);
    assert_eq!(rows.cell(0, 0), Some(&b"a"[..]));
    assert_eq!(rows.cell(1, 0), Some(&b"e"[..]));
    assert_eq!(rows.cell(1, 7), Some(&2.5f64.to_be_bytes()[..]));
}

#[test]
fn a_payload_stored_as_json_must_be_json() {
    let described = table(&[("doc", Some(PgType::Json), "json"), ("raw", Some(PgType::Bytea), "bytea")], &[]);
    let plan =
        plan(json!({"doc": {"source": "payloadJson"}, "raw": {"source": "payloadBytes"}}), json!({}), &described)
            .expect("plan");
    let (rows, results) = encode(&plan, &[TestMessage::new("t", "[1, 2]"), TestMessage::new("t", "{oops")]);
    assert_eq!(results[0], Ok(()));
    assert!(results[1].as_ref().is_err_and(|e| e.starts_with("payload is not JSON")), "{results:?}");
    assert_eq!((rows.cell(0, 0), rows.cell(0, 1)), (Some(&b"[1, 2]"[..]), Some(&b"[1, 2]"[..])));
}

#[test]
fn the_message_key_depends_on_client_topic_time_and_payload_only() {
    let base = TestMessage::new("t/1", "p").client_id("c");
    let key = |m: &TestMessage| m.with_abi(key::message_key);
    // sha256(u64 1 | "c" | u64 3 | "t/1" | i64 1717000000000 | u64 1 | "p"), the first 16 bytes.
    assert_eq!(key::hex(&key(&base)), "d60bd03f8de07a63ce7ec4133c9f3b95");
    assert_eq!(key(&base), key(&base.clone().qos(0).retain(true).user_property("a", "b")));
    for other in [
        base.clone().client_id("c2"),
        TestMessage::new("t/2", "p").client_id("c"),
        base.clone().timestamp_ms(base.timestamp_ms + 1),
        TestMessage::new("t/1", "q").client_id("c"),
        // Length prefixes: moving a byte from the client id to the topic changes the key.
        TestMessage::new("/t/1", "p").client_id(""),
    ] {
        assert_ne!(key(&base), key(&other), "{other:?}");
    }
}
