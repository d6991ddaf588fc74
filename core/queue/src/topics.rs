//! Queue topic and consumer-group names, TBMQ's (`<p>` is `queue.kafka.kafka-prefix`):
//!
//! | what | name |
//! |---|---|
//! | lifecycle + validation requests per type (compacted, 6 partitions) | `<p>tbmq.ie.downlink.<type in lower case>` |
//! | events and service info from executors | `<p>tbmq.ie.uplink` |
//! | answers to one broker node | `<p>tbmq.ie.uplink.notifications.<brokerServiceId>` |
//! | messages of one integration (1 partition) | `<p>tbmq.msg.ie.<id without hyphens>` |
//! | messages an integration gave up on (ours, 1 partition) | `<p>tbmq.ie.dlq.<id without hyphens>` |
//! | every node's integration (and, later, client) subscriptions (compacted, 1 partition) | `<p>tbmq.client.subscriptions` |
//! | broker nodes' heartbeats (ours; compacted, 1 partition) | `<p>tbmq.sys.service.info` |
//! | retained MQTT messages, keyed by MQTT topic (compacted, 1 partition) | `<p>tbmq.msg.retained` |
//!
//! Shared by the broker and the executor so that both always agree.

use uuid::Uuid;

use crate::queue::{QueueResult, TopicSpec};

/// TBMQ's default properties of the downlink and uplink topics.
pub const DEFAULT_TOPIC_PROPERTIES: &str =
    "retention.ms:604800000;segment.bytes:26214400;retention.bytes:1048576000;partitions:6;replication.factor:1";
/// TBMQ's default properties of the notifications topics.
pub const DEFAULT_NOTIFICATIONS_TOPIC_PROPERTIES: &str =
    "retention.ms:604800000;segment.bytes:26214400;retention.bytes:1048576000;partitions:1;replication.factor:1";
/// TBMQ's default properties of `tbmq.client.subscriptions` (also ours for `tbmq.sys.service.info`).
pub const DEFAULT_CLIENT_SUBSCRIPTIONS_TOPIC_PROPERTIES: &str =
    "segment.bytes:26214400;partitions:1;replication.factor:1";
/// Default properties of the per-node basic downlink topics (a day: what a node did not read
/// within it is of no use to its clients any more).
pub const DEFAULT_BASIC_DOWNLINK_TOPIC_PROPERTIES: &str =
    "retention.ms:86400000;segment.bytes:26214400;retention.bytes:1048576000;partitions:1;replication.factor:1";
/// Default properties of the per-node persisted message topics: TBMQ's
/// `MQTT_PERSISTENT_SESSION_DEVICE_PERSISTED_MESSAGES_TTL` (a week) as the retention.
pub const DEFAULT_PERSISTED_MSG_TOPIC_PROPERTIES: &str =
    "retention.ms:604800000;segment.bytes:26214400;retention.bytes:1048576000;partitions:1;replication.factor:1";
/// TBMQ's default properties of `tbmq.msg.retained` (`TB_KAFKA_RETAINED_MSG_TOPIC_PROPERTIES`).
pub const DEFAULT_RETAINED_MSG_TOPIC_PROPERTIES: &str = "segment.bytes:26214400;partitions:1;replication.factor:1";
/// TBMQ's default properties of the integration message topics.
pub const DEFAULT_MSG_TOPIC_PROPERTIES: &str =
    "retention.ms:604800000;segment.bytes:26214400;retention.bytes:1048576000;replication.factor:1";

