//! A TCP proxy in front of a broker that a test can cut (close every connection and refuse new
//! ones), restore, or make swallow the broker's answers (so that publishes stay unacknowledged).
//! It also taps the PUBLISH packets the driver sends (topic, QoS, retain flag): brokers differ in
//! the QoS they forward to subscribers (some use the subscription's rather than the lower of the
//! two), so the QoS the driver chose is read off the wire.

use std::{
    io::{Read, Write},
    net::{Shutdown, SocketAddr, TcpListener, TcpStream},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
};

/// The header of one PUBLISH the driver sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub topic: String,
    pub qos: u8,
    pub retain: bool,
}

#[derive(Default)]
struct Flags {
    seen: Mutex<Vec<Seen>>,
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
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
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

    /// The first `n` PUBLISH packets the driver sent; fails the test if they do not come.
    pub fn published(&self, n: usize) -> Vec<Seen> {
        let start = std::time::Instant::now();
        loop {
            let seen = self.flags.seen.lock().expect("tap").clone();
            if seen.len() >= n {
                return seen[..n].to_vec();
            }
            assert!(start.elapsed() < super::support::PATIENCE, "saw {} of {n} PUBLISH packets", seen.len());
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
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
    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
        return;
    };
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        let mut frames = Vec::new();
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if !answers {
                frames.extend_from_slice(&buf[..n]);
                tap(&mut frames, &flags);
            }
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

/// Removes the complete packets at the start of `frames`, recording each PUBLISH.
fn tap(frames: &mut Vec<u8>, flags: &Flags) {
    loop {
        let Some((header, len)) = fixed_header(frames) else {
            return;
        };
        if frames.len() < header + len {
            return;
        }
        let body = &frames[header..header + len];
        if frames[0] >> 4 == 3 && body.len() >= 2 {
            let topic_len = usize::from(body[0]) << 8 | usize::from(body[1]);
            let topic = String::from_utf8_lossy(body.get(2..2 + topic_len).unwrap_or_default()).into_owned();
            let seen = Seen { topic, qos: (frames[0] >> 1) & 3, retain: frames[0] & 1 == 1 };
            flags.seen.lock().expect("tap").push(seen);
        }
        frames.drain(..header + len);
    }
}

/// The fixed header's length and the remaining length, once both are complete.
fn fixed_header(frames: &[u8]) -> Option<(usize, usize)> {
    let mut len = 0usize;
    for (i, b) in frames.iter().enumerate().skip(1).take(4) {
        len |= usize::from(b & 0x7f) << (7 * (i - 1));
        if b & 0x80 == 0 {
            return Some((i + 1, len));
        }
    }
    None
}
