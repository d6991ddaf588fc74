//! Bookkeeping shared by the caller of `process` and the connection thread: which message each
//! queued request and each packet id belongs to, and the outcomes of the current batch.
//!
//! Mapping acknowledgements to messages relies on two facts of rumqttc's event loop: requests
//! leave its queue in order, and each one yields exactly one `Outgoing::Publish(pkid)` event
//! once written and flushed (a packet id collision delays it, never reorders it). So the queue
//! of [`Slot`]s here mirrors rumqttc's request queue, and `Sent(pkid)` pops its head. Pushing a
//! request and its slot happens under the one lock, and so does [`Tracker::lost`], which clears
//! rumqttc's queue, so the two queues never disagree.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Condvar, Mutex, MutexGuard},
    time::Instant,
};

use trib_plugin_api::driver::Outcome;

use crate::{
    link::{LinkEvent, Sender, ServerLimits},
    request::{self, Publish},
    retry::{self, AckReason},
};

/// A message on its way: which batch and position it came from.
#[derive(Debug, Clone, Copy)]
struct Slot {
    batch: u64,
    index: usize,
}

/// What the `process` caller is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    Nothing,
    Room,
    Done,
}

#[derive(Debug)]
struct State {
    connected: bool,
    limits: ServerLimits,
    batch: u64,
    active: bool,
    results: Vec<Option<Outcome>>,
    unresolved: usize,
    queued: VecDeque<Slot>,
    inflight: HashMap<u16, Slot>,
    outstanding: usize,
    waiting: Wait,
}

/// Shared delivery state of one connection.
#[derive(Debug)]
pub struct Tracker {
    addr: String,
    window: usize,
    state: Mutex<State>,
    cond: Condvar,
}

impl Tracker {
    /// A tracker for the broker at `addr` allowing `window` messages queued or unacknowledged.
    pub fn new(addr: String, window: usize) -> Self {
        let state = State {
            connected: false,
            limits: ServerLimits::default(),
            batch: 0,
            active: false,
            results: Vec::new(),
            unresolved: 0,
            queued: VecDeque::new(),
            inflight: HashMap::new(),
            outstanding: 0,
            waiting: Wait::Nothing,
        };
        Tracker { addr, window: window.max(1), state: Mutex::new(state), cond: Condvar::new() }
    }

    /// Whether CONNACK was received and the connection has not dropped since.
    pub fn is_connected(&self) -> bool {
        self.lock().connected
    }

    /// Sends a batch and waits for its outcomes until `deadline`. `publishes` holds, per message,
    /// the PUBLISH to send or the outcome it already has.
    pub fn deliver(&self, sender: &Sender, publishes: Vec<Result<Publish, Outcome>>, deadline: Instant) -> Vec<Outcome> {
        let mut st = self.lock();
        st.batch += 1;
        st.active = true;
        let batch = st.batch;
        st.results = publishes.iter().map(|p| p.as_ref().err().cloned()).collect();
        st.unresolved = st.results.iter().filter(|r| r.is_none()).count();
        for (index, publish) in publishes.into_iter().enumerate() {
            let Ok(publish) = publish else { continue };
            loop {
                if !st.connected {
                    set(&mut st, index, retry::not_connected(&self.addr));
                } else if Instant::now() >= deadline {
                    set(&mut st, index, retry::timeout(&self.addr));
                } else if st.outstanding < self.window {
                    match fit(publish, st.limits) {
                        Ok(publish) if sender.try_publish(publish) => {
                            st.queued.push_back(Slot { batch, index });
                            st.outstanding += 1;
                        }
                        Ok(_) => set(&mut st, index, retry::client_closed()),
                        Err(outcome) => set(&mut st, index, outcome),
                    }
                } else {
                    st = self.wait(st, Wait::Room, deadline);
                    continue;
                }
                break;
            }
        }
        while st.unresolved > 0 && Instant::now() < deadline {
            st = self.wait(st, Wait::Done, deadline);
        }
        st.active = false;
        let results = std::mem::take(&mut st.results);
        drop(st);
        results.into_iter().map(|r| r.unwrap_or_else(|| retry::timeout(&self.addr))).collect()
    }

