//! One client connection, from the first byte to the close.
//!
//! `serve` runs the handshake (`link::handshake`), then one task loop that reads packets, handles
//! them synchronously (`link::inbound`), drains the session's delivery queue into the output buffer
//! (`link::outbound`) and writes, all in one `select!` so that a client that stops reading never
//! blocks its own reads of acknowledgements, nor anybody else. A misbehaving client gets a
//! DISCONNECT with a reason code (MQTT 5) and is closed; no other connection is affected.

mod acks;
mod handshake;
mod inbound;
mod outbound;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;
use tracing::Instrument;

use crate::acl::Authorization;
use crate::auth::Authenticator;
use crate::config::Settings;
use crate::limits::{ConnectionCounter, ConnectionSlot, RateLimiter};
use crate::metrics::BrokerMetrics;
use crate::protocol::{reason, Codec};
use crate::router::Router;
use crate::session::queue::QueueLimits;
use crate::session::{Kick, Session};
use crate::sessions::{Sessions, Will};

/// Stop reading from a client while this many bytes wait to be written to it.
const HIGH_WATER: usize = 256 * 1024;
/// How long the final flush of a closing connection may take.
const CLOSE_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// What every connection shares.
pub(crate) struct Context {
    pub settings: Settings,
    pub router: Arc<Router>,
    pub sessions: Arc<Sessions>,
    pub authenticator: Arc<dyn Authenticator>,
    pub connections: Arc<ConnectionCounter>,
    pub shutdown: watch::Receiver<bool>,
    /// The bounds of every session's queue and the process-wide budget (with the metrics).
    pub limits: QueueLimits,
}

impl Context {
    /// The broker's Prometheus series.
    pub fn metrics(&self) -> &BrokerMetrics {
        &self.limits.budget.metrics
    }

    /// Sets the broker-wide gauges from the broker's own counts.
    pub fn sample_gauges(&self) {
        let m = self.metrics();
        let budget = &self.limits.budget;
        m.queued_msgs.set(budget.held_messages() as f64);
        m.queued_bytes.set(budget.used_bytes() as f64);
        m.sessions.set(self.sessions.len() as f64);
        m.subscriptions.set(self.sessions.subscription_count() as f64);
        m.retained.set(self.router.retained_count() as f64);
        m.remote_clients.set(self.router.remote_client_count() as f64);
    }
}

/// Serves one client connection until it closes; `certificate` is the verified TLS client
/// certificate, `listener` the listener's name in metrics (`tcp`, `ssl`, `ws`).
pub(crate) async fn serve<S>(
    stream: S,
    peer: SocketAddr,
    listener: &'static str,
    certificate: Option<crate::auth::ClientCertificate>,
    max_packet: usize,
    ctx: Arc<Context>,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (reader, writer) = tokio::io::split(stream);
    let mut io = Io { reader, writer };
    let mut inbuf = BytesMut::with_capacity(4096);
    let Some(est) = handshake::accept(&mut io, &mut inbuf, peer, certificate, max_packet, &ctx).await else {
        let _ = io.writer.shutdown().await;
        return;
    };
    // Debug formatting escapes control characters: a client id cannot forge log lines.
    let span = tracing::info_span!("client", client_id = ?est.client_id, %peer);
    let connections = BrokerMetrics::connections(listener, est.codec.version());
    connections.increment(1.0);
    async move {
        let mut link = Link::new(est, inbuf, Arc::clone(&ctx));
        tracing::debug!(version = ?link.codec.version(), "Client connected.");
        let close = link.run(&mut io).await;
        link.finish(&mut io, close).await;
    }
    .instrument(span)
    .await;
    connections.decrement(1.0);
}

/// The two halves of a client stream.
pub(crate) struct Io<S> {
    reader: ReadHalf<S>,
    writer: WriteHalf<S>,
}

