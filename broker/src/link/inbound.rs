//! Handling of each packet a client sends after CONNECT, one function per packet type.
//!
//! Handlers are synchronous: replies go to the output buffer, messages to the router, and an
//! `Err(Close)` ends the connection with a reason code.

use bytes::Bytes;

use super::{Close, Link};
use crate::message::{now_ms, PublishedMessage, RoutedMessage};
use crate::protocol::{packets, reason, QoS};
use crate::router::{topic, Handovers, RetainHandling, SubOptions};
use crate::session::Delivery;

use packets::Packet;

impl Link {
    /// Handles one decoded packet.
    pub(super) fn handle(&mut self, packet: Packet) -> Result<(), Close> {
        match packet {
            Packet::Publish(p) => self.on_publish(p),
            Packet::PubAck(p) => {
                self.on_puback(&p);
                Ok(())
            }
            Packet::PubRec(p) => self.on_pubrec(&p),
            Packet::PubRel(p) => self.on_pubrel(&p),
            Packet::PubComp(p) => {
                self.on_pubcomp(&p);
                Ok(())
            }
            Packet::Subscribe(s) => self.on_subscribe(s),
            Packet::Unsubscribe(u) => self.on_unsubscribe(u),
            Packet::PingReq(_) => self.send(&Packet::PingResp(packets::PingResp)),
            Packet::Disconnect(d) => Err(self.on_disconnect(&d)),
            other => Err(Close::Protocol(
                reason::PROTOCOL_ERROR,
                format!("unexpected packet {:?}", std::mem::discriminant(&other)),
            )),
        }
    }

    /// Encodes a control packet into the output buffer.
    pub(super) fn send(&mut self, packet: &Packet) -> Result<(), Close> {
        self.codec
            .encode(packet, &mut self.out)
            .map_err(|e| Close::Protocol(reason::IMPLEMENTATION_SPECIFIC_ERROR, e.to_string()))
    }

    fn on_publish(&mut self, p: packets::Publish) -> Result<(), Close> {
        let qos = QoS::from_v5(p.qos);
        let mut props = p.properties.unwrap_or_else(empty_publish_properties);
        let topic = self.resolve_topic(&p.topic, props.topic_alias)?;
        topic::validate_topic_name(&topic)
            .map_err(|e| Close::Protocol(reason::TOPIC_NAME_INVALID, format!("topic name {topic:?}: {e}")))?;
        if let Some(rate) = &mut self.rate {
            if !rate.try_take(std::time::Instant::now()) {
                return Err(Close::Protocol(reason::MESSAGE_RATE_TOO_HIGH, "incoming publish rate limit".to_owned()));
            }
        }
        if p.retain && !self.ctx.settings.retain_available {
            return Err(Close::Protocol(reason::RETAIN_NOT_SUPPORTED, "retain is not available".to_owned()));
        }
        if qos == QoS::ExactlyOnce && self.session.state.lock().incoming_qos2.contains(&p.pkid) {
            // A re-sent QoS 2 message: acknowledged again (behind any acknowledgement still
            // waiting, to keep their order), not routed again.
            return self.ack_publish(qos, p.pkid, Outcome::Accepted);
        }
        if self.exceeds_receive_maximum(qos) {
            return Err(Close::Protocol(reason::RECEIVE_MAXIMUM_EXCEEDED, "receive maximum exceeded".to_owned()));
        }
        if !self.authz.can_publish(&topic) {
            tracing::debug!(topic = ?topic, "PUBLISH refused: not authorized.");
            return self.ack_publish(qos, p.pkid, Outcome::NotAuthorized);
        }
        if props.payload_format_indicator == Some(1) && std::str::from_utf8(&p.payload).is_err() {
            return self.ack_publish(qos, p.pkid, Outcome::PayloadFormatInvalid);
        }
        self.ctx.metrics().incoming.count(qos, p.payload.len());
        let msg = RoutedMessage::new(PublishedMessage {
            topic,
            payload: p.payload,
            qos,
            retain: p.retain,
            client_id: std::sync::Arc::clone(&self.client_id),
            user_properties: std::mem::take(&mut props.user_properties),
            content_type: props.content_type.take(),
            correlation_data: props.correlation_data.take(),
            response_topic: props.response_topic.take(),
            message_expiry_interval: props.message_expiry_interval,
            payload_format_indicator: props.payload_format_indicator,
            received_at_ms: now_ms(),
        });
        let mut handovers = Handovers::default();
        if msg.msg.retain {
            handovers.push(self.ctx.router.retain(&msg));
        }
        let delivered = self.ctx.router.publish_with(&msg, &mut handovers);
        tracing::trace!(topic = ?msg.msg.topic, qos = ?qos, delivered, "Message routed.");
        if qos == QoS::ExactlyOnce {
            self.session.state.lock().incoming_qos2.insert(p.pkid);
        }
        self.ack_after(qos, p.pkid, Outcome::Accepted, handovers)
    }

