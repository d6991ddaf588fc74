//! The statements of a pack on an open session: the pack in one transaction, the rows one by
//! one (pipelined), and the rollback after a failure. Values travel in PostgreSQL's binary format
//! as [`crate::request::encode`] wrote them ([`Raw`]).

use std::time::Instant;

use bytes::{Bytes, BytesMut};
use futures::SinkExt;
use tokio_postgres::types::{IsNull, ToSql, Type};

use super::{PackFailure, Session};
use crate::{
    config::WriteMode,
    request::{encode, sql, Rows},
    retry::{self, Failure},
};

/// `BEGIN`, the pack statement, `COMMIT`.
pub(super) async fn pack(session: &Session, rows: &Rows, statement_timeout_ms: u64) -> Result<(), PackFailure> {
    let client = &session.client;
    let failed =
        |before_rows: bool| move |e: tokio_postgres::Error| PackFailure { failure: retry::classify(&e), before_rows };
    client.batch_execute(&sql::begin(statement_timeout_ms)).await.map_err(failed(true))?;
    match session.plan.write_mode {
        WriteMode::Insert => {
            let arrays: Vec<Vec<u8>> =
                session.plan.columns.iter().enumerate().map(|(c, column)| encode::array(rows, c, column.ty)).collect();
            let params = arrays.iter().map(|a| Raw(Some(a)));
            client.execute_raw(&session.pack, params).await.map_err(failed(false))?;
        }
        WriteMode::Copy => {
            let sink = client.copy_in::<_, Bytes>(&session.pack).await.map_err(failed(false))?;
            let mut sink = Box::pin(sink);
            sink.send(Bytes::from(encode::copy_data(rows))).await.map_err(failed(false))?;
            sink.as_mut().finish().await.map_err(failed(false))?;
        }
    }
    client.batch_execute("COMMIT").await.map_err(|e| {
        let mut failure = retry::classify(&e);
        if let Failure::Connection(reason) = &failure {
            failure = Failure::Connection(format!("{reason} (during COMMIT: the rows may have been written)"));
        }
        PackFailure { failure, before_rows: false }
    })
}

/// Each row in its own implicit transaction, all sent at once (pipelined).
pub(super) async fn each_row(session: &Session, rows: &Rows, deadline: Instant) -> Vec<Result<(), Failure>> {
    let deadline = tokio::time::Instant::from_std(deadline);
    let writes = (0..rows.len()).map(|r| {
        let params: Vec<Raw<'_>> = rows.row(r).map(Raw).collect();
        async move {
            match tokio::time::timeout_at(deadline, session.client.execute_raw(&session.row, params)).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(retry::classify(&e)),
                Err(_) => Err(Failure::Timeout("no answer from PostgreSQL by the pack deadline".to_string())),
            }
        }
    });
    futures::future::join_all(writes).await
}

pub(super) async fn rollback(session: &Session) -> Result<(), ()> {
    session.client.batch_execute("ROLLBACK").await.map_err(|_| ())
}

/// A value already in PostgreSQL's binary format (`None` = NULL), for any parameter type: the
/// plan chose the types, [`encode`] wrote the bytes.
#[derive(Debug)]
struct Raw<'a>(Option<&'a [u8]>);

impl ToSql for Raw<'_> {
    fn to_sql(&self, _ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self.0 {
            None => Ok(IsNull::Yes),
            Some(bytes) => {
                out.extend_from_slice(bytes);
                Ok(IsNull::No)
            }
        }
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    tokio_postgres::types::to_sql_checked!();
}
