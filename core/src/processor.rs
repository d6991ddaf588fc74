//! One integration's worker: owns the driver instance and the consumer of `tbmq.msg.ie.<id32>`,
//! applies lifecycle commands, and turns records into packs for the driver.
//!
//! A worker runs in turns ([`Worker::run_turn`]) on a thread of the manager's pool: a turn goes on
//! while there is work, so a slow start, a slow target or a hung driver call only ever delays
//! that integration. A turn ends when the worker has nothing to do ([`Turn::Park`]: nothing in
//! flight, everything read committed, and a poll came back empty): the manager then asks the
//! consumer to call back on the next record (`Consumer::on_records`) and gives the thread back
//! until that, a command or the worker's next periodic duty. A backend that cannot call back
//! (Kafka) keeps its worker polling on its thread, as before. Offsets are committed only once a
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
    queue::{Consumer, ConsumerEvent, QueueError, Record, RecordWaker, TopicPartition},
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

/// How a worker's turn on a thread ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Turn {
    /// The worker stopped for good.
    Exit,
    /// The worker has nothing to do: run its next turn when its consumer has records
    /// ([`Worker::listen`]), a command arrives, or at `until`, its next periodic duty (none: only
    /// records or a command).
    Park {
        /// When the next periodic duty is due.
        until: Option<Instant>,
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
    /// The offset after the last record polled since the consumer was opened (None: none).
    read_next: Option<i64>,
    /// The last poll returned no record.
    polled_nothing: bool,
    /// The next poll does not wait: this turn was started by a wake-up, which has its records
    /// ready if it was one.
    quick_poll: bool,
    /// The consumer may call back on records (false once `on_records` said it cannot).
    parkable: bool,
    /// The driver was started (the first turn starts it).
    started: bool,
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
            read_next: None,
            polled_nothing: false,
            quick_poll: true,
            parkable: true,
            started: false,
            delivered_since_stats: 0,
            errors_since_stats: 0,
            last_stats_event: Instant::now(),
        }
    }

    /// Runs one turn: the first one starts the integration; every turn applies commands and
    /// does the periodic duties, then processes records until there is nothing to do (it
    /// returns [`Turn::Park`]) or the worker stopped ([`Turn::Exit`]). A worker whose consumer
    /// cannot call back never parks while it runs: its turn polls until it stops, as a worker
    /// owning its thread did.
    pub fn run_turn(&mut self) -> Turn {
        let span = tracing::info_span!("integration", integration_id = %self.def.id, integration_type = %self.def.integration_type);
        let _guard = span.enter();
        if !std::mem::replace(&mut self.started, true) {
            self.start();
        }
        self.quick_poll = true;
        loop {
            if self.abandoned.load(Ordering::Relaxed) {
                tracing::warn!("Abandoned integration worker got control back; exiting without committing.");
                return Turn::Exit;
            }
            let command = match self.commands.try_recv() {
                Ok(c) => Some(c),
                Err(mpsc::TryRecvError::Empty) => None,
                Err(mpsc::TryRecvError::Disconnected) => Some(Command::Stop { delete: false }),
            };
            if let Some(c) = command {
                if !self.apply(c) {
                    return Turn::Exit;
                }
                continue;
            }
            self.maybe_send_statistics();
            self.maybe_check_connectivity();
            self.maybe_measure_backlog();
            if self.running.is_some() {
                let wait = if self.quick_poll { Duration::ZERO } else { self.ctx.config.msg_poll_interval };
                if let Some(c) = self.poll_and_process(wait) {
                    if !self.apply(c) {
                        return Turn::Exit;
                    }
                    continue;
                }
                // Records came, or the queue cannot call back: later polls wait for more.
                self.quick_poll = false;
                if self.idle() {
                    // The backlog a parked worker announces is measured now: it cannot change
                    // without a record, which ends the park.
                    self.last_backlog_check = None;
                    self.maybe_measure_backlog();
                    return Turn::Park { until: self.next_duty() };
                }
            } else if self.reinit_due() {
                self.maybe_reinit();
            } else {
                return Turn::Park { until: self.next_duty() };
            }
        }
    }

    /// Asks the consumer to call `waker` when it has records (see `Consumer::on_records`):
    /// `waker` is called at once when some already wait. True when the worker may park: it
    /// will be called, or the worker reads nothing (its integration is not running). False
    /// when the queue cannot call back: the worker then keeps polling.
    pub fn listen(&mut self, waker: RecordWaker) -> bool {
        let Some(running) = self.running.as_mut() else { return true };
        self.parkable = running.consumer.on_records(waker);
        if !self.parkable {
            tracing::debug!("The queue cannot call back on records; the worker keeps polling.");
        }
        self.parkable
    }

    /// Whether a running worker has nothing to do: its last poll came back empty, nothing is in
    /// flight and everything it read was committed.
    fn idle(&self) -> bool {
        let committed = self.read_next.is_none_or(|read| self.committed_next.is_some_and(|c| c >= read));
        self.parkable && self.polled_nothing && self.in_flight.is_empty() && committed
    }

    /// When the next periodic duty of a parked worker is due: the statistics event, the
    /// connectivity check of a driver that reports it, and the re-init of a failed integration.
    fn next_duty(&self) -> Option<Instant> {
        let c = &self.ctx.config;
        let statistics = c.statistics_enabled.then(|| self.last_stats_event + c.statistics_persist_frequency);
        let connectivity = self
            .running
            .as_ref()
            .filter(|r| r.driver.reports_connectivity())
            .map(|_| self.last_connectivity_check + CONNECTIVITY_CHECK_EVERY);
        let reinit = match (self.running.is_none(), self.failed_at, c.reinit_enabled) {
            (true, Some(at), true) => Some(at + c.reinit_frequency),
            _ => None,
        };
        [statistics, connectivity, reinit].into_iter().flatten().min()
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

    /// Whether a failed integration is due to be re-initialised.
    fn reinit_due(&self) -> bool {
        self.ctx.config.reinit_enabled
            && self.failed_at.is_some_and(|at| at.elapsed() >= self.ctx.config.reinit_frequency)
    }

    fn maybe_reinit(&mut self) {
        if self.reinit_due() {
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

    /// Polls once, waiting up to `wait` when nothing is in flight, and processes what arrived.
    /// Returns a command that interrupted a pack.
    fn poll_and_process(&mut self, wait: Duration) -> Option<Command> {
        if self.running.as_ref()?.pipelined {
            return self.pipelined_step(self.ctx.config.msg_pipeline_depth, wait);
        }
        for records in self.poll(wait) {
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
        self.polled_nothing = false;
        let Some(running) = self.running.as_mut() else { return Vec::new() };
        match running.consumer.poll(wait, max) {
            Ok(events) => {
                let packs: Vec<Vec<Record>> = events
                    .into_iter()
                    .filter_map(|event| match event {
                        ConsumerEvent::Records(records) => Some(records),
                        _ => None,
                    })
                    .collect();
                self.polled_nothing = packs.iter().all(Vec::is_empty);
                if let Some(last) = packs.iter().flatten().map(|r| r.offset).max() {
                    self.read_next = Some(self.read_next.unwrap_or(0).max(last + 1));
                }
                packs
            }
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
