//! The IO: one ureq [`Agent`] per instance, used by the shared threads of [`crate::pool`]. The
//! agent's pool keeps connections alive between requests (up to `maxParallelRequestsCount` idle
//! connections, each with 16 KiB input and output buffers);
//! its TLS configuration comes from the credentials. A request sends the configured method to the
//! configured URL and returns an [`Exchange`]; it never outlives the deadline it is given.
//!
//! Agent settings that differ from ureq's defaults, and why:
//! - statuses are not errors (`http_status_as_error(false)`): [`crate::retry`] needs the status;
//! - no redirects are followed (TBMQ does not follow them either);
//! - no proxy from the environment (TBMQ's client ignores `HTTP_PROXY` too);
//! - host names are resolved through [`CachingResolver`]: ureq's default resolver looks the
//!   host up before every request, even on a kept-alive connection, and with a time limit does
//!   it on a new thread each time (that thread was most of the CPU of a request to a local
//!   target). An IP address is used as it is; a name's addresses are reused for 30 s, like the
//!   JVM's default DNS cache under TBMQ;
//! - the resolver keeps only the addresses the host's target policy allows
//!   ([`trib_plugin_api::support::target_policy`]), so the policy is applied to the addresses
//!   requests actually go to, at every request;
//! - a request's head and the start of its body leave in one write ([`Coalescing`]): ureq
//!   writes them separately, which with `TCP_NODELAY` made two TCP segments (and two wake-ups of
//!   the target) per request.
//!
//! ureq closes a kept-alive connection that idled past its `max_idle_age` only when the agent is
//! used again, so after a burst an integration that goes quiet would hold its connections (and
//! their buffers) for good. [`Service::close_idle`] drops them: the request threads call it when
//! they idle out (see [`crate::pool`]).

use std::{
    net::SocketAddr,
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

use ureq::{
    config::Config,
    http::{Response, Uri},
    typestate::{WithBody, WithoutBody},
    unversioned::{
        resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver},
        transport::{Buffers, ConnectionDetails, Connector, DefaultConnector, NextTimeout, Transport},
    },
    Agent, Body as UreqBody, RequestBuilder,
};

use trib_plugin_api::support::target_policy;

use crate::{
    config::{HttpConfig, Method, StatusCodes},
    request::{self, Body},
    retry::Exchange,
};

/// The input and output buffer of each connection (ureq's default is 128 KiB each, which a kept-alive
/// connection holds while idle). The input buffer also bounds a response's head, as Netty's 8 KiB
/// default bounds it under TBMQ.
const BUFFER_SIZE: usize = 16 * 1024;

/// How much of an error body is kept for the logs.
const EXCERPT_CHARS: usize = 512;

/// A configured HTTP client for one integration.
#[derive(Debug)]
pub struct Service {
    /// The agent requests go through; replaced by a fresh one (closing the old one's idle
    /// connections) by [`Service::close_idle`].
    agent: Mutex<Agent>,
    /// How a fresh agent is configured.
    agent_config: Config,
    /// When a request last started or ended, and whether the agent may hold connections.
    activity: Mutex<Activity>,
    /// Where requests go, user info included.
    target: String,
    /// `target` without its user info, for logs and outcome reasons.
    url: String,
    method: Method,
    headers: Vec<(String, String)>,
    content_type_configured: bool,
    read_timeout: Option<Duration>,
    body_limit: u64,
    status_codes: StatusCodes,
}

impl Service {
    /// Builds the client for `config`. No connection is made yet.
    pub fn new(config: &HttpConfig) -> Service {
        let workers = config.workers();
        let connect = (config.connect_timeout_ms > 0).then(|| Duration::from_millis(config.connect_timeout_ms));
        let agent_config = Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .proxy(None)
            .tls_config(config.tls.tls_config())
            .timeout_connect(connect)
            .max_idle_connections(workers)
            .max_idle_connections_per_host(workers)
            .input_buffer_size(BUFFER_SIZE)
            .output_buffer_size(BUFFER_SIZE)
            .user_agent(concat!("trib-driver-http/", env!("CARGO_PKG_VERSION")))
            .build();
        let headers = request::headers(&config.headers, &config.credentials);
        Service {
            agent: Mutex::new(new_agent(&agent_config)),
            agent_config,
            activity: Mutex::new(Activity { last: Instant::now(), used: false }),
            target: config.url.clone(),
            url: crate::config::url::redacted(&config.url),
            method: config.method,
            content_type_configured: request::has_content_type(&headers),
            headers,
            read_timeout: (config.read_timeout_ms > 0).then(|| Duration::from_millis(config.read_timeout_ms)),
            body_limit: config.max_in_memory_buffer_kb.saturating_mul(1024),
            status_codes: config.status_codes.clone(),
        }
    }

