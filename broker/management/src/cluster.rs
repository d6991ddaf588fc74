//! The cluster as this broker node sees it: every node announces itself on the compacted
//! `tbmq.sys.service.info` topic (ours; key = service id, value = `ServiceInfo` with the start
//! time, heartbeat time, version and listeners), and every node reads that topic on its own,
//! from the beginning at start. A node that stops writes a tombstone; a node that dies is shown
//! as not alive once it missed three heartbeats. The executors come from [`Executors`].
//!
//! TBMQ keeps its service registry in Redis and lists it at `GET /api/app/service/info`; we have
//! no Redis, so the registry is a queue topic like the rest of the cluster state.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use parking_lot::Mutex;
use prost::Message as _;
use trib_queue::{
    queue::{wait_delivery, Consumer, ConsumerEvent, Partitioning, Queue, QueueError, QueueResult, TopicPartition},
    topics::TopicNames,
    wire::ServiceInfo,
};

use crate::executors::Executors;

/// `serviceType` of a broker node, as TBMQ names it.
pub const BROKER_SERVICE_TYPE: &str = "tbmq";

/// A broker node as its last heartbeat describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Service id.
    pub service_id: String,
    /// When it started (ms, its clock).
    pub start_time: i64,
    /// Its last heartbeat (ms, its clock).
    pub last_heartbeat: i64,
    /// Its version.
    pub version: String,
    /// Where it listens (URLs).
    pub listeners: Vec<String>,
    /// Heard from within three heartbeat intervals.
    pub alive: bool,
    /// This node.
    pub this_node: bool,
}

/// This node's view of the cluster.
#[derive(Debug)]
pub struct Cluster {
    service_id: String,
    start_time: i64,
    liveness: Duration,
    nodes: Mutex<HashMap<String, Node>>,
    listeners: Mutex<Vec<String>>,
    /// The listeners changed since the last heartbeat: the next one goes out at once.
    listeners_changed: AtomicBool,
    executors: Arc<Executors>,
}

impl Cluster {
    /// An empty view for node `service_id`; a node counts as alive for `liveness` after its
    /// last heartbeat.
    pub fn new(service_id: &str, liveness: Duration, executors: Arc<Executors>) -> Self {
        Cluster {
            service_id: service_id.to_string(),
            start_time: trib_queue::now_ms(),
            liveness,
            nodes: Mutex::new(HashMap::new()),
            listeners: Mutex::new(Vec::new()),
            listeners_changed: AtomicBool::new(false),
            executors,
        }
    }

    /// Replaces the listeners this node announces; the heartbeat thread announces them at
    /// once instead of at its next interval.
    pub fn set_listeners(&self, listeners: Vec<String>) {
        *self.listeners.lock() = listeners;
        self.listeners_changed.store(true, Ordering::Relaxed);
    }

    /// Whether the listeners changed since this was last asked.
    fn take_listeners_changed(&self) -> bool {
        self.listeners_changed.swap(false, Ordering::Relaxed)
    }

    /// Every node heard from, sorted by service id, with `alive` as of `now`.
    pub fn nodes(&self, now: i64) -> Vec<Node> {
        let mut nodes: Vec<Node> = self
            .nodes
            .lock()
            .values()
            .map(|n| Node { alive: self.is_alive(n.last_heartbeat, now), ..n.clone() })
            .collect();
        nodes.sort_by(|a, b| a.service_id.cmp(&b.service_id));
        nodes
    }

    /// The service ids of the nodes alive at `now`, once this node has run for one liveness
    /// period (before, a node not heard from yet may be alive: `None`).
    pub fn alive_nodes(&self, now: i64) -> Option<HashSet<String>> {
        if !self.is_alive(self.start_time, now) {
            let nodes = self.nodes.lock();
            return Some(
                nodes.values().filter(|n| self.is_alive(n.last_heartbeat, now)).map(|n| n.service_id.clone()).collect(),
            );
        }
        None
    }

    /// The executors this node hears.
    pub fn executors(&self) -> &Executors {
        &self.executors
    }

    /// This node's heartbeat at `now`.
    pub fn heartbeat(&self, now: i64) -> ServiceInfo {
        ServiceInfo {
            service_id: self.service_id.clone(),
            service_type: Some(BROKER_SERVICE_TYPE.into()),
            timestamp: now,
            start_time: self.start_time,
            version: env!("CARGO_PKG_VERSION").into(),
            listeners: self.listeners.lock().clone(),
            ..Default::default()
        }
    }

