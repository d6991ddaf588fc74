//! Classification of what happened to a message into an [`Outcome`]: acknowledgements (with the
//! MQTT 5 reason codes), lost connections, timeouts.
//!
//! Rule: anything the broker may accept later is `Retry`, except that running out of time (no
//! acknowledgement by the deadline, or no room to send before it) is the typed `Timeout`;
//! `Rejected` only when the broker said the message itself is unacceptable (not authorized,
//! invalid topic or payload format).

use trib_plugin_api::driver::Outcome;

/// The reason code carried by an acknowledgement (PUBACK, PUBREC or PUBCOMP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckReason {
    /// Success, or "no matching subscribers" (the broker took the message).
    Accepted,
    /// The broker refuses this message for good (0x87, 0x90, 0x99).
    Refused(&'static str),
    /// The broker failed for now (0x80, 0x83, 0x91, 0x97, 0x92).
    Failed(&'static str),
}

/// The outcome of an acknowledged message.
pub fn acknowledged(reason: AckReason) -> Outcome {
    match reason {
        AckReason::Accepted => Outcome::Delivered,
        AckReason::Refused(why) => Outcome::Rejected(format!("target broker refused the message: {why}")),
        AckReason::Failed(why) => Outcome::Retry(format!("target broker failed to accept the message: {why}")),
    }
}

/// The outcome of a message that was sent or queued when the connection dropped.
pub fn connection_lost(addr: &str, reason: &str) -> Outcome {
    Outcome::Retry(format!("connection to {addr} lost before the broker acknowledged the message: {reason}"))
}

/// The outcome of a message that cannot be sent because the client is not connected.
pub fn not_connected(addr: &str) -> Outcome {
    Outcome::Retry(format!("not connected to {addr}"))
}

/// The outcome of a message sent but not acknowledged by the deadline.
pub fn timeout(addr: &str) -> Outcome {
    Outcome::Timeout(format!("timeout waiting for {addr} to acknowledge the message"))
}

/// The outcome of a message that found no room in the window of unacknowledged messages
/// before the deadline, and so was never sent.
pub fn not_sent_by_deadline(addr: &str) -> Outcome {
    Outcome::Timeout(format!("timeout before send: no room for another message to {addr} before the deadline"))
}

/// The outcome of a message that could not be queued to the client.
pub fn client_closed() -> Outcome {
    Outcome::Retry("the MQTT client is shutting down".to_string())
}