    /// The encoded URL requests go to, as logs and outcome reasons may show it: user info
    /// (`user:password@`) replaced by `***@`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The configured method.
    pub fn method(&self) -> Method {
        self.method
    }

    /// The statuses whose outcome the integration configured (`statusCodes`).
    pub fn status_codes(&self) -> &StatusCodes {
        &self.status_codes
    }

    /// Sends one request with the configured method; `body` is attached only for POST and PUT.
    pub fn send(&self, body: Option<Body>, deadline: Instant) -> Exchange {
        let timeout = self.timeout(deadline);
        let agent = self.agent();
        let exchange = match self.method {
            Method::Post => self.with_body(agent.post(&self.target), body, timeout),
            Method::Put => self.with_body(agent.put(&self.target), body, timeout),
            Method::Get => self.without_body(agent.get(&self.target), timeout),
            Method::Delete => self.without_body(agent.delete(&self.target), timeout),
        };
        self.touch();
        exchange
    }

    /// Sends `HEAD` to the URL with the configured headers (the connection check).
    pub fn head(&self, deadline: Instant) -> Exchange {
        let exchange = self.without_body(self.agent().head(&self.target), self.timeout(deadline));
        self.touch();
        exchange
    }

    /// Closes the kept-alive connections when no request started or ended for `idle`: the agent
    /// is replaced by a fresh one, and the old one's connections close as soon as no request
    /// holds it any more. Returns whether it did.
    pub fn close_idle(&self, idle: Duration) -> bool {
        let mut activity = self.activity.lock().unwrap_or_else(PoisonError::into_inner);
        if !activity.used || activity.last.elapsed() < idle {
            return false;
        }
        activity.used = false;
        *self.agent.lock().unwrap_or_else(PoisonError::into_inner) = new_agent(&self.agent_config);
        true
    }

    /// The agent for one request (a cheap handle), noting the activity.
    fn agent(&self) -> Agent {
        self.touch();
        self.agent.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn touch(&self) {
        let mut activity = self.activity.lock().unwrap_or_else(PoisonError::into_inner);
        *activity = Activity { last: Instant::now(), used: true };
    }

    /// The request's time budget: `readTimeoutMs` when set, never beyond the deadline.
    fn timeout(&self, deadline: Instant) -> Duration {
        let left = deadline.saturating_duration_since(Instant::now());
        self.read_timeout.map_or(left, |read| read.min(left))
    }

    fn with_body(&self, builder: RequestBuilder<WithBody>, body: Option<Body>, timeout: Duration) -> Exchange {
        let body = body.unwrap_or(Body { bytes: Vec::new(), content_type: request::CONTENT_TYPE_BINARY });
        let mut builder = self.prepare(builder, timeout);
        if !self.content_type_configured {
            builder = builder.header("Content-Type", body.content_type);
        }
        self.finish(builder.send(body.bytes))
    }

    fn without_body(&self, builder: RequestBuilder<WithoutBody>, timeout: Duration) -> Exchange {
        self.finish(self.prepare(builder, timeout).call())
    }

    fn prepare<B>(&self, mut builder: RequestBuilder<B>, timeout: Duration) -> RequestBuilder<B> {
        // header_raw keeps the configured spelling of each name on the wire, for servers that
        // (wrongly) compare header names case-sensitively.
        for (name, value) in &self.headers {
            builder = builder.header_raw(name, value.as_bytes());
        }
        builder.config().timeout_global(Some(timeout)).build()
    }

    fn finish(&self, result: Result<Response<UreqBody>, ureq::Error>) -> Exchange {
        let mut response = match result {
            Ok(response) => response,
            Err(e) => return Exchange::Failed(e),
        };
        let status = response.status().as_u16();
        let location = response.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_string);
        // Reading the body to its end is what lets the connection go back to the pool; the limit
        // bounds memory. A 2xx is delivered whatever happens to its body.
        let body_excerpt = match response.body_mut().with_config().limit(self.body_limit).read_to_vec() {
            Ok(bytes) => String::from_utf8_lossy(&bytes).chars().take(EXCERPT_CHARS).collect(),
            Err(e) => format!("<response body not read: {e}>"),
        };
        Exchange::Response { status, location, body_excerpt }
    }
}

/// See [`Service::activity`].
#[derive(Debug)]
struct Activity {
    last: Instant,
    used: bool,
}

/// An agent with the connector and resolver every request of the driver uses.
fn new_agent(config: &Config) -> Agent {
    let connector = DefaultConnector::default().chain(CoalescingConnector);
    Agent::with_parts(config.clone(), connector, CachingResolver::default())
}

