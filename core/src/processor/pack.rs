//! One pack through the driver, in three stages:
//!
//! 1. [`decode`]: queue records to messages; records that do not decode are set aside as dead
//!    letters (0 attempts) at once.
//! 2. attempt: one driver call with the pack's deadline; [`Attempt::checked`] makes sure there is
//!    exactly one outcome per message, whatever the driver did.
//! 3. [`Pack::settle`]: the ack strategy ([`crate::retry::decide`]), with the integration's
//!    values ([`RetryPolicy`]), says what is retried, given up on (dead-lettered) or committed;
//!    a message past the policy's maximum age is given up on instead of retried.
//!
//! The stages are pure and keep the pack's state in [`Pack`], including a local [`Tally`] of the
//! processing counters. [`Worker::process_pack`] does the I/O between them: the driver call, one
//! update of the shared statistics per attempt, the dead-letter topic, the commit and the pause
//! before a retry.

use prost::Message as _;
use trib_plugin_api::{
    abi::{Message, UserProperty},
    driver::{Error, ErrorKind, Outcome},
};

use super::{
    dead_letters::DeadLetter,
    message::{to_message, user_properties},
    Command, Worker,
};
use crate::{
    config::AckStrategy,
    events::ErrorMethod,
    queue::Record,
    retry::{decide, AttemptResult, Decision, RetryPolicy},
    stats::{Activity, ActivityState, Counter, Tally},
    wire::PublishIntegrationMsgProto,
};

/// How a pack ended.
pub(super) enum PackEnd {
    /// Its offsets were committed.
    Committed,
    /// A command interrupted it before the commit; it will be redelivered.
    Abandoned(Command),
    /// The driver panicked: re-create it (and, unless the pack was committed, redeliver).
    DriverBroken(String),
}

/// The state of one pack across its attempts.
#[derive(Debug)]
pub(super) struct Pack<'r> {
    /// The record of each decoded message, by message index.
    sources: Vec<&'r Record>,
    /// When the broker queued each decoded message (ms; 0 = unknown), by message index: what
    /// its age is counted from.
    timestamps: Vec<i64>,
    /// Indexes of the messages the next attempt delivers, ascending.
    pending: Vec<usize>,
    /// Attempts made so far.
    attempt: u32,
    /// The offset to commit once the pack is final.
    next_offset: i64,
    /// Messages given up on so far.
    dead: Vec<DeadLetter<'r>>,
    /// Counts not yet added to the shared statistics.
    tally: Tally,
}

/// The outcomes of one driver call: exactly one per message of its batch.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Attempt {
    pub(super) outcomes: Vec<Outcome>,
    /// Why the driver must be re-created (it panicked), if it must.
    pub(super) broken: Option<String>,
}

/// What the worker does after an attempt was settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Settled {
    /// Store the dead letters, then commit the pack.
    Commit,
    /// Pause, then attempt the pending messages again.
    Retry,
    /// Commit nothing: the broken driver is re-created first and the pack redelivered.
    Abandon,
}

/// Stage 1's product, owned: the decoded messages and, by index into the pack's records, the
/// record each one came from and the records that did not decode.
#[derive(Debug, Default)]
pub(super) struct Decoded {
    /// The decoded messages, in offset order.
    pub(super) messages: Vec<PublishIntegrationMsgProto>,
    /// For each message, the index of its record.
    sources: Vec<usize>,
    /// Indexes of the records that did not decode.
    undecodable: Vec<usize>,
}

/// Stage 1: decodes a pack's records (logging the ones that do not decode).
pub(super) fn decode_records(records: &[Record]) -> Decoded {
    let mut d = Decoded { messages: Vec::with_capacity(records.len()), ..Decoded::default() };
    d.sources.reserve(records.len());
    for (i, r) in records.iter().enumerate() {
        match PublishIntegrationMsgProto::decode(r.value.clone()) {
            Ok(m) if m.publish_msg_proto.is_some() => {
                d.messages.push(m);
                d.sources.push(i);
            }
            _ => {
                tracing::error!(offset = r.offset, "Undecodable record on the integration topic was skipped.");
                d.undecodable.push(i);
            }
        }
    }
    d
}

