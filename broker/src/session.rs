//! Client sessions: the state that outlives a network connection.
//!
//! A `Session` holds the queue of messages waiting for delivery, the outgoing QoS 1/2 window, the
//! incoming QoS 2 packet ids and the subscription list, each session behind its own lock so that
//! publishers to different clients never contend. The connection task (`link`) drains the queue;
//! the registry (`session::registry`) attaches connections, handles takeover, expiry and wills.

pub(crate) mod registry;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::{oneshot, Notify};

use crate::message::RoutedMessage;
use crate::protocol::QoS;
use crate::router::SubOptions;

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
    pub queue: VecDeque<Delivery>,
    pub max_queued: usize,
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
    /// Messages dropped because the queue was full.
    pub dropped: u64,
    /// Set once the session has ended; it then accepts nothing.
    pub removed: bool,
}

impl Session {
    pub fn new(client_id: Arc<str>, max_queued: usize) -> Arc<Session> {
        Arc::new(Session {
            client_id,
            state: Mutex::new(SessionState {
                queue: VecDeque::new(),
                max_queued,
                out: Outflight::default(),
                incoming_qos2: HashSet::new(),
                subscriptions: HashMap::new(),
                conn_id: None,
                last_conn_id: 0,
                kick: None,
                expiry_interval: 0,
                dropped: 0,
                removed: false,
            }),
            notify: Notify::new(),
        })
    }

    /// Queues a delivery and wakes the connection. Returns false if the delivery was dropped:
    /// the session ended, the queue is full, or it is QoS 0 and no connection is attached.
    pub fn enqueue(&self, delivery: Delivery) -> bool {
        let mut st = self.state.lock();
        if st.removed || (st.conn_id.is_none() && delivery.qos == QoS::AtMostOnce) {
            return false;
        }
        if st.queue.len() >= st.max_queued {
            st.dropped += 1;
            return false;
        }
        st.queue.push_back(delivery);
        drop(st);
        self.notify.notify_one();
        true
    }
}

/// Outgoing QoS 1 and 2 messages sent but not yet fully acknowledged, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Outflight {
    entries: VecDeque<OutEntry>,
    in_use: HashSet<u16>,
    next_pkid: u16,
}

/// One outgoing message in flight.
#[derive(Debug)]
pub(crate) struct OutEntry {
    pub pkid: u16,
    pub delivery: Delivery,
    /// PUBREC received and PUBREL sent (QoS 2 second phase).
    pub released: bool,
}

impl Outflight {
    pub fn len(&self) -> usize {
        self.entries.len()
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
        self.entries.push_back(OutEntry { pkid, delivery, released: false });
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

    pub fn iter(&self) -> impl Iterator<Item = &OutEntry> {
        self.entries.iter()
    }

    fn remove_where(&mut self, pkid: u16, ok: impl Fn(&OutEntry) -> bool) -> bool {
        let Some(pos) = self.entries.iter().position(|e| e.pkid == pkid) else {
            return false;
        };
        if !ok(&self.entries[pos]) {
            return false;
        }
        self.entries.remove(pos);
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
