//! Pure: from a configuration and a table's description to a [`Plan`] (column types, fixed
//! values, the SQL texts), and from a message to a row of column values in PostgreSQL's binary
//! format ([`Rows`]). No I/O here: the table is described by [`crate::service`], and what a row
//! looks like on the wire (arrays for `unnest`, `COPY` data) is built by [`encode`].
//!
//! A value that cannot go into its column (a payload that is not JSON for a JSON path, `"abc"`
//! for an integer column) rejects that message before anything is sent; the reason names the
//! column.

pub mod encode;
pub mod key;
pub mod sql;
pub mod types;

use std::borrow::Cow;

use serde_json::{Map, Value};
use trib_plugin_api::driver::Message;

use self::{
    encode::Datum,
    types::{Kind, PgType},
};
use crate::config::{ColumnMapping, PostgresqlConfig, Source, Step, WriteMode};

/// One column of a table, as the catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnInfo {
    /// The column name.
    pub name: String,
    /// The type (of the base type, for a domain), when the driver can write it.
    pub ty: Option<PgType>,
    /// The type as PostgreSQL spells it (`character varying(20)`), for messages.
    pub type_name: String,
}

/// What the driver needs to know about its table.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TableDescription {
    /// The columns, in table order.
    pub columns: Vec<ColumnInfo>,
    /// The column lists of the table's unique indexes and constraints (plain columns only, no
    /// partial or expression indexes), in index order.
    pub unique_indexes: Vec<Vec<String>>,
}

/// How a planned column gets its value.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnValue {
    /// The same encoded value in every row (`None` = NULL): constants and metadata.
    Fixed(Option<Vec<u8>>),
    /// From each message.
    PerMessage(Source),
}

/// One column of the plan.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedColumn {
    /// The column name.
    pub name: String,
    /// The type its values are encoded as.
    pub ty: PgType,
    /// The type as PostgreSQL spells it, for reasons.
    pub type_name: String,
    /// Where the value comes from.
    pub value: ColumnValue,
}

/// Everything needed to write packs to one table: checked against the table's description.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The columns, in configuration order.
    pub columns: Vec<PlannedColumn>,
    /// `INSERT ... SELECT * FROM unnest(..)` for a whole pack.
    pub insert_pack_sql: String,
    /// `INSERT ... VALUES (..)` for one row (used to isolate rows the database refuses).
    pub insert_row_sql: String,
    /// `COPY ... FROM STDIN (FORMAT binary)`.
    pub copy_sql: String,
    /// The write mode.
    pub write_mode: WriteMode,
    /// The `ON CONFLICT` target, with an idempotency key.
    pub conflict_target: Option<Vec<String>>,
    /// Whether some column reads inside the JSON payload (so each payload is parsed once).
    parses_payload: bool,
    /// Whether some column stores the payload as JSON (so each payload is checked to be JSON).
    checks_payload: bool,
}

impl Plan {
    /// Checks the mapping against `table` (every column exists and can hold its source; the
    /// idempotency key has a unique index) and encodes the fixed values. `metadata` is the
    /// integration's metadata map. Every problem is one line naming the column.
    pub fn new(
        config: &PostgresqlConfig,
        table: &TableDescription,
        metadata: &Map<String, Value>,
    ) -> Result<Plan, Vec<String>> {
        let mut problems = Vec::new();
        let mut columns = Vec::with_capacity(config.columns.len());
        for mapping in &config.columns {
            match plan_column(mapping, table, metadata, &config.table.to_string()) {
                Ok(column) => columns.push(column),
                Err(problem) => problems.push(problem),
            }
        }
        let conflict_target = match &config.idempotency_key_column {
            Some(key) if config.write_mode == WriteMode::Insert => {
                match conflict_target(key, &config.columns, table, &config.table.to_string()) {
                    Ok(target) => Some(target),
                    Err(problem) => {
                        problems.push(problem);
                        None
                    }
                }
            }
            _ => None,
        };
        if !problems.is_empty() {
            return Err(problems);
        }
        let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
        let conflict = conflict_target.as_deref();
        let parses_payload = columns.iter().any(|c| matches!(c.value, ColumnValue::PerMessage(Source::JsonPath(_))));
        let checks_payload = columns.iter().any(|c| matches!(c.value, ColumnValue::PerMessage(Source::PayloadJson)));
        Ok(Plan {
            insert_pack_sql: sql::insert_pack(&config.table, &names, conflict),
            insert_row_sql: sql::insert_row(&config.table, &names, conflict),
            copy_sql: sql::copy(&config.table, &names),
            columns,
            write_mode: config.write_mode,
            conflict_target,
            parses_payload,
            checks_payload,
        })
    }

