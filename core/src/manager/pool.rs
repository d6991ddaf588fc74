//! The threads integration workers run on, shared by every integration of the process: a pool
//! that grows a thread whenever a job finds none free (a worker's turn may block for as long as
//! a driver call or a retry pause, so a fixed number of threads could starve the others), keeps
//! at most [`MAX_IDLE`] free ones for [`KEEP_ALIVE`], and lets the rest end; and one timer
//! thread that calls parked workers back when a periodic duty is due.
//! Deliberately not here: what a turn does (`processor`) and when a worker parks (`slot`).

use std::{
    cmp::Reverse,
    collections::{BinaryHeap, VecDeque},
    sync::{Arc, LazyLock, Weak},
    time::{Duration, Instant},
};

use parking_lot::{Condvar, Mutex};

use super::slot::Slot;

/// Free threads kept at most; a thread that finds this many free ends after its job.
const MAX_IDLE: usize = 8;

/// How long a free thread waits for a job before it ends.
const KEEP_ALIVE: Duration = Duration::from_secs(10);

/// The stack of a worker thread (what a worker owning its thread had).
const STACK_BYTES: usize = 512 * 1024;

/// A job: one or more turns of one worker.
pub(super) type Job = Box<dyn FnOnce() + Send>;

/// The process's worker threads.
pub(super) static POOL: LazyLock<Pool> = LazyLock::new(Pool::default);

/// The process's timer of parked workers.
pub(super) static TIMER: LazyLock<Timer> = LazyLock::new(Timer::default);

#[derive(Default)]
struct PoolState {
    jobs: VecDeque<Job>,
    /// Threads waiting for a job (including ones notified that have not taken it yet).
    idle: usize,
    /// Threads alive.
    threads: usize,
}

/// Threads that run jobs, grown on demand.
#[derive(Default)]
pub(super) struct Pool {
    state: Mutex<PoolState>,
    work: Condvar,
}

impl Pool {
    /// Runs `job` on a free thread, or on a new one when every thread is busy.
    pub(super) fn execute(&'static self, job: Job) {
        let mut state = self.state.lock();
        state.jobs.push_back(job);
        if state.jobs.len() <= state.idle {
            self.work.notify_one();
            return;
        }
        state.threads += 1;
        drop(state);
        let spawned =
            std::thread::Builder::new().name("ie-worker".into()).stack_size(STACK_BYTES).spawn(move || self.serve());
        if let Err(e) = spawned {
            let mut state = self.state.lock();
            state.threads -= 1;
            tracing::error!(
                error = %e,
                threads = state.threads,
                "Could not start an integration worker thread; the worker waits for a busy one."
            );
        }
    }

    /// Threads alive now (busy or free).
    pub(super) fn threads(&self) -> usize {
        self.state.lock().threads
    }

    fn serve(&self) {
        let mut state = self.state.lock();
        loop {
            if let Some(job) = state.jobs.pop_front() {
                drop(state);
                job();
                state = self.state.lock();
                continue;
            }
            if state.idle >= MAX_IDLE {
                break;
            }
            state.idle += 1;
            let timed_out = self.work.wait_for(&mut state, KEEP_ALIVE).timed_out();
            state.idle -= 1;
            if timed_out && state.jobs.is_empty() {
                break;
            }
        }
        state.threads -= 1;
    }
}

/// A parked worker's call-back time.
struct Due {
    at: Instant,
    slot: Weak<Slot>,
}

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}

impl Eq for Due {}

impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Due {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.at.cmp(&other.at)
    }
}

#[derive(Default)]
struct TimerState {
    due: BinaryHeap<Reverse<Due>>,
    /// The timer thread was started.
    running: bool,
}

/// Calls slots back at given times, from one thread started on first use.
#[derive(Default)]
pub(super) struct Timer {
    state: Mutex<TimerState>,
    changed: Condvar,
}

impl Timer {
    /// Calls [`Slot::timer_fired`] of `slot` (if it still exists) at `at`.
    pub(super) fn call_at(&'static self, at: Instant, slot: &Arc<Slot>) {
        let mut state = self.state.lock();
        let earliest = state.due.peek().is_none_or(|Reverse(first)| at < first.at);
        state.due.push(Reverse(Due { at, slot: Arc::downgrade(slot) }));
        if !state.running {
            let spawned = std::thread::Builder::new().name("ie-worker-timer".into()).spawn(move || self.serve());
            match spawned {
                Ok(_) => state.running = true,
                Err(e) => tracing::error!(error = %e, "Could not start the integration workers' timer thread."),
            }
        } else if earliest {
            self.changed.notify_one();
        }
    }

    fn serve(&self) {
        let mut state = self.state.lock();
        loop {
            let Some(Reverse(first)) = state.due.peek() else {
                self.changed.wait(&mut state);
                continue;
            };
            let at = first.at;
            if Instant::now() < at {
                self.changed.wait_until(&mut state, at);
                continue;
            }
            let Some(Reverse(due)) = state.due.pop() else { continue };
            drop(state);
            if let Some(slot) = due.slot.upgrade() {
                slot.timer_fired(due.at);
            }
            state = self.state.lock();
        }
    }
}
