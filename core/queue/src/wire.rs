//! Messages on the queue between broker nodes and executors, as protobuf (prost), with TBMQ's
//! message and field names and numbers where TBMQ has them (`integration.proto`, `queue.proto`).
//!
//! Where TBMQ puts Java-serialized objects (event bodies, validation errors) we use protobuf
//! fields instead, at new field numbers, so nothing here needs Java. Every top-level message
//! carries `wire_version` (field 15): readers accept any version and ignore unknown fields, so
//! fields can be added compatibly; a reader that meets a newer major layout can say so.

use prost::Message;
use uuid::Uuid;

/// Version written into every top-level message.
pub const WIRE_VERSION: u32 = 1;

/// `queue.UserPropertyProto`.
#[derive(Clone, PartialEq, Message)]
pub struct UserPropertyProto {
    /// Name.
    #[prost(string, tag = "1")]
    pub key: String,
    /// Value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `queue.MqttPropertiesProto`.
#[derive(Clone, PartialEq, Message)]
pub struct MqttPropertiesProto {
    /// Payload format indicator (1 = UTF-8).
    #[prost(int32, optional, tag = "1")]
    pub payload_format_indicator: Option<i32>,
    /// Content type.
    #[prost(string, optional, tag = "2")]
    pub content_type: Option<String>,
    /// Response topic.
    #[prost(string, optional, tag = "3")]
    pub response_topic: Option<String>,
    /// Correlation data.
    #[prost(bytes = "vec", optional, tag = "4")]
    pub correlation_data: Option<Vec<u8>>,
    /// Subscription identifiers.
    #[prost(int32, repeated, tag = "5")]
    pub subscription_ids: Vec<i32>,
    /// Message expiry interval left, seconds (our addition).
    #[prost(uint32, optional, tag = "16")]
    pub message_expiry_interval: Option<u32>,
}

/// `queue.PublishMsgProto`: one MQTT PUBLISH as the publisher sent it.
#[derive(Clone, PartialEq, Message)]
pub struct PublishMsgProto {
    /// Publisher's client id.
    #[prost(string, tag = "1")]
    pub client_id: String,
    /// Packet id.
    #[prost(int32, tag = "2")]
    pub packet_id: i32,
    /// Payload.
    #[prost(bytes = "bytes", tag = "3")]
    pub payload: bytes::Bytes,
    /// Retain flag.
    #[prost(bool, tag = "4")]
    pub retain: bool,
    /// QoS.
    #[prost(int32, tag = "5")]
    pub qos: i32,
    /// Topic.
    #[prost(string, tag = "6")]
    pub topic_name: String,
    /// User properties, in order.
    #[prost(message, repeated, tag = "7")]
    pub user_properties: Vec<UserPropertyProto>,
    /// Other MQTT 5 properties.
    #[prost(message, optional, tag = "8")]
    pub mqtt_properties: Option<MqttPropertiesProto>,
    /// Client certificate CN.
    #[prost(string, optional, tag = "9")]
    pub client_cert_cn: Option<String>,
}

/// A message an integration gave up on (ours; TBMQ drops them): the value of
/// `tbmq.ie.dlq.<id32>` records, written by the executor before it commits the pack.
#[derive(Clone, PartialEq, Message)]
pub struct DeadLetterProto {
    /// The original record value (a [`PublishIntegrationMsgProto`], or undecodable bytes).
    #[prost(bytes = "vec", tag = "1")]
    pub record: Vec<u8>,
    /// Its offset on the integration's message topic.
    #[prost(int64, tag = "2")]
    pub offset: i64,
    /// Why: the driver's last reason (`rejected: ...`, `retry: ...`) or `undecodable record`.
    #[prost(string, tag = "3")]
    pub reason: String,
    /// Delivery attempts made.
    #[prost(uint32, tag = "4")]
    pub attempts: u32,
    /// When it was given up (ms since the epoch).
    #[prost(int64, tag = "5")]
    pub failed_at: i64,
    /// Service id of the executor that gave it up.
    #[prost(string, tag = "6")]
    pub service_id: String,
    /// Wire version.
    #[prost(uint32, tag = "15")]
    pub wire_version: u32,
}

/// `integration.PublishIntegrationMsgProto`: the value of `tbmq.msg.ie.<id32>` records.
#[derive(Clone, PartialEq, Message)]
pub struct PublishIntegrationMsgProto {
    /// The message.
    #[prost(message, optional, tag = "1")]
    pub publish_msg_proto: Option<PublishMsgProto>,
    /// Service id of the routing broker node.
    #[prost(string, tag = "2")]
    pub tbmq_node: String,
    /// Broker time (ms) when queued for the integration.
    #[prost(int64, tag = "3")]
    pub timestamp: i64,
    /// Wire version.
    #[prost(uint32, tag = "15")]
    pub wire_version: u32,
}

/// `integration.ComponentLifecycleEventProto` (numbers as TBMQ).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum ComponentLifecycleEvent {
    /// Created.
    Created = 0,
    /// Updated.
    Updated = 1,
    /// Deleted.
    Deleted = 2,
    /// Started.
    Started = 3,
    /// Stopped.
    Stopped = 4,
    /// Failed.
    Failed = 5,
    /// Activated (unused by integrations).
    Activated = 6,
    /// Suspended (unused by integrations).
    Suspended = 7,
    /// Deactivated (unused by integrations).
    Deactivated = 8,
    /// Re-initialised.
    Reinit = 9,
}

