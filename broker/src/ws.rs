//! MQTT over WebSocket (`listener.ws`): the HTTP upgrade, subprotocol choice, and a byte bridge
//! so that `link::serve` runs unchanged.
//!
//! The upgrade is accepted on any path. The first subprotocol the client offers that is in
//! `sub_protocols` is chosen; a client offering only others gets HTTP 400, and a client offering
//! none is served without one (MQTT requires clients to offer `mqtt`; old ones do not).
//!
//! Each connection gets an in-memory duplex pipe: binary messages are written into it as bytes
//! (an MQTT packet may span messages, and a message may hold several packets), and what the link
//! writes is sent as binary messages. The two directions run independently, so a client that stops
//! reading only stalls its own output. A text message gets close code 1003, a frame that breaks
//! the WebSocket protocol gets 1002, and the link sees the end of its stream either way; when the
//! link closes, the client gets close code 1000.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

use crate::link::{self, Context};

/// Bytes buffered in each direction of the bridge.
const PIPE_SIZE: usize = 64 * 1024;
/// How long the client has to answer our close frame once the link has ended.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

type Sink = futures_util::stream::SplitSink<WebSocketStream<TcpStream>, Message>;
type Source = futures_util::stream::SplitStream<WebSocketStream<TcpStream>>;

/// Upgrades `stream` and serves MQTT over it until either side closes.
pub(crate) async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    max_packet: usize,
    sub_protocols: Arc<[String]>,
    ctx: Arc<Context>,
) {
    // A message larger than the largest packet plus room for the next packet's start is refused.
    let limit = max_packet.saturating_add(PIPE_SIZE);
    let config = WebSocketConfig::default().max_message_size(Some(limit)).max_frame_size(Some(limit));
    // The callback's types are tungstenite's.
    #[allow(clippy::result_large_err)]
    let choose = move |req: &Request, resp: Response| choose_sub_protocol(req, resp, &sub_protocols);
    let accepted = tokio::time::timeout(
        ctx.settings.connect_timeout,
        tokio_tungstenite::accept_hdr_async_with_config(stream, choose, Some(config)),
    )
    .await;
    let ws = match accepted {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "WebSocket upgrade failed.");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "WebSocket upgrade timed out.");
            return;
        }
    };
    let (app, bridge) = tokio::io::duplex(PIPE_SIZE);
    let (sink, source) = ws.split();
    let (from_link, to_link) = tokio::io::split(bridge);
    let (close_tx, close_rx) = oneshot::channel();
    let inbound = inbound(source, to_link, close_tx);
    let outbound = outbound(sink, from_link, close_rx);
    let link = link::serve(app, peer, "ws", None, max_packet, ctx);
    tokio::pin!(inbound);
    let both = async move {
        tokio::join!(link, outbound);
    };
    tokio::pin!(both);
    tokio::select! {
        () = &mut inbound => both.await,
        () = &mut both => {
            // Our close frame is sent; give the client a moment to answer it.
            let _ = tokio::time::timeout(CLOSE_GRACE, inbound).await;
        }
    }
}

/// Agrees to the first offered subprotocol that is configured (tungstenite's callback signature).
#[allow(clippy::result_large_err)]
fn choose_sub_protocol(req: &Request, mut resp: Response, allowed: &[String]) -> Result<Response, ErrorResponse> {
    let offered: Vec<&str> = req
        .headers()
        .get_all("Sec-WebSocket-Protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    if offered.is_empty() {
        return Ok(resp);
    }
    let Some(chosen) = offered.iter().find(|p| allowed.iter().any(|a| a == *p)) else {
        let mut refusal = ErrorResponse::new(Some(format!("no supported subprotocol; this server speaks {allowed:?}")));
        *refusal.status_mut() = StatusCode::BAD_REQUEST;
        return Err(refusal);
    };
    let value = HeaderValue::from_str(chosen).map_err(|_| {
        let mut refusal = ErrorResponse::new(None);
        *refusal.status_mut() = StatusCode::BAD_REQUEST;
        refusal
    })?;
    resp.headers_mut().insert("Sec-WebSocket-Protocol", value);
    Ok(resp)
}

/// Client to link: binary message payloads become the link's input bytes.
async fn inbound(mut source: Source, mut to_link: WriteHalf<DuplexStream>, close: oneshot::Sender<CloseFrame>) {
    let refusal = loop {
        match source.next().await {
            Some(Ok(Message::Binary(data))) => {
                if to_link.write_all(&data).await.is_err() {
                    break None; // the link has ended
                }
            }
            Some(Ok(Message::Text(_))) => {
                break Some(CloseFrame { code: CloseCode::Unsupported, reason: "MQTT needs binary messages".into() })
            }
            // Pings are answered by tungstenite; a close is answered too, and the stream then ends.
            Some(Ok(_)) => {}
            None | Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed)) => break None,
            Some(Err(WsError::Io(_))) => break None,
            Some(Err(WsError::Capacity(e))) => {
                break Some(CloseFrame { code: CloseCode::Size, reason: e.to_string().into() })
            }
            Some(Err(e)) => break Some(CloseFrame { code: CloseCode::Protocol, reason: e.to_string().into() }),
        }
    };
    if let Some(frame) = refusal {
        tracing::debug!(code = ?frame.code, reason = %frame.reason, "WebSocket client refused.");
        let _ = close.send(frame);
    }
    // The link reads the end of its stream and closes (publishing the will, as for a lost TCP link).
    let _ = to_link.shutdown().await;
}

/// Link to client: what the link writes goes out as binary messages.
async fn outbound(mut sink: Sink, mut from_link: ReadHalf<DuplexStream>, close: oneshot::Receiver<CloseFrame>) {
    // Only a refusal ends forwarding early; a dropped sender (the client went away) does not.
    let refusal = async move {
        match close.await {
            Ok(frame) => frame,
            Err(_) => std::future::pending().await,
        }
    };
    tokio::pin!(refusal);
    let mut buf = BytesMut::with_capacity(8192);
    let frame = loop {
        buf.reserve(8192);
        tokio::select! {
            // The refusal is sent before the link sees the end of its input, so it wins over the
            // link's end here and the client gets its close code.
            biased;
            frame = &mut refusal => break Some(frame),
            r = from_link.read_buf(&mut buf) => match r {
                Ok(0) | Err(_) => break Some(CloseFrame { code: CloseCode::Normal, reason: "".into() }),
                Ok(_) => {
                    if sink.send(Message::Binary(buf.split().freeze())).await.is_err() {
                        return;
                    }
                }
            },
        }
    };
    if let Some(frame) = frame {
        let _ = sink.send(Message::Close(Some(frame))).await;
    }
    let _ = sink.close().await;
}
