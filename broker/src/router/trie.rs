//! The subscription trie: one node per topic level, with `+` and `#` children kept apart.
//!
//! A node holds three kinds of subscriptions on its filter: client subscriptions, shared
//! subscription groups (round-robin) and integration subscriptions. Locking is the caller's job
//! (`Router` keeps the trie behind a read-write lock; matching only reads).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::topic::ParsedFilter;
use super::{IntegrationRoute, SubOptions};
use crate::session::Session;

/// A client's subscription on one filter.
#[derive(Debug)]
pub(crate) struct ClientEntry {
    pub session: Arc<Session>,
    pub opts: SubOptions,
}

/// What one topic matched: client subscriptions (one per shared group) and integration ids.
#[derive(Debug, Default)]
pub(crate) struct Matches<'a> {
    pub clients: Vec<&'a ClientEntry>,
    pub integrations: Vec<&'a Arc<IntegrationRoute>>,
}

/// The subscription trie.
#[derive(Debug, Default)]
pub(crate) struct Trie {
    root: Node,
}

#[derive(Debug, Default)]
struct Node {
    children: HashMap<Box<str>, Node>,
    plus: Option<Box<Node>>,
    hash: Option<Box<Node>>,
    entries: Entries,
}

#[derive(Debug, Default)]
struct Entries {
    clients: Vec<ClientEntry>,
    shared: Vec<SharedGroup>,
    integrations: Vec<Arc<IntegrationRoute>>,
}

#[derive(Debug)]
struct SharedGroup {
    name: Box<str>,
    members: Vec<ClientEntry>,
    next: AtomicUsize,
}

impl Trie {
    /// Adds or replaces a client subscription; returns whether one existed on that filter.
    pub fn subscribe(&mut self, f: &ParsedFilter<'_>, session: &Arc<Session>, opts: SubOptions) -> bool {
        let entries = &mut self.root.entry(f.filter).entries;
        let new = ClientEntry { session: Arc::clone(session), opts };
        let list = match f.share_group {
            None => &mut entries.clients,
            Some(group) => {
                let pos = match entries.shared.iter().position(|g| &*g.name == group) {
                    Some(pos) => pos,
                    None => {
                        entries.shared.push(SharedGroup {
                            name: group.into(),
                            members: Vec::new(),
                            next: AtomicUsize::new(0),
                        });
                        entries.shared.len() - 1
                    }
                };
                &mut entries.shared[pos].members
            }
        };
        match list.iter_mut().find(|e| e.session.client_id == session.client_id) {
            Some(existing) => {
                *existing = new;
                true
            }
            None => {
                list.push(new);
                false
            }
        }
    }

    /// Removes a session's subscription; returns whether it existed.
    pub fn unsubscribe(&mut self, f: &ParsedFilter<'_>, session: &Arc<Session>) -> bool {
        let group = f.share_group;
        self.root.remove(Some(f.filter), &mut |entries| match group {
            None => remove_client(&mut entries.clients, session),
            Some(group) => {
                let Some(pos) = entries.shared.iter().position(|g| &*g.name == group) else {
                    return false;
                };
                let removed = remove_client(&mut entries.shared[pos].members, session);
                if entries.shared[pos].members.is_empty() {
                    entries.shared.remove(pos);
                }
                removed
            }
        })
    }

    /// Adds an integration subscription; returns whether it was new.
    pub fn add_integration(&mut self, filter: &str, route: &Arc<IntegrationRoute>) -> bool {
        let list = &mut self.root.entry(filter).entries.integrations;
        if list.iter().any(|i| i.id == route.id) {
            return false;
        }
        list.push(Arc::clone(route));
        true
    }

    /// Removes an integration subscription; returns whether it existed.
    pub fn remove_integration(&mut self, filter: &str, id: &str) -> bool {
        self.root.remove(Some(filter), &mut |entries| {
            let before = entries.integrations.len();
            entries.integrations.retain(|i| &*i.id != id);
            entries.integrations.len() != before
        })
    }

    /// Collects every subscription matching `topic` (shared groups pick one member each).
    pub fn collect<'a>(&'a self, topic: &str, out: &mut Matches<'a>) {
        let dollar = topic.starts_with('$');
        self.root.collect(Some(topic), true, dollar, out);
    }
}

fn remove_client(list: &mut Vec<ClientEntry>, session: &Arc<Session>) -> bool {
    let before = list.len();
    list.retain(|e| !Arc::ptr_eq(&e.session, session));
    list.len() != before
}

impl Node {
    fn entry(&mut self, filter: &str) -> &mut Node {
        let mut node = self;
        for level in filter.split('/') {
            node = match level {
                "+" => node.plus.get_or_insert_with(Box::default),
                "#" => node.hash.get_or_insert_with(Box::default),
                _ => node.children.entry(level.into()).or_default(),
            };
        }
        node
    }

    fn is_empty(&self) -> bool {
        self.children.is_empty()
            && self.plus.is_none()
            && self.hash.is_none()
            && self.entries.clients.is_empty()
            && self.entries.shared.is_empty()
            && self.entries.integrations.is_empty()
    }

    /// Applies `f` to the entries of the node of `rest`, then prunes nodes left empty.
    fn remove(&mut self, rest: Option<&str>, f: &mut dyn FnMut(&mut Entries) -> bool) -> bool {
        let Some(rest) = rest else {
            return f(&mut self.entries);
        };
        let (level, next) = split_level(rest);
        match level {
            "+" | "#" => {
                let slot = if level == "+" { &mut self.plus } else { &mut self.hash };
                let Some(child) = slot.as_mut() else {
                    return false;
                };
                let removed = child.remove(next, f);
                if child.is_empty() {
                    *slot = None;
                }
                removed
            }
            _ => {
                let Some(child) = self.children.get_mut(level) else {
                    return false;
                };
                let removed = child.remove(next, f);
                if child.is_empty() {
                    self.children.remove(level);
                }
                removed
            }
        }
    }

    fn collect<'a>(&'a self, rest: Option<&str>, first: bool, dollar: bool, out: &mut Matches<'a>) {
        let Some(rest) = rest else {
            self.entries.add_to(out);
            if let Some(hash) = &self.hash {
                hash.entries.add_to(out);
            }
            return;
        };
        let (level, next) = split_level(rest);
        let wildcards = !(first && dollar);
        if wildcards {
            if let Some(hash) = &self.hash {
                hash.entries.add_to(out);
            }
        }
        if let Some(child) = self.children.get(level) {
            child.collect(next, false, dollar, out);
        }
        if wildcards {
            if let Some(plus) = &self.plus {
                plus.collect(next, false, dollar, out);
            }
        }
    }
}

impl Entries {
    fn add_to<'a>(&'a self, out: &mut Matches<'a>) {
        out.clients.extend(self.clients.iter());
        out.integrations.extend(self.integrations.iter());
        for group in &self.shared {
            if let Some(member) = group.pick() {
                out.clients.push(member);
            }
        }
    }
}

impl SharedGroup {
    /// Round-robin over the members, preferring one with a connection attached.
    fn pick(&self) -> Option<&ClientEntry> {
        let len = self.members.len();
        if len == 0 {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for i in 0..len {
            let member = &self.members[(start + i) % len];
            if member.session.state.lock().conn_id.is_some() {
                if i > 0 {
                    self.next.fetch_add(i, Ordering::Relaxed);
                }
                return Some(member);
            }
        }
        Some(&self.members[start % len])
    }
}

fn split_level(rest: &str) -> (&str, Option<&str>) {
    match rest.split_once('/') {
        Some((level, next)) => (level, Some(next)),
        None => (rest, None),
    }
}