impl ComponentLifecycleEvent {
    /// TBMQ's upper-case name (`STARTED`).
    pub fn name(self) -> &'static str {
        match self {
            ComponentLifecycleEvent::Created => "CREATED",
            ComponentLifecycleEvent::Updated => "UPDATED",
            ComponentLifecycleEvent::Deleted => "DELETED",
            ComponentLifecycleEvent::Started => "STARTED",
            ComponentLifecycleEvent::Stopped => "STOPPED",
            ComponentLifecycleEvent::Failed => "FAILED",
            ComponentLifecycleEvent::Activated => "ACTIVATED",
            ComponentLifecycleEvent::Suspended => "SUSPENDED",
            ComponentLifecycleEvent::Deactivated => "DEACTIVATED",
            ComponentLifecycleEvent::Reinit => "REINIT",
        }
    }
}

/// `integration.IntegrationMsgProto`: lifecycle downlink (create, update, delete, reinit).
#[derive(Clone, PartialEq, Message)]
pub struct IntegrationMsgProto {
    /// Integration id, most significant bits.
    #[prost(int64, tag = "1")]
    pub integration_id_msb: i64,
    /// Integration id, least significant bits.
    #[prost(int64, tag = "2")]
    pub integration_id_lsb: i64,
    /// Integration type (`HTTP`, ...).
    #[prost(string, tag = "3")]
    pub r#type: String,
    /// Name.
    #[prost(string, optional, tag = "4")]
    pub name: Option<String>,
    /// Enabled flag.
    #[prost(bool, optional, tag = "5")]
    pub enabled: Option<bool>,
    /// The whole `configuration` object as JSON text.
    #[prost(string, optional, tag = "6")]
    pub configuration: Option<String>,
    /// Event.
    #[prost(enumeration = "ComponentLifecycleEvent", tag = "7")]
    pub event: i32,
}

/// `integration.IntegrationProto`: a whole integration entity.
#[derive(Clone, PartialEq, Message)]
pub struct IntegrationProto {
    /// Id, most significant bits.
    #[prost(int64, tag = "1")]
    pub integration_id_msb: i64,
    /// Id, least significant bits.
    #[prost(int64, tag = "2")]
    pub integration_id_lsb: i64,
    /// Created time (ms).
    #[prost(int64, tag = "3")]
    pub created_time: i64,
    /// Type.
    #[prost(string, tag = "4")]
    pub r#type: String,
    /// Name.
    #[prost(string, tag = "5")]
    pub name: String,
    /// Enabled.
    #[prost(bool, tag = "6")]
    pub enabled: bool,
    /// `configuration` JSON text.
    #[prost(string, tag = "7")]
    pub configuration: String,
    /// `additionalInfo` JSON text.
    #[prost(string, optional, tag = "8")]
    pub additional_info: Option<String>,
}

