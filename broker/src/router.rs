//! Routing: the subscription trie, the retained-message store and the integration hook.
//!
//! `Router::publish` matches a message against every subscription under a read lock (publishers
//! never wait for each other), merges overlapping subscriptions of one client into one delivery,
//! queues it on each session, and hands at most one copy per PUBLISH to each matching integration.
//! Sessions and connections are not managed here.
//!
//! In a cluster the trie also holds other nodes' clients' subscriptions (read from
//! `tbmq.client.subscriptions` by `cluster`): a PUBLISH that matches one goes to that node once,
//! through the [`ClusterSink`], and the node delivers it to its own clients
//! ([`Router::publish_from_node`]). This node's sessions' subscription changes go out through the
//! [`SessionLog`].

mod retained;
pub mod topic;
mod trie;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::message::{PublishedMessage, RoutedMessage};
use crate::protocol::QoS;
pub use crate::session::RetainHandling;
pub(crate) use crate::session::SubOptions;
use crate::session::{Delivery, Session};
use retained::RetainedStore;
use topic::{ParsedFilter, TopicError};
use trie::{Matches, Scope, Trie};

#[cfg(test)]
mod tests;

/// Receives the messages that match an integration's topic filters.
///
/// Called on the publishing client's task while the router is read-locked: it must not block
/// (the intended implementation hands the message to a queue and reports when it is stored).
pub trait IntegrationSink: Send + Sync + 'static {
    /// What the sink needs to deliver to `integration_id`, computed once when the integration's
    /// filters are set rather than on every PUBLISH (the queue forwarder: the integration's queue
    /// topic). `Err` refuses the filters with that reason. The default is the id itself.
    fn route(&self, integration_id: &str) -> Result<Arc<str>, String> {
        Ok(integration_id.into())
    }

    /// Takes one message for `integration_id`; called at most once per PUBLISH and integration.
    fn send(&self, integration_id: &str, msg: &PublishedMessage) -> Handover;

    /// Takes one PUBLISH for every integration it matched (each exactly once, sorted by id), and
    /// records how each took it. The default calls [`IntegrationSink::send`] per integration; a
    /// sink that serialises the message overrides it to do so once per PUBLISH.
    fn send_all(&self, routes: &[&Arc<IntegrationRoute>], msg: &PublishedMessage, handovers: &mut Handovers) {
        for route in routes {
            handovers.push(self.send(&route.id, msg));
        }
    }
}

/// Keeps this node's retained messages beyond its memory: the service's `tbmq.msg.retained`
/// writer (`retained_topic`). Other nodes' changes come back through [`Router::apply_retained`].
pub trait RetainedLog: Send + Sync + 'static {
    /// Takes a retained message (an empty payload clears the topic's one) that a client of this
    /// node published. `store` updates this node's store; the log calls it exactly once, while
    /// it holds whatever orders its own writes against the changes it applies from other nodes.
    /// Called on the publishing client's task: it must not block. The [`Handover`] tells when
    /// the record is stored, as for integrations.
    fn write(&self, msg: &PublishedMessage, store: &dyn Fn()) -> Handover;
}

/// Hands a client message to another broker node for its clients (`cluster`'s writer of
/// `tbmq.msg.downlink.basic.<node>`).
pub trait ClusterSink: Send + Sync + 'static {
    /// Takes one message for `target`; called on the publishing client's task under the router's
    /// read lock: it must not block. The [`Handover`] tells when the record is stored.
    fn send(&self, target: &NodeTarget<'_>, msg: &PublishedMessage) -> Handover;
}

/// What another node is to do with a message: deliver it to its matching (non-shared)
/// subscriptions, and to one member of each shared group listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeTarget<'a> {
    /// The node's service id.
    pub node: &'a str,
    /// Deliver to its matching non-shared subscriptions.
    pub to_subscribers: bool,
    /// Shared groups (share name, filter) whose member this time is on that node.
    pub groups: Vec<(&'a str, &'a str)>,
}

