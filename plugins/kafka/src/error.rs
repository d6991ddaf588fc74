//! The driver's error type and its conversion into the plugin interface's [`DriverError`].
//!
//! Delivery failures of single messages are not errors: they become outcomes in [`crate::retry`].

use trib_plugin_api::driver::{Error as DriverError, ErrorKind};

/// What can go wrong in the driver's lifecycle calls.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    /// The configuration failed validation; the text lists every field error.
    #[error("{0}")]
    Config(String),
    /// librdkafka refused to create the producer.
    #[error("failed to create the kafka producer: {0}")]
    Create(String),
    /// Listing the topics of the cluster failed (unreachable, authentication, timeout).
    #[error("failed to list the topics of the kafka cluster: {0}")]
    Metadata(String),
    /// The cluster answered, but the configured topic is not in its topic list (TBMQ's text).
    #[error("Configured topic is missing on the external brokers!")]
    TopicMissing,
    /// The host's target policy refuses a bootstrap server; nothing was sent to it.
    #[error("kafka bootstrap server refused: {0}")]
    Target(String),
    /// `start` was called on an instance that already runs.
    #[error("the driver is already started")]
    AlreadyStarted,
}

impl From<KafkaError> for DriverError {
    fn from(e: KafkaError) -> Self {
        let kind = match e {
            KafkaError::Config(_) | KafkaError::Create(_) => ErrorKind::Config,
            KafkaError::Metadata(_) | KafkaError::TopicMissing | KafkaError::Target(_) => ErrorKind::Connection,
            KafkaError::AlreadyStarted => ErrorKind::State,
        };
        DriverError::new(kind, e.to_string())
    }
}