/// `integration.IntegrationValidationRequestProto`.
#[derive(Clone, PartialEq, Message)]
pub struct IntegrationValidationRequestProto {
    /// Request id, most significant bits.
    #[prost(int64, tag = "1")]
    pub id_msb: i64,
    /// Request id, least significant bits.
    #[prost(int64, tag = "2")]
    pub id_lsb: i64,
    /// Broker node to answer (its notifications topic).
    #[prost(string, tag = "3")]
    pub service_id: String,
    /// The integration to validate or check.
    #[prost(message, optional, tag = "4")]
    pub configuration: Option<IntegrationProto>,
    /// `VALIDATE` or `CHECK_CONNECTION`.
    #[prost(string, tag = "5")]
    pub r#type: String,
    /// Sent at (ms).
    #[prost(int64, tag = "8")]
    pub timestamp: i64,
    /// No answer expected after this time (ms); 0 = none.
    #[prost(int64, tag = "9")]
    pub deadline: i64,
}

/// `integration.DownlinkIntegrationMsgProto`: a record of `tbmq.ie.downlink.<type>`.
#[derive(Clone, PartialEq, Message)]
pub struct DownlinkIntegrationMsgProto {
    /// Lifecycle message.
    #[prost(message, optional, tag = "1")]
    pub integration_msg: Option<IntegrationMsgProto>,
    /// Validation or check-connection request.
    #[prost(message, optional, tag = "2")]
    pub validation_request_msg: Option<IntegrationValidationRequestProto>,
    /// Wire version.
    #[prost(uint32, tag = "15")]
    pub wire_version: u32,
}

/// A field-level validation error (our addition; TBMQ sends one Java-serialized string).
#[derive(Clone, PartialEq, Message)]
pub struct FieldErrorProto {
    /// JSON path of the field.
    #[prost(string, tag = "1")]
    pub field: String,
    /// What is wrong.
    #[prost(string, tag = "2")]
    pub message: String,
}

/// `integration.IntegrationValidationResponseProto`. No `error` and no field errors = success.
#[derive(Clone, PartialEq, Message)]
pub struct IntegrationValidationResponseProto {
    /// Request id, most significant bits.
    #[prost(int64, tag = "1")]
    pub id_msb: i64,
    /// Request id, least significant bits.
    #[prost(int64, tag = "2")]
    pub id_lsb: i64,
    /// Error text (UTF-8; TBMQ puts a Java-serialized string here).
    #[prost(string, optional, tag = "3")]
    pub error: Option<String>,
    /// Field-level errors of a VALIDATE request.
    #[prost(message, repeated, tag = "4")]
    pub field_errors: Vec<FieldErrorProto>,
    /// Service id of the answering executor.
    #[prost(string, tag = "5")]
    pub executor_service_id: String,
    /// What failed (ours): one of [`check_failure`]; absent from older executors.
    #[prost(string, optional, tag = "16")]
    pub failure: Option<String>,
}

/// Values of [`IntegrationValidationResponseProto::failure`]: why a validation or connection
/// check failed, so a client can tell a configuration to fix from a target to bring up.
pub mod check_failure {
    /// The configuration is invalid (field errors or a configuration error from the driver).
    pub const CONFIGURATION_INVALID: &str = "CONFIGURATION_INVALID";
    /// The configuration is valid but the target could not be reached or refused the connection.
    pub const TARGET_UNREACHABLE: &str = "TARGET_UNREACHABLE";
    /// The driver failed otherwise (no driver for the type, a panic, an internal error).
    pub const DRIVER_ERROR: &str = "DRIVER_ERROR";
}

