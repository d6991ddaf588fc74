//! The binary formats, byte for byte: one value into each column type, `numeric`, timestamps,
//! the `unnest` arrays and `COPY` data. (The live tests read the same values back through the
//! server.)

use std::borrow::Cow;

use serde_json::json;
use trib_plugin_testkit::{Batch, TestMessage};

use crate::{
    config::PostgresqlConfig,
    request::{
        encode::{array, copy_data, encode, format_rfc3339, numeric, parse_rfc3339, Datum},
        types::PgType,
        ColumnInfo, Plan, Rows, TableDescription,
    },
};

fn check(datum: Datum<'_>, ty: PgType, expected: Result<&[u8], &str>) {
    let mut out = vec![0xAA];
    let got = encode(&datum, ty, &mut out).map(|()| out[1..].to_vec());
    assert_eq!(got, expected.map(<[u8]>::to_vec).map_err(str::to_string), "{datum:?} as {ty:?}");
}

fn text(s: &str) -> Datum<'_> {
    Datum::Text(Cow::Borrowed(s))
}

#[test]
fn values_into_text_json_and_bytes() {
    let (n, s, obj) = (json!(21.5), json!("x\"y"), json!({"a": [1, null]}));
    check(text("héllo"), PgType::Text, Ok("héllo".as_bytes()));
    check(Datum::Json(&n), PgType::Varchar, Ok(b"21.5"));
    check(Datum::Json(&s), PgType::Bpchar, Ok(b"x\"y"));
    check(Datum::Json(&obj), PgType::Text, Ok(br#"{"a":[1,null]}"#));
    check(Datum::Int(2), PgType::Name, Ok(b"2"));
    check(Datum::Bool(true), PgType::Text, Ok(b"true"));
    check(Datum::TimestampMs(1_717_000_000_123), PgType::Text, Ok(b"2024-05-29T16:26:40.123Z"));
    check(Datum::Key([0xab; 16]), PgType::Text, Ok(b"abababababababababababababababab"));
    check(text("a\0b"), PgType::Text, Err("text with a NUL character cannot be stored"));
    check(Datum::Bytes(b"\x00\x01"), PgType::Text, Err("bytes cannot be stored as text"));
    check(text("x\"y"), PgType::Json, Ok(br#""x\"y""#));
    check(Datum::Json(&obj), PgType::Jsonb, Ok(b"\x01{\"a\":[1,null]}"));
    check(Datum::RawJson(b" [1] "), PgType::Jsonb, Ok(b"\x01 [1] "));
    check(Datum::TimestampMs(5), PgType::Json, Ok(b"5"));
    check(Datum::Bytes(b"\x00\xff"), PgType::Bytea, Ok(b"\x00\xff"));
    check(Datum::Key([7; 16]), PgType::Bytea, Ok(&[7; 16]));
    check(Datum::Int(1), PgType::Bytea, Err("only bytes, text and strings can be stored as bytea"));
}

#[test]
fn values_into_numbers_and_booleans() {
    let (big, frac, int_float, neg) = (json!(70000), json!(1.5), json!(3.0), json!(-7));
    check(Datum::Int(1), PgType::Int2, Ok(&[0, 1]));
    check(Datum::Json(&big), PgType::Int2, Err("70000 is out of range for smallint"));
    check(Datum::Json(&big), PgType::Int4, Ok(&70000i32.to_be_bytes()));
    check(Datum::Json(&neg), PgType::Int8, Ok(&(-7i64).to_be_bytes()));
    check(Datum::Json(&int_float), PgType::Int4, Ok(&3i32.to_be_bytes()));
    check(Datum::Json(&frac), PgType::Int4, Err("1.5 is not an integer in range"));
    check(text(" 42 "), PgType::Int4, Ok(&42i32.to_be_bytes()));
    check(text("4x"), PgType::Int8, Err("\"4x\" is not an integer"));
    check(Datum::Bool(true), PgType::Int4, Err("true is not an integer"));
    check(Datum::Json(&frac), PgType::Float4, Ok(&1.5f32.to_be_bytes()));
    check(Datum::Int(3), PgType::Float8, Ok(&3.0f64.to_be_bytes()));
    check(text("-0.25"), PgType::Float8, Ok(&(-0.25f64).to_be_bytes()));
    check(text("warm"), PgType::Float8, Err("\"warm\" is not a number"));
    check(Datum::Int(12), PgType::Numeric, Ok(&[0, 1, 0, 0, 0, 0, 0, 0, 0, 12]));
    check(Datum::Bool(true), PgType::Bool, Ok(&[1]));
    check(Datum::Json(&json!(false)), PgType::Bool, Ok(&[0]));
    check(Datum::Json(&json!(1)), PgType::Bool, Ok(&[1]));
    check(text("FALSE"), PgType::Bool, Ok(&[0]));
    check(text("yes"), PgType::Bool, Err("\"yes\" is not a boolean (true or false)"));
    check(Datum::Json(&json!(2)), PgType::Bool, Err("2 is not a boolean"));
}

#[test]
fn values_into_timestamps_and_uuids() {
    let pg = |unix_micros: i64| (unix_micros - 946_684_800_000_000).to_be_bytes().to_vec();
    let ms = 1_717_000_000_000i64;
    for (datum, expected) in [
        (Datum::TimestampMs(ms), Ok(pg(ms * 1000))),
        (Datum::Json(&json!(1_717_000_000_000i64)), Ok(pg(ms * 1000))),
        (Datum::Json(&json!(1.5)), Ok(pg(1500))),
        (text("2000-01-01T00:00:00Z"), Ok(vec![0; 8])),
        (Datum::Json(&json!("2024-05-29T18:26:40+02:00")), Ok(pg(ms * 1000))),
        (text("soon"), Err("\"soon\" is not an RFC 3339 timestamp".to_string())),
        (Datum::Bool(true), Err("true is not a timestamp (RFC 3339 text or epoch milliseconds)".to_string())),
        (Datum::TimestampMs(i64::MAX), Err("timestamp out of range".to_string())),
    ] {
        for ty in [PgType::Timestamptz, PgType::Timestamp] {
            let mut out = Vec::new();
            assert_eq!(encode(&datum, ty, &mut out).map(|()| out), expected, "{datum:?}");
        }
    }
    let id: Vec<u8> = (0..16).collect();
    check(text("00010203-0405-0607-0809-0a0b0c0d0e0f"), PgType::Uuid, Ok(&id));
    check(text("{000102030405060708090A0B0C0D0E0F}"), PgType::Uuid, Ok(&id));
    check(Datum::Key([9; 16]), PgType::Uuid, Ok(&[9; 16]));
    check(text("0001"), PgType::Uuid, Err("\"0001\" is not a UUID"));
    check(
        text("zz010203-0405-0607-0809-0a0b0c0d0e0f"),
        PgType::Uuid,
        Err("\"zz010203-0405-0607-0809-0a0b0c0d0e0f\" is not a UUID"),
    );
}

/// `numeric(text)` must give (digit count, weight, sign, display scale, base-10000 digits).
fn check_numeric(text: &str, expected: Result<(i16, i16, u16, u16, &[i16]), &str>) {
    let mut out = Vec::new();
    let got = numeric(text, &mut out).map(|()| {
        let word = |i: usize| [out[2 * i], out[2 * i + 1]];
        let digits: Vec<i16> = (4..out.len() / 2).map(|i| i16::from_be_bytes(word(i))).collect();
        (
            i16::from_be_bytes(word(0)),
            i16::from_be_bytes(word(1)),
            u16::from_be_bytes(word(2)),
            u16::from_be_bytes(word(3)),
            digits,
        )
    });
    let expected = expected.map(|(n, w, s, d, digits)| (n, w, s, d, digits.to_vec())).map_err(str::to_string);
    assert_eq!(got, expected, "{text}");
}

#[test]
fn numeric_text_in_base_10000() {
    check_numeric("0", Ok((0, 0, 0, 0, &[])));
    check_numeric("0.00", Ok((0, 0, 0, 2, &[])));
    check_numeric("-0", Ok((0, 0, 0, 0, &[])));
    check_numeric("7", Ok((1, 0, 0, 0, &[7])));
    check_numeric("+123.45", Ok((2, 0, 0, 2, &[123, 4500])));
    check_numeric("-0.001", Ok((1, -1, 0x4000, 3, &[10])));
    check_numeric("10000", Ok((1, 1, 0, 0, &[1])));
    check_numeric("12345678.9", Ok((3, 1, 0, 1, &[1234, 5678, 9000])));
    check_numeric("1e5", Ok((1, 1, 0, 0, &[10])));
    check_numeric("1.5E-3", Ok((1, -1, 0, 4, &[15])));
    check_numeric("2.50e1", Ok((1, 0, 0, 1, &[25])));
    check_numeric(".5", Ok((1, -1, 0, 1, &[5000])));
    check_numeric("5.", Ok((1, 0, 0, 0, &[5])));
    check_numeric("0.00012345", Ok((2, -1, 0, 8, &[1, 2345])));
    check_numeric("NaN", Ok((0, 0, 0xC000, 0, &[])));
    for bad in ["", ".", "-", "1.2.3", "abc", "1e", "--1", "1 2", "0x10"] {
        check_numeric(bad, Err(&format!("\"{bad}\" is not a number")));
    }
    check_numeric("1e99999", Err("\"1e99999\" has too many digits"));
}

#[test]
fn rfc3339_both_ways() {
    let day = 86_400_000_000i64;
    for (text, expected) in [
        ("1970-01-01T00:00:00Z", Ok(0)),
        ("1970-01-02", Ok(day)),
        ("1970-01-01t00:00:01z", Ok(1_000_000)),
        ("1970-01-01 00:00:00.5", Ok(500_000)),
        ("1970-01-01T00:00:00.1234567Z", Ok(123_456)),
        ("1970-01-01T01:00:00+01:00", Ok(0)),
        ("1969-12-31T23:30:00-00:30", Ok(0)),
        ("2024-02-29T00:00:00Z", Ok(19_782 * day)),
        ("2023-02-29", Err(())),
        ("2024-13-01", Err(())),
        ("2024-05-01T24:00:00Z", Err(())),
        ("2024-05-01T12:00", Err(())),
        ("2024-05-01T12:00:00.Z", Err(())),
        ("2024-05-01T12:00:00+0100", Err(())),
        ("24-05-01", Err(())),
    ] {
        assert_eq!(parse_rfc3339(text).map_err(|_| ()), expected, "{text}");
    }
    assert_eq!(format_rfc3339(0).as_deref(), Ok("1970-01-01T00:00:00.000Z"));
    assert_eq!(format_rfc3339(-1).as_deref(), Ok("1969-12-31T23:59:59.999Z"));
    assert_eq!(format_rfc3339(951_782_400_000).as_deref(), Ok("2000-02-29T00:00:00.000Z"));
    for ms in [0i64, -1, 1_717_000_000_123, 253_402_300_799_999, -62_167_219_200_000] {
        let text = format_rfc3339(ms).expect("in range");
        assert_eq!(parse_rfc3339(&text), Ok(ms * 1000), "{text}");
    }
    assert!(format_rfc3339(253_402_300_800_000).is_err(), "year 10000");
}

/// Two rows of (text, integer), the second integer NULL.
fn two_rows() -> Rows {
    let described = TableDescription {
        columns: vec![
            ColumnInfo { name: "t".into(), ty: Some(PgType::Text), type_name: "text".into() },
            ColumnInfo { name: "n".into(), ty: Some(PgType::Int4), type_name: "integer".into() },
        ],
        unique_indexes: vec![],
    };
    let columns = json!({"columns": {"t": {"source": "topic"}, "n": {"source": "jsonPath", "path": "$.n"}}});
    let config = PostgresqlConfig::parse(&super::config(columns).to_string()).expect("config");
    let plan = Plan::new(&config, &described, &serde_json::Map::new()).expect("plan");
    let messages = [TestMessage::new("ab", r#"{"n": 5}"#), TestMessage::new("c", "{}")];
    let mut rows = Rows::new(plan.columns.len());
    for m in Batch::new(&messages).messages() {
        plan.encode(&m, &mut rows).expect("encode");
    }
    rows
}

#[test]
fn a_column_as_an_array() {
    let rows = two_rows();
    let mut expected = Vec::new();
    for word in [1i32, 0, 25, 2, 1, 2] {
        expected.extend_from_slice(&word.to_be_bytes());
    }
    expected.extend_from_slice(b"ab");
    expected.extend_from_slice(&1i32.to_be_bytes());
    expected.extend_from_slice(b"c");
    assert_eq!(array(&rows, 0, PgType::Text), expected, "text[]: 1 dimension, no NULL, OID 25, 2 elements from 1");
    let mut expected = Vec::new();
    for word in [1i32, 1, 23, 2, 1, 4, 5, -1] {
        expected.extend_from_slice(&word.to_be_bytes());
    }
    assert_eq!(array(&rows, 1, PgType::Int4), expected, "int4[]: has NULL, OID 23, 5 then NULL");
}

#[test]
fn rows_as_copy_data() {
    let rows = two_rows();
    let mut expected = b"PGCOPY\n\xff\r\n\0".to_vec();
    expected.extend_from_slice(&[0; 8]); // flags, header extension
    expected.extend_from_slice(&2i16.to_be_bytes());
    expected.extend_from_slice(&2i32.to_be_bytes());
    expected.extend_from_slice(b"ab");
    expected.extend_from_slice(&4i32.to_be_bytes());
    expected.extend_from_slice(&5i32.to_be_bytes());
    expected.extend_from_slice(&2i16.to_be_bytes());
    expected.extend_from_slice(&1i32.to_be_bytes());
    expected.extend_from_slice(b"c");
    expected.extend_from_slice(&(-1i32).to_be_bytes());
    expected.extend_from_slice(&(-1i16).to_be_bytes()); // trailer
    assert_eq!(copy_data(&rows), expected);
}
