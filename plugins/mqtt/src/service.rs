//! The IO: one connection to the target broker, whose rumqttc event loop runs as a task on the
//! driver library's shared tokio runtime ([`runtime`]) and reports to the [`Tracker`]. Every
//! instance's connection is a task of that runtime, so an idle integration owns no thread.
//!
//! The task connects once for `start` (the caller waits for CONNACK), then reconnects after
//! `reconnectPeriodSec` whenever the connection drops (or stays down when that is 0). Before
//! the first connection and before each reconnect, the broker's addresses are checked against
//! the host's target policy (`trib_plugin_api::support::target_policy`). Nothing
//! async crosses into the caller: `deliver` blocks on the tracker, `close` on the task's end.

use std::{
    sync::{mpsc, Arc, OnceLock},
    time::{Duration, Instant},
};

use tokio::{runtime::Runtime, sync::Notify};
use trib_plugin_api::{
    driver::{Host, Outcome},
    support::target_policy::{self, Refused},
};

use crate::{
    config::Config,
    error::Error,
    link::{self, Link, LinkError, LinkEvent, Sender},
    request::Publish,
    tls,
    tracker::Tracker,
};

/// The prefix of the shared runtime's thread names.
pub const THREAD_NAME: &str = "trib-mqtt-rt";

/// Blocking threads of the shared runtime at most (host name lookups).
pub const MAX_BLOCKING_THREADS: usize = 4;

/// Worker threads of the shared runtime: one per core, at most 4.
pub fn runtime_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).min(4)
}

/// The tokio runtime every connection of this driver library runs on, started by the first
/// connection and kept for the life of the process (libraries are never unloaded).
pub fn runtime() -> std::io::Result<&'static Runtime> {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    if let Some(runtime) = RUNTIME.get() {
        return Ok(runtime);
    }
    let built = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(runtime_threads())
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .thread_name(THREAD_NAME)
        .enable_all()
        .build()?;
    // Two first connections may race: one runtime is kept, the other is dropped unused.
    Ok(RUNTIME.get_or_init(|| built))
}

/// Messages queued or awaiting acknowledgement at most, per connection.
pub const WINDOW: u16 = 1024;

/// How long `close` lets the DISCONNECT go out before dropping the socket.
const GRACEFUL_CLOSE: Duration = Duration::from_secs(1);

/// A connected client and its task.
pub struct Service {
    sender: Sender,
    tracker: Arc<Tracker>,
    stop: Arc<Notify>,
    /// Disconnected when the task ends (its sender is dropped with the task).
    ended: Option<mpsc::Receiver<()>>,
}

impl Service {
    /// Connects to the broker of `config` and waits up to `timeout` for CONNACK. With
    /// `reconnect`, the connection is re-established after drops per `reconnectPeriodSec`.
    pub fn connect(config: &Config, host: Host, timeout: Duration, reconnect: bool) -> Result<Service, Error> {
        let addr = config.address();
        // rumqttc resolves and connects on its own, so the policy is checked on the addresses
        // the name has now; see `Task::target_refused` for reconnects.
        if let Err(e) = target_policy::resolve(&config.host, config.port) {
            return Err(match Refused::in_io(&e) {
                Some(refused) => Error::Target { addr, refused: refused.to_string() },
                None => Error::Connect { addr, reason: e.to_string() },
            });
        }
        let tls = match config.tls {
            true => Some(tls::client_config(&config.credentials).map_err(Error::Tls)?),
            false => None,
        };
        let (sender, link) = link::open(config, tls, WINDOW, timeout);
        let tracker = Arc::new(Tracker::new(addr.clone(), usize::from(WINDOW)));
        let stop = Arc::new(Notify::new());
        let (first_tx, first_rx) = mpsc::channel();
        let runtime = runtime()?;
        let task = Task {
            link,
            tracker: tracker.clone(),
            stop: stop.clone(),
            host,
            addr: addr.clone(),
            target: (config.host.clone(), config.port),
            reconnect_period: config.reconnect_period.filter(|_| reconnect),
        };
        let (ended_tx, ended) = mpsc::channel::<()>();
        runtime.spawn(async move {
            let _ended = ended_tx;
            task.run(first_tx).await;
        });
        let mut service = Service { sender, tracker, stop, ended: Some(ended) };
        let first = first_rx.recv_timeout(timeout + Duration::from_millis(500));
        match first {
            Ok(Ok(())) => Ok(service),
            Ok(Err(e)) => {
                service.close();
                Err(match e {
                    LinkError::Refused(code) => Error::Refused { addr, code },
                    LinkError::Timeout => Error::Timeout { addr },
                    LinkError::Failed(reason) => Error::Connect { addr, reason },
                })
            }
            Err(_) => {
                service.close();
                Err(Error::Timeout { addr })
            }
        }
    }

