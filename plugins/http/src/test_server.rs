//! A small recording HTTP/1.1 server for the tests, on std threads: it parses requests with
//! httparse, records method, target, headers and body of each, and answers what a script says
//! (a status, a status after a delay, or nothing at all). Keep-alive is supported, TLS (rustls)
//! too, with an optional client-certificate requirement. Certificates come from [`pki`].
//! It binds 127.0.0.1:0 and counts connections and the most requests handled at once.

pub mod pki;

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use rustls::{ServerConfig, ServerConnection, StreamOwned};

/// One request as received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    /// Every value of header `name` (case-insensitive), in order.
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).collect()
    }

    /// The single value of header `name`; None when absent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_values(name).first().copied()
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// What the server does with a request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Answer with this status (and a short body, except for HEAD, 204 and 304).
    Status(u16),
    /// Answer with this status after holding the request for a while.
    Delayed(u16, Duration),
    /// Never answer; keep the connection open until the client closes it.
    Hang,
}

type Script = dyn Fn(usize, &Recorded) -> Reply + Send + Sync;

struct State {
    requests: Mutex<Vec<Recorded>>,
    connections: AtomicUsize,
    /// Connections accepted and not closed yet.
    open: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    stop: AtomicBool,
    script: Box<Script>,
    tls: Option<Arc<ServerConfig>>,
}

pub struct TestServer {
    pub port: u16,
    state: Arc<State>,
}

impl TestServer {
    /// A plain HTTP server; `script(n, request)` decides the reply to the n-th request (from 0).
    pub fn start(script: impl Fn(usize, &Recorded) -> Reply + Send + Sync + 'static) -> TestServer {
        Self::spawn(None, Box::new(script))
    }

    /// A server that answers every request with `status`.
    pub fn status(status: u16) -> TestServer {
        Self::start(move |_, _| Reply::Status(status))
    }

    /// An HTTPS server with `config`.
    pub fn start_tls(
        config: Arc<ServerConfig>,
        script: impl Fn(usize, &Recorded) -> Reply + Send + Sync + 'static,
    ) -> TestServer {
        Self::spawn(Some(config), Box::new(script))
    }

    fn spawn(tls: Option<Arc<ServerConfig>>, script: Box<Script>) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local addr").port();
        let state = Arc::new(State {
            requests: Mutex::new(Vec::new()),
            connections: AtomicUsize::new(0),
            open: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            script,
            tls,
        });
        let accept_state = Arc::clone(&state);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if accept_state.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                accept_state.connections.fetch_add(1, Ordering::SeqCst);
                accept_state.open.fetch_add(1, Ordering::SeqCst);
                let state = Arc::clone(&accept_state);
                std::thread::spawn(move || {
                    connection(stream, &state);
                    state.open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        TestServer { port, state }
    }

    /// `http(s)://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.state.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}{path}", self.port)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().expect("lock").clone()
    }

    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// Connections accepted and not closed by the client yet.
    pub fn open_connections(&self) -> usize {
        self.state.open.load(Ordering::SeqCst)
    }

    pub fn max_in_flight(&self) -> usize {
        self.state.max_in_flight.load(Ordering::SeqCst)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn connection(stream: TcpStream, state: &State) {
    // Bounds threads left behind by a client that neither speaks nor closes.
    let _ = stream.set_read_timeout(Some(Duration::from_secs(20)));
    match &state.tls {
        None => serve(stream, state),
        Some(config) => {
            if let Ok(conn) = ServerConnection::new(Arc::clone(config)) {
                serve(StreamOwned::new(conn, stream), state);
            }
        }
    }
}

/// Serves requests on one connection until the client closes it or something fails.
fn serve(mut stream: impl Read + Write, state: &State) {
    let mut buf = Vec::new();
    loop {
        let Some(request) = read_request(&mut stream, &mut buf) else {
            return;
        };
        let index = {
            let mut requests = state.requests.lock().expect("lock");
            requests.push(request.clone());
            requests.len() - 1
        };
        let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        state.max_in_flight.fetch_max(now, Ordering::SeqCst);
        let reply = (state.script)(index, &request);
        let status = match reply {
            Reply::Status(status) => status,
            Reply::Delayed(status, delay) => {
                std::thread::sleep(delay);
                status
            }
            Reply::Hang => {
                state.in_flight.fetch_sub(1, Ordering::SeqCst);
                let mut sink = [0u8; 1024];
                while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
                return;
            }
        };
        // Counted down before answering: the client cannot send its next request on this
        // connection before the answer, so the count never includes a finished request.
        state.in_flight.fetch_sub(1, Ordering::SeqCst);
        if stream.write_all(&response(&request.method, status)).and_then(|_| stream.flush()).is_err() {
            return;
        }
    }
}

/// Reads one request from `stream` (bytes beyond it stay in `buf`); None at EOF or on errors.
fn read_request(stream: &mut impl Read, buf: &mut Vec<u8>) -> Option<Recorded> {
    let mut chunk = [0u8; 8192];
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut parsed = httparse::Request::new(&mut headers);
        match parsed.parse(buf) {
            Ok(httparse::Status::Complete(head_len)) => {
                let headers: Vec<(String, String)> = parsed
                    .headers
                    .iter()
                    .map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).into_owned()))
                    .collect();
                let length: usize = headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, v)| v.trim().parse().ok())
                    .unwrap_or(0);
                let method = parsed.method.unwrap_or_default().to_string();
                let target = parsed.path.unwrap_or_default().to_string();
                while buf.len() < head_len + length {
                    let n = stream.read(&mut chunk).ok().filter(|&n| n > 0)?;
                    buf.extend_from_slice(&chunk[..n]);
                }
                let body = buf[head_len..head_len + length].to_vec();
                buf.drain(..head_len + length);
                return Some(Recorded { method, target, headers, body });
            }
            Ok(httparse::Status::Partial) => {
                let n = stream.read(&mut chunk).ok().filter(|&n| n > 0)?;
                buf.extend_from_slice(&chunk[..n]);
            }
            Err(_) => return None,
        }
    }
}

fn response(method: &str, status: u16) -> Vec<u8> {
    let reason = ureq::http::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("Other");
    let body = format!("status {status}");
    let mut out = format!("HTTP/1.1 {status} {reason}\r\n");
    if (300..400).contains(&status) {
        out.push_str("Location: http://elsewhere.invalid/\r\n");
    }
    if status == 204 || status == 304 {
        out.push_str("\r\n");
        return out.into_bytes();
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    if method != "HEAD" {
        out.push_str(&body);
    }
    out.into_bytes()
}