/// Topic names and settings, from configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicNames {
    /// `queue.kafka.kafka-prefix` (`TB_KAFKA_PREFIX`), prefixes topics, groups and client ids.
    pub prefix: String,
    /// `TB_KAFKA_IE_DOWNLINK_TOPIC_PREFIX`.
    pub downlink_prefix: String,
    /// Downlink topic properties (compaction is forced).
    pub downlink_properties: String,
    /// `TB_KAFKA_IE_UPLINK_TOPIC`.
    pub uplink_topic: String,
    /// `TB_KAFKA_IE_UPLINK_TOPIC_PROPERTIES`.
    pub uplink_properties: String,
    /// `TB_KAFKA_IE_UPLINK_NOTIF_TOPIC_PREFIX`.
    pub notifications_prefix: String,
    /// `TB_KAFKA_IE_UPLINK_NOTIF_TOPIC_PROPERTIES`.
    pub notifications_properties: String,
    /// `TB_KAFKA_IE_MSG_TOPIC_PROPERTIES` (the partition count is forced to 1).
    pub msg_properties: String,
    /// `TB_KAFKA_CLIENT_SUBSCRIPTIONS_TOPIC`.
    pub client_subscriptions_topic: String,
    /// `TB_KAFKA_CLIENT_SUBSCRIPTIONS_TOPIC_PROPERTIES` (compaction and one partition are forced).
    pub client_subscriptions_properties: String,
    /// `TB_KAFKA_SERVICE_INFO_TOPIC` (ours).
    pub service_info_topic: String,
    /// `TB_KAFKA_SERVICE_INFO_TOPIC_PROPERTIES` (ours; compaction and one partition are forced).
    pub service_info_properties: String,
    /// `TB_KAFKA_RETAINED_MSG_TOPIC`.
    pub retained_msg_topic: String,
    /// `TB_KAFKA_RETAINED_MSG_TOPIC_PROPERTIES` (compaction and one partition are forced).
    pub retained_msg_properties: String,
    /// `TB_KAFKA_BASIC_DL_MSG_TOPIC_PREFIX`: prefix of the per-node topics that carry client
    /// messages from the node that received them to a node with matching subscribers.
    pub basic_downlink_prefix: String,
    /// `TB_KAFKA_BASIC_DL_MSG_TOPIC_PROPERTIES` (one partition is forced).
    pub basic_downlink_properties: String,
    /// `TB_KAFKA_PERSISTED_MSG_TOPIC_PROPERTIES` (ours; one partition is forced): the per-node
    /// topics that keep the messages held for persistent sessions across a restart.
    pub persisted_msg_properties: String,
}

impl Default for TopicNames {
    fn default() -> Self {
        TopicNames {
            prefix: String::new(),
            downlink_prefix: "tbmq.ie.downlink".into(),
            downlink_properties: DEFAULT_TOPIC_PROPERTIES.into(),
            uplink_topic: "tbmq.ie.uplink".into(),
            uplink_properties: DEFAULT_TOPIC_PROPERTIES.into(),
            notifications_prefix: "tbmq.ie.uplink.notifications".into(),
            notifications_properties: DEFAULT_NOTIFICATIONS_TOPIC_PROPERTIES.into(),
            msg_properties: DEFAULT_MSG_TOPIC_PROPERTIES.into(),
            client_subscriptions_topic: "tbmq.client.subscriptions".into(),
            client_subscriptions_properties: DEFAULT_CLIENT_SUBSCRIPTIONS_TOPIC_PROPERTIES.into(),
            service_info_topic: "tbmq.sys.service.info".into(),
            service_info_properties: DEFAULT_CLIENT_SUBSCRIPTIONS_TOPIC_PROPERTIES.into(),
            retained_msg_topic: "tbmq.msg.retained".into(),
            retained_msg_properties: DEFAULT_RETAINED_MSG_TOPIC_PROPERTIES.into(),
            basic_downlink_prefix: "tbmq.msg.downlink.basic".into(),
            basic_downlink_properties: DEFAULT_BASIC_DOWNLINK_TOPIC_PROPERTIES.into(),
            persisted_msg_properties: DEFAULT_PERSISTED_MSG_TOPIC_PROPERTIES.into(),
        }
    }
}

/// An integration id without hyphens, as in TBMQ's message topic names.
pub fn id32(id: Uuid) -> String {
    id.simple().to_string()
}

