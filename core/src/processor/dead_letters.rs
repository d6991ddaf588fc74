//! Messages a pack gave up on, written to the integration's dead-letter topic
//! (`tbmq.ie.dlq.<id32>`) before the pack is committed. Which messages are given up on is
//! decided when the pack is settled ([`super::pack`]); this module only stores them.

use std::{sync::LazyLock, time::Duration};

use prost::Message as _;
use trib_ops::log_limit::LogLimit;

use super::{Command, Worker};
use crate::{
    queue::{wait_delivery, Partitioning, Record},
    wire::{DeadLetterProto, WIRE_VERSION},
};

/// The lines about stored dead letters and failures to store them, keyed by topic: under
/// `SKIP_ALL` with a failing target there is one per pack, so at most one per 10 s is written
/// with `suppressed`, the number left out since the last one (`ie_dead_letters_total` counts
/// every letter).
static STORED_LINES: LazyLock<LogLimit> = LazyLock::new(LogLimit::default);
static FAILED_LINES: LazyLock<LogLimit> = LazyLock::new(LogLimit::default);

/// A message given up on: its record, why, and after how many attempts.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct DeadLetter<'r> {
    /// The record as it came from the integration's topic.
    pub record: &'r Record,
    /// Why it was given up on (`rejected: ...`, `retry: ...`, `undecodable record`).
    pub reason: String,
    /// Driver calls made with it; 0 for a record that never reached the driver.
    pub attempts: u32,
}

impl Worker {
    /// Writes the pack's given-up messages to the integration's dead-letter topic and waits until
    /// the queue stored them, so the pack is committed only once nothing is lost. A queue that
    /// refuses is retried every second; a command in the meantime abandons the pack (it is
    /// redelivered). Dead letters off: they are only counted, as TBMQ does.
    ///
    /// Returns the command that interrupted the wait, if any.
    pub(super) fn store_dead_letters(&mut self, dead: &mut [DeadLetter<'_>]) -> Option<Command> {
        if dead.is_empty() || !self.ctx.config.dead_letters_enabled {
            return None;
        }
        dead.sort_by_key(|d| d.record.offset);
        let topic = self.ctx.config.topics.dlq(self.def.id);
        loop {
            match self.send_dead_letters(&topic, dead) {
                Ok(()) => {
                    self.stats.dead_lettered(dead.len());
                    if let Some(suppressed) = STORED_LINES.admit(&topic) {
                        tracing::warn!(
                            count = dead.len(),
                            topic,
                            suppressed,
                            "Messages given up on were stored as dead letters."
                        );
                    }
                    return None;
                }
                Err(e) => {
                    if let Some(suppressed) = FAILED_LINES.admit(&topic) {
                        tracing::error!(error = %e, topic, suppressed, "Dead letters could not be stored; the pack is not committed, retrying.");
                    }
                    if let Ok(command) = self.commands.recv_timeout(Duration::from_secs(1)) {
                        return Some(command);
                    }
                }
            }
        }
    }

    /// One try: create the topic if needed, send every letter, wait until all are stored.
    fn send_dead_letters(&self, topic: &str, dead: &[DeadLetter<'_>]) -> crate::queue::QueueResult<()> {
        let spec = self.ctx.config.topics.dlq_spec(self.def.id)?;
        self.ctx.queue.create_topic(&spec)?;
        let producer = self.ctx.queue.producer();
        let deliveries: Vec<_> = dead
            .iter()
            .map(|d| {
                let letter = DeadLetterProto {
                    record: d.record.value.to_vec(),
                    offset: d.record.offset,
                    reason: d.reason.clone(),
                    attempts: d.attempts,
                    failed_at: crate::now_ms(),
                    service_id: self.ctx.service_id.clone(),
                    wire_version: WIRE_VERSION,
                };
                producer.send(topic, Partitioning::Fixed(0), d.record.key.as_deref(), &letter.encode_to_vec())
            })
            .collect();
        deliveries.into_iter().try_for_each(|d| wait_delivery(d).map(|_| ()))
    }
}