/// Why a connection ends.
#[derive(Debug)]
pub(crate) enum Close {
    /// The client closed the stream.
    Eof,
    /// Reading or writing failed.
    Io(std::io::Error),
    /// The client sent DISCONNECT; `with_will` for MQTT 5 reason 0x04.
    Client { with_will: bool },
    /// The client broke the protocol or a limit: DISCONNECT with this reason code, then close.
    Protocol(u8, String),
    /// No packet within 1.5 times the keep alive.
    KeepAlive,
    /// Another connection took the session over.
    TakenOver,
    /// The broker is shutting down.
    Shutdown,
}

impl Close {
    fn reason_code(&self) -> Option<u8> {
        match self {
            Close::Protocol(code, _) => Some(*code),
            Close::KeepAlive => Some(reason::KEEP_ALIVE_TIMEOUT),
            Close::TakenOver => Some(reason::SESSION_TAKEN_OVER),
            Close::Shutdown => Some(reason::SERVER_SHUTTING_DOWN),
            Close::Eof | Close::Io(_) | Close::Client { .. } => None,
        }
    }

    fn publishes_will(&self) -> bool {
        match self {
            Close::Client { with_will } => *with_will,
            Close::Shutdown => false,
            _ => true,
        }
    }
}

/// The result of a successful handshake.
pub(crate) struct Established {
    pub codec: Codec,
    pub client_id: Arc<str>,
    pub session: Arc<Session>,
    pub conn_id: u64,
    pub present: bool,
    pub kick: oneshot::Receiver<Kick>,
    pub keep_alive: Option<Duration>,
    pub will: Option<Will>,
    pub out_window: usize,
    pub client_max_packet: usize,
    pub alias_max: u16,
    pub out_alias_max: u16,
    pub receive_max_in: usize,
    pub connect_expiry: u32,
    pub outbuf: BytesMut,
    pub slot: ConnectionSlot,
    pub authz: Authorization,
}

/// An established connection's state (its stream halves are passed in separately).
pub(crate) struct Link {
    codec: Codec,
    ctx: Arc<Context>,
    client_id: Arc<str>,
    session: Arc<Session>,
    conn_id: u64,
    present: bool,
    kick: Option<oneshot::Receiver<Kick>>,
    keep_alive: Option<Duration>,
    last_seen: Instant,
    will: Option<Will>,
    out_window: usize,
    client_max_packet: usize,
    aliases: HashMap<u16, String>,
    alias_max: u16,
    /// Topic aliases the broker gave this connection's client (MQTT 5), and how many it allows.
    out_aliases: HashMap<String, u16>,
    out_alias_max: u16,
    receive_max_in: usize,
    connect_expiry: u32,
    rate: Option<RateLimiter>,
    inbuf: BytesMut,
    out: BytesMut,
    _slot: ConnectionSlot,
    /// Topic authorization: the `$SYS` rule for anonymous clients and the ACL.
    authz: Authorization,
    /// Acknowledgements waiting for the queue to store integration copies, in PUBLISH order.
    waiting_acks: std::collections::VecDeque<acks::WaitingAck>,
    /// How many of `waiting_acks` the session's incoming QoS 2 ids do not count already (the
    /// receive maximum counts both).
    waiting_outside_qos2: usize,
}

impl Link {
    fn new(est: Established, inbuf: BytesMut, ctx: Arc<Context>) -> Link {
        let rate =
            ctx.settings.incoming_rate.as_deref().map(|limits| RateLimiter::new(limits, std::time::Instant::now()));
        Link {
            codec: est.codec,
            client_id: est.client_id,
            session: est.session,
            conn_id: est.conn_id,
            present: est.present,
            kick: Some(est.kick),
            keep_alive: est.keep_alive,
            last_seen: Instant::now(),
            will: est.will,
            out_window: est.out_window,
            client_max_packet: est.client_max_packet,
            aliases: HashMap::new(),
            alias_max: est.alias_max,
            out_aliases: HashMap::new(),
            out_alias_max: est.out_alias_max,
            receive_max_in: est.receive_max_in,
            connect_expiry: est.connect_expiry,
            rate,
            inbuf,
            out: est.outbuf,
            _slot: est.slot,
            authz: est.authz,
            waiting_acks: std::collections::VecDeque::new(),
            waiting_outside_qos2: 0,
            ctx,
        }
    }

