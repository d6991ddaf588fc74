//! [`MqttDriver`]: the `Driver` implementation for integrations of type `MQTT`.
//!
//! It only wires the pieces: `config` checks the configuration, `request` turns messages into
//! PUBLISH packets, `service` owns the connection and `tracker` the delivery state.

use std::time::{Duration, Instant};

use trib_plugin_api::{
    abi::capabilities,
    driver::{
        Connectivity, Driver, Error as DriverError, FieldError, Host, Message, Metadata, Outcome, StartConfig,
        Submitted,
    },
    support::envelope::EnvelopeContext,
};

use crate::{
    config::{self, Config},
    error::Error,
    request,
    service::Service,
};

/// The longest a connection check waits for CONNACK, whatever `connectTimeoutSec` says.
const CHECK_CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);

/// Delivers messages to another MQTT broker (TBMQ's MQTT integration).
pub struct MqttDriver {
    host: Host,
    running: Option<Running>,
}

/// A started instance.
struct Running {
    config: Config,
    envelope: EnvelopeContext,
    service: Service,
}

impl MqttDriver {
    /// Whether the started instance's window is open (`None` when not started); see
    /// [`crate::tracker`].
    pub fn window_open(&self) -> Option<bool> {
        self.running.as_ref().map(|r| r.service.window_open())
    }
}

impl Driver for MqttDriver {
    fn metadata() -> Metadata {
        Metadata {
            name: "mqtt",
            integration_type: "MQTT",
            version: env!("CARGO_PKG_VERSION"),
            description: "Publishes messages to another MQTT broker (MQTT 3.1.1 or 5, optional TLS).",
            capabilities: capabilities::CHECK_CONNECTION
                | capabilities::PIPELINE
                | capabilities::CONNECTIVITY
                | capabilities::TARGET_POLICY,
        }
    }

    fn config_schema() -> Option<&'static str> {
        Some(crate::schema::SCHEMA)
    }

    fn create(host: Host) -> Result<Self, DriverError> {
        Ok(MqttDriver { host, running: None })
    }

    fn validate(&self, client_configuration: &str) -> Vec<FieldError> {
        config::validate(client_configuration)
    }

    fn check_connection(&mut self, start: &StartConfig<'_>) -> Result<(), DriverError> {
        let config = parse(start)?;
        let timeout = config.connect_timeout.min(CHECK_CONNECTION_TIMEOUT);
        let mut service = Service::connect(&config, self.host, timeout, false)?;
        service.close();
        Ok(())
    }

    fn start(&mut self, start: &StartConfig<'_>) -> Result<(), DriverError> {
        if self.running.is_some() {
            return Err(Error::AlreadyStarted.into());
        }
        let config = parse(start)?;
        let service = Service::connect(&config, self.host, config.connect_timeout, true)?;
        let envelope = EnvelopeContext::new(start.service_id.as_str(), start.metadata.as_str());
        self.running = Some(Running { config, envelope, service });
        Ok(())
    }

    fn process(&mut self, batch: &[Message<'_>], deadline: Instant) -> Vec<Outcome> {
        let Some(running) = &self.running else {
            return not_started(batch.len());
        };
        match running.prepare(batch) {
            Ok(publishes) => running.service.deliver(publishes, deadline),
            Err(outcome) => vec![outcome; batch.len()],
        }
    }

    fn submit(&mut self, batch: &[Message<'_>], deadline: Instant) -> Submitted {
        let Some(running) = &self.running else {
            return Submitted::Settled(not_started(batch.len()));
        };
        match running.prepare(batch) {
            Ok(publishes) => running.service.submit(publishes, deadline).map_or(Submitted::Pending, Submitted::Settled),
            Err(outcome) => Submitted::Settled(vec![outcome; batch.len()]),
        }
    }

    fn collect(&mut self, until: Instant) -> Option<Vec<Outcome>> {
        self.running.as_ref()?.service.collect(until)
    }

    fn connectivity(&self) -> Option<Connectivity> {
        let running = self.running.as_ref()?;
        Some(match running.service.disconnected_because() {
            None => Connectivity::Connected,
            Some(reason) => Connectivity::Disconnected(format!("{}: {reason}", running.config.address())),
        })
    }

    fn stop(&mut self) {
        if let Some(mut running) = self.running.take() {
            running.service.close();
        }
    }
}

impl Drop for MqttDriver {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Running {
    /// The PUBLISH (or the outcome it already has) of each message of `batch`; `Err` with the
    /// outcome of every message when nothing can be sent at all.
    fn prepare(&self, batch: &[Message<'_>]) -> Result<Vec<Result<request::Publish, Outcome>>, Outcome> {
        if !self.service.is_connected() {
            return Err(crate::retry::not_connected(&self.config.address()));
        }
        Ok(batch.iter().map(|msg| request::build(&self.config, &self.envelope, msg)).collect())
    }
}

fn not_started(messages: usize) -> Vec<Outcome> {
    vec![Outcome::Retry("the MQTT integration is not started".to_string()); messages]
}

fn parse(start: &StartConfig<'_>) -> Result<Config, Error> {
    config::parse(start.client_configuration.as_str()).map_err(|errors| {
        Error::Config(errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; "))
    })
}