/// Tells the cluster what this node's sessions subscribe to (`cluster`'s writer of
/// `tbmq.client.subscriptions`), and keeps what persistent sessions hold while their clients
/// are away (its writer of `tbmq.msg.persisted.<node>`). Called on clients' tasks; must not block.
pub trait SessionLog: Send + Sync + 'static {
    /// A session of this node has these subscriptions and this expiry interval now (also called
    /// when a client connects, which tells other nodes that the session lives here).
    fn changed(&self, client_id: &str, expiry_interval: u32, subscriptions: Vec<ClientSubscription>);
    /// A client is connecting to this node (called before its session is attached): what other
    /// nodes wrote of the client so far is older than the record this connection writes, and
    /// takes nothing over here. Followed by exactly one [`SessionLog::connected`].
    fn connecting(&self, client_id: &str);
    /// The connection announced by [`SessionLog::connecting`] is attached: its session's expiry
    /// interval and subscriptions, or `None` when another connection replaced it meanwhile
    /// (that one writes its own record).
    /// `resumed_from`: the node that held the session the connection resumed (nothing was
    /// handed over yet).
    fn connected(&self, client_id: &str, state: Option<(u32, Vec<ClientSubscription>)>, resumed_from: Option<&str>);
    /// A session of this node lost its client at `left.at_ms` (ms since the epoch) and
    /// waits for it: what [`SessionLog::changed`] says, plus when (a restart counts the
    /// session's expiry from the disconnection) and the QoS 2 packet ids awaiting PUBREL (the
    /// node that resumes the session answers their PUBLISH and PUBREL as this one would).
    fn detached(&self, client_id: &str, expiry_interval: u32, subscriptions: Vec<ClientSubscription>, left: Detached) {
        let _ = left;
        self.changed(client_id, expiry_interval, subscriptions);
    }
    /// A session of this node ended (what was kept for it goes too).
    fn ended(&self, client_id: &str);
    /// Keeps a message a persistent session holds for its client (QoS 1 or 2); the
    /// [`Handover`] tells when the copy is stored (the PUBLISH is acknowledged after that).
    fn persist(&self, client_id: &str, msg: &PublishedMessage, qos: QoS) -> Handover;
    /// Forgets every message kept for the client so far.
    fn cleared(&self, client_id: &str);
}

/// What a session that lost its client records besides its subscriptions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Detached {
    /// When the client disconnected, ms since the epoch.
    pub at_ms: i64,
    /// Packet ids of the client's QoS 2 PUBLISHes acknowledged with PUBREC and not yet
    /// released by PUBREL, in ascending order.
    pub awaiting_pubrel: Vec<u16>,
}

/// One subscription of a client, as the cluster log carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSubscription {
    /// The filter as subscribed (with any `$share/<group>/` prefix).
    pub filter: String,
    /// Maximum QoS.
    pub qos: QoS,
    /// MQTT 5 no local.
    pub no_local: bool,
    /// MQTT 5 retain as published.
    pub retain_as_published: bool,
    /// MQTT 5 subscription identifier.
    pub sub_id: Option<usize>,
}

/// A client of another node as the router holds it.
#[derive(Debug)]
struct RemoteClient {
    node: Arc<str>,
    subscriptions: Vec<ClientSubscription>,
    /// The QoS 2 packet ids its record says await PUBREL (written when its client left).
    awaiting_pubrel: Vec<u16>,
}

/// An integration as the router holds it: its id and the destination its sink computed for it
/// when its filters were set ([`IntegrationSink::route`]).
#[derive(Debug, PartialEq, Eq)]
pub struct IntegrationRoute {
    /// The integration id.
    pub id: Arc<str>,
    /// Where the sink delivers its messages (the forwarder: `tbmq.msg.ie.<id32>`).
    pub destination: Arc<str>,
}

/// How an [`IntegrationSink`] took a message. The broker acknowledges a QoS 1 or 2 PUBLISH only
/// once every integration's copy is stored, so a message the publisher saw acknowledged is never
/// lost with a crashed broker process.
#[derive(Debug)]
pub enum Handover {
    /// Stored already (or nothing to wait for).
    Stored,
    /// Handed over; the receiver tells whether it was stored (`Err` with the reason if not).
    Pending(tokio::sync::oneshot::Receiver<Result<(), NotStored>>),
    /// Not taken: the reason (the sink has logged and counted it).
    Failed(NotStored),
}