    /// The connection thread got CONNACK.
    pub fn connected(&self, limits: ServerLimits) {
        let mut st = self.lock();
        st.connected = true;
        st.limits = limits;
    }

    /// The connection thread saw `event`.
    pub fn apply(&self, event: LinkEvent) {
        let mut st = self.lock();
        match event {
            LinkEvent::Sent(pkid) => {
                let Some(slot) = st.queued.pop_front() else { return };
                if pkid == 0 {
                    resolve(&mut st, slot, Outcome::Delivered);
                } else if let Some(old) = st.inflight.insert(pkid, slot) {
                    resolve(&mut st, old, Outcome::Retry(format!("packet id {pkid} reused before its acknowledgement")));
                }
            }
            LinkEvent::PubAck(pkid, reason) | LinkEvent::PubComp(pkid, reason) => {
                if let Some(slot) = st.inflight.remove(&pkid) {
                    resolve(&mut st, slot, retry::acknowledged(reason));
                }
            }
            LinkEvent::PubRec(pkid, reason) if reason != AckReason::Accepted => {
                if let Some(slot) = st.inflight.remove(&pkid) {
                    resolve(&mut st, slot, retry::acknowledged(reason));
                }
            }
            _ => return,
        }
        self.wake(&st);
    }

    /// The connection dropped: `reset` clears rumqttc's queues (under the lock, so no request
    /// slips in between), and every message queued or unacknowledged becomes a retry.
    pub fn lost(&self, reason: &str, reset: impl FnOnce()) {
        let mut st = self.lock();
        reset();
        st.connected = false;
        let outcome = retry::connection_lost(&self.addr, reason);
        let slots: Vec<Slot> = st.queued.drain(..).chain(st.inflight.drain().map(|(_, s)| s)).collect();
        for slot in slots {
            resolve(&mut st, slot, outcome.clone());
        }
        self.cond.notify_all();
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn wait<'a>(&self, mut st: MutexGuard<'a, State>, why: Wait, deadline: Instant) -> MutexGuard<'a, State> {
        st.waiting = why;
        let left = deadline.saturating_duration_since(Instant::now());
        let (mut st, _) = self.cond.wait_timeout(st, left).unwrap_or_else(|poisoned| poisoned.into_inner());
        st.waiting = Wait::Nothing;
        st
    }

    /// Wakes the `process` caller only when what it waits for happened, to keep the
    /// connection thread from paying a wake-up per acknowledgement.
    fn wake(&self, st: &State) {
        let wake = match st.waiting {
            Wait::Nothing => false,
            Wait::Room => st.outstanding <= self.window / 2,
            Wait::Done => st.unresolved == 0,
        };
        if wake {
            self.cond.notify_all();
        }
    }
}

/// Adapts a PUBLISH to what the broker announced: a lower maximum QoS downgrades it, retain is
/// dropped when unavailable, and a packet over the broker's maximum size is refused here (the
/// broker would otherwise close the connection, and the message would fail forever).
fn fit(mut publish: Publish, limits: ServerLimits) -> Result<Publish, Outcome> {
    publish.qos = publish.qos.min(limits.max_qos);
    publish.retain &= limits.retain_available;
    if let Some(max) = limits.max_packet_size {
        let size = request::packet_size(&publish) + 5;
        if size > max as usize {
            return Err(Outcome::Rejected(format!(
                "message of about {size} bytes exceeds the maximum packet size of {max} bytes of the target broker"
            )));
        }
    }
    Ok(publish)
}

fn set(st: &mut State, index: usize, outcome: Outcome) {
    if let Some(r @ None) = st.results.get_mut(index) {
        *r = Some(outcome);
        st.unresolved -= 1;
    }
}

fn resolve(st: &mut State, slot: Slot, outcome: Outcome) {
    st.outstanding = st.outstanding.saturating_sub(1);
    if st.active && slot.batch == st.batch {
        set(st, slot.index, outcome);
    }
}
