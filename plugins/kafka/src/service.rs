//! The IO: the librdkafka producer of a started integration, sending a batch and waiting for
//! its delivery reports until the deadline; what the producer learnt about its connection
//! ([`Link`]); and the connection check.
//!
//! The driver creates a [`Producer`] with the first batch and closes it after [`IDLE_CLOSE`]
//! with nothing to do (see [`crate::driver`]), so an idle integration holds no librdkafka
//! threads. The [`Link`] outlives the producers, so the last known state stays available.
//!
//! A [`ThreadedProducer`] polls librdkafka on its own thread; its [`ProducerContext`] forwards
//! each delivery report, tagged with the message id carried in the delivery opaque, over a
//! channel that [`Producer::collect`] reads. Ids grow across batches, so each report finds its
//! batch among those not collected yet (several when the executor pipelines), and a late report
//! of a batch already collected is recognised and ignored.

use std::{
    collections::VecDeque,
    sync::{
        atomic::{AtomicBool, AtomicU8, Ordering},
        mpsc, Arc, Mutex, PoisonError,
    },
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
use trib_plugin_api::{
    driver::{Connectivity, Host, Outcome},
    support::target_policy::{self, Refused},
};

use crate::{error::KafkaError, properties::Property, request::Record, retry};

/// How long `stop` waits for queued records before dropping the producer.
pub const STOP_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);
/// TBMQ's check-connection timeout for listing topics.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a producer may have nothing to do (no batch pending, nothing in librdkafka's queue,
/// no driver call) before the driver closes it. Long enough that an integration receiving
/// messages every few seconds keeps its connections (a new producer pays a TCP, TLS and SASL
/// handshake and a metadata request before its first record goes out), and equal to the
/// executor's default pack-processing timeout and the default `message.timeout.ms`, so a
/// producer is never closed sooner than a batch may take. Short enough that a thousand quiet
/// integrations hold no librdkafka threads most of the time.
pub const IDLE_CLOSE: Duration = Duration::from_secs(30);
/// How long an idle close flushes (nothing is queued then; this only bounds the call).
pub const IDLE_FLUSH_TIMEOUT: Duration = Duration::from_millis(100);

type Report = (usize, Result<(), RDKafkaErrorCode>);

/// What the integration's producers learnt about the connection to the cluster: unknown until
/// the first delivery report or client error, Connected after a successful delivery,
/// Disconnected with librdkafka's reason after it reported every broker down or a fatal error.
/// Shared by the driver and the contexts of its producers; reading it takes no lock unless the
/// state is Disconnected.
#[derive(Default)]
pub struct Link {
    state: AtomicU8,
    reason: Mutex<String>,
}

// `Link::state` values; 0 (the default) is unknown.
const CONNECTED: u8 = 1;
const DISCONNECTED: u8 = 2;

impl Link {
    /// The last known state; `None` before anything is known.
    pub fn get(&self) -> Option<Connectivity> {
        match self.state.load(Ordering::Acquire) {
            CONNECTED => Some(Connectivity::Connected),
            DISCONNECTED => {
                Some(Connectivity::Disconnected(self.reason.lock().unwrap_or_else(PoisonError::into_inner).clone()))
            }
            _ => None,
        }
    }

    fn connected(&self) {
        if self.state.load(Ordering::Relaxed) != CONNECTED {
            self.state.store(CONNECTED, Ordering::Release);
        }
    }

    fn disconnected(&self, reason: String) {
        *self.reason.lock().unwrap_or_else(PoisonError::into_inner) = reason;
        self.state.store(DISCONNECTED, Ordering::Release);
    }
}

/// The producer context: forwards delivery reports, routes librdkafka's logs to the host and
/// keeps the [`Link`] up to date.
pub struct DeliveryContext {
    host: Host,
    reports: mpsc::Sender<Report>,
    link: Arc<Link>,
    /// Set when the producer is being closed or replaced: what it reports then (purged records,
    /// brokers going away) says nothing about the cluster.
    retired: AtomicBool,
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
        let what = match error.rdkafka_error_code() {
            Some(RDKafkaErrorCode::AllBrokersDown) => "no broker reachable",
            Some(RDKafkaErrorCode::Fatal) => "fatal producer error",
            _ => return,
        };
        if !self.retired.load(Ordering::Relaxed) {
            self.link.disconnected(format!("{what}: {reason}"));
        }
    }
}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, id: usize) {
        let result = result.as_ref().map(|_| ()).map_err(|(e, _)| retry::code_of(e));
        if result.is_ok() && !self.retired.load(Ordering::Relaxed) {
            self.link.connected();
        }
        // A closed channel means the producer is being dropped; the report has no reader then.
        let _ = self.reports.send((id, result));
    }
}