    /// The connection's main loop; returns why it ended.
    async fn run<S: AsyncRead + AsyncWrite>(&mut self, io: &mut Io<S>) -> Close {
        if self.present {
            self.resume_inflight();
        }
        // Packets that arrived together with the CONNECT.
        if let Err(close) = self.process_input() {
            return close;
        }
        let mut shutdown = self.ctx.shutdown.clone();
        if *shutdown.borrow() {
            return Close::Shutdown;
        }
        let far = Duration::from_secs(86_400 * 365);
        let sleep = tokio::time::sleep(far);
        tokio::pin!(sleep);
        loop {
            if let Err(close) = self.drain() {
                return close;
            }
            let deadline = match self.keep_alive {
                Some(ka) => self.last_seen + ka + ka / 2,
                None => Instant::now() + far,
            };
            if sleep.deadline() != deadline {
                sleep.as_mut().reset(deadline);
            }
            let want_read = self.out.len() < HIGH_WATER && self.waiting_acks.len() < acks::MAX_WAITING_ACKS;
            if want_read {
                self.inbuf.reserve(8192);
            }
            let Some(kick) = self.kick.as_mut() else {
                return Close::TakenOver;
            };
            tokio::select! {
                _ = kick => return Close::TakenOver,
                _ = shutdown.changed() => return Close::Shutdown,
                r = io.reader.read_buf(&mut self.inbuf), if want_read => match r {
                    Ok(0) => return Close::Eof,
                    Ok(_) => {
                        self.last_seen = Instant::now();
                        if let Err(close) = self.process_input() {
                            return close;
                        }
                    }
                    Err(e) => return Close::Io(e),
                },
                r = io.writer.write_buf(&mut self.out), if !self.out.is_empty() => {
                    if let Err(e) = r {
                        return Close::Io(e);
                    }
                }
                _ = self.session.notify.notified() => {}
                _ = acks::first_settled(&mut self.waiting_acks), if !self.waiting_acks.is_empty() => {
                    if let Err(close) = self.release_acks() {
                        return close;
                    }
                }
                _ = &mut sleep, if self.keep_alive.is_some() => return Close::KeepAlive,
            }
        }
    }

    /// Decodes and handles every whole packet in the input buffer.
    fn process_input(&mut self) -> Result<(), Close> {
        loop {
            match self.codec.decode(&mut self.inbuf) {
                Ok(Some(packet)) => self.handle(packet)?,
                Ok(None) => return Ok(()),
                Err(e) => return Err(Close::Protocol(e.reason_code(), e.to_string())),
            }
        }
    }

    /// Sends the final DISCONNECT, flushes, closes, and hands the session back to the registry.
    async fn finish<S: AsyncRead + AsyncWrite>(mut self, io: &mut Io<S>, close: Close) {
        match &close {
            Close::Protocol(code, why) => {
                tracing::info!(reason_code = code, error = %why, "Client disconnected for a protocol violation.")
            }
            Close::Io(e) => tracing::debug!(error = %e, "Client connection failed."),
            other => tracing::debug!(close = ?other, "Client disconnected."),
        }
        if let Some(code) = close.reason_code() {
            if self.codec.version().is_v5() {
                // Reason code and an empty property length, written out: rumqttc's writer omits
                // the property length (allowed), and rumqttc's client then fails to parse it.
                self.out.extend_from_slice(&[reason::DISCONNECT_HEADER, 0x02, code, 0x00]);
            }
        }
        if !matches!(close, Close::Io(_)) {
            let out = &mut self.out;
            let writer = &mut io.writer;
            let _ = tokio::time::timeout(CLOSE_FLUSH_TIMEOUT, async move {
                writer.write_all_buf(out).await?;
                writer.shutdown().await
            })
            .await;
        }
        let will = if close.publishes_will() { self.will.take() } else { None };
        self.ctx.sessions.detach(&self.ctx.router, &self.session, self.conn_id, will);
    }
}