/// A lifecycle event body (replaces TBMQ's Java `LifecycleEvent`).
#[derive(Clone, PartialEq, Message)]
pub struct LifecycleEventProto {
    /// `STARTED`, `STOPPED`, `FAILED`, `REINIT`, ...
    #[prost(string, tag = "1")]
    pub lc_event_type: String,
    /// Success flag.
    #[prost(bool, tag = "2")]
    pub success: bool,
    /// Error text on failure.
    #[prost(string, optional, tag = "3")]
    pub error: Option<String>,
}

/// A statistics event body (replaces TBMQ's Java `StatisticsEvent`).
#[derive(Clone, PartialEq, Message)]
pub struct StatisticsEventProto {
    /// Messages delivered since the last statistics event.
    #[prost(int64, tag = "1")]
    pub messages_processed: i64,
    /// Errors since the last statistics event.
    #[prost(int64, tag = "2")]
    pub errors_occurred: i64,
}

/// An error event body (replaces TBMQ's Java `ErrorEvent`).
#[derive(Clone, PartialEq, Message)]
pub struct ErrorEventProto {
    /// Where it happened (`onMsgProcess`).
    #[prost(string, tag = "1")]
    pub method: String,
    /// Error text.
    #[prost(string, optional, tag = "2")]
    pub error: Option<String>,
}

/// `integration.IntegrationEventProto`. Source is always INTEGRATION (0).
#[derive(Clone, PartialEq, Message)]
pub struct IntegrationEventProto {
    /// `TbEventSourceProto` (0 = INTEGRATION).
    #[prost(int32, tag = "1")]
    pub source: i32,
    /// Integration id, most significant bits.
    #[prost(int64, tag = "2")]
    pub event_source_id_msb: i64,
    /// Integration id, least significant bits.
    #[prost(int64, tag = "3")]
    pub event_source_id_lsb: i64,
    /// Service id of the executor that produced the event.
    #[prost(string, tag = "4")]
    pub service_id: String,
    /// Lifecycle body.
    #[prost(message, optional, tag = "5")]
    pub lifecycle: Option<LifecycleEventProto>,
    /// Statistics body.
    #[prost(message, optional, tag = "6")]
    pub statistics: Option<StatisticsEventProto>,
    /// Error body.
    #[prost(message, optional, tag = "7")]
    pub error: Option<ErrorEventProto>,
}

/// `queue.ServiceInfo`, plus the integration types an executor serves (our addition).
#[derive(Clone, PartialEq, Message)]
pub struct ServiceInfo {
    /// Service id.
    #[prost(string, tag = "1")]
    pub service_id: String,
    /// `tbmq` or `tbmq-integration-executor`.
    #[prost(string, optional, tag = "2")]
    pub service_type: Option<String>,
    /// Integration types served (upper case), with driver versions as `TYPE@version`.
    #[prost(string, repeated, tag = "16")]
    pub integration_types: Vec<String>,
    /// Plugin files the executor refused, one line each.
    #[prost(string, repeated, tag = "17")]
    pub plugin_errors: Vec<String>,
    /// Sent at (ms); a broker forgets an executor not heard from for a while.
    #[prost(int64, tag = "18")]
    pub timestamp: i64,
    /// The driver behind each served type (ours): version, file and configuration schema.
    #[prost(message, repeated, tag = "19")]
    pub drivers: Vec<DriverInfoProto>,
    /// When the service started (ms; broker nodes' heartbeats on `tbmq.sys.service.info`, ours).
    #[prost(int64, tag = "20")]
    pub start_time: i64,
    /// The service's version (broker nodes' heartbeats, ours).
    #[prost(string, tag = "21")]
    pub version: String,
    /// Where the service listens, as URLs such as `mqtt://10.0.0.5:1883` (broker nodes' heartbeats, ours).
    #[prost(string, repeated, tag = "22")]
    pub listeners: Vec<String>,
    /// The integrations an executor runs now, with how their deliveries go (executors, ours).
    #[prost(message, repeated, tag = "23")]
    pub integrations: Vec<IntegrationStatusProto>,
}

