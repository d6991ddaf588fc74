//! One integration's worker thread: owns the driver instance and the consumer of
//! `tbmq.msg.ie.<id32>`, applies lifecycle commands, and turns records into packs for the driver.
//!
//! Everything about one integration happens on its own thread, so a slow start, a slow target or
//! a hung driver call only ever delays that integration. Offsets are committed only once a
//! pack's outcome is final; a stop in the middle of a RETRY_ALL pack commits nothing.
//!
//! This file holds the worker's loop; `lifecycle` starts and stops the driver, `pack` takes one
//! pack through decode, attempt and settle, `dead_letters` stores what was given up on, and
//! `message` converts a queue record into the message a driver sees. The ack strategies
//! themselves are pure functions in [`crate::retry`].

mod dead_letters;
mod isolate;
mod lifecycle;
mod message;
mod pack;
mod pipeline;

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        mpsc, Arc,
    },
    time::{Duration, Instant},
};

use trib_plugin_api::driver::Connectivity;

use crate::{
    context::{Context, IntegrationDef},
    events::ErrorMethod,
    queue::{Consumer, ConsumerEvent, QueueError, Record, TopicPartition},
    registry::{CallWatch, DriverHandle},
    retry::RetryPolicy,
    stats::{Activity, ProcessorStats},
    wire::ComponentLifecycleEvent as Lc,
};
use pack::PackEnd;

/// Commands from the manager.
#[derive(Debug)]
pub enum Command {
    /// Apply a (new) definition: restart with it, or stop if it is disabled.
    Apply(IntegrationDef),
    /// Stop; with `delete`, also remove the message topic and consumer group.
    Stop {
        /// The integration was deleted.
        delete: bool,
    },
}

struct Running {
    driver: DriverHandle,
    consumer: Box<dyn Consumer>,
    tp: TopicPartition,
    /// The driver pipelines packs (see `pipeline`).
    pipelined: bool,
}

/// How often a driver that reports its connectivity is asked.
const CONNECTIVITY_CHECK_EVERY: Duration = Duration::from_secs(1);

/// How often the backlog (messages in the queue topic not committed yet) is measured.
const BACKLOG_CHECK_EVERY: Duration = Duration::from_secs(2);

/// The shortest and longest pause before a driver instance is re-created after it broke
/// (panicked): doubled on every break in a row, so a driver that panics on every pack is
/// re-created a few times a minute instead of thousands of times a second.
const RECREATE_PAUSE: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(30));

/// The worker of one integration.
pub struct Worker {
    ctx: Arc<Context>,
    def: IntegrationDef,
    /// How the integration's failed messages are handled: its `retryPolicy` over the
    /// executor-wide ack strategy, read when it starts.
    policy: RetryPolicy,
    commands: mpsc::Receiver<Command>,
    /// Set by the manager when it gave up waiting for this worker (a driver call that does not
    /// return): the worker then commits nothing more and exits as soon as it gets control back.
    abandoned: Arc<AtomicBool>,
    /// Announces the driver calls in progress to the manager's watchdog.
    watch: Arc<CallWatch>,
    /// Driver breaks (panics) since the last pack that was committed.
    breaks_in_a_row: u32,
    running: Option<Running>,
    /// Packs handed to a pipelining driver and not settled yet, oldest first.
    in_flight: pipeline::InFlightPacks,
    failed_at: Option<Instant>,
    stats: Arc<ProcessorStats>,
    /// What the driver last said about its connection to the target (drivers that report it).
    connectivity: Option<Connectivity>,
    last_connectivity_check: Instant,
    /// When the backlog was last measured (None: not since the consumer was opened).
    last_backlog_check: Option<Instant>,
    /// The offset after the last commit, when known.
    committed_next: Option<i64>,
    delivered_since_stats: u64,
    errors_since_stats: u64,
    last_stats_event: Instant,
}

impl Worker {
    /// Creates the worker; [`Worker::run`] does the work. `abandoned` is the manager's way to
    /// tell a worker it stopped waiting for (see [`Worker::abandoned`]).
    pub fn new(
        ctx: Arc<Context>,
        def: IntegrationDef,
        commands: mpsc::Receiver<Command>,
        abandoned: Arc<AtomicBool>,
        watch: Arc<CallWatch>,
    ) -> Self {
        let stats = ctx.stats.processor(def.id);
        let policy = RetryPolicy::executor_wide(&ctx.config);
        Worker {
            ctx,
            def,
            policy,
            commands,
            abandoned,
            watch,
            breaks_in_a_row: 0,
            running: None,
            in_flight: pipeline::InFlightPacks::new(),
            failed_at: None,
            stats,
            connectivity: None,
            last_connectivity_check: Instant::now(),
            last_backlog_check: None,
            committed_next: None,
            delivered_since_stats: 0,
            errors_since_stats: 0,
            last_stats_event: Instant::now(),
        }
    }

