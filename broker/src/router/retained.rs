//! Retained messages: one per topic, kept in memory. Keeping them across restarts and nodes is
//! the service's `retained_topic` (through `RetainedLog`), not this store's business.
//!
//! Lookup for a new subscription scans all retained messages; a retained-message trie is a later
//! optimisation. Expired messages (MQTT 5 message expiry) are skipped and removed on lookup.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::RwLock;

use super::topic;
use crate::message::RoutedMessage;

#[derive(Debug, Default)]
pub(crate) struct RetainedStore {
    by_topic: RwLock<HashMap<String, Arc<RoutedMessage>>>,
}

impl RetainedStore {
    pub fn set(&self, msg: &Arc<RoutedMessage>) {
        let mut map = self.by_topic.write();
        if msg.msg.payload.is_empty() {
            map.remove(&msg.msg.topic);
        } else {
            map.insert(msg.msg.topic.clone(), Arc::clone(msg));
        }
    }

    pub fn clear(&self, topic: &str) {
        self.by_topic.write().remove(topic);
    }

    pub fn len(&self) -> usize {
        self.by_topic.read().len()
    }

    pub fn matching(&self, filter: &str) -> Vec<Arc<RoutedMessage>> {
        let now = Instant::now();
        let mut expired = Vec::new();
        let mut found = Vec::new();
        {
            let map = self.by_topic.read();
            for (topic, msg) in map.iter() {
                if !topic::matches(filter, topic) {
                    continue;
                }
                if msg.remaining_expiry(now).is_err() {
                    expired.push(topic.clone());
                } else {
                    found.push(Arc::clone(msg));
                }
            }
        }
        if !expired.is_empty() {
            let mut map = self.by_topic.write();
            for topic in expired {
                if map.get(&topic).is_some_and(|m| m.remaining_expiry(now).is_err()) {
                    map.remove(&topic);
                }
            }
        }
        found
    }
}