/// Stage 1: decodes a pack's records. Returns the decoded messages (the records of the new
/// [`Pack`]'s `sources`, by index) and the pack, with undecodable records already given up on.
pub(super) fn decode(records: &[Record]) -> (Vec<PublishIntegrationMsgProto>, Pack<'_>) {
    let decoded = decode_records(records);
    let pack = Pack::new(records, &decoded);
    (decoded.messages, pack)
}

impl Attempt {
    /// An attempt whose outcomes came back as they are (no driver error).
    pub(super) fn delivered_or_not(outcomes: Vec<Outcome>) -> Self {
        Attempt { outcomes, broken: None }
    }

    /// Stage 2's check: what a driver call for `messages` messages returned, as one outcome per
    /// message. A driver error, or a wrong number of outcomes (which only a driver that bypasses
    /// `export_driver!` can return), makes every message a retry with the error as its reason.
    pub(super) fn checked(messages: usize, returned: Result<Vec<Outcome>, Error>) -> Self {
        let error = match returned {
            Ok(outcomes) if outcomes.len() == messages => return Attempt { outcomes, broken: None },
            Ok(outcomes) => Error::new(
                ErrorKind::Internal,
                format!("driver returned {} outcomes for {messages} messages", outcomes.len()),
            ),
            Err(e) => e,
        };
        let reason = format!("driver error: {}", error.message);
        let broken = (error.kind == ErrorKind::Panic).then(|| reason.clone());
        Attempt { outcomes: vec![Outcome::Retry(reason); messages], broken }
    }
}

impl<'r> Pack<'r> {
    /// The pack of `records` as `decoded` found them: every decoded message pending, the
    /// undecodable records already given up on (0 attempts).
    pub(super) fn new(records: &'r [Record], decoded: &Decoded) -> Self {
        let mut pack = Pack {
            sources: decoded.sources.iter().map(|&i| &records[i]).collect(),
            timestamps: decoded.messages.iter().map(|m| m.timestamp).collect(),
            pending: (0..decoded.sources.len()).collect(),
            attempt: 0,
            next_offset: records.last().map_or(0, |r| r.offset) + 1,
            dead: Vec::new(),
            tally: Tally::default(),
        };
        for &i in &decoded.undecodable {
            pack.tally.add(Counter::FailedMsgs, 1);
            pack.dead.push(DeadLetter { record: &records[i], reason: "undecodable record".to_string(), attempts: 0 });
        }
        pack.tally.add(Counter::TotalMsgs, decoded.sources.len());
        pack
    }

