//! MQTT over WebSocket: rumqttc's WebSocket transport (v4 and v5) against TCP clients, and a raw
//! tungstenite client for what rumqttc cannot send (text messages, frames that break the
//! WebSocket protocol, packets split across messages, an unknown subprotocol).

use std::net::SocketAddr;

use futures_util::{SinkExt, StreamExt};
use rumqttc::v5::mqttbytes::QoS as Q5;
use rumqttc::QoS as Q4;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::raw::connect_v4;
use super::support::{start, within, C4, C5};

async fn broker() -> crate::BrokerHandle {
    start(|c| {
        c.listener.ws.enabled = true;
        c.listener.ws.bind_address = "127.0.0.1".to_owned();
        c.listener.ws.bind_port = 0;
    })
    .await
}

fn url(addr: SocketAddr) -> String {
    format!("ws://{addr}/mqtt")
}

fn ws4(addr: SocketAddr, id: &str) -> C4 {
    let mut o = rumqttc::MqttOptions::new(id, url(addr), addr.port());
    o.set_transport(rumqttc::Transport::Ws);
    o.set_max_packet_size(100_000, 100_000);
    C4::from_options(o)
}

fn ws5(addr: SocketAddr, id: &str) -> C5 {
    let mut o = rumqttc::v5::MqttOptions::new(id, url(addr), addr.port());
    o.set_transport(rumqttc::Transport::Ws);
    C5::from_options(o)
}

/// A raw WebSocket connection offering `protocol`.
async fn raw(
    addr: SocketAddr,
    protocol: &str,
) -> Result<WebSocketStream<TcpStream>, tokio_tungstenite::tungstenite::Error> {
    let mut request = url(addr).into_client_request().expect("request");
    request.headers_mut().insert("Sec-WebSocket-Protocol", protocol.parse().expect("header"));
    let tcp = TcpStream::connect(addr).await.expect("tcp connect");
    let (ws, response) = tokio_tungstenite::client_async(request, tcp).await?;
    assert_eq!(response.headers().get("Sec-WebSocket-Protocol").map(|v| v.to_str().ok()), Some(Some(protocol)));
    Ok(ws)
}

/// The next binary message, skipping pings.
async fn binary(ws: &mut WebSocketStream<TcpStream>) -> Vec<u8> {
    loop {
        match within("a websocket message", ws.next()).await {
            Some(Ok(Message::Binary(b))) => return b.to_vec(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            other => panic!("expected a binary message, got {other:?}"),
        }
    }
}

/// The close code the server sends, then the end of the stream.
async fn close_code(ws: &mut WebSocketStream<TcpStream>) -> Option<CloseCode> {
    let mut code = None;
    loop {
        match within("the websocket close", ws.next()).await {
            Some(Ok(Message::Close(frame))) => code = frame.map(|f| f.code),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return code,
        }
    }
}

#[tokio::test]
async fn websocket_clients_publish_and_subscribe_with_tcp_clients_both_ways() {
    let broker = broker().await;
    let ws_addr = broker.ws_addr().expect("ws listener");
    let tcp_addr = broker.tcp_addr().expect("tcp listener");

    let mut ws_sub = ws4(ws_addr, "ws-sub");
    assert_eq!(ws_sub.connack().await.code, rumqttc::ConnectReturnCode::Success);
    ws_sub.subscribe("to-ws/#", Q4::ExactlyOnce).await;
    let (mut tcp, _) = C4::connect(tcp_addr, "tcp", |_| {}).await;
    tcp.subscribe("from-ws/#", Q4::AtLeastOnce).await;

    tcp.publish("to-ws/a", Q4::ExactlyOnce, false, b"tcp -> ws").await;
    let got = ws_sub.message().await;
    assert_eq!((got.topic.as_str(), &got.payload[..], got.qos), ("to-ws/a", &b"tcp -> ws"[..], Q4::ExactlyOnce));

    let mut ws_pub = ws5(ws_addr, "ws-pub");
    ws_pub.connack().await;
    ws_pub.publish("from-ws/b", Q5::AtLeastOnce, false, b"ws -> tcp").await;
    assert_eq!(&tcp.message().await.payload[..], b"ws -> tcp");
    // A message bigger than one read of the bridge, both ways.
    let big = vec![7u8; 60_000];
    ws_pub.publish("to-ws/big", Q5::AtLeastOnce, false, &big).await;
    assert_eq!(ws_sub.message().await.payload.len(), big.len());
}

#[tokio::test]
async fn malformed_websocket_input_is_closed_cleanly_and_others_are_still_served() {
    let broker = broker().await;
    let addr = broker.ws_addr().expect("ws listener");
    let mut bystander = ws4(addr, "bystander");
    bystander.connack().await;
    bystander.subscribe("t", Q4::AtLeastOnce).await;

    // An MQTT packet split over two binary messages is fine: CONNECT, then CONNACK.
    let mut ws = raw(addr, "mqtt").await.expect("upgrade");
    let connect = connect_v4("raw", 60);
    let (a, b) = connect.split_at(5);
    ws.send(Message::binary(a.to_vec())).await.expect("send");
    ws.send(Message::binary(b.to_vec())).await.expect("send");
    assert_eq!(binary(&mut ws).await, [0x20, 0x02, 0x00, 0x00]);
    // A text message: close code 1003.
    ws.send(Message::text("not mqtt")).await.expect("send");
    assert_eq!(close_code(&mut ws).await, Some(CloseCode::Unsupported));

    // A frame that breaks the WebSocket protocol (client frames must be masked): close code 1002.
    let mut ws = raw(addr, "mqttv3.1").await.expect("upgrade");
    ws.get_mut().write_all(&[0x82, 0x02, 0x10, 0x00]).await.expect("raw write");
    assert_eq!(close_code(&mut ws).await, Some(CloseCode::Protocol));

    // An MQTT protocol violation inside a valid message: the link closes, then the WebSocket (1000).
    let mut ws = raw(addr, "mqtt").await.expect("upgrade");
    ws.send(Message::binary(vec![0x30, 0x00])).await.expect("send");
    assert_eq!(close_code(&mut ws).await, Some(CloseCode::Normal));

    // A client offering only other subprotocols is refused at the upgrade.
    assert!(raw(addr, "not-mqtt").await.is_err());

    // The bystander was not affected.
    let (mut tcp, _) = C4::connect(broker.tcp_addr().expect("tcp"), "tcp", |_| {}).await;
    tcp.publish("t", Q4::AtLeastOnce, false, b"still here").await;
    assert_eq!(&bystander.message().await.payload[..], b"still here");
}
