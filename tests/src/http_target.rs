//! The HTTP endpoint integrations deliver to: a std + httparse server on a free loopback port
//! that records every request (method, path, headers, body, the status it answered) and answers
//! 200, or a chosen status, or 503 until a retry begins after enough failures (`fail_then_recover`).
//! Keep-alive connections are served, one thread each; `Content-Length` bodies only, which is
//! what the HTTP driver sends.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use crate::node::wait_for;

/// One request as received.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The status code it was answered with.
    pub answered: u16,
    /// The client's port (which connection it came on).
    pub peer: u16,
}

impl Request {
    /// A header's value (name compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body as JSON (fails the test if it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

#[derive(Default)]
struct State {
    requests: Vec<Request>,
    status: u16,
    /// 503 until at least this many 503s were answered and a request comes after a pause
    /// (a new attempt), then 200.
    recover_after: Option<usize>,
    last_request: Option<Instant>,
}

/// A recording HTTP server; stops accepting on drop.
pub struct HttpTarget {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl HttpTarget {
    /// Starts a server answering 200.
    pub fn start() -> HttpTarget {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the HTTP target");
        let addr = listener.local_addr().expect("local address");
        let state = Arc::new(Mutex::new(State { status: 200, ..Default::default() }));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (state.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if st.load(Ordering::Relaxed) {
                    break;
                }
                if let Ok(stream) = stream {
                    let s = s.clone();
                    std::thread::spawn(move || serve(stream, &s));
                }
            }
        });
        HttpTarget { addr, state, stop }
    }

    /// `http://127.0.0.1:port{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Answers every following request with `status`.
    pub fn set_status(&self, status: u16) {
        let mut state = self.state.lock().expect("state");
        state.status = status;
        state.recover_after = None;
    }

    /// Answers 503 until `failures` 503s were sent and a request arrives at least 500 ms after the
    /// previous one (the first request of a new attempt, after the executor's pause between
    /// retries), then 200. Recovering between attempts keeps a retried pack whole.
    pub fn fail_then_recover(&self, failures: usize) {
        let mut state = self.state.lock().expect("state");
        state.status = 503;
        state.recover_after = Some(failures);
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().expect("state").requests.clone()
    }

    /// The requests answered 2xx so far.
    pub fn delivered(&self) -> Vec<Request> {
        self.requests().into_iter().filter(|r| (200..300).contains(&r.answered)).collect()
    }

    /// Waits until `pred` holds for the delivered requests; returns them.
    pub fn wait_delivered(&self, what: &str, pred: impl Fn(&[Request]) -> bool) -> Vec<Request> {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wait_for(what, || {
                let delivered = self.delivered();
                pred(&delivered).then_some(delivered)
            })
        }));
        result.unwrap_or_else(|_| {
            let bodies: Vec<String> = self
                .requests()
                .iter()
                .map(|r| format!("{} :{} {}", r.answered, r.peer, String::from_utf8_lossy(&r.body)))
                .collect();
            panic!("timed out waiting for {what}; received:\n{}", bodies.join("\n"))
        })
    }

    /// How many requests were answered with a non-2xx status.
    pub fn refused(&self) -> usize {
        self.requests().iter().filter(|r| !(200..300).contains(&r.answered)).count()
    }
}

impl Drop for HttpTarget {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr);
    }
}

/// Serves one keep-alive connection until it closes.
fn serve(mut stream: TcpStream, state: &Mutex<State>) {
    let peer = stream.peer_addr().map(|a| a.port()).unwrap_or(0);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(120)));
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        // Read until a whole head is buffered.
        let (head_len, method, path, headers) = loop {
            let mut header_storage = [httparse::EMPTY_HEADER; 64];
            let mut req = httparse::Request::new(&mut header_storage);
            match req.parse(&buf) {
                Ok(httparse::Status::Complete(n)) => {
                    let headers: Vec<(String, String)> = req
                        .headers
                        .iter()
                        .map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).into_owned()))
                        .collect();
                    break (n, req.method.unwrap_or("").to_string(), req.path.unwrap_or("").to_string(), headers);
                }
                Ok(httparse::Status::Partial) => match stream.read(&mut chunk) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                },
                Err(_) => return,
            }
        };
        let length = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        while buf.len() < head_len + length {
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body = buf[head_len..head_len + length].to_vec();
        buf.drain(..head_len + length);
        let close =
            headers.iter().any(|(n, v)| n.eq_ignore_ascii_case("connection") && v.eq_ignore_ascii_case("close"));
        let answered = record(state, Request { method, path, headers, body, answered: 0, peer });
        let reason = if answered == 200 { "OK" } else { "Service Unavailable" };
        let response = format!("HTTP/1.1 {answered} {reason}\r\nContent-Length: 0\r\n\r\n");
        if stream.write_all(response.as_bytes()).is_err() || close {
            return;
        }
    }
}

/// Decides the status of `request`, stores it, and returns the status.
fn record(state: &Mutex<State>, mut request: Request) -> u16 {
    let mut state = state.lock().expect("state");
    let now = Instant::now();
    if let Some(failures) = state.recover_after {
        let refused = state.requests.iter().filter(|r| r.answered == 503).count();
        let after_pause = state.last_request.is_some_and(|t| now.duration_since(t) >= Duration::from_millis(500));
        if refused >= failures && after_pause {
            state.status = 200;
            state.recover_after = None;
        }
    }
    state.last_request = Some(now);
    request.answered = state.status;
    let answered = request.answered;
    state.requests.push(request);
    answered
}

/// The bodies of `requests`, one per line, for failure messages.
pub fn bodies(requests: &[Request]) -> String {
    let lines: Vec<String> = requests.iter().map(|r| String::from_utf8_lossy(&r.body).into_owned()).collect();
    lines.join("\n")
}

/// The `n` of `{"payload":{"n":..}}` envelopes, or of `{"n":..}` bodies.
pub fn numbers(requests: &[Request]) -> Vec<i64> {
    requests
        .iter()
        .map(|r| {
            let body = r.json();
            body["payload"]["n"].as_i64().or_else(|| body["n"].as_i64()).expect("a numbered message")
        })
        .collect()
}
