//! Pipelined packs: with a driver that pipelines ([`capabilities::PIPELINE`]) and a
//! `TB_IE_MSG_PIPELINE_DEPTH` above 1, the worker hands the driver pack N+1 while pack N's
//! acknowledgements are still on their way, so the target never idles between packs.
//!
//! What stays exactly as without pipelining: packs are settled and committed in offset order,
//! one at a time, by [`Worker::drive`] (the same ack strategy, dead letters and statistics); a
//! pack whose first attempt needs a retry makes the worker collect every later pack first, so
//! retries are plain driver calls with nothing else pending; a command, a driver break or a
//! stop drops the packs not yet settled without committing them (they are delivered again).
//! What changes: under a retry, messages of a later pack may reach the target before the
//! retried ones of an earlier pack (the commit order does not change).
//!
//! [`capabilities::PIPELINE`]: trib_plugin_api::abi::capabilities::PIPELINE

use std::{
    collections::VecDeque,
    time::{Duration, Instant},
};

use trib_plugin_api::{
    abi::{Message, UserProperty},
    driver::{Error, ErrorKind, Outcome},
};

use super::{
    message::{to_message, user_properties},
    pack::{decode_records, Decoded, Pack, PackEnd},
    Command, Worker,
};
use crate::{queue::Record, registry::SETTLE_GRACE};

/// The longest the worker waits for new records while packs are in flight and there is room for
/// more, before it looks at the oldest pack's outcomes again (without waiting for them).
///
/// The worker waits for records, never for outcomes, while it could send: a record must not wait
/// for the previous pack's acknowledgements. A stock Mosquitto target (no `set_tcp_nodelay`)
/// holds a PUBACK back (Nagle's algorithm) until our side acknowledges its previous segment,
/// which our side does with its next PUBLISH: waiting for that PUBACK before sending the next
/// message added this wait to every message at 1,000 msg/s (p50 1.2 ms against a bridge's 0.13).
/// Outcomes that come meanwhile are settled, and committed, at most this much later.
const PEEK: Duration = Duration::from_millis(1);

/// The longest a stop waits for the outcomes of the packs in flight, all together; packs not
/// settled (or not all delivered) by then are left uncommitted and delivered again later.
const STOP_WAIT: Duration = Duration::from_secs(2);

/// A pack handed to the driver whose outcomes are not settled yet.
#[derive(Debug)]
pub(super) struct InFlight {
    records: Vec<Record>,
    decoded: Decoded,
    deadline: Instant,
    /// The first attempt's result, once the driver gave it.
    outcomes: Option<Result<Vec<Outcome>, Error>>,
}

/// The packs in flight, oldest first.
pub(super) type InFlightPacks = VecDeque<InFlight>;

impl Worker {
    /// One step of the pipelined loop: take new records while fewer than `depth` packs are in
    /// flight (waiting up to `idle_wait` for them when none is, up to [`PEEK`] when some are),
    /// then settle the oldest pack if its outcomes are in (waiting for them only when no more
    /// may be sent). Returns a command that interrupted a pack.
    pub(super) fn pipelined_step(&mut self, depth: usize, idle_wait: Duration) -> Option<Command> {
        let interval = self.ctx.config.msg_poll_interval;
        if !self.pipeline_full(depth) {
            let wait = if self.in_flight.is_empty() { idle_wait } else { PEEK };
            for records in self.poll(wait) {
                while self.pipeline_full(depth) {
                    match self.settle_oldest(Duration::MAX) {
                        // Room made: the rest of this poll's records still go out.
                        Some(PackEnd::Committed) | None => {}
                        // Nothing more is submitted; a fresh consumer (or the restart a command
                        // brings) reads the rest of this poll again from the committed offset.
                        Some(end) => return self.after_pack(end),
                    }
                }
                self.submit(records);
            }
        }
        if self.in_flight.is_empty() {
            return None;
        }
        let wait = if self.pipeline_full(depth) { interval } else { Duration::ZERO };
        let end = self.settle_oldest(wait)?;
        self.after_pack(end)
    }

    /// Whether no further pack may be submitted: `depth` packs are in flight, or as many
    /// messages as two full packs. At low rates packs are small, so several of them keep the
    /// target busy (and its acknowledgements flowing) while one waits for a slow answer; at high
    /// rates two full packs are in flight.
    fn pipeline_full(&self, depth: usize) -> bool {
        let messages: usize = self.in_flight.iter().map(|f| f.records.len()).sum();
        self.in_flight.len() >= depth || messages >= 2 * self.ctx.config.msg_max_poll_records.max(1)
    }