    /// Starts the next attempt: the pending messages, in offset order.
    pub(super) fn next_batch<'m>(&mut self, messages: &[Message<'m>]) -> Vec<Message<'m>> {
        self.attempt += 1;
        self.pending.iter().map(|&i| messages[i]).collect()
    }

    /// Stage 3: applies the integration's ack strategy to the attempt's outcomes (by batch
    /// index), counting TBMQ's processor statistics into the tally: a final attempt counts its
    /// failures as given up on and one successful or failed iteration; a non-final one counts
    /// them as temporary and one failed iteration. Rejected messages are given up on at once, and
    /// so are the retryable ones older than the policy's maximum age at `now_ms` (then counted
    /// as given up on, not as temporary).
    pub(super) fn settle(&mut self, attempt: &Attempt, policy: &RetryPolicy, now_ms: i64) -> Settled {
        let strategy = policy.strategy;
        let result = AttemptResult::classify(&attempt.outcomes);
        self.tally.add(Counter::SuccessfulMsgs, result.delivered.len());
        if attempt.broken.is_some() && strategy != AckStrategy::SkipAll {
            // A broken driver must be re-created before any retry; nothing is committed.
            return Settled::Abandon;
        }
        match decide(strategy, self.attempt, &result) {
            Decision::Commit => {
                self.tally.add(Counter::TimeoutMsgs, result.timed_out.len());
                self.tally.add(Counter::FailedMsgs, result.failed.len() + result.rejected.len());
                let clean = !result.has_retryable() && result.rejected.is_empty();
                let iteration = if clean { Counter::SuccessfulIterations } else { Counter::FailedIterations };
                self.tally.add(iteration, 1);
                self.give_up(result.timed_out.iter().chain(&result.failed).chain(&result.rejected), &attempt.outcomes);
                Settled::Commit
            }
            Decision::Retry => {
                let (expired_timeouts, timed_out) = self.split_expired(&result.timed_out, policy, now_ms);
                let (expired_failures, failed) = self.split_expired(&result.failed, policy, now_ms);
                self.tally.add(Counter::TimeoutMsgs, expired_timeouts.len());
                self.tally.add(Counter::FailedMsgs, result.rejected.len() + expired_failures.len());
                self.tally.add(Counter::FailedIterations, 1);
                self.give_up(result.rejected.iter(), &attempt.outcomes);
                for &(j, age) in expired_timeouts.iter().chain(&expired_failures) {
                    let reason = expired_reason(age, policy, &attempt.outcomes[j]);
                    let record = self.sources[self.pending[j]];
                    self.dead.push(DeadLetter { record, reason, attempts: self.attempt });
                }
                if timed_out.is_empty() && failed.is_empty() {
                    // Everything retryable was too old: the pack is final.
                    return Settled::Commit;
                }
                self.tally.add(Counter::TmpTimeout, timed_out.len());
                self.tally.add(Counter::TmpFailed, failed.len());
                let mut retry: Vec<usize> = timed_out.iter().chain(&failed).map(|&j| self.pending[j]).collect();
                retry.sort_unstable();
                self.pending = retry;
                Settled::Retry
            }
        }
    }

    /// Splits `batch` indexes of the current attempt into the messages past the policy's
    /// maximum age at `now_ms` (with their age) and the others.
    fn split_expired(
        &self,
        batch: &[usize],
        policy: &RetryPolicy,
        now_ms: i64,
    ) -> (Vec<(usize, std::time::Duration)>, Vec<usize>) {
        let mut expired = Vec::new();
        let mut live = Vec::with_capacity(batch.len());
        for &j in batch {
            match policy.expired_age(self.timestamps[self.pending[j]], now_ms) {
                Some(age) => expired.push((j, age)),
                None => live.push(j),
            }
        }
        (expired, live)
    }

    /// Turns the messages at `batch` indexes of the current attempt into dead letters.
    fn give_up<'b>(&mut self, batch: impl Iterator<Item = &'b usize>, outcomes: &[Outcome]) {
        for &j in batch {
            let record = self.sources[self.pending[j]];
            self.dead.push(DeadLetter { record, reason: outcome_reason(&outcomes[j]), attempts: self.attempt });
        }
    }
}

impl Worker {
    /// Takes one pack through decode, attempts and settling until it is committed, abandoned
    /// (a command arrived) or the driver broke.
    pub(super) fn process_pack(&mut self, records: &[Record]) -> PackEnd {
        let (decoded, pack) = decode(records);
        self.drive(pack, &decoded, None)
    }

    /// Attempts and settles `pack` (of the `decoded` messages) until it is committed, abandoned
    /// or the driver broke. `first` is the first attempt's result when the driver already
    /// returned it (a pipelined pack, collected); otherwise every attempt calls the driver.
    pub(super) fn drive(
        &mut self,
        mut pack: Pack<'_>,
        decoded: &[PublishIntegrationMsgProto],
        mut first: Option<Result<Vec<Outcome>, Error>>,
    ) -> PackEnd {
        let props: Vec<Vec<UserProperty<'_>>> = decoded.iter().map(user_properties).collect();
        let messages: Vec<Message<'_>> = decoded.iter().zip(&props).map(|(m, p)| to_message(m, p)).collect();
        let (policy, timeout) = (self.policy, self.ctx.config.pack_processing_timeout);
        let mut rewind = false;
        loop {
            let batch = pack.next_batch(&messages);
            let returned = match first.take() {
                Some(returned) => returned,
                None => {
                    let Some(running) = self.running.as_mut() else {
                        // Only `apply` and `recreate_driver` take the driver away, never during a pack.
                        self.report(&mut pack.tally, &[]);
                        return PackEnd::Committed;
                    };
                    running.driver.process(&batch, timeout)
                }
            };
            let mut attempt = Attempt::checked(batch.len(), returned);
            if let Some(reason) = attempt.broken.clone().filter(|_| self.may_isolate()) {
                // The packs in flight died with the instance; their messages come again from a
                // fresh consumer once this pack is committed.
                rewind |= !self.in_flight.is_empty();
                self.in_flight.clear();
                match self.isolate(&batch, &reason) {
                    Ok(isolated) => attempt = isolated,
                    Err(reason) => return PackEnd::DriverBroken(reason),
                }
            }
            let settled = pack.settle(&attempt, &policy, crate::now_ms());
            self.report(&mut pack.tally, &attempt.outcomes);
            match settled {
                Settled::Abandon => return PackEnd::DriverBroken(attempt.broken.unwrap_or_default()),
                Settled::Commit => {
                    if let Some(command) = self.store_dead_letters(&mut pack.dead) {
                        return PackEnd::Abandoned(command);
                    }
                    self.commit(pack.next_offset);
                    if rewind {
                        if let Err(e) = self.reopen_consumer() {
                            return PackEnd::DriverBroken(format!("cannot reopen the message consumer: {e}"));
                        }
                    }
                    return attempt.broken.map_or(PackEnd::Committed, PackEnd::DriverBroken);
                }
                Settled::Retry => {
                    // A retry is a plain driver call, so the packs submitted after this one
                    // are collected first (and settled after it, in order).
                    self.collect_in_flight();
                    if let Some(command) = self.pause(&pack) {
                        return PackEnd::Abandoned(command);
                    }
                }
            }
        }
    }