    /// Appends the row of `msg` to `rows`, or returns why the message cannot be written (then
    /// `rows` is unchanged).
    pub fn encode(&self, msg: &Message<'_>, rows: &mut Rows) -> Result<(), String> {
        let payload = msg.payload();
        let parsed = if self.parses_payload {
            Some(serde_json::from_slice::<Value>(payload).map_err(|e| format!("payload is not JSON: {e}"))?)
        } else {
            if self.checks_payload {
                serde_json::from_slice::<serde::de::IgnoredAny>(payload)
                    .map_err(|e| format!("payload is not JSON: {e}"))?;
            }
            None
        };
        let mark = rows.mark();
        for column in &self.columns {
            let result = match &column.value {
                ColumnValue::Fixed(value) => {
                    rows.push(value.as_deref());
                    Ok(())
                }
                ColumnValue::PerMessage(source) => match datum(source, msg, parsed.as_ref()) {
                    Datum::Null => {
                        rows.push(None);
                        Ok(())
                    }
                    datum => rows.push_encoded(|out| encode::encode(&datum, column.ty, out)),
                },
            };
            if let Err(e) = result {
                rows.reset(mark);
                return Err(format!("column \"{}\" ({}): {e}", column.name, column.type_name));
            }
        }
        rows.count += 1;
        Ok(())
    }
}

/// Rows of encoded column values (PostgreSQL's binary format), column-major within a row.
#[derive(Debug, Clone, Default)]
pub struct Rows {
    columns: usize,
    count: usize,
    buf: Vec<u8>,
    cells: Vec<Option<(usize, usize)>>,
}

impl Rows {
    /// Empty rows of `columns` columns.
    pub fn new(columns: usize) -> Rows {
        Rows { columns, ..Rows::default() }
    }

    /// How many rows.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether there is no row.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The number of columns.
    pub fn columns(&self) -> usize {
        self.columns
    }

    /// The bytes of all values together.
    pub fn buf_len(&self) -> usize {
        self.buf.len()
    }

    /// The encoded value of `column` in `row`; `None` is NULL.
    pub fn cell(&self, row: usize, column: usize) -> Option<&[u8]> {
        self.cells[row * self.columns + column].map(|(start, end)| &self.buf[start..end])
    }

    /// The values of one row.
    pub fn row(&self, row: usize) -> impl Iterator<Item = Option<&[u8]>> + '_ {
        (0..self.columns).map(move |c| self.cell(row, c))
    }

    fn mark(&self) -> (usize, usize) {
        (self.buf.len(), self.cells.len())
    }

    fn reset(&mut self, (buf, cells): (usize, usize)) {
        self.buf.truncate(buf);
        self.cells.truncate(cells);
    }

    fn push(&mut self, value: Option<&[u8]>) {
        self.cells.push(value.map(|v| {
            let start = self.buf.len();
            self.buf.extend_from_slice(v);
            (start, self.buf.len())
        }));
    }

    fn push_encoded(&mut self, write: impl FnOnce(&mut Vec<u8>) -> Result<(), String>) -> Result<(), String> {
        let start = self.buf.len();
        write(&mut self.buf)?;
        self.cells.push(Some((start, self.buf.len())));
        Ok(())
    }
}

