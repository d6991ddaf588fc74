//! Where one integration's worker is between and during its turns: running on a pool thread,
//! parked (owning no thread) until something wakes it, or done.
//!
//! A worker parks when its turn ends with nothing to do ([`Turn::Park`]): the slot asks its
//! consumer to call back on the next record ([`Worker::listen`]; the queue calls the waker on
//! the appending thread, so the record is picked up at once) and the timer to call back when
//! the next periodic duty is due; the manager wakes it after it sent a command. A wake that
//! comes while the worker runs (or is about to park) makes it run one more turn, so none is
//! lost. Deliberately not here: what a turn does (`processor`), the threads (`pool`).

use std::{panic::AssertUnwindSafe, sync::Arc, time::Instant};

use parking_lot::{Condvar, Mutex};

use super::pool::{POOL, TIMER};
use crate::processor::{Turn, Worker};

enum State {
    /// On a thread; `woken`: something may have arrived since the turn began.
    Running { woken: bool },
    /// Owning no thread until woken.
    Parked(Box<Worker>),
    /// The worker ended.
    Done,
}

/// One integration's worker, running, parked or done.
pub(super) struct Slot {
    state: Mutex<State>,
    done: Condvar,
    /// The earliest time the timer will call this slot back, if it will.
    timer: Mutex<Option<Instant>>,
}

impl Slot {
    /// Starts `worker`'s first turn on a pool thread.
    pub(super) fn start(worker: Box<Worker>) -> Arc<Slot> {
        let slot = Arc::new(Slot {
            state: Mutex::new(State::Running { woken: false }),
            done: Condvar::new(),
            timer: Mutex::new(None),
        });
        let turns = slot.clone();
        POOL.execute(Box::new(move || run(turns, worker)));
        slot
    }

    /// Makes the worker look at its commands, records and duties: a parked worker is resumed
    /// on a pool thread, a running one runs one more turn before it parks.
    pub(super) fn wake(self: &Arc<Self>) {
        let mut state = self.state.lock();
        match std::mem::replace(&mut *state, State::Running { woken: true }) {
            State::Running { .. } => {}
            State::Done => *state = State::Done,
            State::Parked(worker) => {
                *state = State::Running { woken: false };
                drop(state);
                let turns = self.clone();
                POOL.execute(Box::new(move || run(turns, worker)));
            }
        }
    }

    /// Whether the worker is parked now.
    pub(super) fn is_parked(&self) -> bool {
        matches!(*self.state.lock(), State::Parked(_))
    }

    /// Waits until the worker ended, at most until `deadline`; true when it did.
    pub(super) fn wait_done(&self, deadline: Instant) -> bool {
        let mut state = self.state.lock();
        while !matches!(*state, State::Done) {
            if self.done.wait_until(&mut state, deadline).timed_out() {
                break;
            }
        }
        matches!(*state, State::Done)
    }

    /// The timer's call for `at`: wakes the worker unless a later park asked for another time.
    pub(super) fn timer_fired(self: &Arc<Self>, at: Instant) {
        {
            let mut timer = self.timer.lock();
            if *timer != Some(at) {
                return;
            }
            *timer = None;
        }
        self.wake();
    }

    /// Has the timer call back at `at`, unless it calls back no later already (an early call
    /// only makes the worker run a turn with nothing due and park again).
    fn call_back_at(self: &Arc<Self>, at: Instant) {
        let mut timer = self.timer.lock();
        if timer.is_some_and(|t| t <= at) {
            return;
        }
        *timer = Some(at);
        drop(timer);
        TIMER.call_at(at, self);
    }

    fn finish(&self) {
        *self.state.lock() = State::Done;
        self.done.notify_all();
    }
}

/// Runs turns of `worker` until it ends or parks.
fn run(slot: Arc<Slot>, mut worker: Box<Worker>) {
    loop {
        *slot.state.lock() = State::Running { woken: false };
        let until = match std::panic::catch_unwind(AssertUnwindSafe(|| worker.run_turn())) {
            Ok(Turn::Park { until }) => until,
            Ok(Turn::Exit) => return slot.finish(),
            Err(panic) => {
                let text = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                tracing::error!(panic = %text, "An integration worker panicked; the integration stopped.");
                return slot.finish();
            }
        };
        let weak = Arc::downgrade(&slot);
        let waker = Box::new(move || {
            if let Some(slot) = weak.upgrade() {
                slot.wake();
            }
        });
        if !worker.listen(waker) {
            // The queue cannot call back: the next turn polls until the worker stops.
            continue;
        }
        if let Some(at) = until {
            slot.call_back_at(at);
        }
        let mut state = slot.state.lock();
        if matches!(*state, State::Running { woken: true }) {
            continue;
        }
        *state = State::Parked(worker);
        return;
    }
}
