//! Starting and stopping the broker: listeners, the accept loops and the handle embedders keep.
//!
//! Each accepted connection runs in its own task (`link::serve`). Shutdown stops the accept loops,
//! tells every connection to close (MQTT 5 clients get DISCONNECT 0x8B) and waits for them.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use trib_ops::login::{Lockout, DEFAULT_LOCKOUT, DEFAULT_MAX_FAILED_ATTEMPTS};

use crate::auth::{Authenticator, BasicAuthenticator, Locking};
use crate::config::{BrokerConfig, ConfigError, Listener};
use crate::limits::ConnectionCounter;
use crate::link::{self, Context};
use crate::router::{IntegrationSink, Router};
use crate::session::queue::QueueLimits;
use crate::sessions::Sessions;
use crate::{tls, ws};

/// How often the broker-wide gauges (queued messages and bytes, sessions, ...) are sampled.
const GAUGE_INTERVAL: Duration = Duration::from_secs(1);
/// How long `shutdown` waits for connections to close.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The MQTT broker.
#[derive(Debug)]
pub struct Broker;

/// Optional plug-ins for `Broker::start_with`.
#[derive(Default)]
pub struct BrokerHooks {
    /// Replaces the built-in `BasicAuthenticator` (built from `security` in the config, behind a
    /// `Locking` with the default lockout).
    pub authenticator: Option<Arc<dyn Authenticator>>,
    /// Receives messages matching integration subscriptions (can also be set later on the router).
    pub integration_sink: Option<Arc<dyn IntegrationSink>>,
    /// A router prepared before the listeners open, e.g. with the integration subscriptions
    /// restored, so that no client's message can arrive before them. `integration_sink`, when
    /// set, replaces its sink.
    pub router: Option<Arc<Router>>,
}

/// Why the broker did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A listener could not bind.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The TLS certificate or key could not be loaded.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
}

/// A running broker. Dropping it stops the broker without waiting; `shutdown` waits.
pub struct BrokerHandle {
    tcp_addr: Option<SocketAddr>,
    tls_addr: Option<SocketAddr>,
    ws_addr: Option<SocketAddr>,
    ctx: Arc<Context>,
    shutdown_tx: watch::Sender<bool>,
    listeners: Vec<JoinHandle<()>>,
    tasks: Arc<TaskCount>,
}

impl std::fmt::Debug for BrokerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerHandle")
            .field("tcp_addr", &self.tcp_addr)
            .field("tls_addr", &self.tls_addr)
            .field("ws_addr", &self.ws_addr)
            .finish_non_exhaustive()
    }
}

impl Broker {
    /// Starts the broker with the built-in authenticator and no integration sink.
    pub async fn start(config: BrokerConfig) -> Result<BrokerHandle, StartError> {
        Broker::start_with(config, BrokerHooks::default()).await
    }

    /// Starts the broker with the given hooks. Must run inside a tokio runtime.
    pub async fn start_with(config: BrokerConfig, hooks: BrokerHooks) -> Result<BrokerHandle, StartError> {
        let settings = config.validate()?;
        let tcp = match settings.tcp {
            Some(l) => Some((bind(l).await?, l.max_packet_size)),
            None => None,
        };
        let ssl = match &settings.ssl {
            Some(ssl) => {
                let acceptor = tls::acceptor(&ssl.cert, &ssl.key, ssl.client_auth, ssl.client_ca.as_deref())?;
                Some((bind(ssl.listener).await?, ssl.listener.max_packet_size, acceptor))
            }
            None => None,
        };
        let ws = match &settings.ws {
            Some(ws) => {
                let protocols: Arc<[String]> = ws.sub_protocols.clone().into();
                Some((bind(ws.listener).await?, ws.listener.max_packet_size, protocols))
            }
            None => None,
        };
        let authenticator = hooks.authenticator.unwrap_or_else(|| {
            let basic = Arc::new(BasicAuthenticator::new(settings.allow_anonymous, &settings.credentials));
            let lockout = Lockout::new(DEFAULT_MAX_FAILED_ATTEMPTS, DEFAULT_LOCKOUT);
            Arc::new(Locking::new(basic, Arc::new(lockout)))
        });
        let router = hooks.router.unwrap_or_else(|| Arc::new(Router::new(None)));
        if let Some(sink) = hooks.integration_sink {
            router.set_integration_sink(Some(sink));
        }
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        // The series count into the process's Prometheus recorder (installed here if nobody did).
        trib_ops::prometheus();
        let limits = QueueLimits::new(settings.max_queued, settings.max_queued_bytes, settings.memory_budget);
        let ctx = Arc::new(Context {
            settings,
            router,
            sessions: Arc::new(Sessions::default()),
            authenticator,
            connections: Arc::new(ConnectionCounter::default()),
            shutdown: shutdown_rx,
            limits,
        });
        tokio::spawn(sample_gauges(Arc::clone(&ctx)));
        let tasks = Arc::new(TaskCount::default());
        let mut listeners = Vec::new();
        let mut tcp_addr = None;
        let mut tls_addr = None;
        let mut ws_addr = None;
        if let Some((listener, max)) = tcp {
            tcp_addr = listener.local_addr().ok();
            tracing::info!(addr = ?tcp_addr, "MQTT TCP listener started.");
            listeners.push(tokio::spawn(accept_loop(listener, max, Kind::Tcp, Arc::clone(&ctx), Arc::clone(&tasks))));
        }
        if let Some((listener, max, acceptor)) = ssl {
            tls_addr = listener.local_addr().ok();
            tracing::info!(addr = ?tls_addr, "MQTT TLS listener started.");
            let kind = Kind::Tls(acceptor);
            listeners.push(tokio::spawn(accept_loop(listener, max, kind, Arc::clone(&ctx), Arc::clone(&tasks))));
        }
        if let Some((listener, max, protocols)) = ws {
            ws_addr = listener.local_addr().ok();
            tracing::info!(addr = ?ws_addr, "MQTT WebSocket listener started.");
            let kind = Kind::Ws(protocols);
            listeners.push(tokio::spawn(accept_loop(listener, max, kind, Arc::clone(&ctx), Arc::clone(&tasks))));
        }
        Ok(BrokerHandle { tcp_addr, tls_addr, ws_addr, ctx, shutdown_tx, listeners, tasks })
    }
}