    /// Whether one more incoming message of `qos` is more than the broker's Receive Maximum
    /// allows. MQTT 5 (3.3.4) counts the QoS 1 and 2 messages the client has not had a PUBACK or
    /// PUBCOMP for: QoS 2 messages until their PUBREL, and messages whose acknowledgement waits
    /// for the queue. MQTT 3.x has no receive maximum: only its QoS 2 messages are bounded (the
    /// session's memory), and its waiting acknowledgements pause reading instead
    /// (`acks::MAX_WAITING_ACKS`).
    fn exceeds_receive_maximum(&self, qos: QoS) -> bool {
        let v5 = self.codec.version().is_v5();
        if qos == QoS::AtMostOnce || (qos == QoS::AtLeastOnce && !v5) {
            return false;
        }
        let waiting = if v5 { self.waiting_outside_qos2 } else { 0 };
        self.session.state.lock().incoming_qos2.len() + waiting >= self.receive_max_in
    }

    /// PUBACK or PUBREC for an incoming message, with the outcome's reason code (MQTT 5; MQTT 3.x
    /// acknowledgements have none, so a refused message is acknowledged and dropped, as Mosquitto).
    pub(super) fn send_ack(&mut self, qos: QoS, pkid: u16, outcome: Outcome) -> Result<(), Close> {
        match qos {
            QoS::AtMostOnce => Ok(()),
            QoS::AtLeastOnce => {
                let mut ack = packets::PubAck::new(pkid, None);
                ack.reason = match outcome {
                    Outcome::Accepted => packets::PubAckReason::Success,
                    Outcome::PayloadFormatInvalid => packets::PubAckReason::PayloadFormatInvalid,
                    Outcome::NotAuthorized => packets::PubAckReason::NotAuthorized,
                    Outcome::NotStored => packets::PubAckReason::UnspecifiedError,
                    Outcome::QuotaExceeded => packets::PubAckReason::QuotaExceeded,
                };
                self.send(&Packet::PubAck(ack))
            }
            QoS::ExactlyOnce => {
                if outcome != Outcome::Accepted && self.codec.version().is_v5() {
                    // An MQTT 5 PUBREC with an error ends the exchange (no PUBREL follows): the
                    // packet id is free again, and a new message with it is no re-send. (MQTT 3.x
                    // PUBRECs carry no error, so there the PUBREL still comes.)
                    self.session.state.lock().incoming_qos2.remove(&pkid);
                }
                let mut rec = packets::PubRec::new(pkid, None);
                rec.reason = match outcome {
                    Outcome::Accepted => packets::PubRecReason::Success,
                    Outcome::PayloadFormatInvalid => packets::PubRecReason::PayloadFormatInvalid,
                    Outcome::NotAuthorized => packets::PubRecReason::NotAuthorized,
                    Outcome::NotStored => packets::PubRecReason::UnspecifiedError,
                    Outcome::QuotaExceeded => packets::PubRecReason::QuotaExceeded,
                };
                self.send(&Packet::PubRec(rec))
            }
        }
    }