impl TopicNames {
    /// Defaults overridden by TBMQ's variables (`TB_KAFKA_PREFIX`, `TB_KAFKA_IE_*`).
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, crate::config::ConfigError> {
        use crate::config::parse;
        let mut t = TopicNames::default();
        parse(lookup, "TB_KAFKA_PREFIX", &mut t.prefix)?;
        parse(lookup, "TB_KAFKA_IE_DOWNLINK_TOPIC_PREFIX", &mut t.downlink_prefix)?;
        parse(lookup, "TB_KAFKA_IE_DOWNLINK_TOPIC_PROPERTIES", &mut t.downlink_properties)?;
        parse(lookup, "TB_KAFKA_IE_UPLINK_TOPIC", &mut t.uplink_topic)?;
        parse(lookup, "TB_KAFKA_IE_UPLINK_TOPIC_PROPERTIES", &mut t.uplink_properties)?;
        parse(lookup, "TB_KAFKA_IE_UPLINK_NOTIF_TOPIC_PREFIX", &mut t.notifications_prefix)?;
        parse(lookup, "TB_KAFKA_IE_UPLINK_NOTIF_TOPIC_PROPERTIES", &mut t.notifications_properties)?;
        parse(lookup, "TB_KAFKA_IE_MSG_TOPIC_PROPERTIES", &mut t.msg_properties)?;
        parse(lookup, "TB_KAFKA_CLIENT_SUBSCRIPTIONS_TOPIC", &mut t.client_subscriptions_topic)?;
        parse(lookup, "TB_KAFKA_CLIENT_SUBSCRIPTIONS_TOPIC_PROPERTIES", &mut t.client_subscriptions_properties)?;
        parse(lookup, "TB_KAFKA_SERVICE_INFO_TOPIC", &mut t.service_info_topic)?;
        parse(lookup, "TB_KAFKA_SERVICE_INFO_TOPIC_PROPERTIES", &mut t.service_info_properties)?;
        parse(lookup, "TB_KAFKA_RETAINED_MSG_TOPIC", &mut t.retained_msg_topic)?;
        parse(lookup, "TB_KAFKA_RETAINED_MSG_TOPIC_PROPERTIES", &mut t.retained_msg_properties)?;
        parse(lookup, "TB_KAFKA_BASIC_DL_MSG_TOPIC_PREFIX", &mut t.basic_downlink_prefix)?;
        parse(lookup, "TB_KAFKA_BASIC_DL_MSG_TOPIC_PROPERTIES", &mut t.basic_downlink_properties)?;
        parse(lookup, "TB_KAFKA_PERSISTED_MSG_TOPIC_PROPERTIES", &mut t.persisted_msg_properties)?;
        Ok(t)
    }

    /// `<p>tbmq.ie.downlink.<type>`.
    pub fn downlink(&self, integration_type: &str) -> String {
        format!("{}{}.{}", self.prefix, self.downlink_prefix, integration_type.to_ascii_lowercase())
    }

    /// Spec of a downlink topic (compacted).
    pub fn downlink_spec(&self, integration_type: &str) -> QueueResult<TopicSpec> {
        Ok(TopicSpec::from_properties(&self.downlink(integration_type), &self.downlink_properties)?.compacted())
    }

    /// `<p><type>-ie-downlink-consumer-group`.
    pub fn downlink_group(&self, integration_type: &str) -> String {
        format!("{}{}-ie-downlink-consumer-group", self.prefix, integration_type.to_ascii_lowercase())
    }

    /// `<p>tbmq.ie.uplink`.
    pub fn uplink(&self) -> String {
        format!("{}{}", self.prefix, self.uplink_topic)
    }

    /// Spec of the uplink topic.
    pub fn uplink_spec(&self) -> QueueResult<TopicSpec> {
        TopicSpec::from_properties(&self.uplink(), &self.uplink_properties)
    }

    /// `<p>ie-uplink-consumer-group`.
    pub fn uplink_group(&self) -> String {
        format!("{}ie-uplink-consumer-group", self.prefix)
    }

