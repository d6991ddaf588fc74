//! Unreachable targets on the loopback interface, for testing how a driver fails: a port nobody
//! listens on ([`closed_port`]) and a listener that accepts connections and never answers
//! ([`BlackHole`]). Both bind `127.0.0.1:0`; nothing here ever reaches beyond this machine.
//! And a target the host's policy denies ([`deny_local_port`]), for testing how a driver refuses
//! one ([`expect_refused`]).

use std::{
    io,
    net::{SocketAddr, TcpListener, TcpStream},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex, PoisonError,
    },
    thread::JoinHandle,
};

use trib_plugin_api::{
    abi::control_op,
    abi_stable::std_types::{RResult, RStr},
    driver::{Driver, ErrorKind, Host, StartConfig},
    support::target_policy::{self, Rule},
};

/// A loopback port that nobody listens on: bound, read back and released.
///
/// Another process could take the port in between; on a test machine that is rare enough, and a
/// test that then sees a connection instead of a refusal fails loudly rather than silently.
pub fn closed_port() -> io::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// A loopback listener that accepts every connection, reads nothing and sends nothing: requests
/// sent to it hang until the client gives up. Connections close when the value is dropped.
#[derive(Debug)]
pub struct BlackHole {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl BlackHole {
    /// Starts listening on `127.0.0.1:0`.
    pub fn start() -> io::Result<BlackHole> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new().name("testkit-black-hole".into()).spawn(move || {
            // Accepted connections are held, unread, until the loop ends.
            let mut held = Vec::new();
            for stream in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    held.push(stream);
                }
            }
        })?;
        Ok(BlackHole { addr, stop, thread: Some(thread) })
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The listening address (`127.0.0.1:port`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for BlackHole {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // The accept loop blocks; one more connection wakes it up to see the flag.
        let woke = TcpStream::connect(self.addr).is_ok();
        if let Some(thread) = self.thread.take().filter(|_| woke) {
            let _ = thread.join();
        }
    }
}

/// Makes driver `D`'s library deny every address of this machine on `port`, as the executor
/// denies its own listeners: the rule (with `source` as its origin) is added to the library's
/// policy in force and sent through the module operation the executor uses
/// ([`trib_plugin_api::abi::control_op::TARGET_POLICY`]). For testing that a driver refuses a
/// denied target: bind a listener (or start a test server), deny its port, point the driver at
/// it, and expect a refusal naming `local:<port>` and `source`.
///
/// The policy belongs to the library, so it applies to every test of the binary that uses `D`:
/// deny only ports the test itself holds bound. Calls from tests running at the same time add
/// their rules one after the other (none is lost). Fails with the driver's answer when `D` does
/// not announce [`trib_plugin_api::abi::capabilities::TARGET_POLICY`].
pub fn deny_local_port<D: Driver>(port: u16, source: &str) -> Result<(), String> {
    static ADDING: Mutex<()> = Mutex::new(());
    let _one_at_a_time = ADDING.lock().unwrap_or_else(PoisonError::into_inner);
    let mut policy = (*target_policy::current()).clone();
    policy.deny(Rule::local_port(port).with_source(source));
    let module = trib_plugin_api::export::module::<D>();
    let op = RStr::from_str(control_op::TARGET_POLICY);
    match (module.control())(op, RStr::from_str(&policy.to_json())) {
        RResult::ROk(_) => Ok(()),
        RResult::RErr(e) => Err(e.message.into_string()),
    }
}

/// Creates driver `D` (with [`Host::detached`]), then calls `start` and `check_connection` with
/// `config` on it, expects both to fail with [`ErrorKind::Connection`] and returns their messages,
/// `[start, check]`; panics otherwise, naming the call. For testing that a driver refuses a target
/// before it connects: one the host's policy denies (see [`deny_local_port`]) or one its default
/// policy refuses, such as the cloud metadata address; the test then looks for the rule in both
/// messages.
///
/// `config` is what the executor would pass; a driver's tests usually build it with their own
/// helper around the `clientConfiguration` text.
///
/// ```
/// use std::time::Instant;
///
/// use trib_plugin_api::abi_stable::std_types::RStr;
/// use trib_plugin_api::driver::{Driver, Error, ErrorKind, FieldError, Host, Message, Metadata, Outcome, StartConfig};
/// use trib_plugin_testkit::target::expect_refused;
///
/// /// Refuses every target, naming the rule as a driver with a target policy does.
/// struct Wary;
///
/// impl Driver for Wary {
///     fn metadata() -> Metadata {
///         Metadata { name: "wary", integration_type: "WARY", version: "0.1.0", description: "Refuses.", capabilities: 0 }
///     }
///     fn create(_host: Host) -> Result<Self, Error> { Ok(Wary) }
///     fn validate(&self, _config: &str) -> Vec<FieldError> { Vec::new() }
///     fn check_connection(&mut self, config: &StartConfig<'_>) -> Result<(), Error> { self.start(config) }
///     fn start(&mut self, config: &StartConfig<'_>) -> Result<(), Error> {
///         let target = config.client_configuration.as_str();
///         Err(Error::new(ErrorKind::Connection, format!("{target} is denied by 169.254.0.0/16")))
///     }
///     fn process(&mut self, batch: &[Message<'_>], _deadline: Instant) -> Vec<Outcome> {
///         batch.iter().map(|_| Outcome::Delivered).collect()
///     }
///     fn stop(&mut self) {}
/// }
///
/// let text = RStr::from_str("169.254.169.254:80");
/// let config = StartConfig { integration_id: text, integration_name: text, service_id: text, client_configuration: text, metadata: text };
/// for message in expect_refused::<Wary>(&config) {
///     assert!(message.contains("169.254.0.0/16"), "{message}");
/// }
/// ```
pub fn expect_refused<D: Driver>(config: &StartConfig<'_>) -> [String; 2] {
    let mut driver = D::create(Host::detached()).expect("create");
    let start = driver.start(config).expect_err("start must be refused");
    let check = driver.check_connection(config).expect_err("check must be refused");
    for (call, e) in [("start", &start), ("check_connection", &check)] {
        assert_eq!(e.kind, ErrorKind::Connection, "{call}: {}", e.message);
    }
    [start.message, check.message]
}