    /// The statistics of one attempt, in one update each: the pack's tally into the processor
    /// counters, the `msgUplink` activities and the statistics-event counts; then one error
    /// event per message that was not delivered (rate-limited in [`crate::events`]).
    fn report(&mut self, tally: &mut Tally, outcomes: &[Outcome]) {
        let (id, ty) = (self.def.id, &self.def.integration_type);
        self.stats.record(&std::mem::take(tally));
        let delivered = outcomes.iter().filter(|o| matches!(o, Outcome::Delivered)).count();
        let errors = outcomes.len() - delivered;
        if !outcomes.is_empty() {
            let first_error = outcomes.iter().find_map(|o| match o {
                Outcome::Retry(reason) | Outcome::Rejected(reason) | Outcome::Timeout(reason) => Some(reason.as_str()),
                Outcome::Delivered => None,
            });
            self.stats.observe_call(crate::now_ms(), delivered, first_error);
        }
        self.ctx.stats.activity(ty, Activity::MsgUplink, ActivityState::Success, delivered);
        self.ctx.stats.activity(ty, Activity::MsgUplink, ActivityState::Failed, errors);
        self.delivered_since_stats += delivered as u64;
        self.errors_since_stats += errors as u64;
        for o in outcomes {
            if let Outcome::Retry(reason) | Outcome::Rejected(reason) | Outcome::Timeout(reason) = o {
                self.ctx.events.error(id, ErrorMethod::OnMsgProcess, reason);
            }
        }
    }

    /// Waits before the next attempt under RETRY_ALL, as the integration's policy says. A
    /// command that arrives meanwhile abandons the pack without a commit (it is redelivered) and
    /// is returned.
    fn pause(&self, pack: &Pack<'_>) -> Option<Command> {
        if self.policy.strategy == AckStrategy::SkipAll {
            return None;
        }
        let pause = self.policy.pause_before(pack.attempt, fastrand::f64());
        let command = self.commands.recv_timeout(pause).ok()?;
        tracing::info!(undelivered = pack.pending.len(), "Pack abandoned without commit; it will be redelivered.");
        Some(command)
    }
}

/// The reason a message past the maximum age was given up on: its age, the limit and what its
/// last attempt came to.
fn expired_reason(age: std::time::Duration, policy: &RetryPolicy, last: &Outcome) -> String {
    let max = policy.max_message_age.unwrap_or_default();
    format!(
        "expired: message age {} ms exceeded maxMessageAgeMs ({} ms); last attempt: {}",
        age.as_millis(),
        max.as_millis(),
        outcome_reason(last)
    )
}

/// The reason a message was given up on, as stored with its dead letter.
fn outcome_reason(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Delivered => "delivered".to_string(),
        Outcome::Retry(reason) => format!("retry: {reason}"),
        Outcome::Rejected(reason) => format!("rejected: {reason}"),
        Outcome::Timeout(reason) => format!("timeout: {reason}"),
    }
}

#[cfg(test)]
mod tests;
