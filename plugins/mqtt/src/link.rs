//! One face over rumqttc's MQTT 3.1.1 and MQTT 5 clients: options from the [`Config`], a
//! [`Sender`] that queues PUBLISH requests and a [`Link`] (the event loop) whose events are
//! reduced to what delivery tracking needs ([`LinkEvent`]).
//!
//! Nothing here keeps message state; `tracker` maps these events to messages.

use std::{sync::Arc, time::Duration};

use rumqttc::{
    v5::{self, mqttbytes::v5 as p5},
    Outgoing, TlsConfiguration, Transport,
};
use trib_plugin_api::support::credentials::Credentials;

use crate::{
    config::{Config, MqttVersion},
    request::{Publish, MQTT_MAX_REMAINING_LENGTH},
    retry::AckReason,
};

/// Largest packet accepted from the broker: only acknowledgements and CONNACK/DISCONNECT arrive.
const MAX_INCOMING_PACKET: usize = 1024 * 1024;

/// What the broker announced in CONNACK (MQTT 5); defaults say "no limit".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Maximum packet size the broker accepts.
    pub max_packet_size: Option<u32>,
    /// Highest QoS the broker accepts.
    pub max_qos: u8,
    /// Whether the broker accepts retained messages.
    pub retain_available: bool,
    /// How many QoS 1 and 2 PUBLISHes the broker takes unacknowledged (Receive Maximum).
    pub receive_max: Option<u16>,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits { max_packet_size: None, max_qos: 2, retain_available: true, receive_max: None }
    }
}

/// rumqttc's in-flight bookkeeping while the window is closed (see [`Link::resize`]): one slot,
/// as rumqttc needs at least one; nothing is sent while the window is closed.
pub const CLOSED_SLOTS: u16 = 1;

/// An event of the event loop, as delivery tracking sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEvent {
    /// CONNACK accepted.
    Connected(ServerLimits),
    /// A PUBLISH was written and flushed; packet id 0 for QoS 0.
    Sent(u16),
    /// PUBACK (QoS 1) received.
    PubAck(u16, AckReason),
    /// PUBREC (QoS 2) received; only a refusal ends the exchange here.
    PubRec(u16, AckReason),
    /// PUBCOMP (QoS 2) received.
    PubComp(u16, AckReason),
    /// Our DISCONNECT was written.
    Disconnected,
    /// Anything else (pings, packet id collisions, PUBREL).
    Other,
}

/// Why the event loop stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkError {
    /// The broker refused the connection with this CONNACK code.
    Refused(String),
    /// No CONNACK within the connect timeout.
    Timeout,
    /// Network, TLS or protocol failure.
    Failed(String),
}

/// Queues requests for the event loop. Never blocks.
#[derive(Clone)]
pub enum Sender {
    /// MQTT 3.1.1.
    V4(rumqttc::AsyncClient),
    /// MQTT 5.
    V5(v5::AsyncClient),
}

/// The event loop of one connection.
pub enum Link {
    /// MQTT 3.1.1.
    V4(Box<rumqttc::EventLoop>),
    /// MQTT 5.
    V5(Box<v5::EventLoop>),
}

/// Creates the client for `config`; nothing connects before the first [`Link::poll`].
/// The longest [`Link::nudge`] waits for its PINGREQ to be written.
const NUDGE_WRITE: std::time::Duration = std::time::Duration::from_secs(1);