    /// Sends a batch and returns one outcome per entry, by `deadline`.
    pub fn deliver(&self, publishes: Vec<Result<Publish, Outcome>>, deadline: Instant) -> Vec<Outcome> {
        self.tracker.deliver(&self.sender, publishes, deadline)
    }

    /// Sends a batch whose outcomes are due by `deadline`: `Some` when already settled, else
    /// they come from [`Service::collect`] (pipelining).
    pub fn submit(&self, publishes: Vec<Result<Publish, Outcome>>, deadline: Instant) -> Option<Vec<Outcome>> {
        self.tracker.submit(&self.sender, publishes, deadline)
    }

    /// Waits until `until` for the oldest submitted batch (see [`Tracker::collect`]).
    pub fn collect(&self, until: Instant) -> Option<Vec<Outcome>> {
        self.tracker.collect(until)
    }

    /// Whether the window is open (rumqttc's in-flight bookkeeping sized for it).
    pub fn window_open(&self) -> bool {
        self.tracker.is_open()
    }

    /// Whether the client is connected right now.
    pub fn is_connected(&self) -> bool {
        self.tracker.is_connected()
    }

    /// `None` when connected, else why not.
    pub fn disconnected_because(&self) -> Option<String> {
        self.tracker.disconnected_because()
    }

    /// Disconnects cleanly (when connected) and waits for the task to end. Idempotent.
    pub fn close(&mut self) {
        if let Some(ended) = self.ended.take() {
            self.sender.try_disconnect();
            self.stop.notify_one();
            // Err = the task ended (or panicked) and dropped its sender; nothing is ever sent.
            let _ = ended.recv();
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.close();
    }
}

/// What the connection task owns.
struct Task {
    link: Link,
    tracker: Arc<Tracker>,
    stop: Arc<Notify>,
    host: Host,
    addr: String,
    /// The configured host and port, looked up again before each reconnect.
    target: (String, u16),
    reconnect_period: Option<Duration>,
}

impl Task {
    async fn run(mut self, first: mpsc::Sender<Result<(), LinkError>>) {
        let event = tokio::select! {
            event = self.link.poll() => event,
            _ = self.stop.notified() => return,
        };
        match event {
            Ok(LinkEvent::Connected(limits)) => {
                self.tracker.connected(limits);
                let _ = first.send(Ok(()));
            }
            Ok(other) => {
                let _ = first.send(Err(LinkError::Failed(format!("expected CONNACK, got {other:?}"))));
                return;
            }
            Err(e) => {
                let _ = first.send(Err(e));
                return;
            }
        }
        self.host.info(format!("Connected to MQTT broker {}.", self.addr));
        // The window is closed (see `tracker`): opened on a sender's request, closed when idle.
        // The state rumqttc built is replaced by a closed one now, to give back its event buffer.
        let mut limits = self.tracker.limits();
        self.link.resize(link::CLOSED_SLOTS, limits);
        let mut open = false;
        let idle_close = self.tracker.idle_close();
        let idle = tokio::time::sleep(idle_close);
        tokio::pin!(idle);
        loop {
            // Giving up a `poll` in progress is safe in the two new branches: they run only
            // while nothing is queued or in flight, so no write of a PUBLISH can be cut short.
            let event = tokio::select! {
                event = self.link.poll() => event,
                _ = self.stop.notified() => break,
                _ = self.tracker.grow(), if !open => {
                    // A link that cannot be resized (never seen: nothing is sent while the window
                    // is closed) is opened as it is, with fewer packet ids, rather than stalled.
                    if !self.link.resize(link::slots_for(WINDOW), limits) {
                        self.host.debug(format!("MQTT client for {} opened without resizing.", self.addr));
                    }
                    open = true;
                    self.tracker.opened();
                    idle.as_mut().reset(tokio::time::Instant::now() + idle_close);
                    continue;
                }
                () = &mut idle, if open => {
                    match self.tracker.try_close(Instant::now()) {
                        Ok(()) => open = !self.link.resize(link::CLOSED_SLOTS, limits),
                        Err(at) => idle.as_mut().reset(at.into()),
                    }
                    if open {
                        // rumqttc still held something (the tracker had settled it already).
                        self.tracker.opened();
                        idle.as_mut().reset(tokio::time::Instant::now() + idle_close);
                    }
                    continue;
                }
            };
            match event {
                Ok(LinkEvent::Connected(fresh)) => {
                    limits = fresh;
                    self.tracker.connected(fresh);
                    self.host.info(format!("Reconnected to MQTT broker {}.", self.addr));
                }
                // Only `close` queues a DISCONNECT: the broker is about to close the line, which
                // must not be reported as a lost connection.
                Ok(LinkEvent::Disconnected) => {
                    self.host.info(format!("Disconnected from MQTT broker {}.", self.addr));
                    return;
                }
                Ok(event) => {
                    self.tracker.apply(event);
                    if self.tracker.awaiting_acks_only() {
                        self.link.nudge().await;
                    }
                }
                Err(e) => {
                    if !self.handle_error(e).await {
                        return;
                    }
                }
            }
        }
        if self.tracker.is_connected() {
            self.close_gracefully().await;
        }
    }

