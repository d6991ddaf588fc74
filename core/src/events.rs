//! Events the executor sends to the broker on `tbmq.ie.uplink`: lifecycle, statistics and error
//! events of integrations (key = integration id) and the executor's service info.
//!
//! Like TBMQ: a repeat of an integration's last lifecycle event within 500 ms is sent once, and error
//! events are rate-limited executor-wide (`event.error.rate-limits.integration`), with one
//! "Integration error rate limits reached!" event per integration per hour once the limit bites.
//!
//! Lifecycle event names are the wire enum's ([`ComponentLifecycleEvent::name`]); the error
//! events' method is [`ErrorMethod`]. The counters that go with them live in [`crate::stats`].

use std::{
    collections::HashMap,
    sync::{atomic::Ordering::Relaxed, mpsc, Arc},
    time::{Duration, Instant},
};

use parking_lot::Mutex;
use prost::Message;
use uuid::Uuid;

use crate::{
    queue::{wait_delivery, Delivery, Partitioning, Producer},
    stats::Stats,
    wire::{
        uuid_to_bits, ComponentLifecycleEvent, ErrorEventProto, IntegrationEventProto, LifecycleEventProto,
        ServiceInfo, StatisticsEventProto, UplinkIntegrationMsgProto, WIRE_VERSION,
    },
};

const LIFECYCLE_DEDUP: Duration = Duration::from_millis(500);
const RATE_LIMITED_NOTICE_EVERY: Duration = Duration::from_secs(3600);

/// The method an error event names (TBMQ's `ErrorEvent.method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorMethod {
    /// A message could not be delivered (or the driver failed while delivering a pack).
    OnMsgProcess,
}

impl ErrorMethod {
    /// TBMQ's name, as sent in the event.
    pub const fn name(self) -> &'static str {
        match self {
            ErrorMethod::OnMsgProcess => "onMsgProcess",
        }
    }
}

/// Sends uplink events. Cheap to share behind an `Arc`.
pub struct Events {
    producer: Arc<dyn Producer>,
    topic: String,
    service_id: String,
    /// The last lifecycle event sent per integration, for de-duplication.
    recent_lifecycle: Mutex<HashMap<Uuid, (ComponentLifecycleEvent, Instant)>>,
    limiter: Option<Mutex<RateLimiter>>,
    limited_notice: Mutex<HashMap<Uuid, Instant>>,
    deliveries: mpsc::Sender<Delivery>,
    stats: Arc<Stats>,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events").field("topic", &self.topic).finish()
    }
}

impl Events {
    /// Creates the sender; a background thread counts deliveries into `stats`.
    pub fn new(
        producer: Arc<dyn Producer>,
        topic: String,
        service_id: String,
        error_limits: Option<&str>,
        stats: Arc<Stats>,
    ) -> Self {
        let (tx, rx) = mpsc::channel::<Delivery>();
        let counted = stats.clone();
        std::thread::Builder::new()
            .name("ie-uplink-acks".into())
            .spawn(move || {
                for delivery in rx {
                    match wait_delivery(delivery) {
                        Ok(_) => counted.uplink_successful.fetch_add(1, Relaxed),
                        Err(e) => {
                            tracing::warn!(error = %e, "Uplink event was not stored.");
                            counted.uplink_failed.fetch_add(1, Relaxed)
                        }
                    };
                    counted.uplink_pending.fetch_sub(1, Relaxed);
                }
            })
            .expect("spawn uplink ack thread");
        Events {
            producer,
            topic,
            service_id,
            recent_lifecycle: Mutex::new(HashMap::new()),
            limiter: error_limits.map(|spec| Mutex::new(RateLimiter::parse(spec))),
            limited_notice: Mutex::new(HashMap::new()),
            deliveries: tx,
            stats,
        }
    }

    /// This executor's service id.
    pub fn service_id(&self) -> &str {
        &self.service_id
    }

    fn send(&self, key: &[u8], msg: UplinkIntegrationMsgProto) {
        self.stats.uplink_total.fetch_add(1, Relaxed);
        self.stats.uplink_pending.fetch_add(1, Relaxed);
        let delivery = self.producer.send(&self.topic, Partitioning::ByKey, Some(key), &msg.encode_to_vec());
        if self.deliveries.send(delivery).is_err() {
            self.stats.uplink_pending.fetch_sub(1, Relaxed);
        }
    }

    fn event(&self, id: Uuid) -> IntegrationEventProto {
        let (msb, lsb) = uuid_to_bits(id);
        IntegrationEventProto {
            source: 0,
            event_source_id_msb: msb,
            event_source_id_lsb: lsb,
            service_id: self.service_id.clone(),
            ..Default::default()
        }
    }

