//! `topicName` templates: parsing `${topic}` / `${clientId}` placeholders, TBMQ's checks of a
//! static topic applied to the literal text, and rendering the target topic of a message.

use trib_plugin_api::driver::Message;

/// One piece of a `topicName` template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicPart {
    /// Literal text.
    Text(String),
    /// `${topic}`: the topic the message was published to.
    Topic,
    /// `${clientId}`: the publisher's client id.
    ClientId,
}

/// Where a message is published on the target broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetTopic {
    /// `useMsgTopicName`: the message's own topic, unchanged.
    Source,
    /// `topicName`, a static topic or a template with `${topic}` / `${clientId}`.
    Template(Vec<TopicPart>),
}

/// Renders the target topic of `msg`.
pub fn target_topic(target: &TargetTopic, msg: &Message<'_>) -> String {
    match target {
        TargetTopic::Source => msg.topic().to_string(),
        TargetTopic::Template(parts) => {
            let mut topic = String::new();
            for part in parts {
                match part {
                    TopicPart::Text(text) => topic.push_str(text),
                    TopicPart::Topic => topic.push_str(msg.topic()),
                    TopicPart::ClientId => topic.push_str(msg.client_id()),
                }
            }
            topic
        }
    }
}

/// Splits a `topicName` into literal text and `${topic}` / `${clientId}` placeholders.
pub fn parse_template(text: &str) -> Result<Vec<TopicPart>, String> {
    let mut parts = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let Some(len) = rest[start..].find('}') else {
            break;
        };
        let name = &rest[start + 2..start + len];
        let part = match name {
            "topic" => TopicPart::Topic,
            "clientId" => TopicPart::ClientId,
            other => {
                return Err(format!(
                    "Topic name contains an unknown placeholder ${{{other}}}: allowed are ${{topic}} and ${{clientId}}"
                ))
            }
        };
        if start > 0 {
            parts.push(TopicPart::Text(rest[..start].to_string()));
        }
        parts.push(part);
        rest = &rest[start + len + 1..];
    }
    if !rest.is_empty() {
        parts.push(TopicPart::Text(rest.to_string()));
    }
    Ok(parts)
}

/// TBMQ's checks of a static topic, applied to the literal text of a template.
pub fn check_static_parts(parts: &[TopicPart]) -> Option<&'static str> {
    let texts = || parts.iter().filter_map(|p| if let TopicPart::Text(t) = p { Some(t.as_str()) } else { None });
    if texts().any(|t| t.contains(['+', '#'])) {
        return Some("Topic name cannot contain wildcard characters");
    }
    if matches!(parts.first(), Some(TopicPart::Text(t)) if t.starts_with('$')) {
        return Some("Topic name cannot start with $ character");
    }
    None
}