/// `window` bounds the requests queued; `connect_timeout` is the wait for CONNACK. The link
/// starts with its in-flight bookkeeping closed ([`CLOSED_SLOTS`]): [`Link::resize`] opens it.
pub fn open(
    config: &Config,
    tls: Option<Arc<rustls::ClientConfig>>,
    window: u16,
    connect_timeout: Duration,
) -> (Sender, Link) {
    let transport = tls.map(|c| Transport::Tls(TlsConfiguration::Rustls(c))).unwrap_or(Transport::Tcp);
    let login = match &config.credentials {
        Credentials::Basic { username, password } => Some((username.clone(), password.clone())),
        _ => None,
    };
    let timeout_secs = connect_timeout.as_secs().max(1);
    let capacity = usize::from(window) + 8;
    let mut network = rumqttc::NetworkOptions::new();
    network.set_tcp_nodelay(true);
    network.set_connection_timeout(timeout_secs);
    match config.version {
        MqttVersion::V311 => {
            let mut o = rumqttc::MqttOptions::new(config.client_id.clone(), config.host.clone(), config.port);
            o.set_transport(transport)
                .set_keep_alive(Duration::from_secs(u64::from(config.keep_alive_sec)))
                .set_clean_session(true)
                .set_inflight(CLOSED_SLOTS)
                .set_request_channel_capacity(capacity)
                .set_max_packet_size(MAX_INCOMING_PACKET, MQTT_MAX_REMAINING_LENGTH + 5);
            if let Some((user, pass)) = login {
                o.set_credentials(user, pass);
            }
            let (client, mut eventloop) = rumqttc::AsyncClient::new(o, capacity);
            eventloop.set_network_options(network);
            (Sender::V4(client), Link::V4(Box::new(eventloop)))
        }
        MqttVersion::V5 => {
            let mut o = v5::MqttOptions::new(config.client_id.clone(), config.host.clone(), config.port);
            o.set_transport(transport)
                .set_keep_alive(Duration::from_secs(v5_keep_alive(config.keep_alive_sec)))
                .set_clean_start(true)
                .set_outgoing_inflight_upper_limit(CLOSED_SLOTS)
                .set_request_channel_capacity(capacity)
                .set_connection_timeout(timeout_secs)
                .set_network_options(network);
            if let Some((user, pass)) = login {
                o.set_credentials(user, pass);
            }
            let (client, eventloop) = v5::AsyncClient::new(o, capacity);
            (Sender::V5(client), Link::V5(Box::new(eventloop)))
        }
    }
}

/// The packet ids an open window of `window` messages uses: four times the window, so that a
/// packet id is seldom still unacknowledged when its turn comes again (rumqttc then stops
/// sending until it is, a collision).
pub fn slots_for(window: u16) -> u16 {
    window.saturating_mul(4)
}

/// rumqttc's MQTT 5 client refuses keep alives under 5 s, and 0 would make it ping without
/// pause, so "disabled" (0) becomes the longest interval MQTT can express and 1..4 become 5.
pub fn v5_keep_alive(secs: u16) -> u64 {
    match secs {
        0 => u64::from(u16::MAX),
        s => u64::from(s.max(5)),
    }
}

impl Sender {
    /// Queues `publish`; `false` when the client's queue is closed or full.
    pub fn try_publish(&self, publish: Publish) -> bool {
        match self {
            Sender::V4(c) => {
                let qos = rumqttc::qos(publish.qos).unwrap_or(rumqttc::QoS::AtLeastOnce);
                c.try_publish(publish.topic, qos, publish.retain, publish.payload).is_ok()
            }
            Sender::V5(c) => {
                let qos = v5::mqttbytes::qos(publish.qos).unwrap_or(v5::mqttbytes::QoS::AtLeastOnce);
                let props = publish.properties.map(|p| p5::PublishProperties {
                    payload_format_indicator: p.payload_format,
                    message_expiry_interval: p.message_expiry_secs,
                    topic_alias: None,
                    response_topic: p.response_topic,
                    correlation_data: p.correlation_data.map(Into::into),
                    user_properties: p.user,
                    subscription_identifiers: Vec::new(),
                    content_type: p.content_type,
                });
                match props {
                    Some(props) => {
                        c.try_publish_with_properties(publish.topic, qos, publish.retain, publish.payload, props)
                    }
                    None => c.try_publish(publish.topic, qos, publish.retain, publish.payload),
                }
                .is_ok()
            }
        }
    }

    /// Queues a DISCONNECT; ignored when the queue is closed or full.
    pub fn try_disconnect(&self) {
        let _ = match self {
            Sender::V4(c) => c.try_disconnect().is_ok(),
            Sender::V5(c) => c.try_disconnect().is_ok(),
        };
    }
}

impl Link {
    /// Drives the connection (connecting first if needed) until the next event.
    pub async fn poll(&mut self) -> Result<LinkEvent, LinkError> {
        match self {
            Link::V4(l) => l.poll().await.map(v4_event).map_err(v4_error),
            Link::V5(l) => l.poll().await.map(v5_event).map_err(v5_error),
        }
    }