/// A batch whose outcomes were not collected yet.
struct Pending {
    /// Message id of its first record; the others follow.
    base: usize,
    outcomes: Vec<Option<Outcome>>,
    open: usize,
    deadline: Instant,
}

/// One integration's producer.
pub struct Producer {
    inner: ThreadedProducer<DeliveryContext>,
    reports: mpsc::Receiver<Report>,
    topic: String,
    headers: Option<OwnedHeaders>,
    next_id: usize,
    /// Oldest first.
    pending: VecDeque<Pending>,
    host: Host,
}

impl Producer {
    /// Creates the producer (librdkafka connects in the background), once the host's target
    /// policy allows every address of every bootstrap server. It reports what it learns about
    /// the connection to `link`.
    pub fn create(
        props: &[Property],
        topic: &str,
        headers: &[(String, Vec<u8>)],
        host: Host,
        link: Arc<Link>,
    ) -> Result<Self, KafkaError> {
        check_bootstrap_servers(props)?;
        let (tx, rx) = mpsc::channel();
        let context = DeliveryContext { host, reports: tx, link, retired: AtomicBool::new(false) };
        let inner = crate::properties::client_config(props)
            .create_with_context(context)
            .map_err(|e| KafkaError::Create(crate::properties::describe(&e)))?;
        let headers = (!headers.is_empty()).then(|| {
            headers.iter().fold(OwnedHeaders::new_with_capacity(headers.len()), |h, (key, value)| {
                h.insert(Header { key, value: Some(value.as_slice()) })
            })
        });
        Ok(Producer {
            inner,
            reports: rx,
            topic: topic.to_string(),
            headers,
            next_id: 0,
            pending: VecDeque::new(),
            host,
        })
    }

    /// Whether the producer has nothing to do: no batch waiting to be collected and nothing in
    /// librdkafka's queues (records, delivery reports or events not served yet). Cheap.
    pub fn is_idle(&self) -> bool {
        self.pending.is_empty() && self.inner.in_flight_count() == 0
    }

    /// Whether librdkafka hit a fatal error (idempotent producer); the producer must be replaced.
    pub fn fatal_error(&self) -> Option<String> {
        self.inner.client().fatal_error().map(|(code, reason)| format!("{code}: {reason}"))
    }

    /// Sends every record, then waits for their delivery reports until `deadline`. Returns one
    /// outcome per record, in order. Records still queued at the deadline are purged, so that
    /// they are not sent after being reported as Retry.
    pub fn send_batch(&mut self, records: &[Record], deadline: Instant) -> Vec<Outcome> {
        if let Some(outcomes) = self.submit(records, deadline) {
            return outcomes;
        }
        loop {
            // The batch is the oldest pending one, and one past its deadline is always collected.
            if let Some(outcomes) = self.collect(deadline) {
                return outcomes;
            }
        }
    }

    /// Hands every record to librdkafka (waiting while its queue is full, until `deadline`).
    /// `Some` when the batch is already settled (every record refused) and nothing else is
    /// pending; otherwise its outcomes come from [`Producer::collect`].
    pub fn submit(&mut self, records: &[Record], deadline: Instant) -> Option<Vec<Outcome>> {
        let base = self.next_id;
        self.next_id = self.next_id.wrapping_add(records.len());
        let outcomes: Vec<Option<Outcome>> = records
            .iter()
            .enumerate()
            .map(|(i, record)| self.enqueue(base.wrapping_add(i), record, deadline))
            .collect();
        let open = outcomes.iter().filter(|o| o.is_none()).count();
        self.pending.push_back(Pending { base, outcomes, open, deadline });
        (open == 0 && self.pending.len() == 1).then(|| self.pop_oldest())
    }

