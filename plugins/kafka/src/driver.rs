//! The [`Driver`] implementation: validation, start, batch delivery, connection check, stop.
//!
//! The work happens in [`crate::config`] / [`crate::properties`] (checking), [`crate::request`]
//! (records) and [`crate::service`] (the producer); this file wires them to the plugin calls.

use std::time::Instant;

use trib_plugin_api::{
    abi::capabilities,
    driver::{Driver, Error as DriverError, FieldError, Host, Message, Metadata, Outcome, StartConfig, Submitted},
    support::envelope::EnvelopeContext,
};

use crate::{
    config::KafkaConfig,
    error::KafkaError,
    properties::{self, Property},
    request::{Record, RecordBuilder},
    service::{self, Producer, STOP_FLUSH_TIMEOUT},
};

/// The KAFKA driver: one instance per integration.
pub struct KafkaDriver {
    host: Host,
    running: Option<Running>,
}

/// What a started instance holds.
struct Running {
    producer: Producer,
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
            capabilities: capabilities::CHECK_CONNECTION | capabilities::PIPELINE | capabilities::TARGET_POLICY,
        }
    }

    fn config_schema() -> Option<&'static str> {
        Some(crate::schema::SCHEMA)
    }

    fn create(host: Host) -> Result<Self, DriverError> {
        Ok(KafkaDriver { host, running: None })
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

    fn start(&mut self, config: &StartConfig<'_>) -> Result<(), DriverError> {
        if self.running.is_some() {
            return Err(KafkaError::AlreadyStarted.into());
        }
        let (kafka, props) = checked(config)?;
        let envelope = EnvelopeContext::new(config.service_id.as_str(), config.metadata.as_str());
        let records = RecordBuilder::new(&kafka, envelope);
        let producer = Producer::create(&props, &kafka.topic, records.headers(), self.host)?;
        self.host.info(format_args!("Kafka producer started for topic '{}'.", kafka.topic));
        self.running = Some(Running { producer, records, props, topic: kafka.topic });
        Ok(())
    }

    fn process(&mut self, batch: &[Message<'_>], deadline: Instant) -> Vec<Outcome> {
        match self.prepare(batch, deadline) {
            Ok((running, records)) => running.producer.send_batch(&records, deadline),
            Err(outcomes) => outcomes,
        }
    }

    fn submit(&mut self, batch: &[Message<'_>], deadline: Instant) -> Submitted {
        match self.prepare(batch, deadline) {
            Ok((running, records)) => {
                running.producer.submit(&records, deadline).map_or(Submitted::Pending, Submitted::Settled)
            }
            Err(outcomes) => Submitted::Settled(outcomes),
        }
    }

    fn collect(&mut self, until: Instant) -> Option<Vec<Outcome>> {
        self.running.as_mut()?.producer.collect(until)
    }

    fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.producer.close(STOP_FLUSH_TIMEOUT);
            self.host.info("Kafka producer stopped.");
        }
    }
}

impl Drop for KafkaDriver {
    fn drop(&mut self) {
        self.stop();
    }
}

impl KafkaDriver {
    /// The records of `batch` and the running instance to send them with (after replacing a
    /// producer that hit a fatal error), or the outcome of every message when none can be sent.
    fn prepare(
        &mut self,
        batch: &[Message<'_>],
        deadline: Instant,
    ) -> Result<(&mut Running, Vec<Record>), Vec<Outcome>> {
        let Some(running) = self.running.as_mut() else {
            return Err(batch.iter().map(|_| Outcome::Retry("the kafka driver is not started".into())).collect());
        };
        if let Some(reason) = running.producer.fatal_error() {
            self.host.warn(format_args!("Kafka producer hit a fatal error ({reason}); creating a new one."));
            match Producer::create(&running.props, &running.topic, running.records.headers(), self.host) {
                Ok(fresh) => {
                    let fresh = running.producer.hand_over(fresh, &reason);
                    std::mem::replace(&mut running.producer, fresh).close(std::time::Duration::ZERO);
                }
                Err(e) => return Err(batch.iter().map(|_| Outcome::Retry(e.to_string())).collect()),
            }
        }
        if Instant::now() >= deadline {
            return Err(batch.iter().map(|_| crate::retry::timed_out()).collect());
        }
        let records = batch.iter().map(|m| running.records.record(m)).collect();
        Ok((running, records))
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
