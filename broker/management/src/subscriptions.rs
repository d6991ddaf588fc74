//! This node's view of the integrations' subscriptions: what the management plane put into
//! the broker's trie through the [`SubscriptionSink`], per integration. TBMQ answers
//! `GET /api/subscription/integration` from the node's in-memory subscription cache; this is
//! that cache, unless the sink itself reports what its trie holds.

use std::{collections::HashMap, sync::Arc};

use parking_lot::Mutex;
use uuid::Uuid;

use crate::SubscriptionSink;

/// The sink and a record of what was set into it.
pub struct Subscriptions {
    sink: Arc<dyn SubscriptionSink>,
    current: Mutex<HashMap<Uuid, Vec<String>>>,
}

impl std::fmt::Debug for Subscriptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriptions").field("integrations", &self.current.lock().len()).finish_non_exhaustive()
    }
}

impl Subscriptions {
    /// Wraps the broker's sink.
    pub fn new(sink: Arc<dyn SubscriptionSink>) -> Self {
        Subscriptions { sink, current: Mutex::new(HashMap::new()) }
    }

    /// Replaces the integration's subscriptions (an empty slice clears them).
    pub fn set(&self, integration_id: Uuid, filters: &[String]) {
        // One lock around the record and the sink, so both see concurrent updates in one order.
        let mut current = self.current.lock();
        if filters.is_empty() {
            current.remove(&integration_id);
        } else {
            current.insert(integration_id, normalized(filters.to_vec()));
        }
        self.sink.set_integration_subscriptions(integration_id, filters);
    }

    /// Removes all of the integration's subscriptions.
    pub fn remove(&self, integration_id: Uuid) {
        let mut current = self.current.lock();
        current.remove(&integration_id);
        self.sink.remove_integration_subscriptions(integration_id);
    }

    /// The integration's topic filters on this node, sorted and without duplicates (TBMQ returns
    /// a set); empty when it has none or does not exist.
    pub fn get(&self, integration_id: Uuid) -> Vec<String> {
        match self.sink.integration_subscriptions(integration_id) {
            Some(filters) => normalized(filters),
            None => self.current.lock().get(&integration_id).cloned().unwrap_or_default(),
        }
    }
}

fn normalized(mut filters: Vec<String>) -> Vec<String> {
    filters.sort_unstable();
    filters.dedup();
    filters
}