    /// `<p>ie-uplink-service-info-consumer-group-<brokerServiceId>` (ours): each broker node reads
    /// every executor's service info on its own, while events go through the shared group.
    pub fn uplink_service_info_group(&self, broker_service_id: &str) -> String {
        format!("{}ie-uplink-service-info-consumer-group-{broker_service_id}", self.prefix)
    }

    /// `<p>tbmq.client.subscriptions`.
    pub fn client_subscriptions(&self) -> String {
        format!("{}{}", self.prefix, self.client_subscriptions_topic)
    }

    /// Spec of `tbmq.client.subscriptions`: compacted (as TBMQ forces) and one partition, so that
    /// every node applies the changes in one order.
    pub fn client_subscriptions_spec(&self) -> QueueResult<TopicSpec> {
        Ok(TopicSpec::from_properties(&self.client_subscriptions(), &self.client_subscriptions_properties)?
            .compacted()
            .with_partitions(1))
    }

    /// `<p>client-subscriptions-consumer-group-<serviceId>`: a node's own reader of the whole
    /// topic (it never commits; it reads from the beginning at every start).
    pub fn client_subscriptions_group(&self, service_id: &str) -> String {
        format!("{}client-subscriptions-consumer-group-{service_id}", self.prefix)
    }

    /// `<p>client-subscriptions-broker-consumer-group-<serviceId>` (ours): a broker node's reader
    /// of MQTT clients' records on `tbmq.client.subscriptions` (never commits).
    pub fn cluster_subscriptions_group(&self, service_id: &str) -> String {
        format!("{}client-subscriptions-broker-consumer-group-{service_id}", self.prefix)
    }

    /// `<p>tbmq.sys.service.info` (ours): broker nodes' heartbeats, keyed by service id.
    pub fn service_info(&self) -> String {
        format!("{}{}", self.prefix, self.service_info_topic)
    }

    /// Spec of `tbmq.sys.service.info`: compacted, one partition.
    pub fn service_info_spec(&self) -> QueueResult<TopicSpec> {
        Ok(TopicSpec::from_properties(&self.service_info(), &self.service_info_properties)?
            .compacted()
            .with_partitions(1))
    }

    /// `<p>service-info-consumer-group-<serviceId>` (ours): a node's own reader of the heartbeats.
    pub fn service_info_group(&self, service_id: &str) -> String {
        format!("{}service-info-consumer-group-{service_id}", self.prefix)
    }

    /// `<p>tbmq.msg.retained`: retained MQTT messages, keyed by MQTT topic.
    pub fn retained_msg(&self) -> String {
        format!("{}{}", self.prefix, self.retained_msg_topic)
    }

    /// Spec of `tbmq.msg.retained`: compacted (the latest record per MQTT topic is its retained
    /// message) and one partition, so that every node applies the changes in one order.
    pub fn retained_msg_spec(&self) -> QueueResult<TopicSpec> {
        Ok(TopicSpec::from_properties(&self.retained_msg(), &self.retained_msg_properties)?
            .compacted()
            .with_partitions(1))
    }

    /// `<p>retained-msg-consumer-group-<serviceId>` (ours): a node's own reader of the whole
    /// topic (it never commits; it reads from the beginning at every start).
    pub fn retained_msg_group(&self, service_id: &str) -> String {
        format!("{}retained-msg-consumer-group-{service_id}", self.prefix)
    }

    /// `<p>tbmq.msg.downlink.basic.<brokerServiceId>`: client messages other nodes received for
    /// this node's subscribers.
    pub fn basic_downlink(&self, broker_service_id: &str) -> String {
        format!("{}{}.{}", self.prefix, self.basic_downlink_prefix, broker_service_id)
    }

    /// Spec of a node's basic downlink topic: one partition, so that one node's messages to
    /// another keep their order.
    pub fn basic_downlink_spec(&self, broker_service_id: &str) -> QueueResult<TopicSpec> {
        Ok(TopicSpec::from_properties(&self.basic_downlink(broker_service_id), &self.basic_downlink_properties)?
            .with_partitions(1))
    }

