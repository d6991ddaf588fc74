//! Bookkeeping shared by the caller of `process` and the connection thread: which message each
//! queued request and each packet id belongs to, and the outcomes of the batches not collected
//! yet (one with `process`; several when the executor pipelines, `submit` then `collect`).
//!
//! Mapping acknowledgements to messages relies on two facts of rumqttc's event loop: requests
//! leave its queue in order, and each one yields exactly one `Outgoing::Publish(pkid)` event
//! once written and flushed (a packet id collision delays it, never reorders it). So the queue
//! of [`Slot`]s here mirrors rumqttc's request queue, and `Sent(pkid)` pops its head. Pushing a
//! request and its slot happens under the one lock, and so does [`Tracker::lost`], which clears
//! rumqttc's queue, so the two queues never disagree.
//!
//! The window opens on demand. An idle connection keeps rumqttc's in-flight bookkeeping at one
//! slot (`Link::resize`); the first message to send asks the connection task to open it
//! ([`Tracker::grow`], answered by [`Tracker::opened`]) and waits, and the task closes it again
//! once nothing was sent or awaited for [`IDLE_CLOSE`] ([`Tracker::try_close`]). Both happen
//! while nothing is queued or in flight, so rumqttc's state can be replaced.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Condvar, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use tokio::sync::Notify;

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
    qos: u8,
}

/// QoS 2 messages in flight at most. Mosquitto 2.0.11 (Debian 12's) completes the QoS 2
/// exchange for, yet silently drops, incoming QoS 2 messages beyond its `max_inflight_messages`
/// (20 by default) when a client has more in flight; Mosquitto's own bridge sends 20 at most.
pub const QOS2_WINDOW: usize = 20;

/// How long a connection stays open for sending after its last batch was submitted (and
/// everything was settled); then its window closes, giving rumqttc's in-flight bookkeeping
/// (about 262 KiB) back.
pub const IDLE_CLOSE: Duration = Duration::from_secs(5);

#[cfg(test)]
thread_local! {
    /// [`IDLE_CLOSE`] for trackers created on this thread (tests).
    pub static IDLE_CLOSE_FOR_TESTS: std::cell::Cell<Option<Duration>> = const { std::cell::Cell::new(None) };
}

/// What the `process` caller is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    Nothing,
    Room,
    Qos2Room,
    Open,
    Done,
}

/// A batch whose outcomes were not collected yet.
#[derive(Debug)]
struct Batch {
    id: u64,
    results: Vec<Option<Outcome>>,
    unresolved: usize,
    deadline: Instant,
}

#[derive(Debug)]
struct State {
    connected: bool,
    /// Why the connection was last lost.
    lost_because: Option<String>,
    limits: ServerLimits,
    last_batch: u64,
    /// Oldest first.
    batches: VecDeque<Batch>,
    queued: VecDeque<Slot>,
    inflight: HashMap<u16, Slot>,
    outstanding: usize,
    outstanding_qos2: usize,
    waiting: Wait,
    /// Whether rumqttc's bookkeeping is sized for the window (see the module docs).
    open: bool,
    /// When the last batch was submitted.
    last_submit: Instant,
}

/// Shared delivery state of one connection.
#[derive(Debug)]
pub struct Tracker {
    addr: String,
    window: usize,
    state: Mutex<State>,
    cond: Condvar,
    /// Asks the connection task to open the window.
    grow: Notify,
    /// [`IDLE_CLOSE`], except in tests.
    idle_close: Duration,
}

impl Tracker {
    /// A tracker for the broker at `addr` allowing `window` messages queued or unacknowledged.
    pub fn new(addr: String, window: usize) -> Self {
        let state = State {
            connected: false,
            lost_because: None,
            limits: ServerLimits::default(),
            last_batch: 0,
            batches: VecDeque::new(),
            queued: VecDeque::new(),
            inflight: HashMap::new(),
            outstanding: 0,
            outstanding_qos2: 0,
            waiting: Wait::Nothing,
            open: false,
            last_submit: Instant::now(),
        };
        #[cfg(test)]
        let idle_close = IDLE_CLOSE_FOR_TESTS.get().unwrap_or(IDLE_CLOSE);
        #[cfg(not(test))]
        let idle_close = IDLE_CLOSE;
        Tracker {
            addr,
            window: window.max(1),
            state: Mutex::new(state),
            cond: Condvar::new(),
            grow: Notify::new(),
            idle_close,
        }
    }

