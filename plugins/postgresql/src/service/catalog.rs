//! What the catalog says about the table: its columns with their (base) types, and its unique
//! indexes. Read once per session; [`crate::request::Plan`] checks the mapping against it.

use tokio_postgres::Client;

use crate::{
    config::TableName,
    request::{types::PgType, ColumnInfo, TableDescription},
};

/// The table's OID, resolved like the server resolves a name in a statement (`search_path`
/// for a name without a schema); NULL when it does not exist or is not visible.
const TABLE_OID: &str = "SELECT to_regclass($1::text)::oid";

/// The columns in table order: name, the OID of the type (of the base type for a domain) and
/// the type as the server spells it.
const COLUMNS: &str = "SELECT a.attname::text, \
       CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE a.atttypid END, \
       format_type(a.atttypid, a.atttypmod) \
     FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid \
     WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped \
     ORDER BY a.attnum";

/// The key columns of every valid, immediate, non-partial unique index on plain columns: the
/// indexes an `ON CONFLICT (columns)` clause can use.
const UNIQUE_INDEXES: &str = "SELECT array_agg(a.attname::text ORDER BY k.ord) \
     FROM pg_catalog.pg_index i \
     CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) \
     JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
     WHERE i.indrelid = $1 AND i.indisunique AND i.indisvalid AND i.indimmediate \
       AND i.indpred IS NULL AND i.indexprs IS NULL AND k.ord <= i.indnkeyatts \
     GROUP BY i.indexrelid ORDER BY i.indexrelid";

/// Describes `table`; `None` when it does not exist.
pub async fn describe(client: &Client, table: &TableName) -> Result<Option<TableDescription>, tokio_postgres::Error> {
    let name = table.to_string();
    let oid: Option<u32> = client.query_one(TABLE_OID, &[&name]).await?.try_get(0)?;
    let Some(oid) = oid else {
        return Ok(None);
    };
    let mut columns = Vec::new();
    for row in client.query(COLUMNS, &[&oid]).await? {
        let type_oid: u32 = row.try_get(1)?;
        columns.push(ColumnInfo { name: row.try_get(0)?, ty: PgType::from_oid(type_oid), type_name: row.try_get(2)? });
    }
    let mut unique_indexes = Vec::new();
    for row in client.query(UNIQUE_INDEXES, &[&oid]).await? {
        unique_indexes.push(row.try_get(0)?);
    }
    Ok(Some(TableDescription { columns, unique_indexes }))
}
