//! The [`Driver`] implementation: ties the configuration, the request building, the worker pool
//! and the classification together, and reports to the host (logs and counters).
//!
//! Host counters: `http_requests_total` (requests sent), `http_request_errors_total` (sent but not
//! delivered: non-2xx, connection error, timeout), `http_requests_not_sent_total` (the deadline
//! passed before a request could start) and `http_messages_rejected_total` (messages refused before
//! sending, e.g. a payload that is not JSON).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use trib_plugin_api::{
    abi::capabilities,
    driver::{
        config_errors_to_result, Driver, Error as DriverError, FieldError, Host, Message, Metadata, Outcome,
        StartConfig,
    },
    support::envelope::EnvelopeContext,
};

use crate::{
    config::{self, HttpConfig, StatusCodes},
    error::Error,
    pool::{Completion, Pool},
    request,
    retry::{self, Exchange},
    service::Service,
};

/// Time limit of a connection check when `readTimeoutMs` is 0.
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// The HTTP integration driver (type `HTTP`).
#[derive(Debug)]
pub struct HttpDriver {
    host: Host,
    running: Option<Running>,
}

/// A started instance.
#[derive(Debug)]
struct Running {
    config: HttpConfig,
    service: Arc<Service>,
    pool: Pool,
    envelope: EnvelopeContext,
}

impl Driver for HttpDriver {
    fn metadata() -> Metadata {
        Metadata {
            name: "http",
            integration_type: "HTTP",
            version: env!("CARGO_PKG_VERSION"),
            description: "Sends each message as an HTTP request (TBMQ's HTTP integration).",
            capabilities: capabilities::CHECK_CONNECTION | capabilities::TARGET_POLICY,
        }
    }

    fn config_schema() -> Option<&'static str> {
        Some(crate::schema::SCHEMA)
    }

    fn create(host: Host) -> Result<Self, DriverError> {
        Ok(HttpDriver { host, running: None })
    }

    fn validate(&self, client_configuration: &str) -> Vec<FieldError> {
        config::validate(client_configuration)
    }

    fn check_connection(&mut self, start: &StartConfig<'_>) -> Result<(), DriverError> {
        let config = parse(start)?;
        let service = Service::new(&config);
        let budget =
            if config.read_timeout_ms > 0 { Duration::from_millis(config.read_timeout_ms) } else { CHECK_TIMEOUT };
        let exchange = service.head(Instant::now() + budget);
        // A check asks whether the target answers, as TBMQ's does: only a 2xx passes, whatever
        // `statusCodes` makes of other statuses for messages.
        match retry::classify("HEAD", service.url(), &exchange, &StatusCodes::default()) {
            Outcome::Delivered => Ok(()),
            Outcome::Retry(reason) | Outcome::Rejected(reason) | Outcome::Timeout(reason) => {
                if let Exchange::Response { body_excerpt, .. } = &exchange {
                    self.host.debug(format!("HTTP connection check failed: {reason}; body: {body_excerpt}"));
                }
                Err(Error::Check(reason).into())
            }
        }
    }

    fn start(&mut self, start: &StartConfig<'_>) -> Result<(), DriverError> {
        self.stop();
        let config = parse(start)?;
        let service = Arc::new(Service::new(&config));
        let workers = config.workers();
        let pool = Pool::new(Arc::clone(&service), workers);
        self.host.info(format!(
            "HTTP integration '{}' started: {} {} with {workers} parallel requests.",
            start.integration_name.as_str(),
            config.method.as_str(),
            service.url()
        ));
        if config.tls.skip_verification {
            self.host.warn("HTTP integration: server certificates are not verified (skipCertificateVerification).");
        }
        let envelope = EnvelopeContext::new(start.service_id.as_str(), start.metadata.as_str());
        self.running = Some(Running { config, service, pool, envelope });
        Ok(())
    }

    fn process(&mut self, batch: &[Message<'_>], deadline: Instant) -> Vec<Outcome> {
        let Some(running) = &self.running else {
            return batch
                .iter()
                .map(|_| Outcome::Retry(Error::State("HTTP driver is not started").to_string()))
                .collect();
        };
        running.process(&self.host, batch, deadline)
    }

    fn stop(&mut self) {
        if let Some(mut running) = self.running.take() {
            running.pool.shutdown();
            self.host.info(format!(
                "HTTP integration stopped: {} {}.",
                running.config.method.as_str(),
                running.service.url()
            ));
        }
    }
}

impl Running {
    fn process(&self, host: &Host, batch: &[Message<'_>], deadline: Instant) -> Vec<Outcome> {
        let mut outcomes: Vec<Option<Outcome>> = vec![None; batch.len()];
        let mut bodies = Vec::with_capacity(batch.len());
        let mut sent_slots = Vec::with_capacity(batch.len());
        let mut first_failure: Option<String> = None;
        for (i, msg) in batch.iter().enumerate() {
            // Built for every method, as in TBMQ: a payload that is not JSON fails even on GET.
            match request::body(&self.config.body, &self.envelope, msg) {
                Ok(body) => {
                    bodies.push(self.config.method.has_body().then_some(body));
                    sent_slots.push(i);
                }
                Err(e) => {
                    host.debug(format!("HTTP message on topic {} rejected: {e}.", msg.topic()));
                    first_failure.get_or_insert_with(|| e.to_string());
                    outcomes[i] = Some(Outcome::Rejected(e.to_string()));
                }
            }
        }
        let rejected = batch.len() - sent_slots.len();
        let completions = self.pool.run(bodies, deadline);
        let (mut sent, mut errors, mut not_sent) = (0u64, 0u64, 0u64);
        for (slot, completion) in sent_slots.into_iter().zip(completions) {
            let outcome = match completion {
                Completion::Done { outcome, detail } => {
                    sent += 1;
                    if outcome != Outcome::Delivered {
                        errors += 1;
                        if let Some(body) = detail.filter(|d| !d.is_empty()) {
                            host.debug(format!("HTTP request failed: {outcome:?}; error_body: {body}"));
                        }
                    }
                    outcome
                }
                Completion::NoReply => {
                    sent += 1;
                    errors += 1;
                    Outcome::Timeout(format!(
                        "timeout waiting for the response from {} {}",
                        self.config.method.as_str(),
                        self.service.url()
                    ))
                }
                Completion::NotSent => {
                    not_sent += 1;
                    Outcome::Timeout("timeout before send: no free connection before the deadline".to_string())
                }
            };
            if let Some(reason) = outcome.reason() {
                first_failure.get_or_insert_with(|| reason.to_string());
            }
            outcomes[slot] = Some(outcome);
        }
        count(host, "http_requests_total", sent);
        count(host, "http_request_errors_total", errors);
        count(host, "http_requests_not_sent_total", not_sent);
        count(host, "http_messages_rejected_total", rejected as u64);
        if let Some(first) = first_failure {
            let failed = errors + not_sent + rejected as u64;
            host.warn(format!("HTTP batch: {failed} of {} messages not delivered; first: {first}.", batch.len()));
        }
        outcomes
            .into_iter()
            .map(|o| o.unwrap_or_else(|| Outcome::Retry("internal error: no outcome".to_string())))
            .collect()
    }
}

fn count(host: &Host, name: &str, value: u64) {
    if value > 0 {
        host.count(name, value);
    }
}

fn parse(start: &StartConfig<'_>) -> Result<HttpConfig, DriverError> {
    HttpConfig::parse(start.client_configuration.as_str()).map_err(|errors| match config_errors_to_result(errors) {
        Err(e) => e,
        Ok(()) => DriverError::config("invalid configuration"),
    })
}