    /// How long the window stays open once nothing is sent.
    pub fn idle_close(&self) -> Duration {
        self.idle_close
    }

    /// Resolves when a sender asked for the window to be opened (the connection task then
    /// resizes rumqttc's state and calls [`Tracker::opened`]).
    pub async fn grow(&self) {
        self.grow.notified().await
    }

    /// The connection task opened the window.
    pub fn opened(&self) {
        let mut st = self.lock();
        st.open = true;
        self.wake(&st);
    }

    /// Closes the window when nothing was queued or awaited since [`Tracker::idle_close`] before `now`:
    /// `Ok` then (the connection task shrinks rumqttc's state; a sender that comes meanwhile
    /// waits for the window to open again), else `Err` with when to ask again.
    pub fn try_close(&self, now: Instant) -> Result<(), Instant> {
        let mut st = self.lock();
        if !st.open {
            return Ok(());
        }
        let quiet_until = st.last_submit + self.idle_close;
        if st.outstanding > 0 || !st.queued.is_empty() || !st.inflight.is_empty() {
            return Err(now + self.idle_close);
        }
        if now < quiet_until {
            return Err(quiet_until);
        }
        st.open = false;
        Ok(())
    }

    /// Whether the window is open.
    pub fn is_open(&self) -> bool {
        self.lock().open
    }

    /// Whether CONNACK was received and the connection has not dropped since.
    pub fn is_connected(&self) -> bool {
        self.lock().connected
    }

    /// `None` when connected, else why not (the last loss, or "not connected yet").
    pub fn disconnected_because(&self) -> Option<String> {
        let st = self.lock();
        (!st.connected).then(|| st.lost_because.clone().unwrap_or_else(|| "not connected yet".to_string()))
    }

    /// Sends a batch and waits for its outcomes until `deadline`. `publishes` holds, per message,
    /// the PUBLISH to send or the outcome it already has.
    pub fn deliver(
        &self,
        sender: &Sender,
        publishes: Vec<Result<Publish, Outcome>>,
        deadline: Instant,
    ) -> Vec<Outcome> {
        if let Some(outcomes) = self.submit(sender, publishes, deadline) {
            return outcomes;
        }
        loop {
            // The batch is the oldest one (nothing else is pending with `process`), and a batch
            // past its deadline is always collected.
            if let Some(outcomes) = self.collect(deadline) {
                return outcomes;
            }
        }
    }

    /// Sends a batch whose outcomes are due by `deadline`; `Some` when every message of it was
    /// settled while sending (refused, not connected), else it is to be [`Tracker::collect`]ed.
    /// Waits while the window is full, at most until `deadline`.
    pub fn submit(
        &self,
        sender: &Sender,
        publishes: Vec<Result<Publish, Outcome>>,
        deadline: Instant,
    ) -> Option<Vec<Outcome>> {
        let mut st = self.lock();
        st.last_batch += 1;
        st.last_submit = Instant::now();
        let batch = st.last_batch;
        let results: Vec<Option<Outcome>> = publishes.iter().map(|p| p.as_ref().err().cloned()).collect();
        let unresolved = results.iter().filter(|r| r.is_none()).count();
        st.batches.push_back(Batch { id: batch, results, unresolved, deadline });
        for (index, publish) in publishes.into_iter().enumerate() {
            let Ok(publish) = publish else { continue };
            let publish = match fit(publish, st.limits) {
                Ok(publish) => publish,
                Err(outcome) => {
                    set(&mut st, batch, index, outcome);
                    continue;
                }
            };
            let refused = loop {
                if !st.connected {
                    break Some(retry::not_connected(&self.addr));
                } else if Instant::now() >= deadline {
                    break Some(retry::not_sent_by_deadline(&self.addr));
                } else if !st.open {
                    self.grow.notify_one();
                    st = self.wait(st, Wait::Open, deadline);
                } else if st.outstanding >= self.window {
                    st = self.wait(st, Wait::Room, deadline);
                } else if publish.qos == 2 && st.outstanding_qos2 >= QOS2_WINDOW {
                    st = self.wait(st, Wait::Qos2Room, deadline);
                } else {
                    break None;
                }
            };
            if let Some(outcome) = refused {
                set(&mut st, batch, index, outcome);
                continue;
            }
            let qos = publish.qos;
            if sender.try_publish(publish) {
                st.queued.push_back(Slot { batch, index, qos });
                st.outstanding += 1;
                st.outstanding_qos2 += usize::from(qos == 2);
            } else {
                set(&mut st, batch, index, retry::client_closed());
            }
        }
        // Settled while sending and the only batch: nothing to collect.
        let settled = st.batches.len() == 1 && st.batches.back().is_some_and(|b| b.unresolved == 0);
        settled.then(|| self.pop_oldest(&mut st))
    }

