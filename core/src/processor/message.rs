//! A decoded queue record as the message a driver sees: borrowed views into the
//! [`PublishIntegrationMsgProto`], no copies. Decoding itself (and what happens to records that
//! do not decode) is the pack's first stage, in [`super::pack`].

use abi_stable::std_types::{RSlice, RStr};
use trib_plugin_api::abi::{Message, UserProperty};

use crate::wire::PublishIntegrationMsgProto;

/// The MQTT user properties of a message, for its [`Message::user_properties`].
pub(super) fn user_properties(m: &PublishIntegrationMsgProto) -> Vec<UserProperty<'_>> {
    m.publish_msg_proto.as_ref().map_or_else(Vec::new, |p| {
        p.user_properties
            .iter()
            .map(|u| UserProperty { key: RStr::from_str(&u.key), value: RStr::from_str(&u.value) })
            .collect()
    })
}

/// The driver's view of a decoded record; `m` must carry a `publish_msg_proto` (records without
/// one never get past decoding).
pub(super) fn to_message<'a>(m: &'a PublishIntegrationMsgProto, props: &'a [UserProperty<'a>]) -> Message<'a> {
    let p = m.publish_msg_proto.as_ref().expect("records without a message were filtered out");
    let mp = p.mqtt_properties.as_ref();
    let opt_str = |s: Option<&'a String>| s.map(|s| RStr::from_str(s)).into();
    Message {
        topic: RStr::from_str(&p.topic_name),
        payload: RSlice::from_slice(&p.payload),
        qos: p.qos.clamp(0, 2) as u8,
        retain: p.retain,
        client_id: RStr::from_str(&p.client_id),
        broker_node: RStr::from_str(&m.tbmq_node),
        timestamp_ms: m.timestamp,
        user_properties: RSlice::from_slice(props),
        content_type: opt_str(mp.and_then(|x| x.content_type.as_ref())),
        correlation_data: mp.and_then(|x| x.correlation_data.as_deref()).map(RSlice::from_slice).into(),
        response_topic: opt_str(mp.and_then(|x| x.response_topic.as_ref())),
        message_expiry_secs: mp.and_then(|x| x.message_expiry_interval).into(),
        payload_is_utf8: mp.and_then(|x| x.payload_format_indicator).map(|v| v == 1).into(),
        client_cert_cn: opt_str(p.client_cert_cn.as_ref()),
    }
}
