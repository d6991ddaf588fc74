//! The column types the driver writes ([`PgType`]) and which sources fit which types
//! ([`Kind`]). A column of another type (an enum, an array, a composite) is refused by the plan
//! with [`SUPPORTED`] in the message.

use tokio_postgres::types::Type;

use crate::config::Source;

/// What the driver can write, for messages.
pub const SUPPORTED: &str = "supported: text, varchar, char, name, json, jsonb, bytea, timestamptz, timestamp, \
smallint, integer, bigint, real, double precision, numeric, boolean, uuid (or a domain over one of them)";

/// A column type the driver encodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgType {
    /// `text`
    Text,
    /// `varchar`
    Varchar,
    /// `char(n)` (`bpchar`)
    Bpchar,
    /// `name`
    Name,
    /// `json`
    Json,
    /// `jsonb`
    Jsonb,
    /// `bytea`
    Bytea,
    /// `timestamptz`
    Timestamptz,
    /// `timestamp`
    Timestamp,
    /// `smallint`
    Int2,
    /// `integer`
    Int4,
    /// `bigint`
    Int8,
    /// `real`
    Float4,
    /// `double precision`
    Float8,
    /// `numeric`
    Numeric,
    /// `boolean`
    Bool,
    /// `uuid`
    Uuid,
}

const ALL: [PgType; 17] = [
    PgType::Text,
    PgType::Varchar,
    PgType::Bpchar,
    PgType::Name,
    PgType::Json,
    PgType::Jsonb,
    PgType::Bytea,
    PgType::Timestamptz,
    PgType::Timestamp,
    PgType::Int2,
    PgType::Int4,
    PgType::Int8,
    PgType::Float4,
    PgType::Float8,
    PgType::Numeric,
    PgType::Bool,
    PgType::Uuid,
];

impl PgType {
    /// The type with this OID, if the driver writes it.
    pub fn from_oid(oid: u32) -> Option<PgType> {
        ALL.into_iter().find(|t| t.postgres_type().oid() == oid)
    }

    /// The client library's type.
    pub fn postgres_type(self) -> Type {
        match self {
            PgType::Text => Type::TEXT,
            PgType::Varchar => Type::VARCHAR,
            PgType::Bpchar => Type::BPCHAR,
            PgType::Name => Type::NAME,
            PgType::Json => Type::JSON,
            PgType::Jsonb => Type::JSONB,
            PgType::Bytea => Type::BYTEA,
            PgType::Timestamptz => Type::TIMESTAMPTZ,
            PgType::Timestamp => Type::TIMESTAMP,
            PgType::Int2 => Type::INT2,
            PgType::Int4 => Type::INT4,
            PgType::Int8 => Type::INT8,
            PgType::Float4 => Type::FLOAT4,
            PgType::Float8 => Type::FLOAT8,
            PgType::Numeric => Type::NUMERIC,
            PgType::Bool => Type::BOOL,
            PgType::Uuid => Type::UUID,
        }
    }

    /// The array of this type (the parameter type of `unnest`).
    pub fn array_type(self) -> Type {
        match self {
            PgType::Text => Type::TEXT_ARRAY,
            PgType::Varchar => Type::VARCHAR_ARRAY,
            PgType::Bpchar => Type::BPCHAR_ARRAY,
            PgType::Name => Type::NAME_ARRAY,
            PgType::Json => Type::JSON_ARRAY,
            PgType::Jsonb => Type::JSONB_ARRAY,
            PgType::Bytea => Type::BYTEA_ARRAY,
            PgType::Timestamptz => Type::TIMESTAMPTZ_ARRAY,
            PgType::Timestamp => Type::TIMESTAMP_ARRAY,
            PgType::Int2 => Type::INT2_ARRAY,
            PgType::Int4 => Type::INT4_ARRAY,
            PgType::Int8 => Type::INT8_ARRAY,
            PgType::Float4 => Type::FLOAT4_ARRAY,
            PgType::Float8 => Type::FLOAT8_ARRAY,
            PgType::Numeric => Type::NUMERIC_ARRAY,
            PgType::Bool => Type::BOOL_ARRAY,
            PgType::Uuid => Type::UUID_ARRAY,
        }
    }

    /// The OID of this type.
    pub fn oid(self) -> u32 {
        self.postgres_type().oid()
    }

    /// Whether values are text on the wire (`text`, `varchar`, `char`, `name`).
    pub fn is_text(self) -> bool {
        matches!(self, PgType::Text | PgType::Varchar | PgType::Bpchar | PgType::Name)
    }

    /// Whether this is an integer type.
    pub fn is_integer(self) -> bool {
        matches!(self, PgType::Int2 | PgType::Int4 | PgType::Int8)
    }
}

/// What a source produces, which decides the column types it fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Text: topic, client id, payload text, user property.
    Text,
    /// The broker timestamp.
    Ts,
    /// The QoS (a small integer).
    Qos,
    /// The retain flag.
    Retain,
    /// The payload as JSON.
    PayloadJson,
    /// The payload bytes.
    PayloadBytes,
    /// The message key.
    MessageKey,
    /// A JSON value: a JSON path, a constant, metadata (checked value by value).
    Json,
}

impl Kind {
    /// The kind of a source.
    pub fn of(source: &Source) -> Kind {
        match source {
            Source::Topic | Source::ClientId | Source::PayloadText | Source::UserProperty(_) => Kind::Text,
            Source::Ts => Kind::Ts,
            Source::Qos => Kind::Qos,
            Source::Retain => Kind::Retain,
            Source::PayloadJson => Kind::PayloadJson,
            Source::PayloadBytes => Kind::PayloadBytes,
            Source::MessageKey => Kind::MessageKey,
            Source::JsonPath(_) | Source::Constant(_) | Source::Metadata(_) => Kind::Json,
        }
    }

    /// Whether a column of type `ty` can hold this kind's values.
    pub fn fits(self, ty: PgType) -> bool {
        match self {
            Kind::Text => ty.is_text(),
            Kind::Ts => matches!(ty, PgType::Timestamptz | PgType::Timestamp | PgType::Int8),
            Kind::Qos => ty.is_integer() || ty.is_text() || ty == PgType::Numeric,
            Kind::Retain => ty == PgType::Bool,
            Kind::PayloadJson => matches!(ty, PgType::Json | PgType::Jsonb) || ty.is_text(),
            Kind::PayloadBytes => ty == PgType::Bytea,
            Kind::MessageKey => ty.is_text() || matches!(ty, PgType::Uuid | PgType::Bytea),
            Kind::Json => true,
        }
    }

    /// What the kind is, for messages: "the topic", "the broker timestamp".
    pub fn describe(self) -> &'static str {
        match self {
            Kind::Text => "text",
            Kind::Ts => "the broker timestamp",
            Kind::Qos => "the QoS",
            Kind::Retain => "the retain flag",
            Kind::PayloadJson => "the JSON payload",
            Kind::PayloadBytes => "the payload bytes",
            Kind::MessageKey => "the message key",
            Kind::Json => "JSON values",
        }
    }

    /// The types that fit, for messages.
    pub fn expected(self) -> &'static str {
        match self {
            Kind::Text => "text, varchar, char or name",
            Kind::Ts => "timestamptz, timestamp or bigint (epoch milliseconds)",
            Kind::Qos => "smallint, integer, bigint, numeric or text",
            Kind::Retain => "boolean",
            Kind::PayloadJson => "jsonb, json or text",
            Kind::PayloadBytes => "bytea",
            Kind::MessageKey => "text, uuid or bytea",
            Kind::Json => SUPPORTED,
        }
    }
}