    /// `<p>basic-downlink-msg-consumer-group-<brokerServiceId>`: the node's reader of its topic
    /// (it commits what it routed).
    pub fn basic_downlink_group(&self, broker_service_id: &str) -> String {
        format!("{}basic-downlink-msg-consumer-group-{broker_service_id}", self.prefix)
    }

    /// `<p>tbmq.msg.persisted.<brokerServiceId>` (ours; TBMQ's `tbmq.msg.persisted` is one topic
    /// for all nodes): the QoS 1 and 2 messages this node holds for its persistent sessions
    /// while their clients are away, keyed by client id; an empty record clears what came before
    /// it for that client.
    pub fn persisted_msg(&self, broker_service_id: &str) -> String {
        format!("{}tbmq.msg.persisted.{broker_service_id}", self.prefix)
    }

    /// Spec of a node's persisted message topic: one partition.
    pub fn persisted_msg_spec(&self, broker_service_id: &str) -> QueueResult<TopicSpec> {
        Ok(TopicSpec::from_properties(&self.persisted_msg(broker_service_id), &self.persisted_msg_properties)?
            .with_partitions(1))
    }

    /// `<p>persisted-msg-consumer-group-<brokerServiceId>`: the node's reader of its persisted
    /// messages at start; commits past what no session needs any more.
    pub fn persisted_msg_group(&self, broker_service_id: &str) -> String {
        format!("{}persisted-msg-consumer-group-{broker_service_id}", self.prefix)
    }

    /// `<p>tbmq.ie.uplink.notifications.<brokerServiceId>`.
    pub fn notifications(&self, broker_service_id: &str) -> String {
        format!("{}{}.{}", self.prefix, self.notifications_prefix, broker_service_id)
    }

    /// Spec of a notifications topic.
    pub fn notifications_spec(&self, broker_service_id: &str) -> QueueResult<TopicSpec> {
        TopicSpec::from_properties(&self.notifications(broker_service_id), &self.notifications_properties)
    }

    /// `<p>ie-uplink-notifications-consumer-group-<brokerServiceId>`.
    pub fn notifications_group(&self, broker_service_id: &str) -> String {
        format!("{}ie-uplink-notifications-consumer-group-{broker_service_id}", self.prefix)
    }

    /// `<p>tbmq.msg.ie.<id32>`.
    pub fn msg(&self, integration_id: Uuid) -> String {
        format!("{}tbmq.msg.ie.{}", self.prefix, id32(integration_id))
    }

    /// Spec of an integration's message topic (one partition).
    pub fn msg_spec(&self, integration_id: Uuid) -> QueueResult<TopicSpec> {
        Ok(TopicSpec::from_properties(&self.msg(integration_id), &self.msg_properties)?.with_partitions(1))
    }

    /// `<p>ie-msg-consumer-group-<id32>`.
    pub fn msg_group(&self, integration_id: Uuid) -> String {
        format!("{}ie-msg-consumer-group-{}", self.prefix, id32(integration_id))
    }

    /// `<p>tbmq.ie.dlq.<id32>`: the messages an integration gave up on ([`crate::wire::DeadLetterProto`]).
    pub fn dlq(&self, integration_id: Uuid) -> String {
        format!("{}tbmq.ie.dlq.{}", self.prefix, id32(integration_id))
    }

    /// Spec of an integration's dead-letter topic: the message topic's settings, one partition.
    pub fn dlq_spec(&self, integration_id: Uuid) -> QueueResult<TopicSpec> {
        Ok(TopicSpec::from_properties(&self.dlq(integration_id), &self.msg_properties)?.with_partitions(1))
    }

    /// `<p>ie-dlq-replay-group-<id32>`: how far the dead letters were replayed.
    pub fn dlq_replay_group(&self, integration_id: Uuid) -> String {
        format!("{}ie-dlq-replay-group-{}", self.prefix, id32(integration_id))
    }
}