    /// Sends a PINGREQ at once unless one is unanswered (a second one would make rumqttc fail
    /// the connection) or a packet id collision is pending (pings count against resolving it).
    ///
    /// Used while acknowledgements are awaited and nothing else is to be sent: a broker that
    /// leaves Nagle's algorithm on (Mosquitto's default) holds its small PUBACKs until our TCP
    /// ACK arrives, which the kernel delays by up to 40 ms when we send nothing; the PINGREQ
    /// carries that ACK at once.
    ///
    /// Written here, not queued (MQTT 3.1.1; queued for MQTT 5, see below): rumqttc sends queued requests (its `pending`) before new ones,
    /// each after a `pending_throttle` sleep, which even at zero waits for the next tick of
    /// tokio's 1 ms timer wheel; a PUBLISH that came meanwhile waited behind the ping (about
    /// 1 ms added to every message at 1,000 msg/s). A write that fails, or does not finish
    /// within [`NUDGE_WRITE`], is left to the next [`Link::poll`], which finds the connection
    /// broken or finishes the flush.
    pub async fn nudge(&mut self) {
        match self {
            Link::V4(l) => {
                if l.state.await_pingresp || l.state.collision.is_some() || !l.pending.is_empty() {
                    return;
                }
                let Some(network) = l.network.as_mut() else { return };
                if let Ok(Some(packet)) = l.state.handle_outgoing_packet(rumqttc::Request::PingReq(rumqttc::PingReq)) {
                    let _ = tokio::time::timeout(NUDGE_WRITE, async {
                        network.write(packet).await?;
                        network.flush().await
                    })
                    .await;
                }
            }
            // rumqttc's MQTT 5 event loop does not let its connection be written to: the ping
            // is queued, and a PUBLISH that comes within the next timer tick waits behind it.
            Link::V5(l) => {
                if !l.state.await_pingresp && l.state.collision.is_none() && l.pending.is_empty() {
                    l.pending.push_back(v5::Request::PingReq);
                }
            }
        }
    }

    /// Replaces rumqttc's in-flight bookkeeping with one of `slots` packet ids, and returns
    /// whether it did. Only a link with nothing in flight and no packet id collision can be
    /// resized; the caller (the tracker) guarantees that nothing is queued meanwhile.
    ///
    /// rumqttc allocates one slot per packet id up front (`outgoing_pub`, about 64 bytes each),
    /// so a link sized for [`slots_for`]`(window)` costs about 262 KiB whether it sends or not;
    /// an idle link is shrunk to [`CLOSED_SLOTS`] and grown again before its next PUBLISH.
    /// Buffered events, the unanswered ping and, with MQTT 5, the broker's Receive Maximum
    /// carry over; closing also gives back the event buffer's preallocated room.
    pub fn resize(&mut self, slots: u16, limits: ServerLimits) -> bool {
        match self {
            Link::V4(l) => {
                if l.state.inflight() != 0 || l.state.collision.is_some() || !l.pending.is_empty() {
                    return false;
                }
                let mut fresh = rumqttc::MqttState::new(slots, l.state.manual_acks);
                fresh.await_pingresp = l.state.await_pingresp;
                fresh.collision_ping_count = l.state.collision_ping_count;
                fresh.events = std::mem::take(&mut l.state.events);
                if slots == CLOSED_SLOTS {
                    // rumqttc's 100 events of about 170 bytes, allocated again on demand.
                    fresh.events.shrink_to_fit();
                }
                l.state = fresh;
                l.mqtt_options.set_inflight(slots);
            }
            Link::V5(l) => {
                if l.state.inflight() != 0 || l.state.collision.is_some() || !l.pending.is_empty() {
                    return false;
                }
                // What rumqttc's CONNACK handling would have set: the broker's Receive Maximum
                // bounds the window.
                let slots = limits.receive_max.map_or(slots, |max| slots.min(max.max(1)));
                let mut fresh = v5::MqttState::new(slots, l.state.manual_acks);
                fresh.await_pingresp = l.state.await_pingresp;
                fresh.collision_ping_count = l.state.collision_ping_count;
                fresh.broker_topic_alias_max = l.state.broker_topic_alias_max;
                fresh.events = std::mem::take(&mut l.state.events);
                if slots == CLOSED_SLOTS {
                    fresh.events.shrink_to_fit();
                }
                l.state = fresh;
                l.options.set_outgoing_inflight_upper_limit(slots);
            }
        }
        true
    }

    /// Forgets everything of the broken connection: unsent requests (queued ones included),
    /// unacknowledged publishes and buffered events. With a clean session nothing of it may be
    /// sent again, and the tracker reports all of it as retry.
    pub fn reset(&mut self) {
        match self {
            Link::V4(l) => {
                l.clean();
                l.pending.clear();
                l.state.events.clear();
                l.state.collision = None;
            }
            Link::V5(l) => {
                l.clean();
                l.pending.clear();
                l.state.events.clear();
                l.state.collision = None;
            }
        }
    }
}

