//! An integration's message topic `tbmq.msg.ie.<id32>` made ready for it: created, and its
//! consumer group's first offset committed at the end (so messages published after the save are
//! delivered, none before). Used by the save flow (`topics`) and by dead-letter replay
//! (`dead_letters`), on the calling thread (queue calls may block).

use trib_queue::{
    queue::{Queue, QueueResult, TopicPartition},
    topics::TopicNames,
};
use uuid::Uuid;

/// Creates the integration's message topic and commits its group's first offset unless one is
/// committed (`Topics::ensure_msg` runs it on the blocking pool).
pub fn ensure_msg_blocking(queue: &dyn Queue, names: &TopicNames, integration_id: Uuid) -> QueueResult<()> {
    let spec = names.msg_spec(integration_id)?;
    let group = names.msg_group(integration_id);
    let client_id = format!("{}ie-msg-offset-init", names.prefix);
    queue.create_topic(&spec)?;
    let tp = TopicPartition::new(spec.name.clone(), 0);
    let mut consumer = queue.assign(&group, &client_id, &tp)?;
    if consumer.committed(&tp)?.is_none() {
        let (_, end) = consumer.watermarks(&tp)?;
        consumer.commit(&tp, end)?;
    }
    Ok(())
}
