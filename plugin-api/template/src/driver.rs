//! The [`Driver`] implementation: ties the configuration, the line building and the file
//! together, and reports to the host (logs and counters).
//!
//! Host counters: `template_lines_written_total` (messages delivered),
//! `template_write_errors_total` (messages whose write failed) and
//! `template_messages_rejected_total` (messages refused before writing).

use std::time::Instant;

use trib_plugin_api::{
    abi::capabilities,
    driver::{
        config_errors_to_result, Driver, Error as PluginError, FieldError, Host, Message, Metadata, Outcome,
        StartConfig,
    },
    support::envelope::EnvelopeContext,
};

use crate::{
    config::{self, TemplateConfig},
    error::Error,
    request, retry,
    service::Sink,
};

/// The `TEMPLATE` integration driver: one value per integration.
#[derive(Debug)]
pub struct TemplateDriver {
    host: Host,
    running: Option<Running>,
}

/// A started instance.
#[derive(Debug)]
struct Running {
    config: TemplateConfig,
    sink: Sink,
    envelope: EnvelopeContext,
}

impl Driver for TemplateDriver {
    fn metadata() -> Metadata {
        Metadata {
            name: "template",
            integration_type: "TEMPLATE",
            version: env!("CARGO_PKG_VERSION"),
            description: "Appends each message as one JSON line to a file.",
            capabilities: capabilities::CHECK_CONNECTION,
        }
    }

    fn create(host: Host) -> Result<Self, PluginError> {
        Ok(TemplateDriver { host, running: None })
    }

    fn validate(&self, client_configuration: &str) -> Vec<FieldError> {
        config::validate(client_configuration)
    }

    fn check_connection(&mut self, start: &StartConfig<'_>) -> Result<(), PluginError> {
        let config = parse(start)?;
        Sink::probe(&config.path).map_err(|source| Error::Open { path: config.path.display().to_string(), source })?;
        Ok(())
    }

    fn start(&mut self, start: &StartConfig<'_>) -> Result<(), PluginError> {
        if self.running.is_some() {
            return Err(Error::AlreadyStarted.into());
        }
        let config = parse(start)?;
        let sink = Sink::open(&config.path, config.sync_every_batch)
            .map_err(|source| Error::Open { path: config.path.display().to_string(), source })?;
        self.host.info(format!(
            "TEMPLATE integration '{}' started: appending to {}.",
            start.integration_name.as_str(),
            config.path.display()
        ));
        let envelope = EnvelopeContext::new(start.service_id.as_str(), start.metadata.as_str());
        self.running = Some(Running { config, sink, envelope });
        Ok(())
    }

    fn process(&mut self, batch: &[Message<'_>], deadline: Instant) -> Vec<Outcome> {
        let Some(running) = self.running.as_mut() else {
            return batch.iter().map(|_| Outcome::Retry("the TEMPLATE driver is not started".to_string())).collect();
        };
        if Instant::now() >= deadline {
            return batch.iter().map(|_| retry::deadline_passed()).collect();
        }
        running.process(&self.host, batch)
    }

    fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            self.host.info(format!("TEMPLATE integration stopped: {}.", running.sink.path().display()));
        }
    }
}

impl Running {
    fn process(&mut self, host: &Host, batch: &[Message<'_>]) -> Vec<Outcome> {
        let mut outcomes: Vec<Option<Outcome>> = vec![None; batch.len()];
        let mut lines = Vec::with_capacity(batch.len());
        let mut slots = Vec::with_capacity(batch.len());
        for (slot, msg) in batch.iter().enumerate() {
            match request::line(self.config.payload_format, &self.envelope, msg) {
                Ok(line) => {
                    lines.push(line);
                    slots.push(slot);
                }
                Err(e) => {
                    host.debug(format!("TEMPLATE message on topic {} rejected: {e}.", msg.topic()));
                    outcomes[slot] = Some(retry::rejected(&e));
                }
            }
        }
        count(host, "template_messages_rejected_total", batch.len() - slots.len());
        let written = match lines.is_empty() {
            true => Ok(()),
            false => self.sink.write_batch(&lines),
        };
        let outcome = match &written {
            Ok(()) => {
                count(host, "template_lines_written_total", slots.len());
                Outcome::Delivered
            }
            Err(e) => {
                count(host, "template_write_errors_total", slots.len());
                host.warn(format!("TEMPLATE batch: {} messages not written: {e}.", slots.len()));
                retry::write_failed(self.sink.path(), e)
            }
        };
        for slot in slots {
            outcomes[slot] = Some(outcome.clone());
        }
        outcomes.into_iter().map(|o| o.expect("every slot is either rejected or written")).collect()
    }
}

fn count(host: &Host, name: &str, value: usize) {
    if value > 0 {
        host.count(name, value as u64);
    }
}

fn parse(start: &StartConfig<'_>) -> Result<TemplateConfig, PluginError> {
    TemplateConfig::parse(start.client_configuration.as_str()).map_err(|errors| match config_errors_to_result(errors) {
        Err(e) => e,
        Ok(()) => Error::Config("invalid configuration".to_string()).into(),
    })
}
