//! A TCP proxy in front of a broker that a test can cut (close every connection and refuse new
//! ones), restore, or make swallow the broker's answers (so that publishes stay unacknowledged).

use std::{
    io::{Read, Write},
    net::{Shutdown, SocketAddr, TcpListener, TcpStream},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
};

#[derive(Default)]
struct Flags {
    cut: AtomicBool,
    hold_answers: AtomicBool,
    closed: AtomicBool,
}

/// A running proxy.
pub struct Proxy {
    pub port: u16,
    flags: Arc<Flags>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    /// Listens on 127.0.0.1 (free port) and forwards to `upstream`.
    pub fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let flags = Arc::new(Flags::default());
        let conns = Arc::new(Mutex::new(Vec::new()));
        let (f, c) = (flags.clone(), conns.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if f.closed.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                if f.cut.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(upstream) else { continue };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let mut list = c.lock().expect("proxy connection list");
                for s in [&client, &server] {
                    if let Ok(s) = s.try_clone() {
                        list.push(s);
                    }
                }
                pump(&client, &server, f.clone(), false);
                pump(&server, &client, f.clone(), true);
            }
        });
        Proxy { port, flags, conns }
    }

    /// Closes every connection and refuses new ones until [`Proxy::restore`].
    pub fn cut(&self) {
        self.flags.cut.store(true, Ordering::SeqCst);
        for s in self.conns.lock().expect("proxy connection list").drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    /// Accepts connections again and forwards answers again.
    pub fn restore(&self) {
        self.flags.hold_answers.store(false, Ordering::SeqCst);
        self.flags.cut.store(false, Ordering::SeqCst);
    }

    /// Drops everything the broker sends from now on (acknowledgements never arrive).
    pub fn hold_answers(&self) {
        self.flags.hold_answers.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.flags.closed.store(true, Ordering::SeqCst);
        self.cut();
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Copies `from` to `to` on its own thread; `answers` marks the broker-to-client direction.
fn pump(from: &TcpStream, to: &TcpStream, flags: Arc<Flags>, answers: bool) {
    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else { return };
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if answers && flags.hold_answers.load(Ordering::SeqCst) {
                continue;
            }
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    });
}