    /// Decodes `records` and submits them to the driver as one pack.
    fn submit(&mut self, records: Vec<Record>) {
        let decoded = decode_records(&records);
        let timeout = self.ctx.config.pack_processing_timeout;
        let deadline = Instant::now() + timeout;
        let outcomes = {
            let props: Vec<Vec<UserProperty<'_>>> = decoded.messages.iter().map(user_properties).collect();
            let messages: Vec<Message<'_>> =
                decoded.messages.iter().zip(&props).map(|(m, p)| to_message(m, p)).collect();
            match self.running.as_mut() {
                Some(running) => running.driver.submit(&messages, timeout).transpose(),
                None => Some(Ok(vec![Outcome::Retry("the integration is not running".into()); messages.len()])),
            }
        };
        self.in_flight.push_back(InFlight { records, decoded, deadline, outcomes });
    }

    /// Waits up to `wait` (and never past the oldest pack's deadline and grace) for the oldest
    /// pack's outcomes, then settles it with [`Worker::drive`]. `None` when they are not in yet.
    fn settle_oldest(&mut self, wait: Duration) -> Option<PackEnd> {
        if self.in_flight.front()?.outcomes.is_none() {
            self.collect_next(wait);
        }
        // Not in yet: try again later.
        self.in_flight.front()?.outcomes.as_ref()?;
        let InFlight { records, decoded, outcomes, .. } = self.in_flight.pop_front()?;
        let pack = Pack::new(&records, &decoded);
        Some(self.drive(pack, &decoded.messages, outcomes))
    }

    /// Asks the driver, waiting up to `wait`, for the outcomes of its oldest pending pack: the
    /// first one in flight whose outcomes are not in (packs are collected in submission order,
    /// and a pack settled at submission is not pending in the driver).
    fn collect_next(&mut self, wait: Duration) {
        let Some(next) = self.in_flight.iter().position(|f| f.outcomes.is_none()) else { return };
        let last_chance = self.in_flight[next].deadline + SETTLE_GRACE;
        let wait = wait.min(last_chance.saturating_duration_since(Instant::now()));
        let collected = match self.running.as_mut() {
            Some(running) => running.driver.collect(wait).transpose(),
            None => Some(Err(Error::new(ErrorKind::State, "the integration is not running"))),
        };
        self.in_flight[next].outcomes = match collected {
            Some(result) => Some(result),
            None if Instant::now() >= last_chance => {
                Some(Err(Error::new(ErrorKind::Internal, "the driver did not settle the pack by its deadline")))
            }
            None => None,
        };
    }

    /// Collects the outcomes of every pack in flight (each until its deadline), so that the
    /// next driver call is the only one pending. Without packs in flight, does nothing.
    pub(super) fn collect_in_flight(&mut self) {
        while self.in_flight.iter().any(|f| f.outcomes.is_none()) {
            self.collect_next(Duration::MAX);
        }
    }

    /// Before a stop: settles, in order, the packs in flight whose outcomes come in within
    /// [`STOP_WAIT`] and are all delivered; the rest is left uncommitted.
    pub(super) fn finish_in_flight(&mut self) {
        let until = Instant::now() + STOP_WAIT;
        while let Some(front) = self.in_flight.front() {
            if front.outcomes.is_none() {
                self.collect_next(until.saturating_duration_since(Instant::now()));
            }
            let delivered = self
                .in_flight
                .front()
                .and_then(|f| f.outcomes.as_ref())
                .is_some_and(|o| o.as_ref().is_ok_and(|o| o.iter().all(|o| matches!(o, Outcome::Delivered))));
            if !delivered {
                break;
            }
            match self.settle_oldest(Duration::ZERO) {
                Some(PackEnd::Committed) => {}
                _ => break,
            }
        }
        self.in_flight.clear();
    }

    /// What follows a settled pack: nothing, a command to apply, or re-creating the driver;
    /// packs still in flight are dropped uncommitted unless the pack was committed.
    fn after_pack(&mut self, end: PackEnd) -> Option<Command> {
        match end {
            PackEnd::Committed => None,
            PackEnd::Abandoned(command) => {
                self.in_flight.clear();
                Some(command)
            }
            PackEnd::DriverBroken(reason) => {
                self.in_flight.clear();
                self.recreate_driver(&reason)
            }
        }
    }
}
