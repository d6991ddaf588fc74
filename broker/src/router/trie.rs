//! The subscription trie: one node per topic level, with `+` and `#` children kept apart.
//!
//! A node holds four kinds of subscriptions on its filter: client subscriptions, shared
//! subscription groups (round-robin over members of this node and of other nodes), integration
//! subscriptions, and other broker nodes' clients (the node to hand a matching message to).
//! Locking is the caller's job (`Router` keeps the trie behind a read-write lock; matching only
//! reads).

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

/// A client of another broker node subscribed on a filter.
#[derive(Debug)]
pub(crate) struct RemoteEntry {
    /// The node that holds the client's session.
    pub node: Arc<str>,
    pub client_id: Arc<str>,
}

/// A shared group member on another node that a message went to: that node delivers it to one
/// of its members of the group.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RemoteShared<'a> {
    pub node: &'a Arc<str>,
    pub group: &'a str,
    pub filter: &'a str,
}

/// Which subscriptions a match considers.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Scope<'s> {
    /// A message a client of this node published: every kind.
    Local,
    /// A message another node received and sent here: this node's clients only, non-shared
    /// ones if `to_subscribers`, and one member of each of `groups` (share name, filter).
    Remote { to_subscribers: bool, groups: &'s [(String, String)] },
}

/// What one topic matched: client subscriptions (one per shared group), integration ids, nodes
/// with matching clients and shared groups whose pick is on another node.
#[derive(Debug, Default)]
pub(crate) struct Matches<'a> {
    pub clients: Vec<&'a ClientEntry>,
    pub integrations: Vec<&'a Arc<IntegrationRoute>>,
    pub nodes: Vec<&'a Arc<str>>,
    pub remote_shared: Vec<RemoteShared<'a>>,
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
    remote: Vec<RemoteEntry>,
}

#[derive(Debug)]
struct SharedGroup {
    name: Box<str>,
    /// The filter without the `$share/<name>/` prefix.
    filter: Box<str>,
    members: Vec<ClientEntry>,
    /// Members on other nodes.
    remote: Vec<RemoteEntry>,
    next: AtomicUsize,
}

impl SharedGroup {
    fn new(name: &str, filter: &str) -> SharedGroup {
        SharedGroup {
            name: name.into(),
            filter: filter.into(),
            members: Vec::new(),
            remote: Vec::new(),
            next: AtomicUsize::new(0),
        }
    }

    fn is_empty(&self) -> bool {
        self.members.is_empty() && self.remote.is_empty()
    }
}

/// The shared group `group` of `entries`, created when missing.
fn group_mut<'e>(entries: &'e mut Entries, group: &str, filter: &str) -> &'e mut SharedGroup {
    let pos = match entries.shared.iter().position(|g| &*g.name == group) {
        Some(pos) => pos,
        None => {
            entries.shared.push(SharedGroup::new(group, filter));
            entries.shared.len() - 1
        }
    };
    &mut entries.shared[pos]
}

