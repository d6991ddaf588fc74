//! Pure: the line written for a message. No IO here; [`crate::service`] writes it.
//!
//! A line is TBMQ's JSON envelope (`payload, topicName, clientId, eventType, qos, retain,
//! tbmqIeNode, tbmqNode, ts, [clientCertCn], props, metadata`) followed by `\n`. JSON text never
//! holds a raw newline, so every message is exactly one line.

use trib_plugin_api::{
    driver::Message,
    support::envelope::{EnvelopeContext, PayloadField},
};

use crate::{config::PayloadFormat, error::Error};

/// The line for `msg`, newline included.
pub fn line(format: PayloadFormat, envelope: &EnvelopeContext, msg: &Message<'_>) -> Result<Vec<u8>, Error> {
    let payload = msg.payload();
    let mut out = Vec::with_capacity(256 + payload.len() * 4 / 3);
    match format {
        PayloadFormat::Base64 => envelope.write(msg, PayloadField::Base64(payload), &mut out),
        PayloadFormat::Text => envelope.write(msg, PayloadField::Text(&String::from_utf8_lossy(payload)), &mut out),
        PayloadFormat::Json => {
            let value: serde_json::Value =
                serde_json::from_slice(payload).map_err(|e| Error::PayloadNotJson(e.to_string()))?;
            envelope.write(msg, PayloadField::Json(&value), &mut out);
        }
    }
    out.push(b'\n');
    Ok(out)
}