fn v4_event(event: rumqttc::Event) -> LinkEvent {
    use rumqttc::{Event, Packet};
    match event {
        Event::Incoming(Packet::ConnAck(_)) => LinkEvent::Connected(ServerLimits::default()),
        Event::Incoming(Packet::PubAck(a)) => LinkEvent::PubAck(a.pkid, AckReason::Accepted),
        Event::Incoming(Packet::PubRec(a)) => LinkEvent::PubRec(a.pkid, AckReason::Accepted),
        Event::Incoming(Packet::PubComp(a)) => LinkEvent::PubComp(a.pkid, AckReason::Accepted),
        Event::Outgoing(o) => outgoing(o),
        Event::Incoming(_) => LinkEvent::Other,
    }
}

fn v5_event(event: v5::Event) -> LinkEvent {
    use p5::Packet;
    match event {
        v5::Event::Incoming(Packet::ConnAck(c)) => LinkEvent::Connected(match c.properties {
            Some(p) => ServerLimits {
                max_packet_size: p.max_packet_size,
                max_qos: p.max_qos.unwrap_or(2).min(2),
                retain_available: p.retain_available != Some(0),
                receive_max: p.receive_max,
            },
            None => ServerLimits::default(),
        }),
        v5::Event::Incoming(Packet::PubAck(a)) => LinkEvent::PubAck(a.pkid, puback_reason(a.reason)),
        v5::Event::Incoming(Packet::PubRec(a)) => LinkEvent::PubRec(a.pkid, pubrec_reason(a.reason)),
        v5::Event::Incoming(Packet::PubComp(a)) => LinkEvent::PubComp(
            a.pkid,
            match a.reason {
                p5::PubCompReason::Success => AckReason::Accepted,
                p5::PubCompReason::PacketIdentifierNotFound => AckReason::Failed("packet identifier not found"),
            },
        ),
        v5::Event::Outgoing(o) => outgoing(o),
        v5::Event::Incoming(_) => LinkEvent::Other,
    }
}

fn outgoing(o: Outgoing) -> LinkEvent {
    match o {
        Outgoing::Publish(pkid) => LinkEvent::Sent(pkid),
        Outgoing::Disconnect => LinkEvent::Disconnected,
        _ => LinkEvent::Other,
    }
}

/// PUBACK and PUBREC carry the same reason codes in two rumqttc types.
macro_rules! ack_reason {
    ($name:ident, $r:ident) => {
        fn $name(r: p5::$r) -> AckReason {
            match r {
                p5::$r::Success | p5::$r::NoMatchingSubscribers => AckReason::Accepted,
                p5::$r::NotAuthorized => AckReason::Refused("not authorized"),
                p5::$r::TopicNameInvalid => AckReason::Refused("topic name invalid"),
                p5::$r::PayloadFormatInvalid => AckReason::Refused("payload format invalid"),
                p5::$r::UnspecifiedError => AckReason::Failed("unspecified error"),
                p5::$r::ImplementationSpecificError => AckReason::Failed("implementation error"),
                p5::$r::PacketIdentifierInUse => AckReason::Failed("packet identifier in use"),
                p5::$r::QuotaExceeded => AckReason::Failed("quota exceeded"),
            }
        }
    };
}
ack_reason!(puback_reason, PubAckReason);
ack_reason!(pubrec_reason, PubRecReason);

fn v4_error(e: rumqttc::ConnectionError) -> LinkError {
    match e {
        rumqttc::ConnectionError::ConnectionRefused(code) => LinkError::Refused(format!("{code:?}")),
        rumqttc::ConnectionError::NetworkTimeout => LinkError::Timeout,
        other => LinkError::Failed(other.to_string()),
    }
}

fn v5_error(e: v5::ConnectionError) -> LinkError {
    match e {
        v5::ConnectionError::ConnectionRefused(code) => LinkError::Refused(format!("{code:?}")),
        v5::ConnectionError::MqttState(v5::StateError::ConnFail { reason }) => {
            LinkError::Refused(format!("{reason:?}"))
        }
        v5::ConnectionError::Timeout(_) => LinkError::Timeout,
        other => LinkError::Failed(other.to_string()),
    }
}
