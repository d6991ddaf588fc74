//! Memory bounds of session queues: per session in messages and bytes, and one process-wide byte
//! budget for all sessions together.
//!
//! A message counts against its session from the moment it is queued until it leaves the session:
//! written out (QoS 0), acknowledged (QoS 1/2), dropped, or the session ended. Messages in flight
//! (sent, not yet acknowledged) therefore count too: a client that never acknowledges holds
//! memory as surely as one that never reads. Each queued reference counts the message's full size
//! although fan-out shares one copy, so the counted bytes are an upper bound of what is held.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use crate::message::RoutedMessage;
use crate::metrics::{BrokerMetrics, DropReason};

/// Bytes counted for a message besides its payload, topic and properties (the `RoutedMessage`,
/// the `Delivery` and the queue slot).
const OVERHEAD: usize = 160;

/// What one queued message counts, in bytes.
pub(crate) fn held_size(msg: &RoutedMessage) -> usize {
    let m = &msg.msg;
    let props: usize = m.user_properties.iter().map(|(k, v)| k.len() + v.len() + 48).sum::<usize>()
        + m.content_type.as_ref().map_or(0, String::len)
        + m.correlation_data.as_ref().map_or(0, |c| c.len())
        + m.response_topic.as_ref().map_or(0, String::len);
    OVERHEAD + m.payload.len() + m.topic.len() + m.client_id.len() + props
}

/// The bounds every session of one broker gets, and the budget they share.
#[derive(Debug, Clone)]
pub(crate) struct QueueLimits {
    /// Messages queued or in flight per session.
    pub max_messages: usize,
    /// Bytes queued or in flight per session.
    pub max_bytes: usize,
    pub budget: Arc<MemoryBudget>,
}

impl QueueLimits {
    /// Limits with a budget of their own, counting into the installed metrics recorder.
    pub(crate) fn new(max_messages: usize, max_bytes: usize, budget_bytes: usize) -> QueueLimits {
        QueueLimits { max_messages, max_bytes, budget: Arc::new(MemoryBudget::new(budget_bytes, BrokerMetrics::new())) }
    }
}

/// The process-wide byte budget of all session queues, and the drop counts.
#[derive(Debug)]
pub(crate) struct MemoryBudget {
    limit: usize,
    used: AtomicUsize,
    messages: AtomicUsize,
    drops: [AtomicU64; DropReason::ALL.len()],
    pub metrics: BrokerMetrics,
}

impl MemoryBudget {
    pub(crate) fn new(limit: usize, metrics: BrokerMetrics) -> MemoryBudget {
        MemoryBudget {
            limit,
            used: AtomicUsize::new(0),
            messages: AtomicUsize::new(0),
            drops: Default::default(),
            metrics,
        }
    }

    /// Takes `bytes` for one message if the budget has room.
    pub(crate) fn try_take(&self, bytes: usize) -> bool {
        let taken = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|&total| total <= self.limit)
            })
            .is_ok();
        if taken {
            self.messages.fetch_add(1, Ordering::Relaxed);
        }
        taken
    }

    /// Gives back `messages` messages of `bytes` bytes in total.
    pub(crate) fn release(&self, messages: usize, bytes: usize) {
        if messages == 0 {
            return;
        }
        self.used.fetch_sub(bytes, Ordering::AcqRel);
        self.messages.fetch_sub(messages, Ordering::Relaxed);
    }

    /// Bytes held by all sessions.
    pub(crate) fn used_bytes(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    /// Messages held by all sessions.
    pub(crate) fn held_messages(&self) -> usize {
        self.messages.load(Ordering::Relaxed)
    }

    /// Counts `n` dropped messages.
    pub(crate) fn dropped(&self, reason: DropReason, n: u64) {
        self.drops[reason as usize].fetch_add(n, Ordering::Relaxed);
        self.metrics.dropped(reason, n);
    }

    /// Messages dropped so far for `reason`.
    pub(crate) fn drop_count(&self, reason: DropReason) -> u64 {
        self.drops[reason as usize].load(Ordering::Relaxed)
    }
}
