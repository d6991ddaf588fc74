//! The IO: one ureq [`Agent`] per instance, shared by the worker threads of [`crate::pool`]. The
//! agent's pool keeps connections alive between requests (up to one idle connection per worker);
//! its TLS configuration comes from the credentials. A request sends the configured method to the
//! configured URL and returns an [`Exchange`]; it never outlives the deadline it is given.
//!
//! Agent settings that differ from ureq's defaults, and why:
//! - statuses are not errors (`http_status_as_error(false)`): [`crate::retry`] needs the status;
//! - no redirects are followed (TBMQ does not follow them either);
//! - no proxy from the environment (TBMQ's client ignores `HTTP_PROXY` too).

use std::time::{Duration, Instant};

use ureq::{
    http::Response,
    typestate::{WithBody, WithoutBody},
    Agent, Body as UreqBody, RequestBuilder,
};

use crate::{
    config::{HttpConfig, Method},
    request::{self, Body},
    retry::Exchange,
};

/// How much of an error body is kept for the logs.
const EXCERPT_CHARS: usize = 512;

/// A configured HTTP client for one integration.
#[derive(Debug)]
pub struct Service {
    agent: Agent,
    url: String,
    method: Method,
    headers: Vec<(String, String)>,
    content_type_configured: bool,
    read_timeout: Option<Duration>,
    body_limit: u64,
}

impl Service {
    /// Builds the client for `config`. No connection is made yet.
    pub fn new(config: &HttpConfig) -> Service {
        let workers = config.workers();
        let connect = (config.connect_timeout_ms > 0).then(|| Duration::from_millis(config.connect_timeout_ms));
        let agent: Agent = Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .proxy(None)
            .tls_config(config.tls.tls_config())
            .timeout_connect(connect)
            .max_idle_connections(workers)
            .max_idle_connections_per_host(workers)
            .user_agent(concat!("trib-driver-http/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        let headers = request::headers(&config.headers, &config.credentials);
        Service {
            agent,
            url: config.url.clone(),
            method: config.method,
            content_type_configured: request::has_content_type(&headers),
            headers,
            read_timeout: (config.read_timeout_ms > 0).then(|| Duration::from_millis(config.read_timeout_ms)),
            body_limit: config.max_in_memory_buffer_kb.saturating_mul(1024),
        }
    }

    /// The encoded URL requests go to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The configured method.
    pub fn method(&self) -> Method {
        self.method
    }

    /// Sends one request with the configured method; `body` is attached only for POST and PUT.
    pub fn send(&self, body: Option<Body>, deadline: Instant) -> Exchange {
        let timeout = self.timeout(deadline);
        match self.method {
            Method::Post => self.with_body(self.agent.post(&self.url), body, timeout),
            Method::Put => self.with_body(self.agent.put(&self.url), body, timeout),
            Method::Get => self.without_body(self.agent.get(&self.url), timeout),
            Method::Delete => self.without_body(self.agent.delete(&self.url), timeout),
        }
    }

    /// Sends `HEAD` to the URL with the configured headers (the connection check).
    pub fn head(&self, deadline: Instant) -> Exchange {
        self.without_body(self.agent.head(&self.url), self.timeout(deadline))
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
