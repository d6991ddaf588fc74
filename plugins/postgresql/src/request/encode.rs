//! PostgreSQL's binary formats, written by hand from values of a message: one value into a
//! column type ([`encode`]), a column of a pack as a one-dimensional array for `unnest`
//! ([`array`]), and a pack as `COPY ... (FORMAT binary)` data ([`copy_data`]).
//!
//! Values arrive as a [`Datum`]; a datum that does not fit the type (`"abc"` for an integer,
//! 70000 for a smallint, a fraction for an integer) is an `Err` with a short reason, and the
//! message is rejected before anything is sent. The formats are those of the server's `*_recv`
//! functions (`src/backend/utils/adt/`), for integer datetimes (every server since 10).

mod numeric;
mod time;

use std::borrow::Cow;

use serde_json::Value;

pub use self::{
    numeric::numeric,
    time::{format_rfc3339, parse_rfc3339},
};
use super::{types::PgType, Rows};

/// A value taken from a message, before it is encoded for its column.
#[derive(Debug, Clone)]
pub enum Datum<'a> {
    /// SQL NULL.
    Null,
    /// Text.
    Text(Cow<'a, str>),
    /// A JSON value (a JSON path's result, a constant, a metadata value).
    Json(&'a Value),
    /// A payload already known to be JSON text.
    RawJson(&'a [u8]),
    /// Bytes.
    Bytes(&'a [u8]),
    /// Epoch milliseconds.
    TimestampMs(i64),
    /// An integer.
    Int(i64),
    /// A boolean.
    Bool(bool),
    /// A 16-byte message key.
    Key([u8; 16]),
}

/// Microseconds from 1970-01-01 to 2000-01-01, PostgreSQL's epoch.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// Appends `datum` encoded as `ty` to `out` (not NULL; the caller handles that).
pub fn encode(datum: &Datum<'_>, ty: PgType, out: &mut Vec<u8>) -> Result<(), String> {
    match ty {
        PgType::Text | PgType::Varchar | PgType::Bpchar | PgType::Name => text(datum, out),
        PgType::Json => json(datum, out),
        PgType::Jsonb => {
            out.push(1);
            json(datum, out)
        }
        PgType::Bytea => bytea(datum, out),
        PgType::Timestamptz | PgType::Timestamp => {
            let micros = timestamp_micros(datum)?;
            let pg = micros.checked_sub(PG_EPOCH_MICROS).ok_or("timestamp out of range")?;
            out.extend_from_slice(&pg.to_be_bytes());
            Ok(())
        }
        PgType::Int2 => {
            let n = integer(datum)?;
            let n = i16::try_from(n).map_err(|_| format!("{n} is out of range for smallint"))?;
            out.extend_from_slice(&n.to_be_bytes());
            Ok(())
        }
        PgType::Int4 => {
            let n = integer(datum)?;
            let n = i32::try_from(n).map_err(|_| format!("{n} is out of range for integer"))?;
            out.extend_from_slice(&n.to_be_bytes());
            Ok(())
        }
        PgType::Int8 => {
            out.extend_from_slice(&integer(datum)?.to_be_bytes());
            Ok(())
        }
        PgType::Float4 => {
            // A double outside real's range becomes infinity, which the server stores as such.
            out.extend_from_slice(&(float(datum)? as f32).to_be_bytes());
            Ok(())
        }
        PgType::Float8 => {
            out.extend_from_slice(&float(datum)?.to_be_bytes());
            Ok(())
        }
        PgType::Numeric => numeric(&number_text(datum)?, out),
        PgType::Bool => {
            out.push(u8::from(boolean(datum)?));
            Ok(())
        }
        PgType::Uuid => {
            out.extend_from_slice(&uuid(datum)?);
            Ok(())
        }
    }
}

/// One column of `rows` as a one-dimensional array of `ty` (`array_recv`'s format).
pub fn array(rows: &Rows, column: usize, ty: PgType) -> Vec<u8> {
    let mut out = Vec::with_capacity(20 + rows.len() * 16);
    out.extend_from_slice(&1i32.to_be_bytes()); // dimensions
    out.extend_from_slice(&0i32.to_be_bytes()); // has NULLs, set below
    out.extend_from_slice(&ty.oid().to_be_bytes()); // element type
    out.extend_from_slice(&len(rows.len()).to_be_bytes()); // elements
    out.extend_from_slice(&1i32.to_be_bytes()); // lower bound
    let mut has_null = false;
    for row in 0..rows.len() {
        let cell = rows.cell(row, column);
        has_null |= cell.is_none();
        field(cell, &mut out);
    }
    out[4..8].copy_from_slice(&i32::from(has_null).to_be_bytes());
    out
}

/// `rows` as the data of `COPY ... FROM STDIN (FORMAT binary)`: header, tuples, trailer.
pub fn copy_data(rows: &Rows) -> Vec<u8> {
    let mut out = Vec::with_capacity(21 + rows.buf_len() + rows.len() * (2 + rows.columns() * 4));
    out.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    out.extend_from_slice(&0i32.to_be_bytes()); // flags: no OIDs
    out.extend_from_slice(&0i32.to_be_bytes()); // header extension length
    let columns = i16::try_from(rows.columns()).unwrap_or(i16::MAX);
    for row in 0..rows.len() {
        out.extend_from_slice(&columns.to_be_bytes());
        for cell in rows.row(row) {
            field(cell, &mut out);
        }
    }
    out.extend_from_slice(&(-1i16).to_be_bytes());
    out
}

/// A length-prefixed field (`-1` for NULL).
fn field(cell: Option<&[u8]>, out: &mut Vec<u8>) {
    match cell {
        None => out.extend_from_slice(&(-1i32).to_be_bytes()),
        Some(bytes) => {
            out.extend_from_slice(&len(bytes.len()).to_be_bytes());
            out.extend_from_slice(bytes);
        }
    }
}

/// A length as the protocol's `int32`. Values come from MQTT messages (at most 256 MiB), so
/// the saturation never happens; if it did, the server would refuse the malformed value.
fn len(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn text(datum: &Datum<'_>, out: &mut Vec<u8>) -> Result<(), String> {
    let start = out.len();
    match datum {
        Datum::Text(s) => out.extend_from_slice(s.as_bytes()),
        Datum::Json(Value::String(s)) => out.extend_from_slice(s.as_bytes()),
        Datum::Json(v) => out.extend_from_slice(v.to_string().as_bytes()),
        Datum::RawJson(b) => out.extend_from_slice(b),
        Datum::TimestampMs(ms) => out.extend_from_slice(format_rfc3339(*ms)?.as_bytes()),
        Datum::Int(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Datum::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Datum::Key(k) => out.extend_from_slice(super::key::hex(k).as_bytes()),
        Datum::Bytes(_) | Datum::Null => return Err("bytes cannot be stored as text".to_string()),
    }
    if out[start..].contains(&0) {
        out.truncate(start);
        return Err("text with a NUL character cannot be stored".to_string());
    }
    Ok(())
}

fn json(datum: &Datum<'_>, out: &mut Vec<u8>) -> Result<(), String> {
    let written = match datum {
        Datum::Text(s) => serde_json::to_writer(&mut *out, s.as_ref()),
        Datum::Json(v) => serde_json::to_writer(&mut *out, v),
        Datum::RawJson(b) => {
            out.extend_from_slice(b);
            Ok(())
        }
        Datum::TimestampMs(n) | Datum::Int(n) => serde_json::to_writer(&mut *out, n),
        Datum::Bool(b) => serde_json::to_writer(&mut *out, b),
        Datum::Key(k) => serde_json::to_writer(&mut *out, &super::key::hex(k)),
        Datum::Bytes(_) | Datum::Null => return Err("bytes cannot be stored as JSON".to_string()),
    };
    written.map_err(|e| format!("cannot write JSON: {e}"))
}

fn bytea(datum: &Datum<'_>, out: &mut Vec<u8>) -> Result<(), String> {
    match datum {
        Datum::Bytes(b) | Datum::RawJson(b) => out.extend_from_slice(b),
        Datum::Text(s) => out.extend_from_slice(s.as_bytes()),
        Datum::Json(Value::String(s)) => out.extend_from_slice(s.as_bytes()),
        Datum::Key(k) => out.extend_from_slice(k),
        _ => return Err("only bytes, text and strings can be stored as bytea".to_string()),
    }
    Ok(())
}

/// Epoch microseconds: broker time, epoch milliseconds as a number, or an RFC 3339 string.
fn timestamp_micros(datum: &Datum<'_>) -> Result<i64, String> {
    let out_of_range = || "timestamp out of range".to_string();
    match datum {
        Datum::TimestampMs(ms) | Datum::Int(ms) => ms.checked_mul(1000).ok_or_else(out_of_range),
        Datum::Json(Value::Number(n)) => match n.as_i64() {
            Some(ms) => ms.checked_mul(1000).ok_or_else(out_of_range),
            None => {
                let micros = (n.as_f64().unwrap_or(f64::NAN) * 1000.0).round();
                if micros.is_finite() && micros.abs() < 9.0e18 {
                    Ok(micros as i64)
                } else {
                    Err(out_of_range())
                }
            }
        },
        Datum::Text(s) => parse_rfc3339(s),
        Datum::Json(Value::String(s)) => parse_rfc3339(s),
        other => Err(format!("{} is not a timestamp (RFC 3339 text or epoch milliseconds)", what(other))),
    }
}

fn integer(datum: &Datum<'_>) -> Result<i64, String> {
    match datum {
        Datum::Int(n) | Datum::TimestampMs(n) => Ok(*n),
        Datum::Json(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18).map(|f| f as i64))
            .ok_or_else(|| format!("{n} is not an integer in range")),
        Datum::Text(s) => parse_integer(s),
        Datum::Json(Value::String(s)) => parse_integer(s),
        other => Err(format!("{} is not an integer", what(other))),
    }
}

fn parse_integer(s: &str) -> Result<i64, String> {
    s.trim().parse::<i64>().map_err(|_| format!("\"{}\" is not an integer", shorten(s)))
}

fn float(datum: &Datum<'_>) -> Result<f64, String> {
    match datum {
        Datum::Int(n) => Ok(*n as f64),
        Datum::Json(Value::Number(n)) => n.as_f64().ok_or_else(|| format!("{n} is not a number")),
        Datum::Text(s) => parse_float(s),
        Datum::Json(Value::String(s)) => parse_float(s),
        other => Err(format!("{} is not a number", what(other))),
    }
}

fn parse_float(s: &str) -> Result<f64, String> {
    s.trim().parse::<f64>().map_err(|_| format!("\"{}\" is not a number", shorten(s)))
}

/// The decimal text of a number-like datum, for `numeric`.
fn number_text(datum: &Datum<'_>) -> Result<String, String> {
    match datum {
        Datum::Int(n) | Datum::TimestampMs(n) => Ok(n.to_string()),
        Datum::Json(Value::Number(n)) => Ok(n.to_string()),
        Datum::Text(s) => Ok(s.trim().to_string()),
        Datum::Json(Value::String(s)) => Ok(s.trim().to_string()),
        other => Err(format!("{} is not a number", what(other))),
    }
}

fn boolean(datum: &Datum<'_>) -> Result<bool, String> {
    let from_text = |s: &str| match s.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("\"{}\" is not a boolean (true or false)", shorten(s))),
    };
    match datum {
        Datum::Bool(b) | Datum::Json(Value::Bool(b)) => Ok(*b),
        Datum::Int(0) => Ok(false),
        Datum::Int(1) => Ok(true),
        Datum::Json(Value::Number(n)) if n.as_i64() == Some(0) => Ok(false),
        Datum::Json(Value::Number(n)) if n.as_i64() == Some(1) => Ok(true),
        Datum::Text(s) => from_text(s),
        Datum::Json(Value::String(s)) => from_text(s),
        other => Err(format!("{} is not a boolean", what(other))),
    }
}

fn uuid(datum: &Datum<'_>) -> Result<[u8; 16], String> {
    let text = match datum {
        Datum::Key(k) => return Ok(*k),
        Datum::Text(s) => s.as_ref(),
        Datum::Json(Value::String(s)) => s.as_str(),
        other => return Err(format!("{} is not a UUID", what(other))),
    };
    let hex: Vec<u8> =
        text.trim().trim_start_matches('{').trim_end_matches('}').bytes().filter(|b| *b != b'-').collect();
    let invalid = || format!("\"{}\" is not a UUID", shorten(text));
    if hex.len() != 32 {
        return Err(invalid());
    }
    let mut out = [0u8; 16];
    for (i, pair) in hex.chunks(2).enumerate() {
        let digits = std::str::from_utf8(pair).map_err(|_| invalid())?;
        out[i] = u8::from_str_radix(digits, 16).map_err(|_| invalid())?;
    }
    Ok(out)
}

/// What a datum is, for reasons.
fn what(datum: &Datum<'_>) -> String {
    match datum {
        Datum::Null => "NULL".to_string(),
        Datum::Text(s) => format!("\"{}\"", shorten(s)),
        Datum::Json(v) => shorten(&v.to_string()),
        Datum::RawJson(_) => "a JSON payload".to_string(),
        Datum::Bytes(_) => "bytes".to_string(),
        Datum::TimestampMs(_) => "a timestamp".to_string(),
        Datum::Int(n) => n.to_string(),
        Datum::Bool(b) => b.to_string(),
        Datum::Key(_) => "a message key".to_string(),
    }
}

/// At most 40 characters of `text`, for reasons.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(40) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.to_string(),
    }
}