    fn send_event(&self, id: Uuid, event: IntegrationEventProto) {
        let msg = UplinkIntegrationMsgProto {
            event_proto: Some(event),
            service_info_proto: None,
            wire_version: WIRE_VERSION,
        };
        self.send(id.to_string().as_bytes(), msg);
    }

    /// A lifecycle event (`STARTED`, `STOPPED`, `FAILED`, `REINIT`).
    pub fn lifecycle(&self, id: Uuid, event: ComponentLifecycleEvent, error: Option<&str>) {
        {
            // Only a repeat of the integration's *last* event is dropped: STARTED, STOPPED,
            // STARTED within 500 ms are three real transitions and all three are sent.
            let mut recent = self.recent_lifecycle.lock();
            let now = Instant::now();
            recent.retain(|_, (_, at)| now.duration_since(*at) < LIFECYCLE_DEDUP);
            if let Some((last, _)) = recent.insert(id, (event, now)) {
                if last == event {
                    return;
                }
            }
        }
        let mut e = self.event(id);
        e.lifecycle = Some(LifecycleEventProto {
            lc_event_type: event.name().into(),
            success: error.is_none(),
            error: error.map(str::to_string),
        });
        self.send_event(id, e);
    }

    /// A statistics event.
    pub fn statistics(&self, id: Uuid, messages_processed: u64, errors_occurred: u64) {
        let mut e = self.event(id);
        e.statistics = Some(StatisticsEventProto {
            messages_processed: messages_processed as i64,
            errors_occurred: errors_occurred as i64,
        });
        self.send_event(id, e);
    }

    /// An error event, rate-limited.
    pub fn error(&self, id: Uuid, method: ErrorMethod, error: &str) {
        let text = match &self.limiter {
            Some(l) if !l.lock().try_acquire(Instant::now()) => {
                let mut notices = self.limited_notice.lock();
                let now = Instant::now();
                match notices.get(&id) {
                    Some(at) if now.duration_since(*at) < RATE_LIMITED_NOTICE_EVERY => return,
                    _ => {
                        notices.insert(id, now);
                        "Integration error rate limits reached!".to_string()
                    }
                }
            }
            _ => error.to_string(),
        };
        let mut e = self.event(id);
        e.error = Some(ErrorEventProto { method: method.name().into(), error: Some(text) });
        self.send_event(id, e);
    }

    /// Announces this executor, the integration types it serves, the plugins it refused and the
    /// integrations it runs with how their deliveries go.
    pub fn service_info(
        &self,
        integration_types: Vec<String>,
        plugin_errors: Vec<String>,
        drivers: Vec<crate::wire::DriverInfoProto>,
    ) {
        let integrations = self.stats.integration_statuses();
        let info = ServiceInfo {
            service_id: self.service_id.clone(),
            service_type: Some("tbmq-integration-executor".into()),
            integration_types,
            plugin_errors,
            timestamp: crate::now_ms(),
            drivers,
            integrations,
            ..Default::default()
        };
        let msg =
            UplinkIntegrationMsgProto { event_proto: None, service_info_proto: Some(info), wire_version: WIRE_VERSION };
        self.send(Uuid::new_v4().to_string().as_bytes(), msg);
    }
}

/// Token buckets from a `tokens:seconds,tokens:seconds` spec; all must have a token.
#[derive(Debug)]
pub struct RateLimiter {
    buckets: Vec<(f64, f64, f64, Instant)>, // capacity, refill per second, tokens, last refill
}

impl RateLimiter {
    /// Parses the spec; malformed pairs are skipped with a warning.
    pub fn parse(spec: &str) -> Self {
        let now = Instant::now();
        let buckets = spec
            .split(',')
            .filter_map(|pair| {
                let (t, s) = pair.trim().split_once(':')?;
                match (t.trim().parse::<f64>(), s.trim().parse::<f64>()) {
                    (Ok(t), Ok(s)) if t > 0.0 && s > 0.0 => Some((t, t / s, t, now)),
                    _ => {
                        tracing::warn!(pair, "Ignoring malformed rate limit.");
                        None
                    }
                }
            })
            .collect();
        RateLimiter { buckets }
    }

    /// Takes a token from every bucket if each has one.
    pub fn try_acquire(&mut self, now: Instant) -> bool {
        for b in &mut self.buckets {
            b.2 = (b.2 + now.duration_since(b.3).as_secs_f64() * b.1).min(b.0);
            b.3 = now;
        }
        if self.buckets.iter().all(|b| b.2 >= 1.0) {
            self.buckets.iter_mut().for_each(|b| b.2 -= 1.0);
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests;
