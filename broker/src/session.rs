//! Client sessions: the state that outlives a network connection.
//!
//! A `Session` holds the queue of messages waiting for delivery, the outgoing QoS 1/2 window, the
//! incoming QoS 2 packet ids and the subscription list, each session behind its own lock so that
//! publishers to different clients never contend. The connection task (`link`) drains the queue;
//! the registry (`sessions`) attaches connections, handles takeover, expiry and wills. The options
//! of a subscription ([`SubOptions`]) live here, since both a session and the router's trie hold them.
//! The memory bounds of the queue (messages, bytes, the process-wide budget) are in `session::queue`.

pub(crate) mod queue;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::{oneshot, Notify};

use crate::message::RoutedMessage;
use crate::metrics::DropReason;
use crate::protocol::QoS;
use crate::router::{Handovers, SessionLog};

use self::queue::{held_size, MemoryBudget, QueueLimits};

/// When retained messages are sent for a new subscription (MQTT 5 subscription option).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetainHandling {
    /// Send on every SUBSCRIBE (0, and always in MQTT 3.x).
    OnEverySubscribe,
    /// Send only if the subscription did not exist (1).
    OnNewSubscribe,
    /// Never send (2).
    Never,
}

/// The options of one subscription.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SubOptions {
    pub qos: QoS,
    pub no_local: bool,
    pub retain_as_published: bool,
    pub retain_handling: RetainHandling,
    pub sub_id: Option<usize>,
}

/// Why the broker closes a connection from outside its task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kick {
    /// Another connection with the same client id took the session over (MQTT 5 reason 0x8E).
    TakenOver,
}

/// One message waiting for, or in, delivery to one client.
#[derive(Debug, Clone)]
pub(crate) struct Delivery {
    pub msg: Arc<RoutedMessage>,
    pub qos: QoS,
    pub retain: bool,
    pub sub_ids: Vec<usize>,
}

/// A client session.
#[derive(Debug)]
pub(crate) struct Session {
    pub client_id: Arc<str>,
    pub state: Mutex<SessionState>,
    /// Woken when a delivery is queued, so the attached connection drains the queue.
    pub notify: Notify,
}

/// The mutable part of a session.
#[derive(Debug)]
pub(crate) struct SessionState {
    /// Messages waiting to be sent; only `enqueue`, `pop_queued` and `clear_queue` change it, so
    /// that `queued_bytes` and the budget stay exact.
    queue: VecDeque<Delivery>,
    /// Bytes of `queue` (`queue::held_size` of each message).
    queued_bytes: usize,
    /// QoS 0 messages in `queue` (so that a queue without any is not searched for one).
    queued_qos0: usize,
    limits: QueueLimits,
    pub out: Outflight,
    /// Packet ids of QoS 2 messages received but not yet released by PUBREL.
    pub incoming_qos2: HashSet<u16>,
    /// Subscriptions by full filter text (including any `$share/<group>/` prefix).
    pub subscriptions: HashMap<String, SubOptions>,
    /// The attached connection, if any.
    pub conn_id: Option<u64>,
    /// The most recently attached connection.
    pub last_conn_id: u64,
    pub kick: Option<oneshot::Sender<Kick>>,
    /// Session expiry interval in seconds (0: ends when the connection closes).
    pub expiry_interval: u32,
    /// Messages this session dropped because a bound was hit.
    pub dropped: u64,
    /// Set once the session has ended; it then accepts nothing.
    pub removed: bool,
    /// Messages of this session are kept on the queue (`SessionLog::persist`) and not yet
    /// cleared: cleared once the client is back and everything was delivered.
    pub persisted: bool,
}

impl Session {
    pub fn new(client_id: Arc<str>, limits: QueueLimits) -> Arc<Session> {
        let out = Outflight::with_budget(Arc::clone(&limits.budget));
        Arc::new(Session {
            client_id,
            state: Mutex::new(SessionState {
                queue: VecDeque::new(),
                queued_bytes: 0,
                queued_qos0: 0,
                limits,
                out,
                incoming_qos2: HashSet::new(),
                subscriptions: HashMap::new(),
                conn_id: None,
                last_conn_id: 0,
                kick: None,
                expiry_interval: 0,
                dropped: 0,
                removed: false,
                persisted: false,
            }),
            notify: Notify::new(),
        })
    }