impl Trie {
    /// Adds or replaces a client subscription; returns whether one existed on that filter.
    pub fn subscribe(&mut self, f: &ParsedFilter<'_>, session: &Arc<Session>, opts: SubOptions) -> bool {
        let entries = &mut self.root.entry(f.filter).entries;
        let new = ClientEntry { session: Arc::clone(session), opts };
        let list = match f.share_group {
            None => &mut entries.clients,
            Some(group) => &mut group_mut(entries, group, f.filter).members,
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
                if entries.shared[pos].is_empty() {
                    entries.shared.remove(pos);
                }
                removed
            }
        })
    }

    /// Adds a subscription of a client of another node (nothing if it has one on the filter).
    pub fn add_remote(&mut self, f: &ParsedFilter<'_>, node: &Arc<str>, client_id: &Arc<str>) {
        let entries = &mut self.root.entry(f.filter).entries;
        let list = match f.share_group {
            None => &mut entries.remote,
            Some(group) => &mut group_mut(entries, group, f.filter).remote,
        };
        if !list.iter().any(|e| e.client_id == *client_id) {
            list.push(RemoteEntry { node: Arc::clone(node), client_id: Arc::clone(client_id) });
        }
    }

    /// Removes a subscription of a client of another node.
    pub fn remove_remote(&mut self, f: &ParsedFilter<'_>, client_id: &str) {
        let group = f.share_group;
        self.root.remove(Some(f.filter), &mut |entries| {
            let list = match group {
                None => &mut entries.remote,
                Some(group) => match entries.shared.iter_mut().find(|g| &*g.name == group) {
                    Some(g) => &mut g.remote,
                    None => return false,
                },
            };
            let before = list.len();
            list.retain(|e| &*e.client_id != client_id);
            let removed = list.len() != before;
            entries.shared.retain(|g| !g.is_empty());
            removed
        });
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

    /// Collects every subscription matching `topic` that `scope` considers (shared groups pick
    /// one member each).
    pub fn collect<'a>(&'a self, topic: &str, scope: Scope<'_>, out: &mut Matches<'a>) {
        let dollar = topic.starts_with('$');
        self.root.collect(Some(topic), true, dollar, scope, out);
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
            && self.entries.remote.is_empty()
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

    fn collect<'a>(&'a self, rest: Option<&str>, first: bool, dollar: bool, scope: Scope<'_>, out: &mut Matches<'a>) {
        let Some(rest) = rest else {
            self.entries.add_to(scope, out);
            if let Some(hash) = &self.hash {
                hash.entries.add_to(scope, out);
            }
            return;
        };
        let (level, next) = split_level(rest);
        let wildcards = !(first && dollar);
        if wildcards {
            if let Some(hash) = &self.hash {
                hash.entries.add_to(scope, out);
            }
        }
        if let Some(child) = self.children.get(level) {
            child.collect(next, false, dollar, scope, out);
        }
        if wildcards {
            if let Some(plus) = &self.plus {
                plus.collect(next, false, dollar, scope, out);
            }
        }
    }
}

impl Entries {
    fn add_to<'a>(&'a self, scope: Scope<'_>, out: &mut Matches<'a>) {
        match scope {
            Scope::Local => {
                out.clients.extend(self.clients.iter());
                out.integrations.extend(self.integrations.iter());
                out.nodes.extend(self.remote.iter().map(|e| &e.node));
                for group in &self.shared {
                    match group.pick(true) {
                        Some(Pick::Local(member)) => out.clients.push(member),
                        Some(Pick::Remote(member)) => {
                            out.remote_shared.push(RemoteShared {
                                node: &member.node,
                                group: &group.name,
                                filter: &group.filter,
                            });
                        }
                        None => {}
                    }
                }
            }
            Scope::Remote { to_subscribers, groups } => {
                if to_subscribers {
                    out.clients.extend(self.clients.iter());
                }
                for group in &self.shared {
                    if !groups.iter().any(|(name, filter)| **name == *group.name && **filter == *group.filter) {
                        continue;
                    }
                    if let Some(Pick::Local(member)) = group.pick(false) {
                        out.clients.push(member);
                    }
                }
            }
        }
    }
}

/// The member of a shared group a message goes to.
enum Pick<'a> {
    Local(&'a ClientEntry),
    Remote(&'a RemoteEntry),
}

impl SharedGroup {
    /// Round-robin over the members (this node's, then with `remote` other nodes'), preferring
    /// one with a connection attached (other nodes' members count as attached: their node
    /// picks among its own).
    fn pick(&self, remote: bool) -> Option<Pick<'_>> {
        let local = self.members.len();
        let len = local + if remote { self.remote.len() } else { 0 };
        if len == 0 {
            return None;
        }
        let at = |i: usize| match i < local {
            true => Pick::Local(&self.members[i]),
            false => Pick::Remote(&self.remote[i - local]),
        };
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for i in 0..len {
            let idx = (start + i) % len;
            let attached = idx >= local || self.members[idx].session.state.lock().conn_id.is_some();
            if attached {
                if i > 0 {
                    self.next.fetch_add(i, Ordering::Relaxed);
                }
                return Some(at(idx));
            }
        }
        Some(at(start % len))
    }
}

fn split_level(rest: &str) -> (&str, Option<&str>) {
    match rest.split_once('/') {
        Some((level, next)) => (level, Some(next)),
        None => (rest, None),
    }
}
