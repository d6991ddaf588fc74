//! The [`Driver`] implementation: validation, start, batch delivery, connection check, stop.
//!
//! The work happens in [`crate::config`] / [`crate::properties`] (checking), [`crate::request`]
//! (records) and [`crate::service`] (the producer); this file wires them to the plugin calls.

use std::{
    sync::{Arc, Mutex, PoisonError},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use trib_plugin_api::{
    abi::capabilities,
    driver::{
        Connectivity, Driver, Error as DriverError, FieldError, Host, Message, Metadata, Outcome, StartConfig,
        Submitted,
    },
    support::envelope::EnvelopeContext,
};

use crate::{
    config::KafkaConfig,
    error::KafkaError,
    properties::{self, Property},
    request::{Record, RecordBuilder},
    service::{self, Link, Producer, IDLE_CLOSE, IDLE_FLUSH_TIMEOUT, STOP_FLUSH_TIMEOUT},
};

#[cfg(test)]
thread_local! {
    /// [`IDLE_CLOSE`] for drivers created on this thread (tests).
    pub static IDLE_CLOSE_FOR_TESTS: std::cell::Cell<Option<Duration>> = const { std::cell::Cell::new(None) };
}

/// The KAFKA driver: one instance per integration.
pub struct KafkaDriver {
    host: Host,
    running: Option<Running>,
    /// How long a producer may have nothing to do before it is closed ([`IDLE_CLOSE`]).
    idle_close: Duration,
}

/// What a started instance holds.
///
/// The producer exists only while the integration has work: the first `process` or `submit`
/// creates it, and once it has had nothing to do for `idle_close` the next `connectivity` or
/// `collect` call closes it. The mutex lets `connectivity` (`&self`) take it; every other call
/// has `&mut self` and reaches it without locking.
struct Running {
    producer: Mutex<Option<Producer>>,
    /// End of the last `process`, `submit` or `collect` call.
    last_used: Instant,
    /// A producer being closed in the background after its idle period.
    closing: Mutex<Option<JoinHandle<()>>>,
    link: Arc<Link>,
    records: RecordBuilder,
    props: Vec<Property>,
    topic: String,
}

impl Driver for KafkaDriver {
    fn metadata() -> Metadata {
        Metadata {
            name: "kafka",
            integration_type: "KAFKA",
            version: env!("CARGO_PKG_VERSION"),
            description: "Publishes messages to a Kafka topic (librdkafka producer).",
            capabilities: capabilities::CHECK_CONNECTION
                | capabilities::PIPELINE
                | capabilities::TARGET_POLICY
                | capabilities::CONNECTIVITY,
        }
    }

    fn config_schema() -> Option<&'static str> {
        Some(crate::schema::SCHEMA)
    }

    fn create(host: Host) -> Result<Self, DriverError> {
        #[cfg(test)]
        let idle_close = IDLE_CLOSE_FOR_TESTS.get().unwrap_or(IDLE_CLOSE);
        #[cfg(not(test))]
        let idle_close = IDLE_CLOSE;
        Ok(KafkaDriver { host, running: None, idle_close })
    }

    fn validate(&self, client_configuration: &str) -> Vec<FieldError> {
        match KafkaConfig::parse(client_configuration) {
            Ok(config) => properties::check(&config),
            Err(errors) => errors,
        }
    }

    fn check_connection(&mut self, config: &StartConfig<'_>) -> Result<(), DriverError> {
        let (kafka, props) = checked(config)?;
        service::check_connection(&props, &kafka.topic, self.host)?;
        Ok(())
    }

    /// Checks the configuration, the target policy and that librdkafka takes every property,
    /// without creating the producer (and so without starting any thread).
    fn start(&mut self, config: &StartConfig<'_>) -> Result<(), DriverError> {
        if self.running.is_some() {
            return Err(KafkaError::AlreadyStarted.into());
        }
        let (kafka, props) = checked(config)?;
        service::check_bootstrap_servers(&props)?;
        properties::client_config(&props)
            .create_native_config()
            .map_err(|e| KafkaError::Create(properties::describe(&e)))?;
        let envelope = EnvelopeContext::new(config.service_id.as_str(), config.metadata.as_str());
        let records = RecordBuilder::new(&kafka, envelope);
        self.host.info(format_args!(
            "Kafka integration started for topic '{}'; the producer is created with the first batch.",
            kafka.topic
        ));
        self.running = Some(Running {
            producer: Mutex::new(None),
            last_used: Instant::now(),
            closing: Mutex::new(None),
            link: Arc::default(),
            records,
            props,
            topic: kafka.topic,
        });
        Ok(())
    }

    fn process(&mut self, batch: &[Message<'_>], deadline: Instant) -> Vec<Outcome> {
        let outcomes = match self.prepare(batch, deadline) {
            Ok((producer, records)) => producer.send_batch(&records, deadline),
            Err(outcomes) => outcomes,
        };
        self.used();
        outcomes
    }

    fn submit(&mut self, batch: &[Message<'_>], deadline: Instant) -> Submitted {
        let submitted = match self.prepare(batch, deadline) {
            Ok((producer, records)) => {
                producer.submit(&records, deadline).map_or(Submitted::Pending, Submitted::Settled)
            }
            Err(outcomes) => Submitted::Settled(outcomes),
        };
        self.used();
        submitted
    }

    fn collect(&mut self, until: Instant) -> Option<Vec<Outcome>> {
        let running = self.running.as_mut()?;
        running.close_if_idle(self.idle_close, self.host);
        let outcomes = running.producer.get_mut().unwrap_or_else(PoisonError::into_inner).as_mut()?.collect(until);
        self.used();
        outcomes
    }

    /// The last state the producers reported (see [`Link`]); `None` before anything is known.
    /// Also closes the producer once it has been idle for the idle period: the executor asks
    /// about once a second between batches, which makes this the hook that frees an idle
    /// integration's threads. The close itself runs on a short-lived thread, so this call
    /// never waits for it.
    fn connectivity(&self) -> Option<Connectivity> {
        let running = self.running.as_ref()?;
        running.close_if_idle(self.idle_close, self.host);
        running.link.get()
    }

    fn stop(&mut self) {
        if let Some(mut running) = self.running.take() {
            if let Some(closing) = running.closing.get_mut().unwrap_or_else(PoisonError::into_inner).take() {
                let _ = closing.join();
            }
            if let Some(producer) = running.producer.get_mut().unwrap_or_else(PoisonError::into_inner).take() {
                producer.close(STOP_FLUSH_TIMEOUT);
                self.host.info("Kafka producer stopped.");
            }
        }
    }
}

impl Drop for KafkaDriver {
    fn drop(&mut self) {
        self.stop();
    }
}

impl KafkaDriver {
    /// Whether the integration holds a librdkafka producer right now (started and used within
    /// the idle period).
    pub fn has_producer(&self) -> bool {
        self.running.as_ref().is_some_and(|r| r.producer.lock().unwrap_or_else(PoisonError::into_inner).is_some())
    }

    /// Marks the end of a delivery call: the idle period starts over.
    fn used(&mut self) {
        if let Some(running) = self.running.as_mut() {
            running.last_used = Instant::now();
        }
    }

    /// The records of `batch` and the producer to send them with (created if the integration
    /// has none, replaced if it hit a fatal error), or the outcome of every message when none
    /// can be sent.
    fn prepare(
        &mut self,
        batch: &[Message<'_>],
        deadline: Instant,
    ) -> Result<(&mut Producer, Vec<Record>), Vec<Outcome>> {
        let Some(running) = self.running.as_mut() else {
            return Err(batch.iter().map(|_| Outcome::Retry("the kafka driver is not started".into())).collect());
        };
        let host = self.host;
        let slot = running.producer.get_mut().unwrap_or_else(PoisonError::into_inner);
        let failed = slot.as_mut().and_then(|old| old.fatal_error().map(|reason| (old, reason)));
        if let Some((old, reason)) = failed {
            host.warn(format_args!("Kafka producer hit a fatal error ({reason}); creating a new one."));
            match Producer::create(
                &running.props,
                &running.topic,
                running.records.headers(),
                host,
                running.link.clone(),
            ) {
                Ok(fresh) => {
                    let fresh = old.hand_over(fresh, &reason);
                    std::mem::replace(old, fresh).close(Duration::ZERO);
                }
                Err(e) => return Err(batch.iter().map(|_| Outcome::Retry(e.to_string())).collect()),
            }
        }
        if Instant::now() >= deadline {
            return Err(batch.iter().map(|_| crate::retry::timed_out()).collect());
        }
        let producer = match slot {
            Some(producer) => producer,
            None => {
                let created = Producer::create(
                    &running.props,
                    &running.topic,
                    running.records.headers(),
                    host,
                    running.link.clone(),
                );
                match created {
                    Ok(created) => {
                        host.debug(format_args!("Kafka producer created for topic '{}'.", running.topic));
                        slot.insert(created)
                    }
                    Err(e) => return Err(batch.iter().map(|_| Outcome::Retry(e.to_string())).collect()),
                }
            }
        };
        let records = batch.iter().map(|m| running.records.record(m)).collect();
        Ok((producer, records))
    }
}

impl Running {
    /// Closes the producer when it has had nothing to do for `idle_close`, on a short-lived
    /// thread so that the caller does not wait (dropping a producer joins its threads, up to
    /// about 100 ms). Never blocks: it skips when the producer is in use or the previous close
    /// has not finished yet, and the next call tries again.
    fn close_if_idle(&self, idle_close: Duration, host: Host) {
        if self.last_used.elapsed() < idle_close {
            return;
        }
        let Ok(mut closing) = self.closing.try_lock() else { return };
        if closing.as_ref().is_some_and(|c| !c.is_finished()) {
            return;
        }
        let Ok(mut slot) = self.producer.try_lock() else { return };
        if !slot.as_ref().is_some_and(Producer::is_idle) {
            return;
        }
        let Some(producer) = slot.take() else { return };
        drop(slot);
        if let Some(done) = closing.take() {
            let _ = done.join();
        }
        host.debug(format_args!(
            "Kafka producer for topic '{}' idle for {} s; closing it.",
            self.topic,
            idle_close.as_secs_f32()
        ));
        let closer = std::thread::Builder::new().name("kafka-close".into());
        match closer.spawn(move || producer.close(IDLE_FLUSH_TIMEOUT)) {
            Ok(handle) => *closing = Some(handle),
            // No thread to spare: the closure, and with it the producer, was dropped here.
            Err(e) => host.warn(format_args!("No thread to close the idle Kafka producer on ({e}); dropped it here.")),
        }
    }
}

/// Parses and checks a start configuration into the config and the producer properties.
fn checked(config: &StartConfig<'_>) -> Result<(KafkaConfig, Vec<Property>), DriverError> {
    let kafka = KafkaConfig::parse(config.client_configuration.as_str()).map_err(config_error)?;
    let client_id = kafka.client_id(config.integration_id.as_str(), config.service_id.as_str());
    let props = properties::producer_properties(&kafka, &client_id).map_err(config_error)?;
    Ok((kafka, props))
}

fn config_error(errors: Vec<FieldError>) -> DriverError {
    let text = errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; ");
    KafkaError::Config(text).into()
}