    /// Waits until `until` for the oldest pending batch: its outcomes once every record has its
    /// report or its deadline has passed (records still queued then are purged and reported as
    /// timed out); `None` when nothing is pending or the oldest is not finished by `until`.
    pub fn collect(&mut self, until: Instant) -> Option<Vec<Outcome>> {
        loop {
            let oldest = self.pending.front()?;
            let now = Instant::now();
            if oldest.open == 0 {
                return Some(self.pop_oldest());
            }
            if now >= oldest.deadline {
                // Later batches' queued records go too; their reports say so and they are retried.
                self.inner.purge(PurgeConfig::default().queue());
                self.host.debug(format_args!("{} Kafka records unacknowledged at the deadline.", oldest.open));
                return Some(self.pop_oldest());
            }
            if now >= until {
                return None;
            }
            match self.reports.recv_timeout(until.min(oldest.deadline) - now) {
                Ok((id, result)) => self.record_report(id, result),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                // The context (and its sender) lives as long as the producer: not reachable.
                Err(mpsc::RecvTimeoutError::Disconnected) => return Some(self.pop_oldest()),
            }
        }
    }

    /// Moves the batches still pending in `self` to `fresh` with every open record failed by
    /// `reason` (the producer hit a fatal error and is being replaced), and returns `fresh`.
    pub fn hand_over(&mut self, mut fresh: Producer, reason: &str) -> Producer {
        for mut batch in self.pending.drain(..) {
            for slot in batch.outcomes.iter_mut().filter(|o| o.is_none()) {
                *slot = Some(Outcome::Retry(format!("Kafka producer failed: {reason}")));
            }
            batch.open = 0;
            fresh.pending.push_back(batch);
        }
        fresh
    }

    fn pop_oldest(&mut self) -> Vec<Outcome> {
        let batch = self.pending.pop_front().expect("the caller checked that a batch is pending");
        batch.outcomes.into_iter().map(|o| o.unwrap_or_else(retry::timed_out)).collect()
    }

    /// Flushes for at most `timeout`, then drops the producer. Dropping joins the producer's
    /// polling thread (which polls every 100 ms) and librdkafka's threads, so this takes up to
    /// about 100 ms even with nothing queued. What the producer reports meanwhile no longer
    /// changes the [`Link`].
    pub fn close(self, timeout: Duration) {
        self.inner.context().retired.store(true, Ordering::Relaxed);
        if let Err(e) = self.inner.flush(timeout) {
            self.host.warn(format_args!("Kafka producer flush on close failed: {e}."));
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

    /// Stores a report in the pending batch it belongs to.
    fn record_report(&mut self, id: usize, result: Result<(), RDKafkaErrorCode>) {
        let slot = self.pending.iter_mut().find_map(|b| {
            let index = id.wrapping_sub(b.base);
            (index < b.outcomes.len()).then(|| (&mut b.outcomes[index], &mut b.open))
        });
        match slot {
            Some((slot @ None, open)) => {
                *slot = Some(retry::classify(result));
                *open -= 1;
            }
            _ => {
                self.host.debug(format_args!("Ignoring a late Kafka delivery report of an earlier batch ({result:?})."))
            }
        }
    }
}

/// TBMQ's connection check: list the cluster's topics within 10 s; Ok only when `topic` is among them.
pub fn check_connection(props: &[Property], topic: &str, host: Host) -> Result<(), KafkaError> {
    let producer = Producer::create(props, topic, &[], host, Arc::default())?;
    let metadata =
        producer.inner.client().fetch_metadata(None, CHECK_TIMEOUT).map_err(|e| KafkaError::Metadata(e.to_string()))?;
    if metadata.topics().iter().any(|t| t.name() == topic && t.error().is_none()) {
        Ok(())
    } else {
        Err(KafkaError::TopicMissing)
    }
}

/// Refuses the bootstrap servers when the host's target policy denies any address of any of
/// them (librdkafka connects by name, to whichever address it likes). rdkafka 0.38 offers no
/// hook on the addresses librdkafka connects to later, so the brokers a cluster advertises in
/// its metadata are not checked (see the README). A name that does not resolve is left to
/// librdkafka, which reports it as it always did.
pub fn check_bootstrap_servers(props: &[Property]) -> Result<(), KafkaError> {
    let servers = props.iter().filter(|p| p.key == "bootstrap.servers" || p.key == "metadata.broker.list");
    for server in servers.flat_map(|p| p.value.split(',')).map(str::trim).filter(|s| !s.is_empty()) {
        // `PLAINTEXT://host:port` is accepted by librdkafka; the scheme names no address.
        let server = server.rsplit_once("://").map_or(server, |(_, rest)| rest);
        let Some((host, port)) = server.rsplit_once(':').and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?))) else {
            continue;
        };
        if let Err(e) = target_policy::resolve(host, port) {
            if let Some(refused) = Refused::in_io(&e) {
                return Err(KafkaError::Target(refused.to_string()));
            }
        }
    }
    Ok(())
}
