//! Topic authorization: which topics a client may publish to and which filters it may subscribe to.
//!
//! Rules are written in Mosquitto's ACL file syntax (a subset), one per line:
//!
//! ```text
//! # Topic lines before any user/cert line apply to anonymous clients.
//! topic read public/#
//! # The lines below apply to the user name alice.
//! user alice
//! topic readwrite alice/#
//! topic write sensors/+/temp
//! # The lines below apply to the client whose certificate CN is device-1.
//! cert device-1
//! topic write devices/device-1/#
//! # Every client; %c = client id, %u = user name (or certificate CN).
//! pattern write clients/%c/#
//! ```
//!
//! Lines starting with `#` are comments (a `#` later in a line is a wildcard).
//!
//! `read` allows SUBSCRIBE, `write` allows PUBLISH, `readwrite` (or no access word) both. A client
//! gets the `topic` lines of its own section plus every `pattern` line; nothing else is allowed once
//! any rule is configured. A SUBSCRIBE filter is allowed when one allowed filter covers every topic
//! it can match (`a/#` covers `a/+/b`, `a/+` does not cover `a/#`); a `$share/<group>/` prefix is
//! checked by its filter. `;` separates rules as a newline does, so one environment variable can
//! hold a whole list.
//!
//! Before any rule, an anonymous client (no user name, no verified certificate) may not publish
//! to `$SYS` or below it, whatever the rules say (`Authorization`).

use std::collections::HashMap;
use std::sync::Arc;

use crate::auth::TopicRules;
use crate::router::topic;

#[cfg(test)]
mod tests;

/// A rule set, as configured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Acl {
    anonymous: Vec<Rule>,
    users: HashMap<String, Vec<Rule>>,
    certs: HashMap<String, Vec<Rule>>,
    patterns: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    read: bool,
    write: bool,
    filter: String,
}

