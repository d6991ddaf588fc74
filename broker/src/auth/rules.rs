//! TBMQ's publish and subscribe authorization rules: topic regexes carried by the credentials a
//! client authenticated with.
//!
//! A topic may be published to when one publish regex matches it whole (Java's `matches`); a
//! filter may be subscribed to when one subscribe regex matches it whole (the filter without its
//! `$share/<group>/` prefix). An empty list allows nothing. A pattern that does not compile (the
//! REST API refuses them, so only a row written by hand) allows nothing.

use regex::Regex;

/// The compiled rules of one connection.
#[derive(Debug, Clone)]
pub struct TopicRules {
    publish: Vec<Regex>,
    subscribe: Vec<Regex>,
}

impl PartialEq for TopicRules {
    fn eq(&self, other: &Self) -> bool {
        let text = |list: &[Regex]| list.iter().map(|r| r.as_str().to_owned()).collect::<Vec<_>>();
        text(&self.publish) == text(&other.publish) && text(&self.subscribe) == text(&other.subscribe)
    }
}

impl Eq for TopicRules {}

impl TopicRules {
    /// Compiles the patterns, each anchored at both ends; patterns that do not compile are dropped
    /// (and logged).
    pub fn new(publish: &[String], subscribe: &[String]) -> TopicRules {
        TopicRules { publish: compile(publish), subscribe: compile(subscribe) }
    }

    /// Whether `topic_name` may be published to.
    pub fn can_publish(&self, topic_name: &str) -> bool {
        self.publish.iter().any(|r| r.is_match(topic_name))
    }

    /// Whether `filter` (without `$share/<group>/`) may be subscribed to.
    pub fn can_subscribe(&self, filter: &str) -> bool {
        self.subscribe.iter().any(|r| r.is_match(filter))
    }
}

fn compile(patterns: &[String]) -> Vec<Regex> {
    patterns
        .iter()
        .filter_map(|p| match Regex::new(&format!("^(?:{p})$")) {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::warn!(pattern = ?p, error = %e, "Authorization rule does not compile; it allows nothing.");
                None
            }
        })
        .collect()
}