    /// Queues a delivery and wakes the connection. Returns false if the delivery was dropped:
    /// the session ended, it is QoS 0 and no connection is attached, or a bound left no room
    /// (the policy is `SessionState::make_room`'s). Nothing is kept beyond this process (a
    /// message restored from what was kept).
    pub fn enqueue(&self, delivery: Delivery) -> bool {
        self.enqueue_kept(delivery, None, None)
    }

    /// [`Session::enqueue`]; a persistent session's (expiry interval above 0) QoS 1 or 2 message
    /// is also kept by `log` beyond this process, whether its client is connected or away (a
    /// node that dies loses none of what it acknowledged), and marks the session as having kept
    /// messages. Written under the session's lock: a clearing record written when the session
    /// drains comes before or after it, never between its queueing and its record.
    pub fn enqueue_kept(
        &self,
        delivery: Delivery,
        log: Option<&dyn SessionLog>,
        handovers: Option<&mut Handovers>,
    ) -> bool {
        let mut st = self.state.lock();
        if st.removed {
            return false;
        }
        if st.conn_id.is_none() && delivery.qos == QoS::AtMostOnce {
            st.limits.budget.dropped(DropReason::Offline, 1);
            return false;
        }
        let size = held_size(&delivery.msg);
        if let Err(reason) = st.make_room(size, delivery.qos) {
            st.dropped += 1;
            st.limits.budget.dropped(reason, 1);
            return false;
        }
        if let Some(log) = log.filter(|_| st.expiry_interval > 0 && delivery.qos != QoS::AtMostOnce) {
            let kept = log.persist(&self.client_id, &delivery.msg.msg, delivery.qos);
            if let Some(handovers) = handovers {
                handovers.push(kept);
            }
            st.persisted = true;
        }
        st.queued_qos0 += usize::from(delivery.qos == QoS::AtMostOnce);
        st.queue.push_back(delivery);
        st.queued_bytes += size;
        drop(st);
        self.notify.notify_one();
        true
    }
}

impl SessionState {
    /// Bytes this session holds: queued and in flight.
    pub fn held_bytes(&self) -> usize {
        self.queued_bytes + self.out.bytes
    }

    /// Messages this session holds: queued and in flight.
    #[cfg(test)]
    pub fn held_messages(&self) -> usize {
        self.queue.len() + self.out.len()
    }

    /// Messages waiting to be sent.
    #[cfg(test)]
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// The next message to send, if any.
    pub fn front_queued(&self) -> Option<&Delivery> {
        self.queue.front()
    }

    /// Takes the next message to send. Its bytes stay counted until `Outflight::push` takes them
    /// over or `release` gives them back.
    pub fn pop_queued(&mut self) -> Option<Delivery> {
        let d = self.queue.pop_front()?;
        trib_ops::memory::shrink_drained(&mut self.queue);
        self.queued_bytes -= held_size(&d.msg);
        self.queued_qos0 -= usize::from(d.qos == QoS::AtMostOnce);
        Some(d)
    }

    /// Gives back the bytes of a message taken with `pop_queued` that leaves the session (written
    /// at QoS 0, or dropped).
    pub fn release(&self, delivery: &Delivery) {
        self.limits.budget.release(1, held_size(&delivery.msg));
    }

    /// The QoS 1 and 2 messages the session holds (in flight, except QoS 2 ones the client
    /// already received, then queued), with the QoS each goes out with, to be kept.
    pub fn held_for_keeping(&self) -> Vec<(Arc<RoutedMessage>, QoS)> {
        let in_flight = self.out.entries.iter().filter(|e| !e.released).map(|e| &e.delivery);
        in_flight
            .chain(self.queue.iter())
            .filter(|d| d.qos != QoS::AtMostOnce)
            .map(|d| (Arc::clone(&d.msg), d.qos))
            .collect()
    }

    /// Whether a session with kept messages has delivered everything to its attached client;
    /// if so it no longer counts as having kept messages.
    pub fn take_drained(&mut self) -> bool {
        let drained = self.persisted && self.conn_id.is_some() && self.queue.is_empty() && self.out.len() == 0;
        if drained {
            self.persisted = false;
        }
        drained
    }