    /// Runs until stopped.
    pub fn run(mut self) {
        let span = tracing::info_span!("integration", integration_id = %self.def.id, integration_type = %self.def.integration_type);
        let _guard = span.enter();
        self.start();
        loop {
            if self.abandoned.load(Ordering::Relaxed) {
                tracing::warn!("Abandoned integration worker got control back; exiting without committing.");
                return;
            }
            let command = match self.commands.try_recv() {
                Ok(c) => Some(c),
                Err(mpsc::TryRecvError::Empty) => None,
                Err(mpsc::TryRecvError::Disconnected) => Some(Command::Stop { delete: false }),
            };
            if let Some(c) = command {
                if !self.apply(c) {
                    return;
                }
                continue;
            }
            self.maybe_send_statistics();
            self.maybe_check_connectivity();
            self.maybe_measure_backlog();
            if self.running.is_some() {
                if let Some(c) = self.poll_and_process() {
                    if !self.apply(c) {
                        return;
                    }
                }
            } else {
                let wait = self.idle_wait();
                match self.commands.recv_timeout(wait) {
                    Ok(c) => {
                        if !self.apply(c) {
                            return;
                        }
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => self.maybe_reinit(),
                    Err(mpsc::RecvTimeoutError::Disconnected) => {
                        self.stop(false);
                        return;
                    }
                }
            }
        }
    }

    /// Applies a command; false when the worker must exit.
    fn apply(&mut self, command: Command) -> bool {
        // Packs already in flight whose outcomes come in promptly are committed first.
        self.finish_in_flight();
        match command {
            Command::Apply(def) if def.enabled => {
                self.teardown();
                self.def = def;
                self.start();
                true
            }
            Command::Apply(def) => {
                self.def = def;
                self.stop(false);
                false
            }
            Command::Stop { delete } => {
                self.stop(delete);
                false
            }
        }
    }

    fn idle_wait(&self) -> Duration {
        let poll = self.ctx.config.msg_poll_interval.max(Duration::from_millis(100));
        match (self.failed_at, self.ctx.config.reinit_enabled) {
            (Some(at), true) => self.ctx.config.reinit_frequency.saturating_sub(at.elapsed()).min(poll),
            _ => poll,
        }
    }

    fn maybe_reinit(&mut self) {
        let due = self.failed_at.is_some_and(|at| at.elapsed() >= self.ctx.config.reinit_frequency);
        if due && self.ctx.config.reinit_enabled {
            tracing::info!("Re-initialising failed integration.");
            self.lifecycle(Lc::Reinit, None);
            self.start();
        }
    }

    /// Sends a lifecycle event and counts the activity TBMQ counts with it, if any.
    fn lifecycle(&self, event: Lc, error: Option<&str>) {
        self.ctx.events.lifecycle(self.def.id, event, error);
        if let Some((activity, state)) = Activity::of_lifecycle(event) {
            self.ctx.stats.activity(&self.def.integration_type, activity, state, 1);
        }
    }

    fn maybe_send_statistics(&mut self) {
        let c = &self.ctx.config;
        if c.statistics_enabled && self.last_stats_event.elapsed() >= c.statistics_persist_frequency {
            self.ctx.events.statistics(self.def.id, self.delivered_since_stats, self.errors_since_stats);
            self.delivered_since_stats = 0;
            self.errors_since_stats = 0;
            self.last_stats_event = Instant::now();
        }
    }

    /// Asks a driver that reports its connectivity, about once a second, and reports changes: a
    /// log line, the `ie_integration_connected` gauge (1 or 0) and, when the connection is lost,
    /// an error event with the driver's reason.
    fn maybe_check_connectivity(&mut self) {
        if self.last_connectivity_check.elapsed() < CONNECTIVITY_CHECK_EVERY {
            return;
        }
        self.last_connectivity_check = Instant::now();
        let Some(now) = self.running.as_mut().and_then(|r| r.driver.connectivity()) else {
            return;
        };
        if self.connectivity.as_ref() == Some(&now) {
            return;
        }
        match &now {
            Connectivity::Connected => {
                self.stats.set_connected(true, None);
                tracing::info!("Target connected.");
            }
            Connectivity::Disconnected(reason) => {
                self.stats.set_connected(false, Some(reason));
                tracing::warn!(reason, "Target disconnected.");
                self.ctx.events.error(
                    self.def.id,
                    ErrorMethod::OnMsgProcess,
                    &format!("target disconnected: {reason}"),
                );
            }
        }
        self.connectivity = Some(now);
    }

    /// Measures the backlog every [`BACKLOG_CHECK_EVERY`]: the end of the integration's queue
    /// topic minus the committed offset (packs in flight count as waiting until committed).
    fn maybe_measure_backlog(&mut self) {
        if self.last_backlog_check.is_some_and(|at| at.elapsed() < BACKLOG_CHECK_EVERY) {
            return;
        }
        let Some(r) = self.running.as_mut() else { return };
        self.last_backlog_check = Some(Instant::now());
        let committed = match self.committed_next {
            Some(next) => Some(next),
            None => match r.consumer.committed(&r.tp) {
                Ok(next) => next,
                Err(e) => {
                    tracing::debug!(error = %e, "Committed offset unknown; backlog not measured.");
                    return;
                }
            },
        };
        match r.consumer.watermarks(&r.tp) {
            Ok((low, high)) => {
                self.committed_next = committed;
                self.stats.set_backlog(high - committed.unwrap_or(low).max(low));
            }
            Err(e) => tracing::debug!(error = %e, "Queue topic end unknown; backlog not measured."),
        }
    }

    fn send_statistics_if_any(&mut self) {
        if self.ctx.config.statistics_enabled && (self.delivered_since_stats > 0 || self.errors_since_stats > 0) {
            self.ctx.events.statistics(self.def.id, self.delivered_since_stats, self.errors_since_stats);
            self.delivered_since_stats = 0;
            self.errors_since_stats = 0;
        }
    }

    /// Polls once and processes what arrived. Returns a command that interrupted a pack.
    fn poll_and_process(&mut self) -> Option<Command> {
        if self.running.as_ref()?.pipelined {
            return self.pipelined_step(self.ctx.config.msg_pipeline_depth);
        }
        for records in self.poll(self.ctx.config.msg_poll_interval) {
            match self.process_pack(&records) {
                PackEnd::Committed => {}
                PackEnd::Abandoned(c) => return Some(c),
                PackEnd::DriverBroken(reason) => return self.recreate_driver(&reason),
            }
        }
        None
    }

    /// The packs one poll of the message consumer returns, waiting up to `wait` for the first;
    /// none when the integration is not running or the poll failed (logged, after a pause).
    fn poll(&mut self, wait: Duration) -> Vec<Vec<Record>> {
        let (interval, max) = (self.ctx.config.msg_poll_interval, self.ctx.config.msg_max_poll_records);
        let Some(running) = self.running.as_mut() else { return Vec::new() };
        match running.consumer.poll(wait, max) {
            Ok(events) => events
                .into_iter()
                .filter_map(|event| match event {
                    ConsumerEvent::Records(records) => Some(records),
                    _ => None,
                })
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "Polling the integration's messages failed.");
                std::thread::sleep(interval.min(Duration::from_secs(1)));
                Vec::new()
            }
        }
    }

    /// After a driver panic its state is suspect: stop it, report the integration FAILED with
    /// the panic text, wait (doubling with every break in a row, answering commands meanwhile),
    /// re-create it, and rewind to the last committed offset so nothing is skipped. Returns a
    /// command that arrived during the pause.
    fn recreate_driver(&mut self, reason: &str) -> Option<Command> {
        self.breaks_in_a_row = self.breaks_in_a_row.saturating_add(1);
        let pause = recreate_pause(self.breaks_in_a_row);
        tracing::warn!(
            reason,
            breaks_in_a_row = self.breaks_in_a_row,
            pause_ms = pause.as_millis() as u64,
            "Driver failed; re-creating its instance after a pause."
        );
        self.ctx.events.error(self.def.id, ErrorMethod::OnMsgProcess, reason);
        self.teardown();
        self.lifecycle(Lc::Failed, Some(reason));
        self.ctx.stats.set_state(self.def.id, &self.def.integration_type, Some(crate::stats::State::Failed));
        match self.commands.recv_timeout(pause) {
            Ok(command) => return Some(command),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return Some(Command::Stop { delete: false }),
        }
        self.start();
        None
    }

    fn commit(&mut self, next_offset: i64) {
        if self.abandoned.load(Ordering::Relaxed) {
            // The manager gave up on this worker and may run another one for the integration.
            return;
        }
        self.breaks_in_a_row = 0;
        if let Some(r) = self.running.as_mut() {
            match r.consumer.commit(&r.tp, next_offset) {
                Ok(()) => self.committed_next = Some(next_offset),
                Err(QueueError::Closed) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "Commit failed; the pack may be delivered again.")
                }
            }
        }
    }
}

/// The pause before the `n`th re-creation in a row: 100 ms, doubled each time, at most 30 s.
fn recreate_pause(n: u32) -> Duration {
    let (first, max) = RECREATE_PAUSE;
    first.saturating_mul(2u32.saturating_pow(n.saturating_sub(1).min(16))).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recreation_pauses_double_up_to_a_limit() {
        let ms: Vec<u128> = [1, 2, 3, 4, 9, 10, 50, u32::MAX].iter().map(|&n| recreate_pause(n).as_millis()).collect();
        assert_eq!(ms, [100, 200, 400, 800, 25_600, 30_000, 30_000, 30_000]);
    }
}
