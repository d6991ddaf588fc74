//! The broker's Prometheus series (through the `metrics` crate, rendered by `trib_ops::prometheus`
//! on `/metrics`).
//!
//! Handles are registered once (`BrokerMetrics::new`, after the recorder is installed) and kept, so
//! the publish and delivery paths never look a series up by name. Gauges that describe the whole
//! broker (queued messages and bytes, sessions, subscriptions, retained messages, other nodes'
//! clients known) are sampled from
//! the broker's own counts by `server`'s sampler once a second and on demand.

use metrics::{counter, gauge, Counter, Gauge};

use crate::protocol::{ProtocolVersion, QoS};

/// Why a message for a client was dropped: the `reason` label of `broker_dropped_msgs_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DropReason {
    /// The session held `max_queued_messages` messages.
    SessionMessages,
    /// The session held `max_queued_bytes` bytes (or the message alone is larger).
    SessionBytes,
    /// All sessions together held the process-wide budget.
    MemoryBudget,
    /// QoS 0 for a session without a connection (never queued, as the spec allows).
    Offline,
    /// The message expired in the queue (MQTT 5 message expiry).
    Expired,
    /// Larger than the client's maximum packet size (MQTT 5).
    TooLarge,
}

impl DropReason {
    pub(crate) const ALL: [DropReason; 6] = [
        DropReason::SessionMessages,
        DropReason::SessionBytes,
        DropReason::MemoryBudget,
        DropReason::Offline,
        DropReason::Expired,
        DropReason::TooLarge,
    ];

    /// The label value.
    pub(crate) fn label(self) -> &'static str {
        match self {
            DropReason::SessionMessages => "session_messages",
            DropReason::SessionBytes => "session_bytes",
            DropReason::MemoryBudget => "memory_budget",
            DropReason::Offline => "offline_qos0",
            DropReason::Expired => "expired",
            DropReason::TooLarge => "too_large",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Counters by QoS: messages and payload bytes in one direction.
#[derive(Debug, Clone)]
pub(crate) struct Traffic {
    msgs: [Counter; 3],
    bytes: [Counter; 3],
}

impl Traffic {
    fn new(msgs: &'static str, bytes: &'static str) -> Traffic {
        let q = ["0", "1", "2"];
        Traffic { msgs: q.map(|qos| counter!(msgs, "qos" => qos)), bytes: q.map(|qos| counter!(bytes, "qos" => qos)) }
    }

    /// Counts one message with `payload` bytes.
    pub(crate) fn count(&self, qos: QoS, payload: usize) {
        self.msgs[qos as usize].increment(1);
        self.bytes[qos as usize].increment(payload as u64);
    }
}

/// Every series the broker writes, registered once.
#[derive(Debug, Clone)]
pub(crate) struct BrokerMetrics {
    /// PUBLISH received from clients (`broker_msgs_in_total`, `broker_bytes_in_total`).
    pub incoming: Traffic,
    /// PUBLISH written to clients (`broker_msgs_out_total`, `broker_bytes_out_total`).
    pub outgoing: Traffic,
    drops: [Counter; 6],
    auth_failures: [Counter; 2],
    pub queued_msgs: Gauge,
    pub queued_bytes: Gauge,
    pub sessions: Gauge,
    pub subscriptions: Gauge,
    pub retained: Gauge,
    /// Other nodes' clients this node knows (`broker_cluster_remote_clients`).
    pub remote_clients: Gauge,
}

impl Default for BrokerMetrics {
    fn default() -> Self {
        BrokerMetrics::new()
    }
}

impl BrokerMetrics {
    /// Registers the series with the installed recorder (none: they count nowhere).
    pub(crate) fn new() -> BrokerMetrics {
        BrokerMetrics {
            incoming: Traffic::new("broker_msgs_in_total", "broker_bytes_in_total"),
            outgoing: Traffic::new("broker_msgs_out_total", "broker_bytes_out_total"),
            drops: DropReason::ALL.map(|r| counter!("broker_dropped_msgs_total", "reason" => r.label())),
            auth_failures: ["bad_credentials", "not_authorized"]
                .map(|reason| counter!("broker_auth_failures_total", "reason" => reason)),
            queued_msgs: gauge!("broker_queued_msgs"),
            queued_bytes: gauge!("broker_queued_bytes"),
            sessions: gauge!("broker_sessions"),
            subscriptions: gauge!("broker_subscriptions"),
            retained: gauge!("broker_retained_msgs"),
            remote_clients: gauge!("broker_cluster_remote_clients"),
        }
    }

    /// Counts `n` messages dropped for `reason`.
    pub(crate) fn dropped(&self, reason: DropReason, n: u64) {
        self.drops[reason.index()].increment(n);
    }

    /// Counts a refused CONNECT: bad user name or password (`true`) or not authorized.
    pub(crate) fn auth_failed(&self, bad_credentials: bool) {
        self.auth_failures[usize::from(!bad_credentials)].increment(1);
    }

    /// The `broker_connections` gauge of one listener and protocol version.
    pub(crate) fn connections(listener: &'static str, version: ProtocolVersion) -> Gauge {
        let protocol = match version {
            ProtocolVersion::V31 => "3.1",
            ProtocolVersion::V311 => "3.1.1",
            ProtocolVersion::V5 => "5",
        };
        gauge!("broker_connections", "listener" => listener, "protocol" => protocol)
    }
}