/// Why an integration's copy of a message was not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotStored {
    /// What happened, for logs.
    pub reason: String,
    /// The queue refused it for lack of room (the integration's backlog is at its limit): MQTT 5
    /// publishers hear "quota exceeded" (0x97) rather than "unspecified error" (0x80).
    pub quota_exceeded: bool,
}

impl NotStored {
    /// A failure that is not about room.
    pub fn new(reason: impl Into<String>) -> Self {
        NotStored { reason: reason.into(), quota_exceeded: false }
    }

    /// The queue had no room for it.
    pub fn quota(reason: impl Into<String>) -> Self {
        NotStored { reason: reason.into(), quota_exceeded: true }
    }
}

impl std::fmt::Display for NotStored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

/// What the integrations made of one PUBLISH: the copies still being stored and the first
/// failure, if any.
#[derive(Debug, Default)]
pub struct Handovers {
    pub(crate) pending: Vec<tokio::sync::oneshot::Receiver<Result<(), NotStored>>>,
    pub(crate) failed: Option<NotStored>,
}

impl Handovers {
    /// The outcome of a PUBLISH that went to one integration, as one [`Handover`].
    pub fn into_single(mut self) -> Handover {
        match (self.failed, self.pending.pop()) {
            (Some(why), _) => Handover::Failed(why),
            (None, Some(stored)) => Handover::Pending(stored),
            (None, None) => Handover::Stored,
        }
    }

    /// Waits, blocking the thread, until every copy is stored; the first failure if one was
    /// not (a copy whose sender went away counts as not stored). Not on an async task.
    pub fn wait_blocking(self) -> Result<(), NotStored> {
        if let Some(why) = self.failed {
            return Err(why);
        }
        for stored in self.pending {
            stored.blocking_recv().map_err(|_| NotStored::new("the queue's answer was lost"))??;
        }
        Ok(())
    }

    /// Records how one integration took the message.
    pub fn push(&mut self, handover: Handover) {
        match handover {
            Handover::Stored => {}
            Handover::Pending(stored) => self.pending.push(stored),
            Handover::Failed(why) => {
                self.failed.get_or_insert(why);
            }
        }
    }
}

/// Checks an integration's filters: valid MQTT filters, none shared.
fn check_integration_filters(filters: &[String]) -> Result<(), RouterError> {
    for filter in filters {
        let parsed = topic::parse_filter(filter)
            .map_err(|source| RouterError::InvalidFilter { filter: filter.clone(), source })?;
        if parsed.share_group.is_some() {
            return Err(RouterError::SharedForIntegration(filter.clone()));
        }
    }
    Ok(())
}

/// Why the router refused a request.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RouterError {
    /// A filter that is not a valid MQTT topic filter.
    #[error("invalid topic filter {filter:?}: {source}")]
    InvalidFilter {
        /// The filter as given.
        filter: String,
        /// What is wrong with it.
        source: TopicError,
    },
    /// Integrations cannot use `$share/` filters.
    #[error("shared subscription {0:?} is not allowed for an integration")]
    SharedForIntegration(String),
    /// The integration sink cannot deliver to this integration.
    #[error("integration {id:?} cannot be routed: {reason}")]
    Unroutable {
        /// The integration id.
        id: String,
        /// The sink's reason.
        reason: String,
    },
}

/// The broker's router; shared by all connections and reachable from `BrokerHandle::router`.
pub struct Router {
    trie: RwLock<Trie>,
    retained: RetainedStore,
    integration_filters: Mutex<HashMap<Arc<str>, IntegrationEntry>>,
    sink: RwLock<Option<Arc<dyn IntegrationSink>>>,
    retained_log: RwLock<Option<Arc<dyn RetainedLog>>>,
    /// Other nodes' clients with their subscriptions (in the trie as remote entries).
    remote_clients: Mutex<HashMap<Arc<str>, RemoteClient>>,
    cluster: RwLock<Option<Arc<dyn ClusterSink>>>,
    session_log: RwLock<Option<Arc<dyn SessionLog>>>,
}

