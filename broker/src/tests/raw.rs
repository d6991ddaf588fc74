//! A raw TCP client for byte-level tests, and builders for well-formed packets.

use std::net::SocketAddr;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::support::within;
use crate::protocol::{packets, peek_frame};

/// A connection that sends and reads bytes.
pub struct Raw {
    stream: TcpStream,
    buf: BytesMut,
}

/// One packet read back: its first byte and its body (after the remaining length).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawPacket {
    pub byte1: u8,
    pub body: Vec<u8>,
}

impl RawPacket {
    /// The packet type (high nibble of the first byte).
    pub fn kind(&self) -> u8 {
        self.byte1 >> 4
    }
}

impl Raw {
    pub async fn connect(addr: SocketAddr) -> Raw {
        let stream = within("tcp connect", TcpStream::connect(addr)).await.expect("tcp connect");
        Raw { stream, buf: BytesMut::new() }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        // A write error means the broker already closed; reading will show it.
        let _ = self.stream.write_all(bytes).await;
    }

    /// The next packet, or `None` once the broker closed the connection.
    pub async fn read(&mut self) -> Option<RawPacket> {
        within("a packet from the broker", async {
            loop {
                if let Ok(Some(frame)) = peek_frame(&self.buf, usize::MAX) {
                    let packet = self.buf.split_to(frame.len());
                    return Some(RawPacket { byte1: packet[0], body: packet[frame.header_len..].to_vec() });
                }
                match self.stream.read_buf(&mut self.buf).await {
                    Ok(0) | Err(_) => return None,
                    Ok(_) => {}
                }
            }
        })
        .await
    }

    /// Closes with a reset (zero linger), dropping whatever the broker sends afterwards, so that
    /// the broker's next write on this connection fails.
    pub fn reset(self) {
        self.stream.set_zero_linger().expect("zero linger");
    }

    /// Reads until the broker closes the connection; returns what it sent meanwhile.
    pub async fn until_closed(&mut self) -> Vec<RawPacket> {
        let mut packets = Vec::new();
        while let Some(p) = self.read().await {
            packets.push(p);
        }
        packets
    }
}

/// A CONNECT for MQTT 3.1.1 with a clean session.
pub fn connect_v4(client_id: &str, keep_alive: u16) -> Vec<u8> {
    let mut c = rumqttc::mqttbytes::v4::Connect::new(client_id);
    c.keep_alive = keep_alive;
    let mut buf = BytesMut::new();
    c.write(&mut buf).expect("connect encodes");
    buf.to_vec()
}

/// A CONNECT for MQTT 5 with clean start and the given properties.
pub fn connect_v5(client_id: &str, keep_alive: u16, props: Option<packets::ConnectProperties>) -> Vec<u8> {
    let c = packets::Connect { keep_alive, client_id: client_id.to_owned(), clean_start: true, properties: props };
    encode_v5(&packets::Packet::Connect(c, None, None))
}

/// Connect properties with nothing set.
pub fn connect_props() -> packets::ConnectProperties {
    packets::ConnectProperties {
        session_expiry_interval: None,
        receive_maximum: None,
        max_packet_size: None,
        topic_alias_max: None,
        request_response_info: None,
        request_problem_info: None,
        user_properties: Vec::new(),
        authentication_method: None,
        authentication_data: None,
    }
}

/// Any MQTT 5 packet, encoded by rumqttc.
pub fn encode_v5(packet: &packets::Packet) -> Vec<u8> {
    let mut buf = BytesMut::new();
    packet.write(&mut buf, None).expect("packet encodes");
    buf.to_vec()
}

/// An MQTT 5 PUBLISH.
pub fn publish_v5(
    topic: &str,
    qos: u8,
    pkid: u16,
    payload: &[u8],
    props: Option<packets::PublishProperties>,
) -> Vec<u8> {
    let qos = crate::protocol::QoS::from_u8(qos).expect("test qos is valid").to_v5();
    let mut p = packets::Publish::new(topic, qos, payload.to_vec(), props);
    p.pkid = pkid;
    encode_v5(&packets::Packet::Publish(p))
}

/// An MQTT 5 SUBSCRIBE of one filter.
pub fn subscribe_v5(pkid: u16, filter: &str, qos: u8) -> Vec<u8> {
    let qos = crate::protocol::QoS::from_u8(qos).expect("test qos is valid").to_v5();
    encode_v5(&packets::Packet::Subscribe(packets::Subscribe {
        pkid,
        filters: vec![packets::Filter::new(filter, qos)],
        properties: None,
    }))
}

/// Connects a raw MQTT 5 client and checks the CONNACK is a success.
pub async fn connected_v5(addr: SocketAddr, client_id: &str, props: Option<packets::ConnectProperties>) -> Raw {
    let mut raw = Raw::connect(addr).await;
    raw.send(&connect_v5(client_id, 60, props)).await;
    let connack = raw.read().await.expect("connack");
    assert_eq!(connack.kind(), 2, "expected connack, got {connack:?}");
    assert_eq!(connack.body[1], 0, "connack reason");
    raw
}

/// Connects a raw MQTT 3.1.1 client and checks the CONNACK is a success.
pub async fn connected_v4(addr: SocketAddr, client_id: &str) -> Raw {
    let mut raw = Raw::connect(addr).await;
    raw.send(&connect_v4(client_id, 60)).await;
    let connack = raw.read().await.expect("connack");
    assert_eq!(connack, RawPacket { byte1: 0x20, body: vec![0, 0] });
    raw
}