    /// Reports a broken connection, then waits until the next attempt; `false` = stop now.
    async fn handle_error(&mut self, e: LinkError) -> bool {
        let reason = match e {
            LinkError::Refused(code) => format!("connection refused, result code {code}"),
            LinkError::Timeout => "timeout".to_string(),
            LinkError::Failed(reason) => reason,
        };
        if self.tracker.is_connected() {
            self.host.warn(format!("Connection to MQTT broker {} lost: {reason}.", self.addr));
        } else {
            self.host.debug(format!("Reconnecting to MQTT broker {} failed: {reason}.", self.addr));
        }
        let link = &mut self.link;
        self.tracker.lost(&reason, || link.reset());
        match self.reconnect_period {
            Some(period) => loop {
                tokio::select! {
                    _ = tokio::time::sleep(period) => {}
                    _ = self.stop.notified() => return false,
                }
                match target_refused(self.target.clone()).await {
                    None => return true,
                    Some(refused) => {
                        self.host.warn(format!("Not reconnecting to MQTT broker {}: {refused}.", self.addr))
                    }
                }
            },
            None => {
                self.host.warn(format!("Not reconnecting to MQTT broker {}: reconnectPeriodSec is 0.", self.addr));
                self.stop.notified().await;
                false
            }
        }
    }

    /// Lets the queued DISCONNECT reach the broker, for at most [`GRACEFUL_CLOSE`].
    async fn close_gracefully(&mut self) {
        let drain = async {
            while let Ok(event) = self.link.poll().await {
                if event == LinkEvent::Disconnected {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(GRACEFUL_CLOSE, drain).await;
        self.host.info(format!("Disconnected from MQTT broker {}.", self.addr));
    }
}

/// The policy's refusal of the target's addresses as they resolve now (a name may have come
/// to resolve elsewhere since the last connection). A lookup that fails is left to rumqttc,
/// which reports it as the connection's failure. rumqttc looks the name up once more when it
/// connects, so a resolver that answers differently within that instant is not caught.
async fn target_refused((host, port): (String, u16)) -> Option<Refused> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addrs = tokio::net::lookup_host((host, port)).await.ok()?;
    target_policy::check_every(addrs).err()
}