    /// Takes the QoS 1 and 2 messages the session holds, the ones in flight first (except QoS 2
    /// ones the client already received), then the queued ones, and gives back their bytes.
    pub fn take_for_hand_over(&mut self) -> Vec<Delivery> {
        let mut held: Vec<Delivery> = self.out.drain().filter(|e| !e.released).map(|e| e.delivery).collect();
        while let Some(d) = self.pop_queued() {
            self.release(&d);
            if d.qos != QoS::AtMostOnce {
                held.push(d);
            }
        }
        held
    }

    /// Drops every queued message and gives back its bytes (the session ended).
    pub fn clear_queue(&mut self) {
        self.limits.budget.release(self.queue.len(), self.queued_bytes);
        self.queue.clear();
        trib_ops::memory::shrink_drained(&mut self.queue);
        self.queued_bytes = 0;
        self.queued_qos0 = 0;
    }

    /// Makes room for a new message of `size` bytes and takes its bytes from the budget, or says
    /// which bound refuses it. The policy, in order:
    ///
    /// 1. A message larger than the session's byte bound alone is refused (`session_bytes`).
    /// 2. While the session's message bound (queued messages) or byte bound (queued and in-flight
    ///    bytes) is exceeded, queued messages are dropped to
    ///    make room: QoS 0 ones first (oldest first), then the oldest of the rest. A new QoS 0
    ///    message never pushes out a QoS 1/2 one: it is refused instead.
    /// 3. While the process-wide budget has no room, the session drops its own queued messages the
    ///    same way (`memory_budget`); when it has none left to drop, the new message is refused.
    ///
    /// Messages in flight are never dropped (the client may still acknowledge them); they count
    /// until acknowledged, so a client that stops acknowledging ends up refused new messages.
    fn make_room(&mut self, size: usize, qos: QoS) -> Result<(), DropReason> {
        if size > self.limits.max_bytes {
            return Err(DropReason::SessionBytes);
        }
        loop {
            let reason = if self.queue.len() >= self.limits.max_messages {
                DropReason::SessionMessages
            } else if self.held_bytes() + size > self.limits.max_bytes {
                DropReason::SessionBytes
            } else {
                break;
            };
            if !self.drop_one_queued(qos, reason) {
                return Err(reason);
            }
        }
        while !self.limits.budget.try_take(size) {
            if !self.drop_one_queued(qos, DropReason::MemoryBudget) {
                return Err(DropReason::MemoryBudget);
            }
        }
        Ok(())
    }

    /// Drops one queued message to make room for one of `incoming` QoS: the oldest QoS 0, else
    /// (for an incoming QoS 1/2 message) the oldest. Returns false if there was none to drop.
    fn drop_one_queued(&mut self, incoming: QoS, reason: DropReason) -> bool {
        let qos0 = if self.queued_qos0 > 0 { self.queue.iter().position(|d| d.qos == QoS::AtMostOnce) } else { None };
        let pos = match qos0 {
            Some(pos) => pos,
            None if incoming != QoS::AtMostOnce && !self.queue.is_empty() => 0,
            None => return false,
        };
        let Some(victim) = self.queue.remove(pos) else {
            return false;
        };
        let size = held_size(&victim.msg);
        self.queued_bytes -= size;
        self.queued_qos0 -= usize::from(victim.qos == QoS::AtMostOnce);
        self.limits.budget.release(1, size);
        self.limits.budget.dropped(reason, 1);
        self.dropped += 1;
        true
    }
}

impl Drop for SessionState {
    fn drop(&mut self) {
        self.clear_queue();
    }
}

/// Outgoing QoS 1 and 2 messages sent but not yet fully acknowledged, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Outflight {
    entries: VecDeque<OutEntry>,
    in_use: HashSet<u16>,
    next_pkid: u16,
    /// How many entries wait to be re-sent on a resumed session's new connection.
    unsent: usize,
    /// Bytes of the entries (`queue::held_size`), counted in `budget` too.
    bytes: usize,
    budget: Option<Arc<MemoryBudget>>,
}

/// One outgoing message in flight.
#[derive(Debug)]
pub(crate) struct OutEntry {
    pub pkid: u16,
    pub delivery: Delivery,
    /// PUBREC received and PUBREL sent (QoS 2 second phase).
    pub released: bool,
    /// Sent on an earlier connection, not yet again on this one.
    pub unsent: bool,
}

