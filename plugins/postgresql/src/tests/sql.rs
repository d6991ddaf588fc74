//! The SQL texts: every name quoted, values only as parameters.

use crate::{config::TableName, request::sql};

fn name(schema: Option<&str>, table: &str) -> TableName {
    TableName { schema: schema.map(str::to_string), name: table.to_string() }
}

#[test]
fn identifiers_are_always_quoted() {
    for (raw, quoted) in [
        ("readings", "\"readings\""),
        ("Readings", "\"Readings\""),
        ("a\"b", "\"a\"\"b\""),
        ("x\"; DROP TABLE t; --", "\"x\"\"; DROP TABLE t; --\""),
        ("with space.dot", "\"with space.dot\""),
        ("é", "\"é\""),
    ] {
        assert_eq!(sql::quote(raw), quoted);
    }
    assert_eq!(sql::table(&name(None, "t")), "\"t\"");
    assert_eq!(sql::table(&name(Some("iot"), "T\"1")), "\"iot\".\"T\"\"1\"");
    assert_eq!(name(Some("a.b"), "c").to_string(), "\"a.b\".\"c\"");
}

#[test]
fn statements() {
    let t = name(Some("public"), "readings");
    let conflict = ["k".to_string(), "time".to_string()];
    for (got, expected) in [
        (sql::insert_pack(&t, &["a"], None), "INSERT INTO \"public\".\"readings\" (\"a\") SELECT * FROM unnest($1)"),
        (
            sql::insert_pack(&t, &["time", "k", "v"], Some(&conflict)),
            "INSERT INTO \"public\".\"readings\" (\"time\", \"k\", \"v\") SELECT * FROM unnest($1, $2, $3) \
             ON CONFLICT (\"k\", \"time\") DO NOTHING",
        ),
        (sql::insert_row(&t, &["a", "b"], None), "INSERT INTO \"public\".\"readings\" (\"a\", \"b\") VALUES ($1, $2)"),
        (
            sql::insert_row(&t, &["k"], Some(&conflict[..1])),
            "INSERT INTO \"public\".\"readings\" (\"k\") VALUES ($1) ON CONFLICT (\"k\") DO NOTHING",
        ),
        (sql::copy(&t, &["a", "b"]), "COPY \"public\".\"readings\" (\"a\", \"b\") FROM STDIN (FORMAT binary)"),
        (sql::begin(2500), "BEGIN; SET LOCAL statement_timeout = 2500"),
        (sql::begin(0), "BEGIN; SET LOCAL statement_timeout = 1"),
        (sql::set_statement_timeout(30_000), "SET statement_timeout = 30000"),
    ] {
        assert_eq!(got, expected);
    }
}