    /// Waits until `until` for the oldest batch: its outcomes once every message of it is
    /// settled or its deadline has passed (the unsettled ones as timeouts); `None` when no
    /// batch is pending or the oldest is not finished by `until`.
    pub fn collect(&self, until: Instant) -> Option<Vec<Outcome>> {
        let mut st = self.lock();
        loop {
            let oldest = st.batches.front()?;
            let now = Instant::now();
            if oldest.unresolved == 0 || now >= oldest.deadline {
                return Some(self.pop_oldest(&mut st));
            }
            if now >= until {
                return None;
            }
            let wake_at = until.min(oldest.deadline);
            st = self.wait(st, Wait::Done, wake_at);
        }
    }

    /// Removes the oldest batch and returns its outcomes; unsettled messages time out.
    fn pop_oldest(&self, st: &mut State) -> Vec<Outcome> {
        let batch = st.batches.pop_front().expect("the caller checked that a batch is pending");
        batch.results.into_iter().map(|r| r.unwrap_or_else(|| retry::timeout(&self.addr))).collect()
    }

    /// The connection thread got CONNACK.
    pub fn connected(&self, limits: ServerLimits) {
        let mut st = self.lock();
        st.connected = true;
        st.limits = limits;
    }

    /// What the broker announced in its last CONNACK.
    pub fn limits(&self) -> ServerLimits {
        self.lock().limits
    }

    /// The connection thread saw `event`.
    pub fn apply(&self, event: LinkEvent) {
        let mut st = self.lock();
        match event {
            LinkEvent::Sent(pkid) => {
                let Some(slot) = st.queued.pop_front() else {
                    return;
                };
                if pkid == 0 {
                    resolve(&mut st, slot, Outcome::Delivered);
                } else if let Some(old) = st.inflight.insert(pkid, slot) {
                    resolve(
                        &mut st,
                        old,
                        Outcome::Retry(format!("packet id {pkid} reused before its acknowledgement")),
                    );
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

    /// Whether every queued request was written and acknowledgements are still awaited.
    pub fn awaiting_acks_only(&self) -> bool {
        let st = self.lock();
        st.connected && st.queued.is_empty() && !st.inflight.is_empty()
    }

    /// The connection dropped: `reset` clears rumqttc's queues (under the lock, so no request
    /// slips in between), and every message queued or unacknowledged becomes a retry.
    pub fn lost(&self, reason: &str, reset: impl FnOnce()) {
        let mut st = self.lock();
        reset();
        st.connected = false;
        st.lost_because = Some(reason.to_string());
        let outcome = retry::connection_lost(&self.addr, reason);
        let State { queued, inflight, .. } = &mut *st;
        let slots: Vec<Slot> = queued.drain(..).chain(inflight.drain().map(|(_, s)| s)).collect();
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
            Wait::Qos2Room => st.outstanding_qos2 < QOS2_WINDOW,
            Wait::Open => st.open,
            Wait::Done => st.batches.front().is_none_or(|b| b.unresolved == 0),
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

fn set(st: &mut State, batch: u64, index: usize, outcome: Outcome) {
    // Batches are few (the executor's pipeline depth) and the one sought is usually the newest
    // (while sending) or the oldest (acknowledgements).
    let Some(b) = st.batches.iter_mut().find(|b| b.id == batch) else {
        // Collected already (its deadline passed): the outcome has no one to go to.
        return;
    };
    if let Some(r @ None) = b.results.get_mut(index) {
        *r = Some(outcome);
        b.unresolved -= 1;
    }
}

fn resolve(st: &mut State, slot: Slot, outcome: Outcome) {
    st.outstanding = st.outstanding.saturating_sub(1);
    if slot.qos == 2 {
        st.outstanding_qos2 = st.outstanding_qos2.saturating_sub(1);
    }
    set(st, slot.batch, slot.index, outcome);
}
