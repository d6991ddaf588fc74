//! The session registry: which session belongs to which client id, and what happens when a
//! connection attaches to or leaves a session (takeover, clean start, expiry, will messages).
//!
//! The registry lock is taken only on connect and disconnect, never on the publish path.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::message::{now_ms, PublishedMessage, RoutedMessage};
use crate::router::Router;
use crate::session::queue::QueueLimits;
use crate::session::{Kick, Session};

/// What a restored session's record says.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Saved<'a> {
    /// The session's expiry interval and the seconds it has left (counted from its client's
    /// disconnection).
    pub expiry: (u32, u32),
    pub subscriptions: &'a [crate::router::ClientSubscription],
    /// QoS 2 packet ids of the client awaiting PUBREL when it left.
    pub awaiting_pubrel: &'a [u16],
}

/// All sessions, connected or not.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    map: Mutex<HashMap<Arc<str>, Arc<Session>>>,
    next_conn_id: AtomicU64,
}

/// A connection attached to a session.
#[derive(Debug)]
pub(crate) struct Attached {
    pub session: Arc<Session>,
    /// Whether an existing session was resumed (CONNACK session present).
    pub present: bool,
    pub conn_id: u64,
    /// Fires when another connection takes the session over.
    pub kick: oneshot::Receiver<Kick>,
}

/// A will message waiting for its connection to end.
#[derive(Debug, Clone)]
pub(crate) struct Will {
    /// The message; its receive time is set when it is published.
    pub msg: PublishedMessage,
    /// MQTT 5 will delay interval in seconds.
    pub delay: u32,
}

impl Sessions {
    /// Attaches a new connection for `client_id`, kicking any connection already attached.
    ///
    /// With `clean_start` (or no existing session) a new session replaces the old one, whose
    /// subscriptions are removed before this returns.
    pub fn attach(
        &self,
        router: &Router,
        client_id: &Arc<str>,
        clean_start: bool,
        expiry_interval: u32,
        limits: &QueueLimits,
    ) -> Attached {
        let conn_id = self.next_conn_id.fetch_add(1, Ordering::Relaxed) + 1;
        let (kick_tx, kick_rx) = oneshot::channel();
        let mut map = self.map.lock();
        let existing = map.get(client_id).cloned();
        let (session, present, stale) = match existing {
            Some(s) if !clean_start && !s.state.lock().removed => (s, true, None),
            other => {
                let s = Session::new(Arc::clone(client_id), limits.clone());
                map.insert(Arc::clone(client_id), Arc::clone(&s));
                (s, false, other)
            }
        };
        if let Some(old) = &stale {
            kick(old);
        }
        {
            let mut st = session.state.lock();
            if let Some(k) = st.kick.take() {
                let _ = k.send(Kick::TakenOver);
            }
            st.conn_id = Some(conn_id);
            st.last_conn_id = conn_id;
            st.kick = Some(kick_tx);
            st.expiry_interval = expiry_interval;
        }
        drop(map);
        if let Some(old) = stale {
            router.remove_session(&old);
        }
        Attached { session, present, conn_id, kick: kick_rx }
    }

    /// Detaches connection `conn_id` from its session and starts the session's expiry and the
    /// will's delay. A connection that was taken over only leaves its will behind.
    pub fn detach(self: &Arc<Self>, router: &Arc<Router>, session: &Arc<Session>, conn_id: u64, will: Option<Will>) {
        let expiry = {
            let mut st = session.state.lock();
            if st.conn_id == Some(conn_id) {
                st.conn_id = None;
                st.kick = None;
                Some(st.expiry_interval)
            } else {
                None
            }
        };
        let will_after = match expiry {
            Some(0) => {
                self.end_if_idle(router, session, conn_id);
                0
            }
            Some(secs) => {
                router.session_detached(session);
                self.schedule_expiry(router, session, conn_id, secs);
                secs
            }
            None => u32::MAX,
        };
        if let Some(will) = will {
            self.schedule_will(router, session, conn_id, will, will_after);
        }
    }

    /// The session of `client_id`, if this node holds one.
    pub fn get(&self, client_id: &str) -> Option<Arc<Session>> {
        self.map.lock().get(client_id).cloned()
    }

    /// Another node took `client_id` over: its session here ends without telling the cluster
    /// (the other node's record stands), its connection is closed with "session taken over",
    /// and the QoS 1 and 2 messages it held are returned for the other node (the ones in flight
    /// first, oldest first). `None` when this node holds no session of it.
    pub fn hand_over(&self, router: &Router, client_id: &str) -> Option<Vec<crate::session::Delivery>> {
        let session = self.map.lock().remove(client_id)?;
        kick(&session);
        let held = session.state.lock().take_for_hand_over();
        router.drop_session(&session);
        Some(held)
    }

