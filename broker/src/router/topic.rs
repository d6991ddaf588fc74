//! Topic names and topic filters: validation, shared-subscription parsing and matching.
//!
//! Matching here is the reference (one filter against one topic) used by the retained store and by
//! tests; the trie does the same walk for many filters at once.

/// Why a topic name or filter is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TopicError {
    /// Empty topic or filter.
    #[error("empty topic")]
    Empty,
    /// A NUL character (U+0000).
    #[error("topic contains nul")]
    Nul,
    /// A wildcard in a topic name.
    #[error("wildcard in topic name")]
    WildcardInName,
    /// `#` not alone in the last level, or `+` not alone in its level.
    #[error("misplaced wildcard")]
    MisplacedWildcard,
    /// `$share/` without a group name, with a wildcard in the group, or without a filter.
    #[error("invalid shared subscription")]
    InvalidShare,
}

/// A topic filter, split into its shared-subscription group (if any) and the filter proper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedFilter<'a> {
    /// The group of a `$share/<group>/<filter>` subscription.
    pub share_group: Option<&'a str>,
    /// The filter that topics are matched against.
    pub filter: &'a str,
}

/// Checks a topic name of a PUBLISH.
pub fn validate_topic_name(topic: &str) -> Result<(), TopicError> {
    if topic.is_empty() {
        return Err(TopicError::Empty);
    }
    if topic.contains('\0') {
        return Err(TopicError::Nul);
    }
    if topic.contains(['+', '#']) {
        return Err(TopicError::WildcardInName);
    }
    Ok(())
}

/// Checks a topic filter of a SUBSCRIBE or UNSUBSCRIBE, and splits off a `$share/<group>/` prefix.
pub fn parse_filter(raw: &str) -> Result<ParsedFilter<'_>, TopicError> {
    if let Some(rest) = raw.strip_prefix("$share/") {
        let (group, filter) = rest.split_once('/').ok_or(TopicError::InvalidShare)?;
        if group.is_empty() || group.contains(['+', '#']) || filter.is_empty() {
            return Err(TopicError::InvalidShare);
        }
        validate_filter(filter)?;
        return Ok(ParsedFilter { share_group: Some(group), filter });
    }
    validate_filter(raw)?;
    Ok(ParsedFilter { share_group: None, filter: raw })
}

fn validate_filter(filter: &str) -> Result<(), TopicError> {
    if filter.is_empty() {
        return Err(TopicError::Empty);
    }
    if filter.contains('\0') {
        return Err(TopicError::Nul);
    }
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        let last = levels.peek().is_none();
        match level {
            "#" if !last => return Err(TopicError::MisplacedWildcard),
            "#" | "+" => {}
            l if l.contains(['+', '#']) => return Err(TopicError::MisplacedWildcard),
            _ => {}
        }
    }
    Ok(())
}

/// Whether `topic` matches the (valid, non-shared) `filter`.
///
/// Topics starting with `$` are not matched by a wildcard in the first level.
pub fn matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(fl), Some(tl)) if fl == tl => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}