/// An integration's route and the filters it is subscribed with.
struct IntegrationEntry {
    route: Arc<IntegrationRoute>,
    filters: HashSet<String>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router").finish_non_exhaustive()
    }
}

impl Router {
    /// An empty router handing integration matches to `sink` (`None`: they are dropped).
    pub fn new(sink: Option<Arc<dyn IntegrationSink>>) -> Router {
        Router {
            trie: RwLock::new(Trie::default()),
            retained: RetainedStore::default(),
            integration_filters: Mutex::new(HashMap::new()),
            sink: RwLock::new(sink),
            retained_log: RwLock::new(None),
            remote_clients: Mutex::new(HashMap::new()),
            cluster: RwLock::new(None),
            session_log: RwLock::new(None),
        }
    }

    /// Subscribes integration `integration_id` to `filters` (added to any it already has).
    ///
    /// All filters are checked first; on error nothing is added.
    pub fn add_integration_subscriptions(&self, integration_id: &str, filters: &[String]) -> Result<(), RouterError> {
        check_integration_filters(filters)?;
        let mut known = self.integration_filters.lock();
        let entry = self.integration_entry(&mut known, integration_id)?;
        let mut trie = self.trie.write();
        for filter in filters {
            trie.add_integration(filter, &entry.route);
            entry.filters.insert(filter.clone());
        }
        Ok(())
    }

    /// Makes `filters` the integration's only filters, in one step: a PUBLISH routed at the same
    /// time sees either the old filters or the new ones, never neither, so a topic matched by
    /// both is never skipped. An empty list removes the integration. On error nothing changes.
    pub fn set_integration_subscriptions(&self, integration_id: &str, filters: &[String]) -> Result<(), RouterError> {
        check_integration_filters(filters)?;
        let mut known = self.integration_filters.lock();
        if filters.is_empty() {
            if let Some(entry) = known.remove(integration_id) {
                let mut trie = self.trie.write();
                for filter in &entry.filters {
                    trie.remove_integration(filter, integration_id);
                }
            }
            return Ok(());
        }
        let wanted: HashSet<String> = filters.iter().cloned().collect();
        let entry = self.integration_entry(&mut known, integration_id)?;
        let mut trie = self.trie.write();
        for filter in wanted.difference(&entry.filters) {
            trie.add_integration(filter, &entry.route);
        }
        for filter in entry.filters.difference(&wanted) {
            trie.remove_integration(filter, integration_id);
        }
        entry.filters = wanted;
        Ok(())
    }

    /// Removes the given filters of an integration; unknown filters are ignored.
    pub fn remove_integration_subscriptions(&self, integration_id: &str, filters: &[String]) {
        let mut known = self.integration_filters.lock();
        let mut trie = self.trie.write();
        for filter in filters {
            trie.remove_integration(filter, integration_id);
            if let Some(entry) = known.get_mut(integration_id) {
                entry.filters.remove(filter);
            }
        }
        if known.get(integration_id).is_some_and(|e| e.filters.is_empty()) {
            known.remove(integration_id);
        }
    }

    /// Removes every subscription of an integration.
    pub fn remove_integration(&self, integration_id: &str) {
        let filters: Vec<String> = match self.integration_filters.lock().get(integration_id) {
            Some(entry) => entry.filters.iter().cloned().collect(),
            None => return,
        };
        self.remove_integration_subscriptions(integration_id, &filters);
    }

    /// The filters an integration is subscribed to, sorted.
    pub fn integration_filters(&self, integration_id: &str) -> Vec<String> {
        let mut filters: Vec<String> = self
            .integration_filters
            .lock()
            .get(integration_id)
            .map(|e| e.filters.iter().cloned().collect())
            .unwrap_or_default();
        filters.sort();
        filters
    }