    /// Restores a persistent session of an earlier run of this node, without a connection:
    /// what its record says (`saved`) and the messages kept for it (in order, within the
    /// session's bounds). Nothing if a client connected with that id meanwhile.
    pub fn restore(
        self: &Arc<Self>,
        router: &Arc<Router>,
        limits: &QueueLimits,
        client_id: &str,
        saved: Saved<'_>,
        messages: Vec<(Arc<RoutedMessage>, crate::protocol::QoS)>,
    ) {
        let session = {
            let mut map = self.map.lock();
            if map.contains_key(client_id) {
                return;
            }
            let session = Session::new(client_id.into(), limits.clone());
            map.insert(client_id.into(), Arc::clone(&session));
            session
        };
        let (expiry, left) = saved.expiry;
        {
            let mut st = session.state.lock();
            st.expiry_interval = expiry;
            st.incoming_qos2.extend(saved.awaiting_pubrel);
        }
        router.restore_subscriptions(&session, saved.subscriptions);
        let kept = !messages.is_empty();
        for (msg, qos) in messages {
            session.enqueue(crate::session::Delivery { msg, qos, retain: false, sub_ids: Vec::new() });
        }
        session.state.lock().persisted = kept;
        self.schedule_expiry(router, &session, 0, left);
    }

    /// The client ids of every session, connected or not.
    pub fn client_ids(&self) -> Vec<Arc<str>> {
        self.map.lock().keys().cloned().collect()
    }

    /// The number of sessions, connected or not.
    pub fn len(&self) -> usize {
        self.map.lock().len()
    }

    /// The number of client subscriptions of all sessions.
    pub fn subscription_count(&self) -> usize {
        let sessions: Vec<Arc<Session>> = self.map.lock().values().cloned().collect();
        sessions.iter().map(|s| s.state.lock().subscriptions.len()).sum()
    }

    fn schedule_expiry(self: &Arc<Self>, router: &Arc<Router>, session: &Arc<Session>, conn_id: u64, secs: u32) {
        let this = Arc::clone(self);
        let router = Arc::clone(router);
        let session = Arc::clone(session);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(u64::from(secs))).await;
            this.end_if_idle(&router, &session, conn_id);
        });
    }

    /// Ends the session if no connection attached to it since `conn_id` left.
    fn end_if_idle(&self, router: &Router, session: &Arc<Session>, conn_id: u64) {
        let mut map = self.map.lock();
        let idle = {
            let st = session.state.lock();
            st.conn_id.is_none() && st.last_conn_id == conn_id
        };
        let registered = map.get(&session.client_id).is_some_and(|s| Arc::ptr_eq(s, session));
        if !idle {
            return;
        }
        if registered {
            map.remove(&session.client_id);
        }
        drop(map);
        match registered {
            true => router.remove_session(session),
            // Replaced already (a clean start here, or another node took it over): the cluster
            // was told by whoever replaced it, and a word from this one would come after theirs.
            false => router.drop_session(session),
        }
        tracing::debug!(client_id = ?session.client_id, "Session ended.");
    }

    /// Publishes the will after `min(delay, session_left)` seconds unless the client reconnects.
    fn schedule_will(
        self: &Arc<Self>,
        router: &Arc<Router>,
        session: &Arc<Session>,
        conn_id: u64,
        will: Will,
        session_left: u32,
    ) {
        let wait = will.delay.min(session_left);
        if wait == 0 {
            publish_will(router, &will.msg);
            return;
        }
        let this = Arc::clone(self);
        let router = Arc::clone(router);
        let session = Arc::clone(session);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(u64::from(wait))).await;
            if this.reconnected_since(&session, conn_id) {
                tracing::debug!(client_id = ?session.client_id, "Delayed will cancelled by a reconnect.");
                return;
            }
            publish_will(&router, &will.msg);
        });
    }

    /// Whether a connection with the session's client id attached after `conn_id`.
    fn reconnected_since(&self, session: &Arc<Session>, conn_id: u64) -> bool {
        let map = self.map.lock();
        match map.get(&session.client_id) {
            None => false,
            Some(current) => {
                let st = current.state.lock();
                !Arc::ptr_eq(current, session) || st.last_conn_id != conn_id
            }
        }
    }
}

fn kick(session: &Session) {
    let mut st = session.state.lock();
    if let Some(k) = st.kick.take() {
        let _ = k.send(Kick::TakenOver);
    }
    st.conn_id = None;
}

fn publish_will(router: &Router, will: &PublishedMessage) {
    let mut will = will.clone();
    will.received_at_ms = now_ms();
    let msg = RoutedMessage::new(will);
    if msg.msg.retain {
        // Nobody waits for a will's acknowledgement.
        let _ = router.retain(&msg);
    }
    let delivered = router.publish(&msg);
    tracing::debug!(client_id = ?msg.msg.client_id, topic = ?msg.msg.topic, delivered, "Will published.");
}