impl BrokerHandle {
    /// The bound address of the TCP listener, if enabled.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp_addr
    }

    /// The bound address of the TLS listener, if enabled.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_addr
    }

    /// The bound address of the WebSocket listener, if enabled.
    pub fn ws_addr(&self) -> Option<SocketAddr> {
        self.ws_addr
    }

    /// The router, for integration subscriptions and the integration sink.
    pub fn router(&self) -> &Arc<Router> {
        &self.ctx.router
    }

    /// The session registry (for the cluster link's takeovers).
    pub(crate) fn sessions(&self) -> &Arc<Sessions> {
        &self.ctx.sessions
    }

    /// The bounds of every session's queue.
    pub(crate) fn limits(&self) -> &QueueLimits {
        &self.ctx.limits
    }

    /// The number of connected clients.
    pub fn connection_count(&self) -> usize {
        self.ctx.connections.open()
    }

    /// The number of sessions, connected or not.
    pub fn session_count(&self) -> usize {
        self.ctx.sessions.len()
    }

    /// Bytes held for clients in all session queues and in-flight windows (bounded by
    /// `mqtt.sessions_memory_budget_bytes`).
    pub fn queued_bytes(&self) -> usize {
        self.ctx.limits.budget.used_bytes()
    }

    /// Messages dropped so far for the `broker_dropped_msgs_total` reason `reason`.
    pub fn dropped_messages(&self, reason: &str) -> u64 {
        let budget = &self.ctx.limits.budget;
        crate::metrics::DropReason::ALL.iter().filter(|r| r.label() == reason).map(|r| budget.drop_count(*r)).sum()
    }

    /// Sets the broker-wide gauges now (the broker also does so once a second).
    pub fn sample_metrics(&self) {
        self.ctx.sample_gauges();
    }

    /// Stops accepting, disconnects every client and waits (up to 10 s) for connections to close.
    pub async fn shutdown(self) {
        let _ = self.shutdown_tx.send(true);
        for listener in &self.listeners {
            listener.abort();
        }
        let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
        while self.tasks.active() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tracing::info!(remaining = self.tasks.active(), "MQTT broker stopped.");
    }
}

async fn bind(l: Listener) -> Result<TcpListener, StartError> {
    TcpListener::bind(l.addr).await.map_err(|source| StartError::Bind { addr: l.addr, source })
}

/// What runs on top of an accepted TCP connection.
#[derive(Clone)]
enum Kind {
    Tcp,
    Tls(tls::Acceptor),
    Ws(Arc<[String]>),
}

async fn accept_loop(listener: TcpListener, max_packet: usize, kind: Kind, ctx: Arc<Context>, tasks: Arc<TaskCount>) {
    let mut shutdown = ctx.shutdown.clone();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.changed() => return,
            r = listener.accept() => r,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Typically out of file descriptors: back off instead of spinning.
                tracing::warn!(error = %e, "Accepting a connection failed.");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let guard = TaskGuard::new(&tasks);
        let ctx = Arc::clone(&ctx);
        let kind = kind.clone();
        tokio::spawn(async move {
            let _guard = guard;
            match kind {
                Kind::Tcp => link::serve(stream, peer, "tcp", None, max_packet, ctx).await,
                Kind::Tls(acceptor) => {
                    let timeout = ctx.settings.connect_timeout;
                    match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            let identity = acceptor.client_identity(&stream);
                            link::serve(stream, peer, "ssl", identity, max_packet, ctx).await
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed."),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out."),
                    }
                }
                Kind::Ws(protocols) => ws::serve(stream, peer, max_packet, protocols, ctx).await,
            }
        });
    }
}

/// Sets the broker-wide gauges once a second until shutdown.
async fn sample_gauges(ctx: Arc<Context>) {
    let mut shutdown = ctx.shutdown.clone();
    let mut tick = tokio::time::interval(GAUGE_INTERVAL);
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tick.tick() => ctx.sample_gauges(),
        }
    }
}

/// Counts running connection tasks, for a graceful shutdown.
#[derive(Debug, Default)]
struct TaskCount {
    active: AtomicUsize,
}

impl TaskCount {
    fn active(&self) -> usize {
        self.active.load(Ordering::Acquire)
    }
}

struct TaskGuard(Arc<TaskCount>);

impl TaskGuard {
    fn new(count: &Arc<TaskCount>) -> TaskGuard {
        count.active.fetch_add(1, Ordering::AcqRel);
        TaskGuard(Arc::clone(count))
    }
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::AcqRel);
    }
}
