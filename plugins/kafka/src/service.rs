//! The IO: one librdkafka producer per started integration, sending a batch and waiting for
//! its delivery reports until the deadline; and the connection check.
//!
//! A [`ThreadedProducer`] polls librdkafka on its own thread; its [`ProducerContext`] forwards
//! each delivery report, tagged with the message id carried in the delivery opaque, over a
//! channel that [`Producer::send_batch`] waits on. Ids grow across batches, so a late report of
//! an earlier batch is recognised and ignored.

use std::{
    sync::mpsc,
    time::{Duration, Instant},
};

use rdkafka::{
    client::ClientContext,
    config::RDKafkaLogLevel,
    error::KafkaError as RdError,
    message::{DeliveryResult, Header, OwnedHeaders},
    producer::{BaseRecord, Producer as _, ProducerContext, PurgeConfig, ThreadedProducer},
    types::RDKafkaErrorCode,
};
use trib_plugin_api::driver::{Host, Outcome};

use crate::{error::KafkaError, properties::Property, request::Record, retry};

/// How long `stop` waits for queued records before dropping the producer.
pub const STOP_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);
/// TBMQ's check-connection timeout for listing topics.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

type Report = (usize, Result<(), RDKafkaErrorCode>);

/// The producer context: forwards delivery reports and routes librdkafka's logs to the host.
pub struct DeliveryContext {
    host: Host,
    reports: mpsc::Sender<Report>,
}

impl ClientContext for DeliveryContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        // librdkafka reports every failed connection attempt at error level and recovers on
        // its own; what matters to operators is the outcome of each message.
        match level {
            RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical => {
                self.host.error(format_args!("librdkafka {fac}: {message}"))
            }
            RDKafkaLogLevel::Error | RDKafkaLogLevel::Warning => {
                self.host.warn(format_args!("librdkafka {fac}: {message}"))
            }
            _ => self.host.debug(format_args!("librdkafka {fac}: {message}")),
        }
    }

    fn error(&self, error: RdError, reason: &str) {
        self.host.warn(format_args!("Kafka client error: {error}: {reason}"));
    }
}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, id: usize) {
        let result = result.as_ref().map(|_| ()).map_err(|(e, _)| retry::code_of(e));
        // A closed channel means the producer is being dropped; the report has no reader then.
        let _ = self.reports.send((id, result));
    }
}

/// One integration's producer.
pub struct Producer {
    inner: ThreadedProducer<DeliveryContext>,
    reports: mpsc::Receiver<Report>,
    topic: String,
    headers: Option<OwnedHeaders>,
    next_id: usize,
    host: Host,
}

impl Producer {
    /// Creates the producer (librdkafka connects in the background).
    pub fn create(
        props: &[Property],
        topic: &str,
        headers: &[(String, Vec<u8>)],
        host: Host,
    ) -> Result<Self, KafkaError> {
        let (tx, rx) = mpsc::channel();
        let context = DeliveryContext { host, reports: tx };
        let inner = crate::properties::client_config(props)
            .create_with_context(context)
            .map_err(|e| KafkaError::Create(crate::properties::describe(&e)))?;
        let headers = (!headers.is_empty()).then(|| {
            headers.iter().fold(OwnedHeaders::new_with_capacity(headers.len()), |h, (key, value)| {
                h.insert(Header { key, value: Some(value.as_slice()) })
            })
        });
        Ok(Producer { inner, reports: rx, topic: topic.to_string(), headers, next_id: 0, host })
    }

    /// Whether librdkafka hit a fatal error (idempotent producer); the producer must be replaced.
    pub fn fatal_error(&self) -> Option<String> {
        self.inner.client().fatal_error().map(|(code, reason)| format!("{code}: {reason}"))
    }

    /// Sends every record, then waits for their delivery reports until `deadline`. Returns one
    /// outcome per record, in order. Records still queued at the deadline are purged, so that
    /// they are not sent after being reported as Retry.
    pub fn send_batch(&mut self, records: &[Record], deadline: Instant) -> Vec<Outcome> {
        let base = self.next_id;
        self.next_id = self.next_id.wrapping_add(records.len());
        let mut outcomes: Vec<Option<Outcome>> = vec![None; records.len()];
        for (i, record) in records.iter().enumerate() {
            outcomes[i] = self.enqueue(base.wrapping_add(i), record, deadline);
        }
        let mut open = outcomes.iter().filter(|o| o.is_none()).count();
        while open > 0 {
            let Some(wait) = deadline.checked_duration_since(Instant::now()) else {
                break;
            };
            match self.reports.recv_timeout(wait) {
                Ok((id, result)) => open -= usize::from(self.record_report(&mut outcomes, base, id, result)),
                Err(_) => break,
            }
        }
        if open > 0 {
            self.inner.purge(PurgeConfig::default().queue());
            self.host.debug(format_args!("{open} Kafka records unacknowledged at the deadline."));
        }
        outcomes.into_iter().map(|o| o.unwrap_or_else(retry::timed_out)).collect()
    }

    /// Flushes for at most `timeout`, then drops the producer.
    pub fn close(self, timeout: Duration) {
        if let Err(e) = self.inner.flush(timeout) {
            self.host.warn(format_args!("Kafka producer flush on stop failed: {e}."));
        }
    }

    /// Hands one record to librdkafka; while its queue is full, waits for the polling thread to
    /// make room (until the deadline).
    /// Returns an outcome only when the record could not be enqueued.
    fn enqueue(&self, id: usize, record: &Record, deadline: Instant) -> Option<Outcome> {
        let mut base_record =
            BaseRecord::<[u8], [u8], usize>::with_opaque_to(&self.topic, id).payload(record.value.as_slice());
        if let Some(headers) = &self.headers {
            base_record = base_record.headers(headers.clone());
        }
        if let Some(key) = &record.key {
            base_record = base_record.key(key.as_slice());
        }
        loop {
            match self.inner.send(base_record) {
                Ok(()) => return None,
                Err((RdError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) if Instant::now() < deadline => {
                    base_record = back;
                    std::thread::sleep(
                        Duration::from_millis(10).min(deadline.saturating_duration_since(Instant::now())),
                    );
                }
                Err((e, _)) => return Some(retry::classify(Err(retry::code_of(&e)))),
            }
        }
    }

    /// Stores a report of this batch; returns whether it filled an open slot.
    fn record_report(
        &self,
        outcomes: &mut [Option<Outcome>],
        base: usize,
        id: usize,
        result: Result<(), RDKafkaErrorCode>,
    ) -> bool {
        let index = id.wrapping_sub(base);
        match outcomes.get_mut(index) {
            Some(slot @ None) => {
                *slot = Some(retry::classify(result));
                true
            }
            _ => {
                self.host
                    .debug(format_args!("Ignoring a late Kafka delivery report of an earlier batch ({result:?})."));
                false
            }
        }
    }
}

/// TBMQ's connection check: list the cluster's topics within 10 s; Ok only when `topic` is among them.
pub fn check_connection(props: &[Property], topic: &str, host: Host) -> Result<(), KafkaError> {
    let producer = Producer::create(props, topic, &[], host)?;
    let metadata =
        producer.inner.client().fetch_metadata(None, CHECK_TIMEOUT).map_err(|e| KafkaError::Metadata(e.to_string()))?;
    if metadata.topics().iter().any(|t| t.name() == topic && t.error().is_none()) {
        Ok(())
    } else {
        Err(KafkaError::TopicMissing)
    }
}
