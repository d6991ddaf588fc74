//! Acknowledgements of incoming QoS 1 and 2 messages that wait until every integration's copy
//! is stored by the queue (the embedded queue stores at once; Kafka confirms a few milliseconds
//! later). MQTT requires PUBACKs in the order the PUBLISHes came, so once one acknowledgement
//! waits, the ones after it queue behind it.

use std::collections::VecDeque;

use tokio::sync::oneshot;

use super::{inbound::Outcome, Close, Link};
use crate::protocol::QoS;
use crate::router::{Handovers, NotStored};

/// At most this many acknowledgements wait per connection; past it the connection stops reading
/// until the queue catches up (back-pressure instead of unbounded memory).
pub(super) const MAX_WAITING_ACKS: usize = 10_000;

/// One acknowledgement waiting for the queue.
#[derive(Debug)]
pub(super) struct WaitingAck {
    qos: QoS,
    pkid: u16,
    outcome: Outcome,
    waits: Vec<oneshot::Receiver<Result<(), NotStored>>>,
    /// Counted in `Link::waiting_outside_qos2`: a QoS 1 message, or a QoS 2 one whose packet id
    /// is not among the session's incoming QoS 2 ids (refused), for the receive maximum.
    outside_qos2: bool,
}

impl Link {
    /// Acknowledges an incoming message (nothing for QoS 0): at once when nothing is waiting,
    /// otherwise behind the acknowledgements already waiting.
    pub(super) fn ack_publish(&mut self, qos: QoS, pkid: u16, outcome: Outcome) -> Result<(), Close> {
        self.ack_after(qos, pkid, outcome, Handovers::default())
    }

    /// Acknowledges an accepted message once its integration copies in `handovers` are stored.
    pub(super) fn ack_after(
        &mut self,
        qos: QoS,
        pkid: u16,
        outcome: Outcome,
        handovers: Handovers,
    ) -> Result<(), Close> {
        if qos == QoS::AtMostOnce {
            return Ok(());
        }
        let mut outcome = outcome;
        if let Some(why) = &handovers.failed {
            record_failure(pkid, &mut outcome, why);
        }
        if handovers.pending.is_empty() && self.waiting_acks.is_empty() {
            return self.send_ack(qos, pkid, outcome);
        }
        let outside_qos2 = qos == QoS::AtLeastOnce || !self.session.state.lock().incoming_qos2.contains(&pkid);
        self.waiting_outside_qos2 += usize::from(outside_qos2);
        self.waiting_acks.push_back(WaitingAck { qos, pkid, outcome, waits: handovers.pending, outside_qos2 });
        self.release_acks()
    }

    /// Sends every acknowledgement at the front whose copies are all stored.
    pub(super) fn release_acks(&mut self) -> Result<(), Close> {
        while let Some(front) = self.waiting_acks.front_mut() {
            let WaitingAck { pkid, outcome, waits, .. } = front;
            waits.retain_mut(|rx| match rx.try_recv() {
                Ok(Ok(())) => false,
                Ok(Err(why)) => {
                    record_failure(*pkid, outcome, &why);
                    false
                }
                Err(oneshot::error::TryRecvError::Empty) => true,
                Err(oneshot::error::TryRecvError::Closed) => {
                    record_failure(*pkid, outcome, &NotStored::new("the queue dropped the record's confirmation"));
                    false
                }
            });
            if !waits.is_empty() {
                return Ok(());
            }
            let done = self.waiting_acks.pop_front().expect("front exists");
            self.waiting_outside_qos2 -= usize::from(done.outside_qos2);
            self.send_ack(done.qos, done.pkid, done.outcome)?;
        }
        Ok(())
    }
}

/// Waits until the first pending copy of the first waiting acknowledgement is settled, and
/// records its result. Cancel-safe: a result is taken and recorded in the same poll.
pub(super) async fn first_settled(acks: &mut VecDeque<WaitingAck>) {
    let Some(front) = acks.front_mut() else {
        return std::future::pending().await;
    };
    let Some(rx) = front.waits.first_mut() else {
        return;
    };
    let result = rx.await;
    front.waits.remove(0);
    match result {
        Ok(Ok(())) => {}
        Ok(Err(why)) => record_failure(front.pkid, &mut front.outcome, &why),
        Err(_) => record_failure(
            front.pkid,
            &mut front.outcome,
            &NotStored::new("the queue dropped the record's confirmation"),
        ),
    }
}

fn record_failure(pkid: u16, outcome: &mut Outcome, why: &NotStored) {
    if *outcome == Outcome::Accepted {
        // The queue side has logged and counted the failure; this is the client's view of it.
        tracing::debug!(pkid, reason = %why, "Message not stored for an integration; acknowledged with an error.");
        *outcome = if why.quota_exceeded { Outcome::QuotaExceeded } else { Outcome::NotStored };
    }
}
