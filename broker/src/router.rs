//! Routing: the subscription trie, the retained-message store and the integration hook.
//!
//! `Router::publish` matches a message against every subscription under a read lock (publishers
//! never wait for each other), merges overlapping subscriptions of one client into one delivery,
//! queues it on each session, and hands at most one copy per PUBLISH to each matching integration.
//! Sessions and connections are not managed here.

mod retained;
pub mod topic;
mod trie;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::message::{PublishedMessage, RoutedMessage};
use crate::protocol::QoS;
use crate::session::{Delivery, Session};
use retained::RetainedStore;
use topic::{ParsedFilter, TopicError};
use trie::{Matches, Trie};

#[cfg(test)]
mod tests;

/// Receives the messages that match an integration's topic filters.
///
/// Called on the publishing client's task while the router is read-locked: it must not block
/// (the intended implementation hands the message to a queue and reports when it is stored).
pub trait IntegrationSink: Send + Sync + 'static {
    /// Takes one message for `integration_id`; called at most once per PUBLISH and integration.
    fn send(&self, integration_id: &str, msg: &PublishedMessage) -> Handover;
}

/// How an [`IntegrationSink`] took a message. The broker acknowledges a QoS 1 or 2 PUBLISH only
/// once every integration's copy is stored, so a message the publisher saw acknowledged is never
/// lost with a crashed broker process.
#[derive(Debug)]
pub enum Handover {
    /// Stored already (or nothing to wait for).
    Stored,
    /// Handed over; the receiver tells whether it was stored (`Err` with the reason if not).
    Pending(tokio::sync::oneshot::Receiver<Result<(), String>>),
    /// Not taken: the reason (the sink has logged and counted it).
    Failed(String),
}

/// What the integrations made of one PUBLISH: the copies still being stored and the first
/// failure, if any.
#[derive(Debug, Default)]
pub(crate) struct Handovers {
    pub pending: Vec<tokio::sync::oneshot::Receiver<Result<(), String>>>,
    pub failed: Option<String>,
}

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
}

/// The broker's router; shared by all connections and reachable from `BrokerHandle::router`.
pub struct Router {
    trie: RwLock<Trie>,
    retained: RetainedStore,
    integration_filters: Mutex<HashMap<Arc<str>, HashSet<String>>>,
    sink: RwLock<Option<Arc<dyn IntegrationSink>>>,
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
        }
    }

    /// Subscribes integration `integration_id` to `filters` (added to any it already has).
    ///
    /// All filters are checked first; on error nothing is added.
    pub fn add_integration_subscriptions(&self, integration_id: &str, filters: &[String]) -> Result<(), RouterError> {
        for filter in filters {
            let parsed = topic::parse_filter(filter)
                .map_err(|source| RouterError::InvalidFilter { filter: filter.clone(), source })?;
            if parsed.share_group.is_some() {
                return Err(RouterError::SharedForIntegration(filter.clone()));
            }
        }
        let mut known = self.integration_filters.lock();
        let (id, set) = match known.get_key_value(integration_id) {
            Some((id, _)) => (Arc::clone(id), known.get_mut(integration_id)),
            None => {
                let id: Arc<str> = integration_id.into();
                known.insert(Arc::clone(&id), HashSet::new());
                let set = known.get_mut(integration_id);
                (id, set)
            }
        };
        let set = set.expect("the entry was found or inserted just above");
        let mut trie = self.trie.write();
        for filter in filters {
            trie.add_integration(filter, &id);
            set.insert(filter.clone());
        }
        Ok(())
    }

    /// Removes the given filters of an integration; unknown filters are ignored.
    pub fn remove_integration_subscriptions(&self, integration_id: &str, filters: &[String]) {
        let mut known = self.integration_filters.lock();
        let mut trie = self.trie.write();
        for filter in filters {
            trie.remove_integration(filter, integration_id);
            if let Some(set) = known.get_mut(integration_id) {
                set.remove(filter);
            }
        }
        if known.get(integration_id).is_some_and(|s| s.is_empty()) {
            known.remove(integration_id);
        }
    }

    /// Removes every subscription of an integration.
    pub fn remove_integration(&self, integration_id: &str) {
        let filters: Vec<String> = match self.integration_filters.lock().get(integration_id) {
            Some(set) => set.iter().cloned().collect(),
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
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        filters.sort();
        filters
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

    /// Ends a session: marks it removed, drops its queue and removes all its subscriptions.
    ///
    /// Lock order everywhere is trie, then session.
    pub(crate) fn remove_session(&self, session: &Arc<Session>) {
        let mut trie = self.trie.write();
        let filters: Vec<String> = {
            let mut st = session.state.lock();
            st.removed = true;
            st.queue.clear();
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
        trie.collect(&msg.msg.topic, &mut matches);
        let delivered = deliver_to_clients(msg, &mut matches);
        if !matches.integrations.is_empty() {
            matches.integrations.sort_unstable();
            matches.integrations.dedup();
            if let Some(sink) = self.sink.read().as_ref() {
                for id in &matches.integrations {
                    match sink.send(id, &msg.msg) {
                        Handover::Stored => {}
                        Handover::Pending(stored) => handovers.pending.push(stored),
                        Handover::Failed(why) => {
                            handovers.failed.get_or_insert(why);
                        }
                    }
                }
            }
        }
        delivered
    }

    /// Stores a retained message, or clears the topic's one if the payload is empty.
    pub(crate) fn retain(&self, msg: &Arc<RoutedMessage>) {
        self.retained.set(msg);
    }

    /// The unexpired retained messages matching a (non-shared) filter.
    pub(crate) fn retained_matching(&self, filter: &str) -> Vec<Arc<RoutedMessage>> {
        self.retained.matching(filter)
    }
}

/// Merges each client's matching subscriptions into one delivery and queues it.
fn deliver_to_clients(msg: &Arc<RoutedMessage>, matches: &mut Matches<'_>) -> usize {
    let origin = &msg.msg.client_id;
    matches.clients.retain(|e| !(e.opts.no_local && e.session.client_id == *origin));
    matches.clients.sort_by_key(|e| Arc::as_ptr(&e.session) as usize);
    let mut delivered = 0;
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
        if group[0].session.enqueue(delivery) {
            delivered += 1;
        }
    }
    delivered
}
