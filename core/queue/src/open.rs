//! Opening the queue a process's settings name (`TB_QUEUE_TYPE` and the backend's variables).
//! Deliberately not here: the queues themselves (`queue`).

use std::{path::Path, sync::Arc, time::Duration};

use crate::{
    config::{parse, parse_properties, ConfigError, Lookup},
    queue::{
        embedded::{EmbeddedQueue, Limits},
        kafka::{KafkaConfig, KafkaQueue},
        Queue, QueueError,
    },
};

/// Why the queue could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The backend refused.
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// Opens the queue named by `TB_QUEUE_TYPE` (`in-memory` or `kafka`, default `default_type`).
/// The in-process queue is kept in the directory `TB_QUEUE_IN_MEMORY_DIR` (default `data/queue`,
/// relative to the working directory); an empty value keeps it in memory only. Its bounds are
/// `TB_QUEUE_IN_MEMORY_MAX_PARTITION_BYTES` and `TB_QUEUE_IN_MEMORY_CACHE_MAX_BYTES` (see
/// [`embedded_limits`]).
pub fn open_queue(lookup: Lookup<'_>, default_type: &str) -> Result<Arc<dyn Queue>, OpenError> {
    let kind = lookup("TB_QUEUE_TYPE").filter(|v| !v.trim().is_empty()).unwrap_or_else(|| default_type.to_string());
    match kind.trim() {
        "in-memory" => {
            let limits = embedded_limits(lookup)?;
            let dir = lookup("TB_QUEUE_IN_MEMORY_DIR").unwrap_or_else(|| "data/queue".into());
            let dir = dir.trim();
            if dir.is_empty() {
                tracing::info!("TB_QUEUE_IN_MEMORY_DIR is empty: the queue is kept in memory only and lost at exit.");
                return Ok(Arc::new(EmbeddedQueue::with_max_partition_bytes(limits.max_partition_bytes)));
            }
            Ok(Arc::new(EmbeddedQueue::open_with(Path::new(dir), limits)?))
        }
        "kafka" => {
            let servers = lookup("TB_KAFKA_SERVERS").unwrap_or_else(|| "localhost:9092".into());
            let mut config = KafkaConfig::new(servers);
            let props = |name: &str| parse_properties(&lookup(name).unwrap_or_default());
            config.common_properties = props("TB_KAFKA_DEFAULT_PRODUCER_CONSUMER_CONFIG");
            config.extra_producer_properties = props("TB_KAFKA_DEFAULT_PRODUCER_CONFIG");
            config.extra_consumer_properties = props("TB_KAFKA_DEFAULT_CONSUMER_CONFIG");
            config.admin_properties = props("TB_KAFKA_ADMIN_CONFIG");
            if let Some(secs) = lookup("TB_KAFKA_ADMIN_COMMAND_TIMEOUT_SEC").and_then(|v| v.trim().parse().ok()) {
                config.admin_timeout = Duration::from_secs(secs);
            }
            Ok(Arc::new(KafkaQueue::new(config)?))
        }
        other => Err(ConfigError {
            name: "TB_QUEUE_TYPE".into(),
            value: other.into(),
            reason: "use in-memory or kafka".into(),
        }
        .into()),
    }
}

/// The bounds of the in-process queue: `TB_QUEUE_IN_MEMORY_MAX_PARTITION_BYTES` (what one
/// partition may store before `send` is refused; default 256 MiB) and
/// `TB_QUEUE_IN_MEMORY_CACHE_MAX_BYTES` (the records kept in memory, all partitions together;
/// default 64 MiB), both in bytes.
pub fn embedded_limits(lookup: Lookup<'_>) -> Result<Limits, ConfigError> {
    let mut limits = Limits::default();
    parse(lookup, "TB_QUEUE_IN_MEMORY_MAX_PARTITION_BYTES", &mut limits.max_partition_bytes)?;
    parse(lookup, "TB_QUEUE_IN_MEMORY_CACHE_MAX_BYTES", &mut limits.cache_max_bytes)?;
    if limits.max_partition_bytes == 0 {
        return Err(ConfigError {
            name: "TB_QUEUE_IN_MEMORY_MAX_PARTITION_BYTES".into(),
            value: "0".into(),
            reason: "a partition must be able to store a record".into(),
        });
    }
    Ok(limits)
}

#[cfg(test)]
mod tests;
