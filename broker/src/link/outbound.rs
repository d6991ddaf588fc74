//! Messages to the client: draining the session queue within the in-flight window, and
//! re-sending unacknowledged messages when a session is resumed (within the window too).

use std::collections::HashMap;
use std::time::Instant;

use bytes::BytesMut;

use super::{Close, Link, HIGH_WATER};
use crate::metrics::DropReason;
use crate::protocol::{encode_publish, packets, publish_size, Codec, OutgoingPublish, QoS};
use crate::session::OutEntry;

impl Link {
    /// Moves queued deliveries into the output buffer while the buffer has room and the in-flight
    /// window allows. Fails if the session was taken over by another connection.
    pub(super) fn drain(&mut self) -> Result<(), Close> {
        if self.out.len() >= HIGH_WATER {
            return Ok(());
        }
        let version = self.codec.version();
        let now = Instant::now();
        let budget = &self.ctx.limits.budget;
        let mut st = self.session.state.lock();
        if st.conn_id != Some(self.conn_id) {
            return Err(Close::TakenOver);
        }
        // A resumed session's messages in flight go first, within the new window.
        while self.out.len() < HIGH_WATER && st.out.sent() < self.out_window {
            let Some(entry) = st.out.take_unsent() else {
                break;
            };
            encode_resend(&self.codec, entry, now, &mut self.out);
        }
        while self.out.len() < HIGH_WATER {
            let Some(front) = st.front_queued() else {
                break;
            };
            if front.qos != QoS::AtMostOnce && st.out.len() >= self.out_window {
                break;
            }
            let Some(delivery) = st.pop_queued() else {
                break;
            };
            let Ok(message_expiry) = delivery.msg.remaining_expiry(now) else {
                st.release(&delivery);
                budget.dropped(DropReason::Expired, 1);
                continue;
            };
            let mut publish = OutgoingPublish {
                msg: &delivery.msg.msg,
                qos: delivery.qos,
                retain: delivery.retain,
                dup: false,
                pkid: 0,
                subscription_ids: &delivery.sub_ids,
                message_expiry,
                topic_alias: None,
                with_topic: true,
            };
            let topic = &delivery.msg.msg.topic;
            let alias = choose_alias(&self.out_aliases, self.out_alias_max, self.ctx.settings.alias_min_length, topic);
            if let Some(a) = alias {
                publish.topic_alias = Some(a.alias);
                publish.with_topic = a.new;
            }
            if publish_size(version, &publish) > self.client_max_packet {
                tracing::debug!(topic = ?topic, "Message over the client's maximum packet size dropped.");
                st.release(&delivery);
                budget.dropped(DropReason::TooLarge, 1);
                continue;
            }
            if let Some(a) = alias.filter(|a| a.new) {
                self.out_aliases.insert(topic.clone(), a.alias);
            }
            budget.metrics.outgoing.count(delivery.qos, delivery.msg.msg.payload.len());
            if delivery.qos == QoS::AtMostOnce {
                encode_publish(version, &publish, &mut self.out);
                st.release(&delivery);
                continue;
            }
            publish.pkid = st.out.alloc();
            encode_publish(version, &publish, &mut self.out);
            let pkid = publish.pkid;
            st.out.push(pkid, delivery);
        }
        Ok(())
    }

    /// A resumed session: its unacknowledged messages (with DUP set) and pending PUBRELs are sent
    /// again by `drain`, no more of them at a time than the client's new Receive Maximum allows
    /// (MQTT 5, 4.9: the window starts afresh on each connection).
    pub(super) fn resume_inflight(&mut self) {
        self.session.state.lock().out.mark_unsent();
    }
}

/// Writes a message in flight again: PUBREL when it was released, else PUBLISH with DUP.
fn encode_resend(codec: &Codec, entry: &OutEntry, now: Instant, out: &mut BytesMut) {
    if entry.released {
        let rel = packets::Packet::PubRel(packets::PubRel::new(entry.pkid, None));
        let _ = codec.encode(&rel, out);
        return;
    }
    let d = &entry.delivery;
    let publish = OutgoingPublish {
        msg: &d.msg.msg,
        qos: d.qos,
        retain: d.retain,
        dup: true,
        pkid: entry.pkid,
        subscription_ids: &d.sub_ids,
        message_expiry: d.msg.remaining_expiry(now).unwrap_or(Some(1)),
        // Aliases belong to a connection: a resumed session starts without any.
        topic_alias: None,
        with_topic: true,
    };
    encode_publish(codec.version(), &publish, out);
}

/// A topic alias for one outgoing PUBLISH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Alias {
    pub alias: u16,
    /// The client does not know it yet: the PUBLISH carries the topic too.
    pub new: bool,
}

/// The alias to use for `topic`: the one already given, else a new one while the client's maximum
/// allows and the topic is longer than `min_length` (aliases are never replaced, so the first
/// long topics keep them for the connection's life).
pub(super) fn choose_alias(aliases: &HashMap<String, u16>, max: u16, min_length: usize, topic: &str) -> Option<Alias> {
    if let Some(&alias) = aliases.get(topic) {
        return Some(Alias { alias, new: false });
    }
    if topic.len() <= min_length || aliases.len() >= usize::from(max) {
        return None;
    }
    let alias = u16::try_from(aliases.len() + 1).ok()?;
    Some(Alias { alias, new: true })
}
