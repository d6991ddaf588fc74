//! Sorting a delivery result into an [`Outcome`]: Delivered, Timeout (no acknowledgement in
//! time), Retry (anything else a later attempt may fix) or Rejected (this record will never be
//! accepted as it is).
//!
//! | librdkafka / Kafka error | outcome | why |
//! |---|---|---|
//! | none (delivery report success, per `acks`) | Delivered | the broker acknowledged |
//! | `MSG_SIZE_TOO_LARGE`, `MESSAGE_BATCH_TOO_LARGE`, `INVALID_MSG_SIZE` | Rejected | the record is too big for the broker or topic |
//! | `INVALID_RECORD`, `INVALID_MSG`... see [`REJECTED`] | Rejected | the broker refuses this record |
//! | `TOPIC_AUTHORIZATION_FAILED`, `CLUSTER_AUTHORIZATION_FAILED`, `TRANSACTIONAL_ID_AUTHORIZATION_FAILED` | Rejected | the ACLs forbid writing; retrying the same record does not help |
//! | `INVALID_TOPIC_EXCEPTION`, `INVALID_REQUIRED_ACKS`, `UNSUPPORTED_VERSION`, `UNSUPPORTED_FOR_MESSAGE_FORMAT`, `UNSUPPORTED_COMPRESSION_TYPE`, `INVALID_REQUEST`, `POLICY_VIOLATION`, `INVALID_TIMESTAMP` | Rejected | the broker will answer the same way every time |
//! | local `_BAD_MSG`, `_INVALID_ARG`, `_BAD_COMPRESSION`, and `MSG_SIZE_TOO_LARGE` from librdkafka's own `message.max.bytes` check | Rejected | librdkafka refuses the record itself |
//! | `_MSG_TIMED_OUT`, `_PURGE_QUEUE`, `_PURGE_INFLIGHT`, `REQUEST_TIMED_OUT`, or no report by the deadline | Timeout | no acknowledgement in time (`message.timeout.ms`, the broker's request timeout, or the batch deadline, after which the rest is purged) |
//! | anything else: `_QUEUE_FULL`, `_TRANSPORT`, `_ALL_BROKERS_DOWN`, `NOT_LEADER_FOR_PARTITION`, `NOT_ENOUGH_REPLICAS`, `UNKNOWN_TOPIC_OR_PART`, `_AUTHENTICATION`, `_SSL`, `_FATAL`... | Retry | the cluster, the network or the credentials may recover; an unknown code is retried so that nothing is lost |

use rdkafka::{error::KafkaError, types::RDKafkaErrorCode as Code};
use trib_plugin_api::driver::Outcome;

/// Error codes after which the same record will never be accepted.
pub const REJECTED: [Code; 21] = [
    Code::MessageSizeTooLarge,
    Code::MessageBatchTooLarge,
    Code::InvalidMessageSize,
    Code::InvalidMessage,
    Code::InvalidRecord,
    Code::TopicAuthorizationFailed,
    Code::ClusterAuthorizationFailed,
    Code::TransactionalIdAuthorizationFailed,
    Code::InvalidTopic,
    Code::InvalidRequiredAcks,
    Code::UnsupportedVersion,
    Code::UnsupportedForMessageFormat,
    Code::UnsupportedCompressionType,
    Code::InvalidRequest,
    Code::PolicyViolation,
    Code::InvalidTimestamp,
    Code::BadMessage,
    Code::InvalidArgument,
    Code::KeySerialization,
    Code::ValueSerialization,
    Code::BadCompression,
];

/// Codes that mean "no acknowledgement in time": the outcome is [`Outcome::Timeout`].
pub const TIMEOUTS: [Code; 4] = [Code::MessageTimedOut, Code::PurgeQueue, Code::PurgeInflight, Code::RequestTimedOut];

/// The outcome of a delivery report or of a failed enqueue.
pub fn classify(result: Result<(), Code>) -> Outcome {
    match result {
        Ok(()) => Outcome::Delivered,
        Err(code) if REJECTED.contains(&code) => Outcome::Rejected(format!("kafka rejected the record: {code}")),
        Err(code) if TIMEOUTS.contains(&code) => {
            Outcome::Timeout(format!("timeout: no acknowledgement from kafka in time ({code})"))
        }
        Err(code) => Outcome::Retry(format!("kafka delivery failed: {code}")),
    }
}

/// The code of an rdkafka error; errors without one count as a generic failure.
pub fn code_of(error: &KafkaError) -> Code {
    error.rdkafka_error_code().unwrap_or(Code::Fail)
}

/// The outcome of a message the deadline caught before any delivery report came.
pub fn timed_out() -> Outcome {
    Outcome::Timeout("timeout: no acknowledgement from kafka before the deadline".to_string())
}
