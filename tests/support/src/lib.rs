//! trib-test-support: the few helpers every test suite of the workspace needs, in one place
//! (a dev-dependency only; nothing shipped links it).
//!
//! * [`free_port`]: a loopback port for a server a test starts later.
//! * [`unique`]: names (topics, client ids, service ids) that never collide between parallel
//!   tests or with earlier runs against shared services.
//! * [`block_on`]: runs a future on the calling thread, for APIs that return futures but need
//!   no runtime (rdkafka's admin client).
//! * [`serve_forever`]: a server (an in-test broker) on a runtime and thread of its own that
//!   lives as long as the test process.
//! * [`logs`]: the one `tracing` subscriber of a test process; [`logs::capture`] keeps what the
//!   calling thread logs, for tests of log lines.
//! * `postgres` (feature `postgres`): a session to the test PostgreSQL of
//!   `TRIB_TEST_POSTGRES_URL` (`exec`, `rows`, `value`) and the driver's connection fields for it.
//! * `kafka` (feature `kafka`): reading a topic's records back, exactly as many as expected.
//!
//! Message builders for driver tests live in `trib-plugin-testkit`, next to the plugin API.

#[cfg(feature = "kafka")]
pub mod kafka;
pub mod logs;
#[cfg(feature = "postgres")]
pub mod postgres;

use std::{
    future::Future,
    net::TcpListener,
    sync::{
        atomic::{AtomicU32, AtomicU64, Ordering},
        Arc,
    },
    task::{Context, Poll, Wake},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

/// A loopback port nothing listens on right now, for a server that is started later with it.
///
/// Ports come from below Linux's ephemeral range (32768 and up), so an outgoing connection of
/// any process can never take one between this check and the server's bind; each is handed out
/// once per test process, starting at a place that depends on the process id so that parallel
/// test binaries rarely meet, and it is checked by binding it. A server that can bind port 0
/// itself should do that instead.
pub fn free_port() -> u16 {
    const FIRST: u32 = 20_000;
    const COUNT: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(7919) % COUNT,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..COUNT {
        let port = (FIRST + NEXT.fetch_add(1, Ordering::SeqCst) % COUNT) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("bind 127.0.0.1:0").port()
}

/// `<prefix>-<pid>-<time>-<counter>`: unique within this run and across runs.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{prefix}-{}-{:x}-{}", std::process::id(), nanos % 0xffff_ffff, NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Runs a future to completion on this thread, waking it by unparking (no runtime needed).
pub fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Arc::new(Unpark(std::thread::current())).into();
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        std::thread::park_timeout(Duration::from_millis(50));
    }
}

/// Starts a server on a current-thread tokio runtime of its own thread (named `name`) and returns
/// what `start` reports (an address, a port); the value `start` keeps (the server's handle) lives,
/// and the server runs, as long as the process. For servers shared by every test of a binary.
pub fn serve_forever<F, T, K>(name: &str, start: impl FnOnce() -> F + Send + 'static) -> T
where
    F: Future<Output = (T, K)>,
    T: Send + 'static,
    K: 'static,
{
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a test runtime");
            runtime.block_on(async move {
                let (reported, _keep) = start().await;
                let _ = tx.send(reported);
                std::future::pending::<()>().await;
            });
        })
        .expect("spawn a server thread");
    rx.recv_timeout(Duration::from_secs(60)).unwrap_or_else(|e| panic!("{name} did not start: {e}"))
}

/// A `tracing_subscriber` writer that appends every line to a shared buffer (what
/// [`logs::capture`] writes to).
#[derive(Clone, Debug, Default)]
struct LogBuffer(Arc<std::sync::Mutex<Vec<u8>>>);

impl LogBuffer {
    /// Everything written so far, as text (lossy UTF-8).
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)).into_owned()
    }
}

impl std::io::Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_distinct_and_bindable() {
        let ports: Vec<u16> = (0..20).map(|_| free_port()).collect();
        let mut sorted = ports.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), ports.len(), "{ports:?}");
        for port in ports {
            TcpListener::bind(("127.0.0.1", port)).expect("bindable");
        }
    }

    #[test]
    fn unique_names_differ_and_keep_the_prefix() {
        let (a, b) = (unique("t"), unique("t"));
        assert_ne!(a, b);
        assert!(a.starts_with("t-") && b.starts_with("t-"), "{a} {b}");
    }

    #[test]
    fn block_on_runs_a_future_woken_from_another_thread() {
        let (tx, rx) = std::sync::mpsc::channel::<std::task::Waker>();
        let mut ready = false;
        let future = std::future::poll_fn(move |cx| {
            if ready {
                return Poll::Ready(42);
            }
            ready = true;
            tx.send(cx.waker().clone()).expect("send the waker");
            Poll::Pending
        });
        let waker = std::thread::spawn(move || rx.recv().expect("a waker").wake());
        assert_eq!(block_on(future), 42);
        waker.join().expect("waker thread");
    }
}