/// How long a host name's addresses are reused (the JVM's default for successful lookups).
const DNS_TTL: Duration = Duration::from_secs(30);

/// ureq's resolver without a lookup per request: IP addresses are used as they are, and a host
/// name's addresses are kept for [`DNS_TTL`] (failures are not kept). Lookups themselves are
/// ureq's (with their time limit).
#[derive(Debug, Default)]
struct CachingResolver {
    inner: DefaultResolver,
    /// The last successful lookup: `host:port`, when, the addresses.
    cache: Mutex<Option<(String, Instant, ResolvedSocketAddrs)>>,
}

impl Resolver for CachingResolver {
    /// The addresses of the lookup that the target policy allows, checked on every request
    /// (cached or not), so a name that comes to resolve to a denied address is refused too.
    fn resolve(&self, uri: &Uri, config: &Config, timeout: NextTimeout) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let addrs = self.lookup(uri, config, timeout)?;
        let allowed = target_policy::allowed(addrs.iter().copied()).map_err(|r| ureq::Error::Io(r.into_io()))?;
        let mut kept = self.inner.empty();
        for addr in allowed {
            kept.push(addr);
        }
        Ok(kept)
    }
}

impl CachingResolver {
    fn lookup(&self, uri: &Uri, config: &Config, timeout: NextTimeout) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let Some(key) = uri.scheme().zip(uri.authority()).and_then(|(s, a)| DefaultResolver::host_and_port(s, a))
        else {
            return self.inner.resolve(uri, config, timeout);
        };
        if let Ok(addr) = key.parse::<SocketAddr>() {
            let mut addrs = self.inner.empty();
            addrs.push(addr);
            return Ok(addrs);
        }
        {
            let cache = self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((k, at, addrs)) = cache.as_ref() {
                if *k == key && at.elapsed() < DNS_TTL {
                    return Ok(addrs.clone());
                }
            }
        }
        let addrs = self.inner.resolve(uri, config, timeout)?;
        *self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some((key, Instant::now(), addrs.clone()));
        Ok(addrs)
    }
}

/// Writes up to this size are held back to go out with the next one.
const HOLD_MAX: usize = 16 * 1024;

/// Wraps every connection (plain or TLS) in [`Coalescing`].
#[derive(Debug)]
struct CoalescingConnector;

impl Connector<Box<dyn Transport>> for CoalescingConnector {
    type Out = Box<dyn Transport>;

    fn connect(
        &self,
        _: &ConnectionDetails,
        chained: Option<Box<dyn Transport>>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        Ok(chained.map(|inner| Box::new(Coalescing { inner, held: Vec::new() }) as Box<dyn Transport>))
    }
}

/// A transport that holds back a small write (a request head) and sends it together with the
/// next one (the start of the body), or before waiting for input, whichever comes first. The
/// bytes and their order on the wire are unchanged; only the number of writes is.
#[derive(Debug)]
struct Coalescing {
    inner: Box<dyn Transport>,
    held: Vec<u8>,
}

impl Coalescing {
    /// Sends what is held back, if anything.
    fn flush(&mut self, timeout: NextTimeout) -> Result<(), ureq::Error> {
        if self.held.is_empty() {
            return Ok(());
        }
        let n = self.held.len();
        // The held bytes came from this output buffer, so they fit.
        self.inner.buffers().output()[..n].copy_from_slice(&self.held);
        self.held.clear();
        self.inner.transmit_output(n, timeout)
    }
}

impl Transport for Coalescing {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.inner.buffers()
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        if self.held.is_empty() && amount <= HOLD_MAX {
            self.held.extend_from_slice(&self.inner.buffers().output()[..amount]);
            return Ok(());
        }
        let held = self.held.len();
        let out = self.inner.buffers().output();
        if held + amount <= out.len() {
            out.copy_within(..amount, held);
            out[..held].copy_from_slice(&self.held);
            self.held.clear();
            self.inner.transmit_output(held + amount, timeout)
        } else {
            let later = out[..amount].to_vec();
            self.flush(timeout)?;
            self.inner.buffers().output()[..amount].copy_from_slice(&later);
            self.inner.transmit_output(amount, timeout)
        }
    }

    fn maybe_await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.flush(timeout)?;
        self.inner.maybe_await_input(timeout)
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.flush(timeout)?;
        self.inner.await_input(timeout)
    }

    fn is_open(&mut self) -> bool {
        self.inner.is_open()
    }

    fn is_tls(&self) -> bool {
        self.inner.is_tls()
    }
}