    /// Resolves an MQTT 5 topic alias (client to broker), or checks there is a topic.
    fn resolve_topic(&mut self, topic: &Bytes, alias: Option<u16>) -> Result<String, Close> {
        let name = std::str::from_utf8(topic)
            .map_err(|_| Close::Protocol(reason::MALFORMED_PACKET, "topic is not utf-8".to_owned()))?;
        let Some(alias) = alias else {
            return Ok(name.to_owned());
        };
        if alias == 0 || alias > self.alias_max {
            return Err(Close::Protocol(reason::TOPIC_ALIAS_INVALID, format!("topic alias {alias}")));
        }
        if name.is_empty() {
            return self
                .aliases
                .get(&alias)
                .cloned()
                .ok_or_else(|| Close::Protocol(reason::PROTOCOL_ERROR, format!("unknown topic alias {alias}")));
        }
        self.aliases.insert(alias, name.to_owned());
        Ok(name.to_owned())
    }

    fn on_puback(&mut self, p: &packets::PubAck) {
        let mut st = self.session.state.lock();
        if !st.out.ack(p.pkid) {
            tracing::debug!(pkid = p.pkid, "PUBACK for a packet id not in flight.");
        }
        if st.take_drained() {
            self.ctx.router.session_drained(&self.session.client_id);
        }
        drop(st);
    }

    fn on_pubrec(&mut self, p: &packets::PubRec) -> Result<(), Close> {
        let failed = !matches!(p.reason, packets::PubRecReason::Success | packets::PubRecReason::NoMatchingSubscribers);
        let mut st = self.session.state.lock();
        if failed {
            st.out.rec_failed(p.pkid);
            if st.take_drained() {
                self.ctx.router.session_drained(&self.session.client_id);
            }
            drop(st);
            return Ok(());
        }
        let known = st.out.rec(p.pkid);
        drop(st);
        let mut rel = packets::PubRel::new(p.pkid, None);
        if !known {
            rel.reason = packets::PubRelReason::PacketIdentifierNotFound;
        }
        self.send(&Packet::PubRel(rel))
    }

    fn on_pubrel(&mut self, p: &packets::PubRel) -> Result<(), Close> {
        let known = self.session.state.lock().incoming_qos2.remove(&p.pkid);
        let mut comp = packets::PubComp::new(p.pkid, None);
        if !known {
            comp.reason = packets::PubCompReason::PacketIdentifierNotFound;
        }
        self.send(&Packet::PubComp(comp))
    }

    fn on_pubcomp(&mut self, p: &packets::PubComp) {
        let mut st = self.session.state.lock();
        if !st.out.comp(p.pkid) {
            tracing::debug!(pkid = p.pkid, "PUBCOMP for a packet id not in flight.");
        }
        if st.take_drained() {
            self.ctx.router.session_drained(&self.session.client_id);
        }
        drop(st);
    }