    /// Applies one record of the topic: a heartbeat, or a tombstone of a node that stopped.
    pub fn apply(&self, key: Option<&[u8]>, value: &[u8]) {
        let Some(key) = key.and_then(|k| std::str::from_utf8(k).ok()) else {
            return;
        };
        if value.is_empty() {
            self.nodes.lock().remove(key);
            return;
        }
        let info = match ServiceInfo::decode(value) {
            Ok(info) if info.service_id == key => info,
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(key, error = %e, "Undecodable service info record skipped.");
                return;
            }
        };
        let node = Node {
            this_node: info.service_id == self.service_id,
            service_id: info.service_id,
            start_time: info.start_time,
            last_heartbeat: info.timestamp,
            version: info.version,
            listeners: info.listeners,
            alive: true,
        };
        self.nodes.lock().insert(node.service_id.clone(), node);
    }

    /// Sets the `cluster_nodes` and `cluster_executors` gauges (alive ones) as of `now`.
    pub fn record_metrics(&self, now: i64) {
        let nodes = self.nodes(now).iter().filter(|n| n.alive).count();
        let executors = self.executors.all(now).iter().filter(|e| e.live).count();
        metrics::gauge!("cluster_nodes").set(nodes as f64);
        metrics::gauge!("cluster_executors").set(executors as f64);
    }

    fn is_alive(&self, last_heartbeat: i64, now: i64) -> bool {
        now.saturating_sub(last_heartbeat) <= self.liveness.as_millis() as i64
    }
}

/// The thread that sends this node's heartbeats and reads everyone's.
pub struct Heartbeats {
    queue: Arc<dyn Queue>,
    tp: TopicPartition,
    consumer: Box<dyn Consumer>,
    cluster: Arc<Cluster>,
    interval: Duration,
    poll: Duration,
}

impl Heartbeats {
    /// Creates the topic when missing and this node's consumer of it (from the beginning), and
    /// sends the first heartbeat. Blocking.
    pub fn open(
        queue: Arc<dyn Queue>,
        names: &TopicNames,
        cluster: Arc<Cluster>,
        interval: Duration,
        poll: Duration,
    ) -> QueueResult<Self> {
        let spec = names.service_info_spec()?;
        queue.create_topic(&spec)?;
        let tp = TopicPartition::new(spec.name, 0);
        let client_id = format!("{}service-info-consumer-{}", names.prefix, cluster.service_id);
        // The group never commits, so the consumer starts at the beginning.
        let consumer = queue.assign(&names.service_info_group(&cluster.service_id), &client_id, &tp)?;
        let heartbeats = Heartbeats { queue, tp, consumer, cluster, interval, poll };
        heartbeats.send(&heartbeats.cluster.heartbeat(trib_queue::now_ms()).encode_to_vec())?;
        Ok(heartbeats)
    }

    /// Runs until `stop`, then removes this node from the topic (a tombstone).
    pub fn spawn(mut self, stop: Arc<AtomicBool>) -> QueueResult<JoinHandle<()>> {
        std::thread::Builder::new()
            .name("mgmt-heartbeats".into())
            .spawn(move || {
                let mut next_beat = Instant::now() + self.interval;
                while !stop.load(Ordering::Relaxed) {
                    if Instant::now() >= next_beat || self.cluster.take_listeners_changed() {
                        next_beat = Instant::now() + self.interval;
                        let beat = self.cluster.heartbeat(trib_queue::now_ms()).encode_to_vec();
                        if let Err(e) = self.send(&beat) {
                            tracing::warn!(error = %e, "Heartbeat not sent.");
                        }
                    }
                    let wait = self.poll.min(next_beat.saturating_duration_since(Instant::now()));
                    match self.consumer.poll(wait, 500) {
                        Ok(events) => self.apply(events),
                        Err(e) => {
                            tracing::warn!(error = %e, "Service info topic poll failed.");
                            std::thread::sleep(self.poll);
                        }
                    }
                    self.cluster.record_metrics(trib_queue::now_ms());
                }
                if let Err(e) = self.send(&[]) {
                    tracing::warn!(error = %e, "This node's service info could not be removed.");
                }
            })
            .map_err(|e| QueueError::Backend(format!("cannot start the heartbeat thread: {e}")))
    }

    fn apply(&self, events: Vec<ConsumerEvent>) {
        for event in events {
            if let ConsumerEvent::Records(records) = event {
                records.iter().for_each(|r| self.cluster.apply(r.key.as_deref(), &r.value));
            }
        }
    }

    fn send(&self, value: &[u8]) -> QueueResult<()> {
        let key = self.cluster.service_id.as_bytes();
        wait_delivery(self.queue.producer().send(&self.tp.topic, Partitioning::Fixed(0), Some(key), value)).map(drop)
    }
}