    /// The integration's entry, created with its route from the sink when it is new.
    fn integration_entry<'a>(
        &self,
        known: &'a mut HashMap<Arc<str>, IntegrationEntry>,
        integration_id: &str,
    ) -> Result<&'a mut IntegrationEntry, RouterError> {
        if !known.contains_key(integration_id) {
            let id: Arc<str> = integration_id.into();
            let destination = match self.sink.read().as_ref() {
                Some(sink) => sink
                    .route(integration_id)
                    .map_err(|reason| RouterError::Unroutable { id: integration_id.to_owned(), reason })?,
                None => Arc::clone(&id),
            };
            let route = Arc::new(IntegrationRoute { id: Arc::clone(&id), destination });
            known.insert(id, IntegrationEntry { route, filters: HashSet::new() });
        }
        Ok(known.get_mut(integration_id).expect("the entry was found or inserted just above"))
    }

    /// Replaces the integration sink (`None`: integration matches are dropped).
    pub fn set_integration_sink(&self, sink: Option<Arc<dyn IntegrationSink>>) {
        *self.sink.write() = sink;
    }

    /// The number of retained messages stored.
    pub fn retained_count(&self) -> usize {
        self.retained.len()
    }

    /// Adds or replaces a session's subscription; returns whether one existed on that filter.
    ///
    /// A session that has ended is not subscribed (checked under the trie lock, so that this
    /// cannot race with `remove_session`).
    pub(crate) fn subscribe(&self, f: &ParsedFilter<'_>, session: &Arc<Session>, opts: SubOptions) -> bool {
        let mut trie = self.trie.write();
        if session.state.lock().removed {
            return false;
        }
        trie.subscribe(f, session, opts)
    }

    pub(crate) fn unsubscribe(&self, f: &ParsedFilter<'_>, session: &Arc<Session>) -> bool {
        self.trie.write().unsubscribe(f, session)
    }

    /// Ends a session: marks it removed, drops its queue and removes all its subscriptions, and
    /// tells the cluster.
    pub(crate) fn remove_session(&self, session: &Arc<Session>) {
        self.drop_session(session);
        if let Some(log) = self.session_log.read().as_ref() {
            log.ended(&session.client_id);
        }
    }

    /// Tells the cluster a session's subscriptions (after a SUBSCRIBE or UNSUBSCRIBE).
    pub(crate) fn session_changed(&self, session: &Session) {
        let Some(log) = self.session_log.read().clone() else {
            return;
        };
        if let Some((expiry, subscriptions)) = Self::session_state(session) {
            log.changed(&session.client_id, expiry, subscriptions);
        }
    }

    /// A client is connecting (before its session is attached; see [`SessionLog::connecting`]).
    pub(crate) fn session_connecting(&self, client_id: &str) {
        if let Some(log) = self.session_log.read().as_ref() {
            log.connecting(client_id);
        }
    }

    /// A session's expiry interval and subscriptions as the cluster log carries them; `None`
    /// once the session was removed.
    fn session_state(session: &Session) -> Option<(u32, Vec<ClientSubscription>)> {
        let st = session.state.lock();
        if st.removed {
            return None;
        }
        let mut subs: Vec<ClientSubscription> = st
            .subscriptions
            .iter()
            .map(|(filter, o)| ClientSubscription {
                filter: filter.clone(),
                qos: o.qos,
                no_local: o.no_local,
                retain_as_published: o.retain_as_published,
                sub_id: o.sub_id,
            })
            .collect();
        subs.sort_by(|a, b| a.filter.cmp(&b.filter));
        Some((st.expiry_interval, subs))
    }

    /// A persistent session's client went away: what the session holds replaces what was kept
    /// for it (every message was kept as it was queued; this drops the delivered ones). Under
    /// the session's lock, so a message queued meanwhile is kept after the clearing record.
    pub(crate) fn session_detached(&self, session: &Session) {
        let Some(log) = self.session_log.read().clone() else {
            return;
        };
        if let Some((expiry, subscriptions)) = Self::session_state(session) {
            let at_ms = i64::try_from(crate::message::now_ms()).unwrap_or(i64::MAX);
            let mut awaiting_pubrel: Vec<u16> = session.state.lock().incoming_qos2.iter().copied().collect();
            awaiting_pubrel.sort_unstable();
            log.detached(&session.client_id, expiry, subscriptions, Detached { at_ms, awaiting_pubrel });
        }
        let mut st = session.state.lock();
        log.cleared(&session.client_id);
        let held = st.held_for_keeping();
        st.persisted = !held.is_empty();
        for (msg, qos) in held {
            // Acknowledged to their publishers already: nobody waits for these copies.
            let _ = log.persist(&session.client_id, &msg.msg, qos);
        }
    }

    /// A session has delivered everything that was kept for it to its client: the kept copies
    /// go. Called under the session's lock (after [`SessionState::take_drained`]), so the
    /// clearing record cannot overtake a message queued after the check.
    ///
    /// [`SessionState::take_drained`]: crate::session::SessionState::take_drained
    pub(crate) fn session_drained(&self, client_id: &str) {
        if let Some(log) = self.session_log.read().clone() {
            log.cleared(client_id);
        }
    }

    /// Subscribes a session to what the cluster log says it had (a session resumed from another
    /// node, or restored after a restart). Invalid filters are skipped.
    pub(crate) fn restore_subscriptions(&self, session: &Arc<Session>, subscriptions: &[ClientSubscription]) {
        for sub in subscriptions {
            let Ok(parsed) = topic::parse_filter(&sub.filter) else { continue };
            let opts = SubOptions {
                qos: sub.qos,
                no_local: sub.no_local,
                retain_as_published: sub.retain_as_published,
                retain_handling: RetainHandling::OnEverySubscribe,
                sub_id: sub.sub_id,
            };
            session.state.lock().subscriptions.insert(sub.filter.clone(), opts.clone());
            self.subscribe(&parsed, session, opts);
        }
    }

    /// A client connected to this node with `session` (after [`Router::session_connecting`]):
    /// when another node held its session and the client asked to resume it (`resume`, and this
    /// node had none), the session takes the subscriptions that node last wrote; the other
    /// node's entries go either way, and the cluster is told the session lives here. Returns
    /// whether a session was resumed that way.
    pub(crate) fn attach_local(&self, session: &Arc<Session>, resume: bool) -> bool {
        let remote = self.take_remote_client(&session.client_id);
        let mut resumed_from = None;
        if let (true, Some(remote)) = (resume, remote) {
            self.restore_subscriptions(session, &remote.subscriptions);
            session.state.lock().incoming_qos2.extend(remote.awaiting_pubrel);
            resumed_from = Some(remote.node.to_string());
        }
        if let Some(log) = self.session_log.read().clone() {
            log.connected(&session.client_id, Self::session_state(session), resumed_from.as_deref());
        }
        resumed_from.is_some()
    }

    /// Replaces the session log (`None`: nobody is told).
    pub fn set_session_log(&self, log: Option<Arc<dyn SessionLog>>) {
        *self.session_log.write() = log;
    }

    /// Replaces the cluster sink (`None`: other nodes' clients get nothing from this node).
    pub fn set_cluster_sink(&self, sink: Option<Arc<dyn ClusterSink>>) {
        *self.cluster.write() = sink;
    }

    /// Makes `subscriptions` the only ones of `client_id`, a client of node `node` (an empty
    /// list keeps the client known with none), whose record says `awaiting_pubrel`. Invalid
    /// filters are skipped.
    pub fn set_remote_client(
        &self,
        client_id: &str,
        node: &str,
        subscriptions: Vec<ClientSubscription>,
        awaiting_pubrel: Vec<u16>,
    ) {
        let mut clients = self.remote_clients.lock();
        let mut trie = self.trie.write();
        let id: Arc<str> = client_id.into();
        if let Some(old) = clients.remove(client_id) {
            remove_remote_entries(&mut trie, client_id, &old.subscriptions);
        }
        let node: Arc<str> = node.into();
        for sub in &subscriptions {
            if let Ok(parsed) = topic::parse_filter(&sub.filter) {
                trie.add_remote(&parsed, &node, &id);
            }
        }
        clients.insert(id, RemoteClient { node, subscriptions, awaiting_pubrel });
    }

    /// Forgets a client of another node; with `node`, only while that node holds it.
    pub fn remove_remote_client(&self, client_id: &str, node: Option<&str>) {
        let mut clients = self.remote_clients.lock();
        if node.is_some_and(|n| clients.get(client_id).is_some_and(|c| &*c.node != n)) {
            return;
        }
        if let Some(old) = clients.remove(client_id) {
            remove_remote_entries(&mut self.trie.write(), client_id, &old.subscriptions);
        }
    }

    /// Forgets a client of another node and returns what was known of it.
    fn take_remote_client(&self, client_id: &str) -> Option<RemoteClient> {
        let mut clients = self.remote_clients.lock();
        let old = clients.remove(client_id)?;
        remove_remote_entries(&mut self.trie.write(), client_id, &old.subscriptions);
        Some(old)
    }

    /// The node holding a client of another node, and its subscriptions.
    pub fn remote_client(&self, client_id: &str) -> Option<(String, Vec<ClientSubscription>)> {
        self.remote_clients.lock().get(client_id).map(|c| (c.node.to_string(), c.subscriptions.clone()))
    }

    /// The number of other nodes' clients known.
    pub fn remote_client_count(&self) -> usize {
        self.remote_clients.lock().len()
    }

    /// Routes a message another node received to this node's clients (never to integrations,
    /// other nodes or the retained store: the receiving node did that); returns the number of
    /// sessions that queued it. With `only`, to those sessions among the matching ones (a message
    /// sent to a node that went down, for the sessions that moved here from it). The copies kept
    /// for persistent sessions go to `kept` when given.
    pub(crate) fn publish_from_node(
        &self,
        msg: &Arc<RoutedMessage>,
        to_subscribers: bool,
        groups: &[(String, String)],
        only: Option<&std::collections::HashSet<String>>,
        kept: Option<&mut Handovers>,
    ) -> usize {
        let trie = self.trie.read();
        let mut matches = Matches::default();
        trie.collect(&msg.msg.topic, Scope::Remote { to_subscribers, groups }, &mut matches);
        if let Some(only) = only {
            matches.clients.retain(|e| only.contains(&*e.session.client_id));
        }
        self.deliver_to_clients(msg, &mut matches, kept)
    }

    /// Ends a session like [`Router::remove_session`] without telling the cluster (another node
    /// took it over: what it wrote stands).
    pub(crate) fn drop_session(&self, session: &Arc<Session>) {
        let mut trie = self.trie.write();
        let filters: Vec<String> = {
            let mut st = session.state.lock();
            st.removed = true;
            st.clear_queue();
            st.subscriptions.drain().map(|(f, _)| f).collect()
        };
        for filter in &filters {
            if let Ok(parsed) = topic::parse_filter(filter) {
                trie.unsubscribe(&parsed, session);
            }
        }
    }

    /// Routes a message to matching sessions and integrations; returns the number of sessions
    /// that queued it. Integration hand-overs are not waited for (a will message).
    pub(crate) fn publish(&self, msg: &Arc<RoutedMessage>) -> usize {
        self.publish_with(msg, &mut Handovers::default())
    }

    /// Like [`Router::publish`], and collects in `handovers` how the integrations took it.
    pub(crate) fn publish_with(&self, msg: &Arc<RoutedMessage>, handovers: &mut Handovers) -> usize {
        let trie = self.trie.read();
        let mut matches = Matches::default();
        trie.collect(&msg.msg.topic, Scope::Local, &mut matches);
        let delivered = self.deliver_to_clients(msg, &mut matches, Some(&mut *handovers));
        if !matches.integrations.is_empty() {
            matches.integrations.sort_unstable_by(|a, b| a.id.cmp(&b.id));
            matches.integrations.dedup_by(|a, b| a.id == b.id);
            if let Some(sink) = self.sink.read().as_ref() {
                sink.send_all(&matches.integrations, &msg.msg, handovers);
            }
        }
        if !matches.nodes.is_empty() || !matches.remote_shared.is_empty() {
            if let Some(cluster) = self.cluster.read().as_ref() {
                for target in node_targets(&mut matches) {
                    handovers.push(cluster.send(&target, &msg.msg));
                }
            }
        }
        delivered
    }

    /// Replaces the retained-message log (`None`: retained messages live in memory only).
    pub fn set_retained_log(&self, log: Option<Arc<dyn RetainedLog>>) {
        *self.retained_log.write() = log;
    }

    /// Stores a retained message a client of this node published, or clears the topic's one if
    /// the payload is empty, and hands it to the retained-message log if there is one.
    pub(crate) fn retain(&self, msg: &Arc<RoutedMessage>) -> Handover {
        let log = self.retained_log.read().clone();
        match log {
            Some(log) => log.write(&msg.msg, &|| self.retained.set(msg)),
            None => {
                self.retained.set(msg);
                Handover::Stored
            }
        }
    }

    /// Applies a retained message read from the log (another node's, or this node's before a
    /// restart): `Some` stores it, `None` clears `topic`. The log is not written.
    pub(crate) fn apply_retained(&self, topic: &str, msg: Option<Arc<RoutedMessage>>) {
        match msg {
            Some(msg) => self.retained.set(&msg),
            None => self.retained.clear(topic),
        }
    }

    /// The unexpired retained messages matching a (non-shared) filter.
    pub(crate) fn retained_matching(&self, filter: &str) -> Vec<Arc<RoutedMessage>> {
        self.retained.matching(filter)
    }

    /// Merges each client's matching subscriptions into one delivery and queues it; the copies
    /// kept for persistent sessions go to `handovers` when given (the publisher's acknowledgement
    /// waits for them).
    fn deliver_to_clients(
        &self,
        msg: &Arc<RoutedMessage>,
        matches: &mut Matches<'_>,
        mut handovers: Option<&mut Handovers>,
    ) -> usize {
        let origin = &msg.msg.client_id;
        matches.clients.retain(|e| !(e.opts.no_local && e.session.client_id == *origin));
        matches.clients.sort_by_key(|e| Arc::as_ptr(&e.session) as usize);
        let mut delivered = 0;
        // Cloned out of its lock: it is used under sessions' locks.
        let log = self.session_log.read().clone();
        for group in matches.clients.chunk_by(|a, b| Arc::ptr_eq(&a.session, &b.session)) {
            let mut qos = QoS::AtMostOnce;
            let mut retain_as_published = false;
            let mut sub_ids = Vec::new();
            for entry in group {
                qos = qos.max(entry.opts.qos);
                retain_as_published |= entry.opts.retain_as_published;
                if let Some(id) = entry.opts.sub_id {
                    sub_ids.push(id);
                }
            }
            let delivery = Delivery {
                msg: Arc::clone(msg),
                qos: qos.min(msg.msg.qos),
                retain: retain_as_published && msg.msg.retain,
                sub_ids,
            };
            if group[0].session.enqueue_kept(delivery, log.as_deref(), handovers.as_deref_mut()) {
                delivered += 1;
            }
        }
        delivered
    }
}

/// Removes a remote client's subscriptions from the trie.
fn remove_remote_entries(trie: &mut Trie, client_id: &str, subscriptions: &[ClientSubscription]) {
    for sub in subscriptions {
        if let Ok(parsed) = topic::parse_filter(&sub.filter) {
            trie.remove_remote(&parsed, client_id);
        }
    }
}

/// One target per node from the nodes and remote shared picks of a match.
fn node_targets<'a>(matches: &mut Matches<'a>) -> Vec<NodeTarget<'a>> {
    matches.nodes.sort_unstable();
    matches.nodes.dedup();
    let mut targets: Vec<NodeTarget<'a>> =
        matches.nodes.iter().map(|n| NodeTarget { node: n, to_subscribers: true, groups: Vec::new() }).collect();
    for shared in &matches.remote_shared {
        let group = (shared.group, shared.filter);
        match targets.iter_mut().find(|t| t.node == &**shared.node) {
            Some(t) => t.groups.push(group),
            None => targets.push(NodeTarget { node: shared.node, to_subscribers: false, groups: vec![group] }),
        }
    }
    targets
}