    fn on_subscribe(&mut self, s: packets::Subscribe) -> Result<(), Close> {
        let sub_id = s.properties.as_ref().and_then(|p| p.id);
        if sub_id == Some(0) {
            return Err(Close::Protocol(reason::PROTOCOL_ERROR, "subscription identifier 0".to_owned()));
        }
        let mut codes = Vec::with_capacity(s.filters.len());
        let mut retained = Vec::new();
        for f in &s.filters {
            let Ok(parsed) = topic::parse_filter(&f.path) else {
                codes.push(packets::SubscribeReasonCode::TopicFilterInvalid);
                continue;
            };
            if parsed.share_group.is_some() && f.nolocal {
                return Err(Close::Protocol(reason::PROTOCOL_ERROR, "no local on a shared subscription".to_owned()));
            }
            if !self.authz.can_subscribe(&f.path) {
                tracing::debug!(filter = ?f.path, "SUBSCRIBE refused by the ACL.");
                codes.push(packets::SubscribeReasonCode::NotAuthorized);
                continue;
            }
            let granted = QoS::from_v5(f.qos);
            let opts = SubOptions {
                qos: granted,
                no_local: f.nolocal,
                retain_as_published: f.preserve_retain,
                retain_handling: match f.retain_forward_rule {
                    packets::RetainForwardRule::OnEverySubscribe => RetainHandling::OnEverySubscribe,
                    packets::RetainForwardRule::OnNewSubscribe => RetainHandling::OnNewSubscribe,
                    packets::RetainForwardRule::Never => RetainHandling::Never,
                },
                sub_id,
            };
            self.session.state.lock().subscriptions.insert(f.path.clone(), opts.clone());
            let existed = self.ctx.router.subscribe(&parsed, &self.session, opts.clone());
            codes.push(packets::SubscribeReasonCode::Success(granted.to_v5()));
            let send_retained = match opts.retain_handling {
                RetainHandling::OnEverySubscribe => true,
                RetainHandling::OnNewSubscribe => !existed,
                RetainHandling::Never => false,
            };
            if send_retained && parsed.share_group.is_none() && self.ctx.settings.retain_available {
                for msg in self.ctx.router.retained_matching(parsed.filter) {
                    retained.push(Delivery {
                        qos: granted.min(msg.msg.qos),
                        msg,
                        retain: true,
                        sub_ids: sub_id.into_iter().collect(),
                    });
                }
            }
        }
        self.ctx.router.session_changed(&self.session);
        self.send(&Packet::SubAck(packets::SubAck { pkid: s.pkid, return_codes: codes, properties: None }))?;
        for delivery in retained {
            self.session.enqueue(delivery);
        }
        Ok(())
    }

    fn on_unsubscribe(&mut self, u: packets::Unsubscribe) -> Result<(), Close> {
        let mut reasons = Vec::with_capacity(u.filters.len());
        for filter in &u.filters {
            let Ok(parsed) = topic::parse_filter(filter) else {
                reasons.push(packets::UnsubAckReason::TopicFilterInvalid);
                continue;
            };
            let known = self.session.state.lock().subscriptions.remove(filter).is_some();
            self.ctx.router.unsubscribe(&parsed, &self.session);
            reasons.push(if known {
                packets::UnsubAckReason::Success
            } else {
                packets::UnsubAckReason::NoSubscriptionExisted
            });
        }
        self.ctx.router.session_changed(&self.session);
        self.send(&Packet::UnsubAck(packets::UnsubAck { pkid: u.pkid, reasons, properties: None }))
    }

    fn on_disconnect(&mut self, d: &packets::Disconnect) -> Close {
        let expiry = d.properties.as_ref().and_then(|p| p.session_expiry_interval);
        if let Some(expiry) = expiry {
            if self.connect_expiry == 0 && expiry != 0 {
                return Close::Protocol(reason::PROTOCOL_ERROR, "session expiry set at disconnect".to_owned());
            }
            self.session.state.lock().expiry_interval = expiry.min(self.ctx.settings.max_session_expiry);
        }
        Close::Client { with_will: d.reason_code == packets::DisconnectReasonCode::DisconnectWithWillMessage }
    }
}

/// What happened to an incoming PUBLISH, for its acknowledgement.
/// How an incoming message was taken, as its acknowledgement tells the client (MQTT 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    Accepted,
    PayloadFormatInvalid,
    NotAuthorized,
    /// An integration's copy could not be stored by the queue (0x80, unspecified error).
    NotStored,
    /// The queue had no room for an integration's copy: its backlog is at the limit (0x97).
    QuotaExceeded,
}

fn empty_publish_properties() -> packets::PublishProperties {
    packets::PublishProperties {
        payload_format_indicator: None,
        message_expiry_interval: None,
        topic_alias: None,
        response_topic: None,
        correlation_data: None,
        user_properties: Vec::new(),
        subscription_identifiers: Vec::new(),
        content_type: None,
    }
}
