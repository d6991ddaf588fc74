//! Poison messages: when a driver call panics, the worker re-creates the driver instance and
//! sends the attempt's messages one at a time. A message that panics the driver on its own is the
//! culprit: it is rejected (so dead-lettered, with the panic text as the reason) and the instance
//! is re-created again; the other messages are delivered, retried or given up on as usual. A
//! driver that panics [`MAX_BREAKS`] times in a row is broken rather than fed a bad message: the
//! worker stops isolating and re-creates it with the growing pauses of `recreate_driver`.

use trib_plugin_api::{abi::Message, driver::Outcome};

use super::{pack::Attempt, Worker};

/// Panics in a row after which the driver, not a message, is taken to be broken.
const MAX_BREAKS: u32 = 3;

impl Worker {
    /// Whether a broken attempt should be isolated message by message (the driver has not
    /// broken too often in a row already).
    pub(super) fn may_isolate(&self) -> bool {
        self.breaks_in_a_row + 1 < MAX_BREAKS
    }

    /// Re-creates the driver and delivers `batch` one message at a time. `Ok` holds one outcome
    /// per message; `Err(reason)` when the driver cannot be re-created or broke [`MAX_BREAKS`]
    /// times in a row.
    pub(super) fn isolate(&mut self, batch: &[Message<'_>], reason: &str) -> Result<Attempt, String> {
        self.breaks_in_a_row += 1;
        tracing::warn!(
            reason,
            messages = batch.len(),
            "Driver panicked; re-creating it and sending the messages one at a time to find the culprit."
        );
        self.renew_driver()?;
        let timeout = self.ctx.config.pack_processing_timeout;
        let mut outcomes = Vec::with_capacity(batch.len());
        for message in batch {
            let running = self.running.as_mut().ok_or("the integration is not running")?;
            let single = Attempt::checked(1, running.driver.process(std::slice::from_ref(message), timeout));
            match single.broken {
                None => outcomes.extend(single.outcomes),
                Some(reason) => {
                    self.breaks_in_a_row += 1;
                    if self.breaks_in_a_row >= MAX_BREAKS {
                        return Err(reason);
                    }
                    tracing::warn!(
                        reason,
                        topic = message.topic(),
                        "Poison message: the driver panicked on it alone; it is rejected."
                    );
                    outcomes.push(Outcome::Rejected(format!("poison message: {reason}")));
                    self.renew_driver()?;
                }
            }
        }
        Ok(Attempt::delivered_or_not(outcomes))
    }

    /// Replaces the driver instance with a fresh one (the consumer stays).
    fn renew_driver(&mut self) -> Result<(), String> {
        if let Some(running) = self.running.as_mut() {
            if let Err(e) = running.driver.stop() {
                tracing::debug!(error = %e, "Stopping the broken driver instance failed.");
            }
        }
        let (driver, pipelined) = self.create_driver()?;
        let running = self.running.as_mut().ok_or("the integration is not running")?;
        running.driver = driver;
        running.pipelined = pipelined;
        Ok(())
    }

    /// After packs in flight were dropped: a fresh consumer at the committed offset, so their
    /// messages come again.
    pub(super) fn reopen_consumer(&mut self) -> Result<(), String> {
        let (consumer, tp) = self.open_consumer()?;
        let running = self.running.as_mut().ok_or("the integration is not running")?;
        running.consumer = consumer;
        running.tp = tp;
        // What the old consumer read past the commit is read again.
        self.read_next = None;
        Ok(())
    }
}
