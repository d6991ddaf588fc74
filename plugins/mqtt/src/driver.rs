//! [`MqttDriver`]: the `Driver` implementation for integrations of type `MQTT`.
//!
//! It only wires the pieces: `config` checks the configuration, `request` turns messages into
//! PUBLISH packets, `service` owns the connection and `tracker` the delivery state.

use std::time::{Duration, Instant};

use trib_plugin_api::{
    abi::capabilities,
    driver::{Driver, Error as ApiError, FieldError, Host, Message, Metadata, Outcome, StartConfig},
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

impl Driver for MqttDriver {
    fn metadata() -> Metadata {
        Metadata {
            name: "mqtt",
            integration_type: "MQTT",
            version: env!("CARGO_PKG_VERSION"),
            description: "Publishes messages to another MQTT broker (MQTT 3.1.1 or 5, optional TLS).",
            capabilities: capabilities::CHECK_CONNECTION,
        }
    }

    fn create(host: Host) -> Result<Self, ApiError> {
        Ok(MqttDriver { host, running: None })
    }

    fn validate(&self, client_configuration: &str) -> Vec<FieldError> {
        config::validate(client_configuration)
    }

    fn check_connection(&mut self, start: &StartConfig<'_>) -> Result<(), ApiError> {
        let config = parse(start)?;
        let timeout = config.connect_timeout.min(CHECK_CONNECTION_TIMEOUT);
        let mut service = Service::connect(&config, self.host, timeout, false)?;
        service.close();
        Ok(())
    }

    fn start(&mut self, start: &StartConfig<'_>) -> Result<(), ApiError> {
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
            return batch.iter().map(|_| Outcome::Retry("the MQTT integration is not started".to_string())).collect();
        };
        if !running.service.is_connected() {
            let outcome = crate::retry::not_connected(&running.config.address());
            return vec![outcome; batch.len()];
        }
        let publishes = batch.iter().map(|msg| request::build(&running.config, &running.envelope, msg)).collect();
        running.service.deliver(publishes, deadline)
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

fn parse(start: &StartConfig<'_>) -> Result<Config, Error> {
    config::parse(start.client_configuration.as_str()).map_err(|errors| {
        Error::Config(errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; "))
    })
}
