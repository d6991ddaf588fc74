//! Unreachable targets on the loopback interface, for testing how a driver fails: a port nobody
//! listens on ([`closed_port`]) and a listener that accepts connections and never answers
//! ([`BlackHole`]). Both bind `127.0.0.1:0`; nothing here ever reaches beyond this machine.

use std::{
    io,
    net::{SocketAddr, TcpListener, TcpStream},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread::JoinHandle,
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
