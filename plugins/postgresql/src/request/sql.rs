//! The SQL texts the driver sends. Every table and column name is quoted here and nowhere
//! else ([`quote`]); values always travel as parameters or `COPY` data, never inside the text.

use crate::config::TableName;

/// `name` as a quoted identifier: `"name"`, with `"` doubled.
pub fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The table as SQL: `"schema"."name"` or `"name"`.
pub fn table(table: &TableName) -> String {
    match &table.schema {
        Some(schema) => format!("{}.{}", quote(schema), quote(&table.name)),
        None => quote(&table.name),
    }
}

/// `INSERT INTO t ("a", "b") SELECT * FROM unnest($1, $2)`, plus `ON CONFLICT (..) DO NOTHING`
/// when `conflict` names a target: a whole pack in one statement, one array parameter per column.
pub fn insert_pack(target: &TableName, columns: &[&str], conflict: Option<&[String]>) -> String {
    format!(
        "INSERT INTO {} ({}) SELECT * FROM unnest({}){}",
        table(target),
        column_list(columns),
        placeholders(columns.len()),
        on_conflict(conflict)
    )
}

/// `INSERT INTO t ("a", "b") VALUES ($1, $2)`, plus the conflict clause: one row.
pub fn insert_row(target: &TableName, columns: &[&str], conflict: Option<&[String]>) -> String {
    format!(
        "INSERT INTO {} ({}) VALUES ({}){}",
        table(target),
        column_list(columns),
        placeholders(columns.len()),
        on_conflict(conflict)
    )
}

/// `COPY t ("a", "b") FROM STDIN (FORMAT binary)`.
pub fn copy(target: &TableName, columns: &[&str]) -> String {
    format!("COPY {} ({}) FROM STDIN (FORMAT binary)", table(target), column_list(columns))
}

/// Opens a transaction whose statements may run for at most `timeout_ms` (at least 1).
pub fn begin(timeout_ms: u64) -> String {
    format!("BEGIN; SET LOCAL statement_timeout = {}", timeout_ms.max(1))
}

/// Sets the session's statement timeout (0 = none).
pub fn set_statement_timeout(timeout_ms: u64) -> String {
    format!("SET statement_timeout = {timeout_ms}")
}

fn column_list(columns: &[&str]) -> String {
    columns.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", ")
}

fn placeholders(count: usize) -> String {
    (1..=count).map(|n| format!("${n}")).collect::<Vec<_>>().join(", ")
}

fn on_conflict(conflict: Option<&[String]>) -> String {
    match conflict {
        Some(target) => {
            format!(" ON CONFLICT ({}) DO NOTHING", target.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", "))
        }
        None => String::new(),
    }
}