/// The value of `source` for `msg`; `parsed` is the payload as JSON when a path needs it.
fn datum<'a>(source: &'a Source, msg: &Message<'a>, parsed: Option<&'a Value>) -> Datum<'a> {
    match source {
        Source::Topic => Datum::Text(Cow::Borrowed(msg.topic())),
        Source::ClientId => Datum::Text(Cow::Borrowed(msg.client_id())),
        Source::Ts => Datum::TimestampMs(msg.timestamp_ms),
        Source::Qos => Datum::Int(i64::from(msg.qos)),
        Source::Retain => Datum::Bool(msg.retain),
        Source::PayloadJson => Datum::RawJson(msg.payload()),
        Source::PayloadText => Datum::Text(String::from_utf8_lossy(msg.payload())),
        Source::PayloadBytes => Datum::Bytes(msg.payload()),
        Source::JsonPath(path) => match parsed.and_then(|v| lookup(v, &path.steps)) {
            None | Some(Value::Null) => Datum::Null,
            Some(value) => Datum::Json(value),
        },
        Source::UserProperty(key) => match msg.user_properties().filter(|(k, _)| k == key).last() {
            Some((_, value)) => Datum::Text(Cow::Borrowed(value)),
            None => Datum::Null,
        },
        Source::MessageKey => Datum::Key(key::message_key(msg)),
        // Planned as fixed values; kept total so that a plan built by hand still encodes.
        Source::Metadata(_) | Source::Constant(_) => Datum::Null,
    }
}

/// The value at `steps` inside `value`, if there is one.
pub fn lookup<'v>(value: &'v Value, steps: &[Step]) -> Option<&'v Value> {
    steps.iter().try_fold(value, |v, step| match step {
        Step::Key(k) => v.get(k.as_str()),
        Step::Index(i) => v.get(*i),
    })
}

fn plan_column(
    mapping: &ColumnMapping,
    table: &TableDescription,
    metadata: &Map<String, Value>,
    table_name: &str,
) -> Result<PlannedColumn, String> {
    let name = &mapping.column;
    let info = table
        .columns
        .iter()
        .find(|c| &c.name == name)
        .ok_or_else(|| format!("column \"{name}\" does not exist in table {table_name}"))?;
    let ty = info.ty.ok_or_else(|| {
        format!("column \"{name}\" has type {}, which the driver cannot write; {}", info.type_name, types::SUPPORTED)
    })?;
    let kind = Kind::of(&mapping.source);
    if !kind.fits(ty) {
        return Err(format!(
            "column \"{name}\" has type {}, which cannot hold {}; use {}",
            info.type_name,
            kind.describe(),
            kind.expected()
        ));
    }
    let fixed = |datum: Datum<'_>, what: &str| -> Result<ColumnValue, String> {
        if let Datum::Null = datum {
            return Ok(ColumnValue::Fixed(None));
        }
        let mut out = Vec::new();
        encode::encode(&datum, ty, &mut out)
            .map_err(|e| format!("column \"{name}\" has type {}; {what}: {e}", info.type_name))?;
        Ok(ColumnValue::Fixed(Some(out)))
    };
    let value = match &mapping.source {
        Source::Constant(value) => fixed(Datum::Json(value), "its constant cannot be stored")?,
        Source::Metadata(key) => match metadata.get(key).filter(|v| !v.is_null()) {
            None => ColumnValue::Fixed(None),
            Some(value) => fixed(Datum::Json(value), &format!("metadata {key} cannot be stored"))?,
        },
        other => ColumnValue::PerMessage(other.clone()),
    };
    Ok(PlannedColumn { name: name.clone(), ty, type_name: info.type_name.clone(), value })
}

/// The columns of the smallest unique index that holds `key` and only mapped columns, so that a
/// redelivered message conflicts with its first copy.
fn conflict_target(
    key: &str,
    mappings: &[ColumnMapping],
    table: &TableDescription,
    table_name: &str,
) -> Result<Vec<String>, String> {
    let mapped = |c: &String| mappings.iter().any(|m| &m.column == c);
    let with_key: Vec<&Vec<String>> = table.unique_indexes.iter().filter(|i| i.iter().any(|c| c == key)).collect();
    if let Some(best) = with_key.iter().filter(|i| i.iter().all(mapped)).min_by_key(|i| i.len()) {
        return Ok(best.to_vec());
    }
    match with_key.first() {
        None => Err(format!(
            "idempotency key column \"{key}\" is in no unique index or constraint of table {table_name}; \
             create one, e.g. CREATE UNIQUE INDEX ON {table_name} (\"{key}\")"
        )),
        Some(index) => {
            let unmapped: Vec<String> = index.iter().filter(|c| !mapped(c)).map(|c| format!("\"{c}\"")).collect();
            Err(format!(
                "the unique index on ({}) of table {table_name} also covers {}, which the mapping does not fill; \
                 redelivered rows would not conflict",
                index.iter().map(|c| format!("\"{c}\"")).collect::<Vec<_>>().join(", "),
                unmapped.join(", ")
            ))
        }
    }
}