/// How one integration an executor runs is doing (ours), as announced in [`ServiceInfo`]:
/// the broker derives a status from it that is only Active while an executor holds the
/// integration and its deliveries succeed. Times are ms since the epoch, 0 = never.
#[derive(Clone, PartialEq, Message)]
pub struct IntegrationStatusProto {
    /// Integration id, high bits.
    #[prost(int64, tag = "1")]
    pub integration_id_msb: i64,
    /// Integration id, low bits.
    #[prost(int64, tag = "2")]
    pub integration_id_lsb: i64,
    /// The driver instance started (false: its start failed, waiting to be re-initialised).
    #[prost(bool, tag = "3")]
    pub started: bool,
    /// Last message delivered.
    #[prost(int64, tag = "4")]
    pub last_delivered_ts: i64,
    /// Last message not delivered (retried, timed out, rejected or given up on).
    #[prost(int64, tag = "5")]
    pub last_error_ts: i64,
    /// The reason of that last failure (truncated).
    #[prost(string, optional, tag = "6")]
    pub last_error: Option<String>,
    /// Driver calls in a row with failures and no delivery since the last delivery.
    #[prost(uint64, tag = "7")]
    pub consecutive_failures: u64,
    /// Start of the current run of failures (0 = not failing).
    #[prost(int64, tag = "8")]
    pub failing_since_ts: i64,
    /// Messages stored in the integration's queue topic and not committed yet (absent: unknown).
    #[prost(int64, optional, tag = "9")]
    pub backlog: Option<i64>,
    /// What the driver says of its connection to the target (absent: the driver does not say).
    #[prost(bool, optional, tag = "10")]
    pub connected: Option<bool>,
    /// Why the target is disconnected, when it is.
    #[prost(string, optional, tag = "11")]
    pub disconnect_reason: Option<String>,
    /// Messages handed to the driver (TBMQ's `totalMsgs`), since the executor took it.
    #[prost(uint64, tag = "12")]
    pub total_msgs: u64,
    /// Messages delivered.
    #[prost(uint64, tag = "13")]
    pub delivered_msgs: u64,
    /// Messages given up on (failed, timed out or rejected).
    #[prost(uint64, tag = "14")]
    pub failed_msgs: u64,
    /// Messages of attempts that are retried.
    #[prost(uint64, tag = "15")]
    pub retried_msgs: u64,
    /// Messages stored as dead letters.
    #[prost(uint64, tag = "16")]
    pub dead_lettered_msgs: u64,
}

/// A driver an executor serves a type with (ours), as announced in [`ServiceInfo`].
#[derive(Clone, PartialEq, Message)]
pub struct DriverInfoProto {
    /// Integration type (upper case).
    #[prost(string, tag = "1")]
    pub integration_type: String,
    /// The driver's own version.
    #[prost(string, tag = "2")]
    pub driver_version: String,
    /// The library file it was loaded from.
    #[prost(string, tag = "3")]
    pub file: String,
    /// JSON Schema of its `clientConfiguration` (JSON text), when the driver declares one.
    #[prost(string, optional, tag = "4")]
    pub config_schema: Option<String>,
    /// Capability bits the driver announced.
    #[prost(uint64, tag = "5")]
    pub capabilities: u64,
    /// One-line description.
    #[prost(string, tag = "6")]
    pub description: String,
}

/// `queue.TopicSubscriptionProto`: one topic filter of a client or an integration.
#[derive(Clone, PartialEq, Message)]
pub struct TopicSubscriptionProto {
    /// Topic filter.
    #[prost(string, tag = "1")]
    pub topic: String,
    /// Maximum QoS (TBMQ writes 1 for integrations).
    #[prost(int32, tag = "2")]
    pub qos: i32,
    /// Share name of a shared subscription.
    #[prost(string, optional, tag = "3")]
    pub share_name: Option<String>,
    /// MQTT 5 no local (ours).
    #[prost(bool, tag = "16")]
    pub no_local: bool,
    /// MQTT 5 retain as published (ours).
    #[prost(bool, tag = "17")]
    pub retain_as_published: bool,
    /// MQTT 5 subscription identifier (ours).
    #[prost(uint32, optional, tag = "18")]
    pub subscription_id: Option<u32>,
}