/// A rule set that does not parse: the line (1-based) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("acl rule {line}: {message}")]
pub struct AclError {
    /// The line (or `;`-separated rule) number, from 1.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Who a client is, for the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Principal<'a> {
    /// Authenticated by its client certificate, whose CN this is.
    Certificate(&'a str),
    /// Connected with this user name.
    User(&'a str),
    /// Neither.
    Anonymous,
}

enum Section {
    Anonymous,
    User(String),
    Cert(String),
}

impl Acl {
    /// Parses rules; empty text gives an empty rule set (which allows nothing).
    pub fn parse(text: &str) -> Result<Acl, AclError> {
        let mut acl = Acl::default();
        let mut section = Section::Anonymous;
        for (i, raw) in text.split(['\n', ';']).enumerate() {
            let err = |message: String| AclError { line: i + 1, message };
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (keyword, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            let rest = rest.trim();
            match keyword {
                "user" | "cert" => {
                    if rest.is_empty() {
                        return Err(err(format!("{keyword} needs a name")));
                    }
                    let name = rest.to_owned();
                    section = if keyword == "user" { Section::User(name) } else { Section::Cert(name) };
                    let map = if keyword == "user" { &mut acl.users } else { &mut acl.certs };
                    map.entry(rest.to_owned()).or_default();
                }
                "topic" | "pattern" => {
                    let rule = parse_rule(rest).map_err(err)?;
                    if keyword == "pattern" {
                        acl.patterns.push(rule);
                        continue;
                    }
                    match &section {
                        Section::Anonymous => acl.anonymous.push(rule),
                        Section::User(u) => acl.users.entry(u.clone()).or_default().push(rule),
                        Section::Cert(c) => acl.certs.entry(c.clone()).or_default().push(rule),
                    }
                }
                other => return Err(err(format!("unknown keyword {other:?} (expected user, cert, topic or pattern)"))),
            }
        }
        Ok(acl)
    }

    /// Both rule sets together (a user's or certificate's rules from both).
    pub fn merged(mut self, other: Acl) -> Acl {
        self.anonymous.extend(other.anonymous);
        for (name, rules) in other.users {
            self.users.entry(name).or_default().extend(rules);
        }
        for (name, rules) in other.certs {
            self.certs.entry(name).or_default().extend(rules);
        }
        self.patterns.extend(other.patterns);
        self
    }

    /// The rules of one connection, with `%c` and `%u` replaced in the patterns.
    pub(crate) fn for_client(&self, principal: Principal<'_>, client_id: &str) -> ClientAcl {
        let (own, name) = match principal {
            Principal::Certificate(cn) => (self.certs.get(cn), Some(cn)),
            Principal::User(u) => (self.users.get(u), Some(u)),
            Principal::Anonymous => (Some(&self.anonymous), None),
        };
        let mut acl = ClientAcl::default();
        for rule in own.into_iter().flatten() {
            acl.add(rule, rule.filter.clone());
        }
        for rule in &self.patterns {
            // A pattern naming the user does not apply to a client without one (as Mosquitto).
            if rule.filter.contains("%u") && name.is_none() {
                continue;
            }
            let name = name.unwrap_or_default();
            // A client id or name with wildcards or separators must not widen the rule.
            if (rule.filter.contains("%c") && !substitutable(client_id))
                || (rule.filter.contains("%u") && !substitutable(name))
            {
                continue;
            }
            acl.add(rule, rule.filter.replace("%c", client_id).replace("%u", name));
        }
        acl
    }
}

/// Whether `value` can be put into a filter without changing its levels or wildcards.
fn substitutable(value: &str) -> bool {
    !value.contains(['/', '+', '#', '\0'])
}

fn parse_rule(rest: &str) -> Result<Rule, String> {
    let (first, after) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let (access, filter) = match first {
        "read" | "write" | "readwrite" => (first, after.trim()),
        "deny" => return Err("deny rules are not supported".to_owned()),
        _ => ("readwrite", rest),
    };
    if filter.is_empty() {
        return Err("missing topic filter".to_owned());
    }
    let parsed = topic::parse_filter(filter).map_err(|e| format!("topic filter {filter:?}: {e}"))?;
    if parsed.share_group.is_some() {
        return Err(format!("topic filter {filter:?}: write the filter without $share/<group>/"));
    }
    Ok(Rule { read: access != "write", write: access != "read", filter: filter.to_owned() })
}

/// What one connection may do: anonymous clients never publish to `$SYS`, then the ACL rules
/// (when any are configured) decide.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Authorization {
    /// Neither a user name nor a verified certificate.
    anonymous: bool,
    /// The connection's rules; `None` when no rules are configured, which allows every topic.
    acl: Option<ClientAcl>,
    /// The rules of the MQTT client credentials the client authenticated with (TBMQ's regexes),
    /// checked as well as the ACL.
    credentials: Option<Arc<TopicRules>>,
}

impl Authorization {
    /// The authorization of a client connecting as `principal` with `client_id`.
    pub(crate) fn new(principal: Principal<'_>, client_id: &str, rules: Option<&Acl>) -> Authorization {
        Authorization {
            anonymous: principal == Principal::Anonymous,
            acl: rules.map(|rules| rules.for_client(principal, client_id)),
            credentials: None,
        }
    }

    /// Adds the rules of the credentials the client authenticated with.
    pub(crate) fn with_rules(mut self, rules: Option<Arc<TopicRules>>) -> Authorization {
        self.credentials = rules;
        self
    }

    /// Whether the client may publish to `topic_name` (a valid topic name), its will included.
    pub(crate) fn can_publish(&self, topic_name: &str) -> bool {
        if self.anonymous && is_sys_topic(topic_name) {
            return false;
        }
        if self.credentials.as_ref().is_some_and(|rules| !rules.can_publish(topic_name)) {
            return false;
        }
        self.acl.as_ref().is_none_or(|acl| acl.can_publish(topic_name))
    }

    /// Whether the client may subscribe to `filter` (valid, possibly `$share/<group>/...`).
    pub(crate) fn can_subscribe(&self, filter: &str) -> bool {
        if let Some(rules) = &self.credentials {
            let inner = topic::parse_filter(filter).map_or(filter, |p| p.filter);
            if !rules.can_subscribe(inner) {
                return false;
            }
        }
        self.acl.as_ref().is_none_or(|acl| acl.can_subscribe(filter))
    }
}

/// Whether `topic_name` is `$SYS` or below it: by MQTT convention the broker's own topics,
/// which an anonymous client could otherwise forge for every subscriber.
pub(crate) fn is_sys_topic(topic_name: &str) -> bool {
    topic_name == "$SYS" || topic_name.starts_with("$SYS/")
}

/// The allowed filters of one connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ClientAcl {
    publish: Vec<String>,
    subscribe: Vec<String>,
}

impl ClientAcl {
    fn add(&mut self, rule: &Rule, filter: String) {
        if rule.read {
            self.subscribe.push(filter.clone());
        }
        if rule.write {
            self.publish.push(filter);
        }
    }

    /// Whether the client may publish to `topic` (a valid topic name).
    pub(crate) fn can_publish(&self, topic_name: &str) -> bool {
        self.publish.iter().any(|f| topic::matches(f, topic_name))
    }

    /// Whether the client may subscribe to `filter` (valid, possibly `$share/<group>/...`).
    pub(crate) fn can_subscribe(&self, filter: &str) -> bool {
        let inner = topic::parse_filter(filter).map_or(filter, |p| p.filter);
        self.subscribe.iter().any(|allowed| covers(allowed, inner))
    }
}

/// Whether every topic matched by `filter` is matched by `allowed`.
pub(crate) fn covers(allowed: &str, filter: &str) -> bool {
    // `$` topics are only matched by filters that name the `$` level.
    if (allowed.starts_with('+') || allowed.starts_with('#')) && filter.starts_with('$') {
        return false;
    }
    let mut a = allowed.split('/');
    let mut f = filter.split('/');
    loop {
        match (a.next(), f.next()) {
            (Some("#"), _) => return true,
            (Some(_), Some("#")) => return false,
            (Some("+"), Some(_)) => {}
            (Some(al), Some(fl)) if al == fl && fl != "+" => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}
