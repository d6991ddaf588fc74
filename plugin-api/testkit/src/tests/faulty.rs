//! `Faulty<FAULT>`: a small driver that conforms when `FAULT` is [`NONE`] and breaks exactly one
//! rule of the contract otherwise, so that each check can be shown to fail for its own fault.
//!
//! Its configuration is `{"port": N}`; it delivers a message by connecting to `127.0.0.1:N`,
//! writing the payload and waiting for one byte of acknowledgement before the deadline.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    time::{Duration, Instant},
};

use serde_json::Value;
use trib_plugin_api::{
    abi::capabilities,
    driver::{Driver, Error, ErrorKind, FieldError, Host, Message, Metadata, Outcome, StartConfig, Submitted},
};

/// No fault: the driver conforms.
pub const NONE: u8 = 0;
/// `process` returns two outcomes per message.
pub const TWO_OUTCOMES: u8 = 1;
/// `validate` panics when `port` is not a number (an `expect` on user input).
pub const PANIC_IN_VALIDATE: u8 = 2;
/// `process` before `start` reports every message delivered.
pub const DELIVERS_BEFORE_START: u8 = 3;
/// The second `stop` panics.
pub const STOP_PANICS_TWICE: u8 = 4;
/// `process` returns well after its deadline.
pub const IGNORES_DEADLINE: u8 = 5;
/// The connection check announces itself and always succeeds.
pub const CHECK_ALWAYS_OK: u8 = 6;
/// The integration type is lower case.
pub const LOWER_CASE_TYPE: u8 = 7;
/// `start` accepts any configuration.
pub const START_ACCEPTS_ANYTHING: u8 = 8;
/// The connection check blocks for [`HANG`].
pub const HANGING_CHECK: u8 = 9;
/// Pipelined, `collect` hands out the newest pending batch first.
pub const COLLECTS_NEWEST_FIRST: u8 = 10;

/// How long [`HANGING_CHECK`] blocks.
pub const HANG: Duration = Duration::from_millis(1500);
/// How far past its deadline [`IGNORES_DEADLINE`] returns.
pub const OVERRUN: Duration = Duration::from_millis(600);

/// The test driver; see the module doc.
pub struct Faulty<const FAULT: u8> {
    port: Option<u16>,
    stopped: bool,
    /// Pipelining: outcomes of the submitted batches, oldest first (delivery is synchronous).
    pending: std::collections::VecDeque<Vec<Outcome>>,
}

impl<const FAULT: u8> Driver for Faulty<FAULT> {
    fn metadata() -> Metadata {
        Metadata {
            name: "faulty",
            integration_type: if FAULT == LOWER_CASE_TYPE { "faulty" } else { "FAULTY_1" },
            version: "0.0.1",
            description: "Test driver with one fault.",
            capabilities: capabilities::CHECK_CONNECTION | capabilities::PIPELINE,
        }
    }

    fn create(_host: Host) -> Result<Self, Error> {
        Ok(Faulty { port: None, stopped: false, pending: std::collections::VecDeque::new() })
    }

    fn validate(&self, configuration: &str) -> Vec<FieldError> {
        if FAULT == PANIC_IN_VALIDATE {
            if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(configuration) {
                let _ = map.get("port").map(|p| p.as_u64().expect("port is a number"));
            }
        }
        parse(configuration).err().unwrap_or_default()
    }

    fn check_connection(&mut self, config: &StartConfig<'_>) -> Result<(), Error> {
        if FAULT == CHECK_ALWAYS_OK {
            return Ok(());
        }
        if FAULT == HANGING_CHECK {
            std::thread::sleep(HANG);
        }
        let port = parse(config.client_configuration.as_str()).map_err(config_error)?;
        TcpStream::connect_timeout(&addr(port), Duration::from_secs(1))
            .map(drop)
            .map_err(|e| Error::connection(format!("127.0.0.1:{port}: {e}")))
    }

    fn start(&mut self, config: &StartConfig<'_>) -> Result<(), Error> {
        let parsed = parse(config.client_configuration.as_str());
        self.port = Some(match (parsed, FAULT == START_ACCEPTS_ANYTHING) {
            (Ok(port), _) => port,
            (Err(_), true) => 1,
            (Err(errors), false) => return Err(config_error(errors)),
        });
        Ok(())
    }

    fn process(&mut self, batch: &[Message<'_>], deadline: Instant) -> Vec<Outcome> {
        let per_message = if FAULT == TWO_OUTCOMES { 2 } else { 1 };
        let Some(port) = self.port else {
            let outcome = match FAULT {
                DELIVERS_BEFORE_START => Outcome::Delivered,
                _ => Outcome::Retry("not started".into()),
            };
            return vec![outcome; batch.len() * per_message];
        };
        let mut outcomes: Vec<Outcome> = batch.iter().map(|m| deliver(port, m.payload(), deadline)).collect();
        if FAULT == IGNORES_DEADLINE {
            std::thread::sleep(deadline.saturating_duration_since(Instant::now()) + OVERRUN);
        }
        if per_message == 2 {
            outcomes.extend(outcomes.clone());
        }
        outcomes
    }

    fn submit(&mut self, batch: &[Message<'_>], deadline: Instant) -> Submitted {
        let outcomes = self.process(batch, deadline);
        self.pending.push_back(outcomes);
        Submitted::Pending
    }

    fn collect(&mut self, _until: Instant) -> Option<Vec<Outcome>> {
        if FAULT == COLLECTS_NEWEST_FIRST {
            self.pending.pop_back()
        } else {
            self.pending.pop_front()
        }
    }

    fn stop(&mut self) {
        self.pending.clear();
        assert!(!(FAULT == STOP_PANICS_TWICE && self.stopped), "stopped twice");
        self.stopped = true;
        self.port = None;
    }
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn parse(configuration: &str) -> Result<u16, Vec<FieldError>> {
    let value: Value = serde_json::from_str(configuration).map_err(|e| vec![FieldError::new("", e.to_string())])?;
    let port = value.as_object().ok_or_else(|| vec![FieldError::new("", "must be a JSON object")])?.get("port");
    match port.and_then(Value::as_u64).and_then(|p| u16::try_from(p).ok()).filter(|p| *p > 0) {
        Some(port) => Ok(port),
        None => Err(vec![FieldError::new("port", "must be a number between 1 and 65535")]),
    }
}

fn config_error(errors: Vec<FieldError>) -> Error {
    Error::new(ErrorKind::Config, errors.iter().map(|e| e.message.to_string()).collect::<Vec<_>>().join("; "))
}

/// Connects, writes the payload and waits for one byte, all before `deadline`.
fn deliver(port: u16, payload: &[u8], deadline: Instant) -> Outcome {
    let left = || deadline.saturating_duration_since(Instant::now());
    if left().is_zero() {
        return Outcome::Retry("deadline passed".into());
    }
    let attempt = || -> std::io::Result<bool> {
        let mut stream = TcpStream::connect_timeout(&addr(port), left())?;
        stream.write_all(payload)?;
        stream.set_read_timeout(Some(left().max(Duration::from_millis(1))))?;
        Ok(stream.read(&mut [0u8; 1])? == 1)
    };
    match attempt() {
        Ok(true) => Outcome::Delivered,
        Ok(false) => Outcome::Retry("closed without acknowledgement".into()),
        Err(e) => Outcome::Retry(e.to_string()),
    }
}