/// `queue.SubscriptionsSourceProto`: who a record of `tbmq.client.subscriptions` belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum SubscriptionsSourceProto {
    /// An MQTT client (keyed by its client id).
    MqttClient = 0,
    /// An integration (keyed by its id).
    Integration = 1,
}

/// `queue.ClientSubscriptionsProto`: a record of the compacted `tbmq.client.subscriptions`,
/// keyed by client id or integration id; every subscription the key has now.
#[derive(Clone, PartialEq, Message)]
pub struct ClientSubscriptionsProto {
    /// The subscriptions (none: the key has no subscriptions left).
    #[prost(message, repeated, tag = "1")]
    pub subscriptions: Vec<TopicSubscriptionProto>,
    /// Whose they are.
    #[prost(enumeration = "SubscriptionsSourceProto", optional, tag = "2")]
    pub source: Option<i32>,
    /// Wire version.
    #[prost(uint32, tag = "15")]
    pub wire_version: u32,
    /// The broker node that holds the MQTT client's session (ours; TBMQ keeps it in
    /// `tbmq.client.session`).
    #[prost(string, optional, tag = "16")]
    pub service_id: Option<String>,
    /// The node named by `service_id` ended the client's session (ours): the record counts only
    /// while that node is the one the key last named.
    #[prost(bool, tag = "17")]
    pub session_ended: bool,
    /// The session's expiry interval, seconds (ours): a node restores its sessions with one
    /// above 0 after a restart.
    #[prost(uint32, optional, tag = "18")]
    pub session_expiry_interval: Option<u32>,
    /// The writing node's sequence number of the record (ours, counted from its start): a node
    /// knows when it has read back its latest record of a client even if compaction removed the
    /// earlier ones.
    #[prost(uint64, optional, tag = "19")]
    pub node_seq: Option<u64>,
    /// When the session's client disconnected, ms since the epoch (ours): a node that restores
    /// the session after a restart counts its expiry from here. Absent while a client is
    /// connected.
    #[prost(int64, optional, tag = "20")]
    pub disconnected_at: Option<i64>,
    /// Packet ids of QoS 2 PUBLISHes the client sent and the broker acknowledged with PUBREC,
    /// whose PUBREL had not come when the client disconnected (ours; TBMQ keeps them in its
    /// generic client session context). Written with `disconnected_at`: the node that resumes
    /// the session answers a re-sent PUBLISH with one of these ids with PUBREC only (no second
    /// delivery).
    #[prost(uint32, repeated, tag = "21")]
    pub awaiting_pubrel: Vec<u32>,
}

/// A shared subscription group one node asks another to deliver a message to (ours).
#[derive(Clone, PartialEq, Message)]
pub struct SharedGroupProto {
    /// The share name.
    #[prost(string, tag = "1")]
    pub share_name: String,
    /// The topic filter, without the `$share/<name>/` prefix.
    #[prost(string, tag = "2")]
    pub topic_filter: String,
}