impl Outflight {
    /// An empty window whose messages count against `budget`.
    pub fn with_budget(budget: Arc<MemoryBudget>) -> Outflight {
        let mut out = Outflight::default();
        out.budget = Some(budget);
        out
    }

    /// Every message in flight, re-sent on this connection or not.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Messages sent on this connection and not yet acknowledged: what the client's Receive
    /// Maximum limits.
    pub fn sent(&self) -> usize {
        self.entries.len() - self.unsent
    }

    /// A resumed session on a new connection: every message in flight is to be sent again.
    pub fn mark_unsent(&mut self) {
        for e in &mut self.entries {
            e.unsent = true;
        }
        self.unsent = self.entries.len();
    }

    /// The oldest message still to be re-sent, now counted as sent.
    pub fn take_unsent(&mut self) -> Option<&OutEntry> {
        if self.unsent == 0 {
            return None;
        }
        let entry = self.entries.iter_mut().find(|e| e.unsent)?;
        entry.unsent = false;
        self.unsent -= 1;
        Some(entry)
    }

    /// Reserves a free packet id for the next `push`.
    ///
    /// There is always one: the window is capped below 65535 entries.
    pub fn alloc(&mut self) -> u16 {
        let pkid = self.next_free();
        self.in_use.insert(pkid);
        pkid
    }

    /// Records a message sent with a packet id from `alloc`.
    pub fn push(&mut self, pkid: u16, delivery: Delivery) {
        self.bytes += held_size(&delivery.msg);
        self.entries.push_back(OutEntry { pkid, delivery, released: false, unsent: false });
    }

    /// PUBACK: ends a QoS 1 message. Returns whether it was in flight.
    pub fn ack(&mut self, pkid: u16) -> bool {
        self.remove_where(pkid, |e| !e.released && e.delivery.qos == QoS::AtLeastOnce)
    }

    /// PUBREC: moves a QoS 2 message to its release phase. Returns whether it was in flight.
    pub fn rec(&mut self, pkid: u16) -> bool {
        match self.entries.iter_mut().find(|e| e.pkid == pkid) {
            Some(e) if e.delivery.qos == QoS::ExactlyOnce => {
                e.released = true;
                true
            }
            _ => false,
        }
    }

    /// PUBREC with an error reason (MQTT 5): the message ends without a release phase.
    pub fn rec_failed(&mut self, pkid: u16) -> bool {
        self.remove_where(pkid, |e| !e.released && e.delivery.qos == QoS::ExactlyOnce)
    }

    /// PUBCOMP: ends a released QoS 2 message. Returns whether it was in flight.
    pub fn comp(&mut self, pkid: u16) -> bool {
        self.remove_where(pkid, |e| e.released)
    }

    /// Empties the window and gives back its bytes; returns the entries, oldest first.
    pub fn drain(&mut self) -> std::collections::vec_deque::IntoIter<OutEntry> {
        if let Some(budget) = &self.budget {
            budget.release(self.entries.len(), self.bytes);
        }
        self.bytes = 0;
        self.unsent = 0;
        self.in_use.clear();
        std::mem::take(&mut self.entries).into_iter()
    }

    fn remove_where(&mut self, pkid: u16, ok: impl Fn(&OutEntry) -> bool) -> bool {
        let Some(pos) = self.entries.iter().position(|e| e.pkid == pkid) else {
            return false;
        };
        if !ok(&self.entries[pos]) {
            return false;
        }
        if self.entries[pos].unsent {
            self.unsent -= 1;
        }
        if let Some(entry) = self.entries.remove(pos) {
            trib_ops::memory::shrink_drained(&mut self.entries);
            let size = held_size(&entry.delivery.msg);
            self.bytes -= size;
            if let Some(budget) = &self.budget {
                budget.release(1, size);
            }
        }
        self.in_use.remove(&pkid);
        true
    }

    fn next_free(&mut self) -> u16 {
        loop {
            self.next_pkid = self.next_pkid.wrapping_add(1);
            if self.next_pkid != 0 && !self.in_use.contains(&self.next_pkid) {
                return self.next_pkid;
            }
        }
    }
}

impl Drop for Outflight {
    fn drop(&mut self) {
        if let Some(budget) = &self.budget {
            budget.release(self.entries.len(), self.bytes);
        }
    }
}