/// The value of `tbmq.msg.downlink.basic.<brokerServiceId>` records (ours; TBMQ sends one
/// `ClientPublishMsgProto` per subscriber, we send one record per node): a client message the
/// node `origin_service_id` received, for the subscribers of the receiving node.
#[derive(Clone, PartialEq, Message)]
pub struct ClusterPublishMsgProto {
    /// The message as published.
    #[prost(message, optional, tag = "1")]
    pub publish_msg: Option<PublishMsgProto>,
    /// Deliver it to the node's (non-shared) subscriptions that match.
    #[prost(bool, tag = "2")]
    pub to_subscribers: bool,
    /// The shared subscription groups the node delivers it to (one member each).
    #[prost(message, repeated, tag = "3")]
    pub shared_groups: Vec<SharedGroupProto>,
    /// Service id of the node that received it.
    #[prost(string, tag = "4")]
    pub origin_service_id: String,
    /// When that node received it (ms since the epoch); message expiry counts from it.
    #[prost(int64, tag = "5")]
    pub received_at: i64,
    /// The one client it goes to (a session taken over: the messages the old node held).
    #[prost(string, optional, tag = "6")]
    pub target_client_id: Option<String>,
    /// The QoS it goes to that client with.
    #[prost(int32, optional, tag = "7")]
    pub target_qos: Option<i32>,
    /// Wire version.
    #[prost(uint32, tag = "15")]
    pub wire_version: u32,
}

/// `queue.RetainedMsgProto`: a record of the compacted `tbmq.msg.retained`, keyed by the MQTT
/// topic; a cleared retained message is a tombstone (an empty value), not this message.
/// Fields 1 to 6 follow TBMQ's layout as we know it; `service_id` and `client_id` are ours.
#[derive(Clone, PartialEq, Message)]
pub struct RetainedMsgProto {
    /// Payload (never empty: an empty payload clears the topic's retained message).
    #[prost(bytes = "bytes", tag = "1")]
    pub payload: bytes::Bytes,
    /// QoS the publisher used.
    #[prost(int32, tag = "2")]
    pub qos: i32,
    /// Topic (the same as the record key).
    #[prost(string, tag = "3")]
    pub topic: String,
    /// User properties, in order.
    #[prost(message, repeated, tag = "4")]
    pub user_properties: Vec<UserPropertyProto>,
    /// When the broker received the message (ms since the epoch); the message expiry interval
    /// counts from here.
    #[prost(int64, tag = "5")]
    pub created: i64,
    /// Other MQTT 5 properties; `message_expiry_interval` is the interval as received.
    #[prost(message, optional, tag = "6")]
    pub mqtt_properties: Option<MqttPropertiesProto>,
    /// Service id of the broker node that received the message (ours).
    #[prost(string, tag = "7")]
    pub service_id: String,
    /// Publisher's client id (ours).
    #[prost(string, tag = "8")]
    pub client_id: String,
    /// Wire version.
    #[prost(uint32, tag = "15")]
    pub wire_version: u32,
}

/// `integration.UplinkIntegrationMsgProto`: a record of `tbmq.ie.uplink`.
#[derive(Clone, PartialEq, Message)]
pub struct UplinkIntegrationMsgProto {
    /// An event.
    #[prost(message, optional, tag = "1")]
    pub event_proto: Option<IntegrationEventProto>,
    /// Service info.
    #[prost(message, optional, tag = "2")]
    pub service_info_proto: Option<ServiceInfo>,
    /// Wire version.
    #[prost(uint32, tag = "15")]
    pub wire_version: u32,
}

/// `integration.UplinkIntegrationNotificationMsgProto`: a record of
/// `tbmq.ie.uplink.notifications.<brokerServiceId>`.
#[derive(Clone, PartialEq, Message)]
pub struct UplinkIntegrationNotificationMsgProto {
    /// The answer.
    #[prost(message, optional, tag = "1")]
    pub integration_validation_response_msg: Option<IntegrationValidationResponseProto>,
    /// Wire version.
    #[prost(uint32, tag = "15")]
    pub wire_version: u32,
}

/// Splits a UUID into Java's (most, least) significant bits.
pub fn uuid_to_bits(id: Uuid) -> (i64, i64) {
    let (msb, lsb) = id.as_u64_pair();
    (msb as i64, lsb as i64)
}

/// Joins Java's (most, least) significant bits into a UUID.
pub fn uuid_from_bits(msb: i64, lsb: i64) -> Uuid {
    Uuid::from_u64_pair(msb as u64, lsb as u64)
}

#[cfg(test)]
mod tests;
