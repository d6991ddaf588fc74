//! Client traffic across broker nodes, on the queue (TBMQ's topics, see `ARCHITECTURE.md`):
//!
//! - Every node writes its MQTT clients' subscriptions to the compacted `tbmq.client.subscriptions`
//!   (key = client id, source `MQTT_CLIENT`, with the node that holds the session: ours; TBMQ
//!   keeps the node in `tbmq.client.session`), when a client connects and after each SUBSCRIBE
//!   or UNSUBSCRIBE, and a record with `session_ended` when the session ends. Every node reads
//!   the whole topic (before its MQTT listeners open, then in real time) and keeps the other
//!   nodes' clients' subscriptions in its trie as remote entries.
//! - A PUBLISH that matches another node's client goes to that node once, on its
//!   `tbmq.msg.downlink.basic.<serviceId>` ([`ClusterPublishMsgProto`], one record per node and
//!   PUBLISH rather than TBMQ's one per subscriber), with the shared groups whose turn is on
//!   that node; the node delivers it to its own matching clients. Integrations and retained
//!   messages are handled by the receiving node only, so each integration still gets one copy.
//!   A QoS 1 or 2 PUBLISH is acknowledged once the record is stored, as for integrations.
//! - A client that connects to this node while another node holds its session: the record this
//!   node writes makes the other node drop its copy (its connection is closed with "session
//!   taken over") and hand the QoS 1 and 2 messages it still held to this node, addressed to
//!   the client; with clean start off, this node resumes the session with the subscriptions the
//!   other node last wrote.
//!
//! A node reads its downlink topic from its end at start: its sessions did not survive the
//! restart, so what was waiting there has nobody to go to.
//!
//! While this node has records of its own for a client id that it has not read back yet, what
//! other nodes wrote for that client id in between is not applied: this node's later record wins
//! in the topic's one order on every node.

#[cfg(test)]
mod tests;

use std::{
    collections::{HashMap, HashSet},
    sync::{
        atomic::{AtomicBool, Ordering},
        mpsc, Arc, LazyLock, Weak,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use parking_lot::Mutex;
use prost::Message as _;
use trib_ops::log_limit::LogLimit;
use trib_queue::{
    queue::{
        wait_delivery, Consumer, ConsumerEvent, Delivery, Partitioning, Producer, Queue, QueueError, QueueResult,
        Record, TopicPartition,
    },
    topics::TopicNames,
    wire::{
        ClientSubscriptionsProto, ClusterPublishMsgProto, SharedGroupProto, SubscriptionsSourceProto,
        TopicSubscriptionProto, WIRE_VERSION,
    },
};
use uuid::Uuid;

use crate::{
    forward::publish_msg_proto,
    message::{now_ms, PublishedMessage, RoutedMessage},
    protocol::QoS,
    router::{
        topic::validate_topic_name, ClientSubscription, ClusterSink, Detached, Handover, Handovers, NodeTarget,
        NotStored, SessionLog,
    },
    session::Delivery as SessionDelivery,
    sessions::Sessions,
    Router,
};

/// TBMQ's prefix of marker keys on `tbmq.client.subscriptions`.
const MARKER_KEY_PREFIX: &str = "tbmq_system_dummy_client_id_";
/// How long a node may take to read the subscriptions topic up to its marker before its start fails.
pub const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(60);
/// Records read per poll.
const MAX_RECORDS: usize = 500;

/// Log lines about records skipped or not stored, per reason.
static LINES: LazyLock<LogLimit> = LazyLock::new(LogLimit::default);

/// Tells the publishing connection when the record is stored (QoS 1 and 2 only).
type Confirm = Option<tokio::sync::oneshot::Sender<Result<(), NotStored>>>;

/// How often the offset before which no session needs this node's persisted messages is
/// committed (the queue then deletes what lies before it).
const KEPT_COMMIT_INTERVAL: Duration = Duration::from_secs(1);

/// What a record sent means for this node's persisted messages topic.
enum Track {
    /// Not a record of that topic.
    Other,
    /// A message kept for the client.
    Kept(String),
    /// Everything kept for the client before it is no longer needed.
    Cleared(String),
}

/// Where each client's kept messages start on this node's persisted messages topic, and the
/// reader whose committed offset tells the queue what no session needs any more.
///
/// The queue's answers arrive in the order records were handed to the ack thread, which is not
/// always their offset order: a session's clearing record and the kept copy of a message
/// published to it at the same moment come from two client tasks. So the bookkeeping goes by
/// offsets: a clearing record removes only what it follows, and a kept copy it follows stays.
#[derive(Default)]
struct KeptOffsets {
    /// Per client with kept messages: the offsets of the first and the last one since its last
    /// clearing record.
    first: HashMap<String, (i64, i64)>,
    /// Per client: the offset of its last clearing record (dropped once committed past).
    cleared_at: HashMap<String, i64>,
    /// The offset after the last record of the topic stored.
    next: i64,
    committed: i64,
    committer: Option<(Box<dyn Consumer>, TopicPartition)>,
}

impl KeptOffsets {
    fn stored(&mut self, track: Track, offset: i64) {
        match track {
            // Not a record of the persisted messages topic: its offset means nothing here.
            Track::Other => return,
            Track::Kept(client) => {
                // Before a clearing record already seen, or before what was committed: moved.
                let superseded = self.cleared_at.get(&client).is_some_and(|&c| c > offset);
                if !superseded && offset >= self.committed {
                    let range = self.first.entry(client).or_insert((offset, offset));
                    *range = (range.0.min(offset), range.1.max(offset));
                }
            }
            Track::Cleared(client) => {
                let at = self.cleared_at.entry(client.clone()).or_insert(offset);
                *at = (*at).max(offset);
                if let Some(range) = self.first.get_mut(&client) {
                    if range.1 < offset {
                        self.first.remove(&client);
                    } else if range.0 < offset {
                        // Kept copies after the clearing record were seen first: they start
                        // after it (the clearing record itself is a safe place to start).
                        range.0 = offset;
                    }
                }
            }
        }
        self.next = self.next.max(offset + 1);
    }

    /// Commits the offset before which nothing is needed, if it moved.
    fn commit(&mut self) {
        let needed = self.first.values().map(|r| r.0).min().unwrap_or(self.next);
        let Some((consumer, tp)) = self.committer.as_mut() else { return };
        if needed <= self.committed {
            return;
        }
        match consumer.commit(tp, needed) {
            Ok(()) => {
                self.committed = needed;
                self.cleared_at.retain(|_, at| *at >= needed);
            }
            Err(e) => {
                if let Some(suppressed) = LINES.admit("kept commit") {
                    tracing::warn!(error = %e, suppressed, "Could not commit the persisted messages' offset.");
                }
            }
        }
    }
}

/// The readers: client subscriptions, this node's downlink topic, and (at start only) this
/// node's persisted messages.
type Readers = (Box<dyn Consumer>, Box<dyn Consumer>, Box<dyn Consumer>);
/// One poll of a reader thread.
type Step = Box<dyn FnMut(&Inner) -> QueueResult<()> + Send>;

/// This node's part of the cluster: its writer of client records and of messages to other
/// nodes, and its readers of both topics.
pub struct ClusterLink {
    inner: Arc<Inner>,
    readers: Mutex<Option<Readers>>,
    /// The offset after the last subscriptions record read (catch-up).
    next: Mutex<i64>,
    poll: Duration,
    /// This node's persistent sessions of an earlier run, to restore once the broker runs.
    restore: Mutex<Vec<Restore>>,
}

/// Messages kept for a session, with the QoS each goes out with.
type KeptMessages = Vec<(PublishedMessage, QoS)>;
/// Per client: its messages since its last clearing record, and the first one's offset.
type KeptByClient = HashMap<String, (KeptMessages, Option<i64>)>;

/// What reading this node's persisted messages at start found.
struct Kept {
    restore: Vec<Restore>,
    /// Client ids of this node's earlier sessions that end (not persistent).
    ended: Vec<String>,
    /// The messages kept for other clients (sessions that another node holds now, or that
    /// ended): client id, the messages.
    others: Vec<(String, KeptMessages)>,
    /// The topic's end offset.
    end: i64,
}

/// A persistent session of an earlier run of this node: its record and the messages kept for it.
#[derive(Debug)]
struct Restore {
    record: ClientRecord,
    messages: Vec<(PublishedMessage, QoS)>,
    /// The offset of the first kept message (if any).
    first_offset: Option<i64>,
}

impl std::fmt::Debug for ClusterLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterLink").field("service_id", &self.inner.service_id).finish_non_exhaustive()
    }
}

struct Inner {
    /// This, for the threads it starts.
    me: Weak<Inner>,
    router: Weak<Router>,
    sessions: Mutex<Option<Weak<Sessions>>>,
    producer: Arc<dyn Producer>,
    names: TopicNames,
    subscriptions_topic: String,
    persisted_topic: String,
    service_id: String,
    /// Per client id: this node's records not read back yet, and connections about to write one.
    pending: Mutex<HashMap<String, Pending>>,
    /// The sequence number of this node's last client record.
    seq: std::sync::atomic::AtomicU64,
    acks: mpsc::Sender<(Delivery, Confirm, Track)>,
    kept: Arc<Mutex<KeptOffsets>>,
    /// To read the persisted messages of nodes that are down.
    queue: Arc<dyn Queue>,
    /// The broker nodes alive now (the management plane's heartbeats); unset: all are.
    alive: Mutex<Option<AliveNodes>>,
    /// The nodes alive at the last look, and when that was.
    alive_before: Mutex<(HashSet<String>, Instant)>,
    /// Sessions resumed here from another node: client id, that node (forgotten once that
    /// node's messages for them were fetched, or the session is gone).
    adopted: Mutex<HashMap<String, String>>,
    /// How often this node writes its liveness record, and when it last did.
    alive_beat: Mutex<(Duration, Option<Instant>)>,
}

/// This node's word on a client that the subscriptions topic does not carry back yet: while
/// there is one, other nodes' records of the client are older than this node's and are skipped.
#[derive(Debug, Default)]
struct Pending {
    /// Connections between [`SessionLog::connecting`] and [`SessionLog::connected`].
    connecting: usize,
    /// The sequence number of this node's latest record of the client, until it is read back
    /// (compaction may remove the earlier ones: only the latest counts).
    latest: Option<u64>,
}

impl Pending {
    fn is_done(&self) -> bool {
        self.connecting == 0 && self.latest.is_none()
    }
}

/// Tells which broker nodes are alive now (`None`: not known yet).
pub type AliveNodes = Arc<dyn Fn() -> Option<HashSet<String>> + Send + Sync>;

/// How often the cluster link looks for nodes that went down.
const NODE_CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// How often a node writes its liveness record (see [`ClusterLink::set_alive_interval`]).
pub const ALIVE_INTERVAL: Duration = Duration::from_secs(10);
/// The poll timeout while fetching what a node that is down kept.
const FETCH_POLL: Duration = Duration::from_millis(100);
/// How long after a session moved here from a node that is down the messages other nodes sent
/// to that node are read: by then every node has read this node's record and sends here.
const SWITCH_GRACE: Duration = Duration::from_secs(1);
/// How often a node commits its position on its downlink topic.
const DOWNLINK_COMMIT_INTERVAL: Duration = Duration::from_secs(1);

impl ClusterLink {
    /// Creates this node's downlink topic and the consumers of it and of the subscriptions
    /// topic. Nothing is read until [`ClusterLink::catch_up`].
    pub async fn open(
        queue: Arc<dyn Queue>,
        names: &TopicNames,
        service_id: &str,
        router: &Arc<Router>,
        poll: Duration,
    ) -> QueueResult<Self> {
        let (names, id, q) = (names.clone(), service_id.to_owned(), queue.clone());
        let opened = tokio::task::spawn_blocking(move || -> QueueResult<_> {
            let queue = q;
            let subs = names.client_subscriptions_spec()?;
            queue.create_topic(&subs)?;
            let downlink = names.basic_downlink_spec(&id)?;
            queue.create_topic(&downlink)?;
            let subs_reader = queue.assign(
                &names.cluster_subscriptions_group(&id),
                &format!("{}client-subscriptions-broker-{id}", names.prefix),
                &TopicPartition::new(&subs.name, 0),
            )?;
            let tp = TopicPartition::new(&downlink.name, 0);
            let mut downlink_reader = queue.assign(
                &names.basic_downlink_group(&id),
                &format!("{}basic-downlink-msg-consumer-{id}", names.prefix),
                &tp,
            )?;
            // Where this node stood in an earlier run: what other nodes sent meanwhile goes to
            // the persistent sessions it restores (nothing committed: from now on).
            let (first, end) = downlink_reader.watermarks(&tp)?;
            let start = downlink_reader.committed(&tp)?.map_or(end, |c| c.clamp(first, end));
            downlink_reader.seek(&tp, start)?;
            // Known from the start, should this node die before its first commit.
            downlink_reader.commit(&tp, start)?;
            let persisted = names.persisted_msg_spec(&id)?;
            queue.create_topic(&persisted)?;
            let persisted_reader = queue.assign(
                &names.persisted_msg_group(&id),
                &format!("{}persisted-msg-consumer-{id}", names.prefix),
                &TopicPartition::new(&persisted.name, 0),
            )?;
            let readers = (subs_reader, downlink_reader, persisted_reader);
            Ok((names, subs.name, persisted.name, readers, queue.producer()))
        })
        .await
        .map_err(|e| QueueError::Backend(format!("cannot open the cluster topics: {e}")))??;
        let (names, subscriptions_topic, persisted_topic, readers, producer) = opened;
        let (acks, acks_rx) = mpsc::channel();
        let kept = Arc::new(Mutex::new(KeptOffsets::default()));
        spawn_acks(acks_rx, kept.clone())?;
        let inner = Arc::new_cyclic(|me| Inner {
            me: me.clone(),
            router: Arc::downgrade(router),
            sessions: Mutex::new(None),
            producer,
            names,
            subscriptions_topic,
            persisted_topic,
            service_id: service_id.to_owned(),
            pending: Mutex::new(HashMap::new()),
            seq: std::sync::atomic::AtomicU64::new(0),
            acks,
            kept,
            queue,
            alive: Mutex::new(None),
            alive_before: Mutex::new((HashSet::new(), Instant::now())),
            adopted: Mutex::new(HashMap::new()),
            alive_beat: Mutex::new((ALIVE_INTERVAL, None)),
        });
        Ok(ClusterLink {
            inner,
            readers: Mutex::new(Some(readers)),
            next: Mutex::new(0),
            poll,
            restore: Mutex::new(Vec::new()),
        })
    }

    /// Reads the subscriptions topic up to now (a marker this node writes) into the router's
    /// trie; returns how many other nodes' clients it knows then. Called at start, before the
    /// MQTT listeners open. This node's sessions of an earlier run: the persistent ones (expiry
    /// interval above 0) are read back with the messages kept for them, to be restored by
    /// [`ClusterLink::follow_broker`]; the others are answered with `session_ended`.
    pub async fn catch_up(&self) -> QueueResult<usize> {
        let marker = format!("{MARKER_KEY_PREFIX}{}", Uuid::new_v4());
        let value = encode_client(&self.inner.service_id, true, 0, &[], None, None);
        let topic = self.inner.subscriptions_topic.clone();
        let delivery = self.inner.producer.send(&topic, Partitioning::Fixed(0), Some(marker.as_bytes()), &value);
        let (_, offset) = delivery.await.unwrap_or(Err(QueueError::Closed))?;
        let (mut subs, downlink, mut persisted) = self.readers.lock().take().ok_or(QueueError::Closed)?;
        let (inner, poll) = (self.inner.clone(), self.poll);
        let mut next = *self.next.lock();
        let alive_key = self.inner.alive_key();
        let (subs, persisted, next, result) = tokio::task::spawn_blocking(move || {
            let deadline = Instant::now() + CATCH_UP_TIMEOUT;
            let mut stale = HashMap::new();
            let mut last_alive = None;
            let result = (|| {
                while next <= offset {
                    if Instant::now() >= deadline {
                        return Err(QueueError::Backend(format!(
                            "could not read the client subscriptions topic up to offset {offset} in time (read up to {next})"
                        )));
                    }
                    for record in poll_records(subs.as_mut(), poll)? {
                        if record.key.as_deref() == Some(alive_key.as_bytes()) {
                            last_alive = ClientSubscriptionsProto::decode(&record.value[..])
                                .ok()
                                .and_then(|p| p.disconnected_at)
                                .or(last_alive);
                        } else {
                            inner.apply(&record, Some(&mut stale));
                        }
                        next = record.offset + 1;
                    }
                }
                // Sessions whose clients were connected when this node stopped: their clients
                // were gone once the node was, at the latest one liveness interval after its
                // last liveness record (kept longer rather than ended early).
                if let Some(alive_at) = last_alive {
                    let interval = i64::try_from(inner.alive_beat.lock().0.as_millis()).unwrap_or(i64::MAX);
                    let gone_at = alive_at.saturating_add(interval).min(trib_queue::now_ms());
                    for record in stale.values_mut().filter(|r| r.disconnected_at.is_none()) {
                        record.disconnected_at = Some(gone_at);
                    }
                }
                read_kept(persisted.as_mut(), &inner.persisted_topic, stale, poll, deadline)
            })();
            (subs, persisted, next, result)
        })
        .await
        .map_err(|e| QueueError::Backend(format!("client subscriptions catch-up failed: {e}")))?;
        *self.readers.lock() = Some((subs, downlink, persisted));
        *self.next.lock() = next;
        let Kept { restore, ended, others, end: kept_end } = result?;
        {
            // Where the restored sessions' kept messages start: nothing before is needed.
            let mut kept = self.inner.kept.lock();
            kept.next = kept_end;
            for r in &restore {
                if let Some(offset) = r.first_offset {
                    kept.first.insert(r.record.client_id.clone(), (offset, offset));
                }
            }
        }
        // The marker goes; so do this node's clean sessions of an earlier run.
        let tombstone = self.inner.producer.send(&topic, Partitioning::Fixed(0), Some(marker.as_bytes()), &[]);
        let _ = tombstone.await;
        for client_id in ended {
            self.inner.ended(&client_id);
        }
        // Sessions whose clients resumed on another node while this one was down: what was kept
        // for them here goes to that node (had this node been up, it would have handed it over).
        // (What was kept for sessions that ended since is dropped.)
        let router = self.inner.router.upgrade().ok_or(QueueError::Closed)?;
        for (client_id, messages) in others {
            let Some((node, _)) = router.remote_client(&client_id) else { continue };
            let held = messages
                .into_iter()
                .map(|(msg, qos)| SessionDelivery {
                    msg: RoutedMessage::new(msg),
                    qos,
                    retain: false,
                    sub_ids: Vec::new(),
                })
                .collect();
            self.inner.take_over(&client_id, &node, held);
        }
        *self.restore.lock() = restore;
        self.inner.beat_alive();
        // From here on the router tells the cluster about its sessions and sends other nodes'
        // clients their messages (before the listeners open: no connection goes unrecorded).
        router.set_session_log(Some(self.inner.clone()));
        router.set_cluster_sink(Some(self.inner.clone()));
        Ok(router.remote_client_count())
    }

    /// Restores this node's persistent sessions of an earlier run into the broker's registry
    /// and starts the two reader threads (other nodes' subscriptions and takeovers, messages
    /// from other nodes), until `stop` is set or the router is gone.
    fn follow(&self, broker: &crate::BrokerHandle, stop: Arc<AtomicBool>) -> QueueResult<Vec<JoinHandle<()>>> {
        let (mut subs, mut downlink, persisted) = self.readers.lock().take().ok_or(QueueError::Closed)?;
        let tp = TopicPartition::new(&self.inner.persisted_topic, 0);
        self.inner.kept.lock().committer = Some((persisted, tp));
        let router = self.inner.router.upgrade().ok_or(QueueError::Closed)?;
        let sessions = broker.sessions();
        *self.inner.sessions.lock() = Some(Arc::downgrade(sessions));
        let restore = std::mem::take(&mut *self.restore.lock());
        let restored = restore.len();
        let now = trib_queue::now_ms();
        for Restore { record, messages, .. } in restore {
            let messages = messages.into_iter().map(|(msg, qos)| (RoutedMessage::new(msg), qos)).collect();
            let left = expiry_left(&record, now).unwrap_or(record.expiry).max(1);
            let saved = crate::sessions::Saved {
                expiry: (record.expiry, left),
                subscriptions: &record.subscriptions,
                awaiting_pubrel: &record.awaiting_pubrel,
            };
            sessions.restore(&router, broker.limits(), &record.client_id, saved, messages);
        }
        if restored > 0 {
            tracing::info!(sessions = restored, "Persistent sessions restored from the queue.");
        }
        let poll = self.poll;
        let spawn = |name: &str, mut step: Step| {
            let (inner, stop) = (Arc::downgrade(&self.inner), stop.clone());
            let what = name.to_owned();
            std::thread::Builder::new()
                .name(name.into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let Some(inner) = inner.upgrade().filter(|i| i.router.strong_count() > 0) else { break };
                        if let Err(e) = step(&inner) {
                            tracing::warn!(reader = %what, error = %e, "Cluster topic poll failed.");
                            std::thread::sleep(poll);
                        }
                    }
                })
                .map_err(|e| QueueError::Backend(format!("cannot start the {name} thread: {e}")))
        };
        let subs_thread = spawn(
            "broker-cluster-subs",
            Box::new(move |inner| {
                for record in poll_records(subs.as_mut(), poll)? {
                    inner.apply(&record, None);
                }
                inner.check_nodes();
                inner.beat_alive();
                Ok(())
            }),
        )?;
        let downlink_tp = TopicPartition::new(self.inner.names.basic_downlink(&self.inner.service_id), 0);
        let (mut position, mut committed, mut last_commit) = (None, None, Instant::now());
        let mut kept = Handovers::default();
        let downlink_thread = spawn(
            "broker-cluster-downlink",
            Box::new(move |inner| {
                for record in poll_records(downlink.as_mut(), poll)? {
                    inner.deliver(&record, &mut kept);
                    position = Some(record.offset + 1);
                }
                // Where this node stands, for its next start and for a node that takes its
                // sessions over if it dies: past the records whose persistent sessions' copies
                // are stored (a crash before reads them again: duplicates, never a loss).
                if position != committed && last_commit.elapsed() >= DOWNLINK_COMMIT_INTERVAL {
                    if let Err(e) = std::mem::take(&mut kept).wait_blocking() {
                        tracing::error!(error = %e, "Messages from other nodes for persistent sessions were not kept.");
                    }
                    if let Some(next) = position {
                        downlink.commit(&downlink_tp, next)?;
                    }
                    (committed, last_commit) = (position, Instant::now());
                }
                Ok(())
            }),
        )?;
        Ok(vec![subs_thread, downlink_thread])
    }
}

impl ClusterLink {
    /// Where to learn which broker nodes are alive (the management plane's heartbeats). A
    /// client that resumes here a session of a node that is down, and the sessions held here
    /// when a node goes down, get what that node kept for them from its persisted messages
    /// topic. Without it every node counts as alive (a node's kept messages then reach the
    /// node holding the session when their node starts again).
    pub fn set_alive_nodes(&self, alive: AliveNodes) {
        let now = alive().unwrap_or_default();
        *self.inner.alive_before.lock() = (now, Instant::now());
        *self.inner.alive.lock() = Some(alive);
    }

    /// How often this node writes its liveness record ([`ALIVE_INTERVAL`] unless set before
    /// [`ClusterLink::catch_up`]): a record keyed `tbmq_system_dummy_client_id_alive-<serviceId>`
    /// on the subscriptions topic (TBMQ skips keys with that prefix) whose `disconnected_at`
    /// says when the node was last alive. After a SIGKILL, the restarted node counts the expiry
    /// of the sessions whose clients were still connected from one interval after that time.
    pub fn set_alive_interval(&self, interval: Duration) {
        self.inner.alive_beat.lock().0 = interval;
    }

    /// [`ClusterLink::follow`] for a broker started on this link's router (what the broker
    /// service does; also for tools that start brokers themselves).
    pub fn follow_broker(
        &self,
        broker: &crate::BrokerHandle,
        stop: Arc<AtomicBool>,
    ) -> QueueResult<Vec<JoinHandle<()>>> {
        self.follow(broker, stop)
    }
}

/// The seconds a persistent session of an earlier run has left at `now_ms`: its expiry interval
/// counted from its client's disconnection (from now when the client was connected when the
/// node stopped: the record does not say when that was). `None` for a clean session.
pub(crate) fn expiry_left(record: &ClientRecord, now_ms: i64) -> Option<u32> {
    if record.expiry == 0 {
        return None;
    }
    let Some(at) = record.disconnected_at else {
        return Some(record.expiry);
    };
    let gone_ms = u64::try_from(now_ms.saturating_sub(at)).unwrap_or(0);
    let left_ms = (u64::from(record.expiry) * 1000).saturating_sub(gone_ms);
    // Rounded up: a session with 0.4 s left is still there.
    Some(u32::try_from(left_ms.div_ceil(1000)).unwrap_or(u32::MAX))
}

/// Reads this node's persisted messages topic to its end: the messages kept since the last
/// clearing record for each client, those of the persistent sessions among `stale` (this
/// node's live records of an earlier run) to restore, and the others.
fn read_kept(
    consumer: &mut dyn Consumer,
    topic: &str,
    stale: HashMap<String, ClientRecord>,
    poll: Duration,
    deadline: Instant,
) -> QueueResult<Kept> {
    let now = trib_queue::now_ms();
    let (keep, ended): (Vec<ClientRecord>, Vec<ClientRecord>) =
        stale.into_values().partition(|r| expiry_left(r, now).is_some_and(|left| left > 0));
    let ended = ended.into_iter().map(|r| r.client_id).collect();
    let (mut kept, end) = scan_kept(consumer, topic, poll, deadline, |_| true)?;
    let restore = keep
        .into_iter()
        .map(|record| {
            let (messages, first_offset) = kept.remove(&record.client_id).unwrap_or_default();
            Restore { messages, first_offset, record }
        })
        .collect();
    let others = kept.into_iter().filter(|(_, (m, _))| !m.is_empty()).map(|(c, (m, _))| (c, m)).collect();
    Ok(Kept { restore, ended, others, end })
}

/// Reads a node's persisted messages topic from its reader's committed offset (nothing before
/// it was needed by any session) to its end: per client that `wanted` selects, the messages
/// kept since its last clearing record and the first one's offset. Returns them and the end.
fn scan_kept(
    consumer: &mut dyn Consumer,
    topic: &str,
    poll: Duration,
    deadline: Instant,
    wanted: impl Fn(&str) -> bool,
) -> QueueResult<(KeptByClient, i64)> {
    let tp = TopicPartition::new(topic, 0);
    let (first, end) = consumer.watermarks(&tp)?;
    let mut kept = KeptByClient::new();
    let start = consumer.committed(&tp)?.unwrap_or(first).clamp(first, end);
    consumer.seek(&tp, start)?;
    let mut next = start;
    while next < end {
        if Instant::now() >= deadline {
            return Err(QueueError::Backend(format!(
                "could not read {topic} up to offset {end} in time (read up to {next})"
            )));
        }
        for record in poll_records(consumer, poll)? {
            next = record.offset + 1;
            let Some(client) = record.key.as_deref().and_then(|k| std::str::from_utf8(k).ok()) else { continue };
            if !wanted(client) {
                continue;
            }
            let (list, first_offset) = kept.entry(client.to_owned()).or_default();
            if record.value.is_empty() {
                list.clear();
                *first_offset = None;
                continue;
            }
            first_offset.get_or_insert(record.offset);
            match decode_publish(&record.value, now_ms()) {
                Ok(FromNode { msg: Some(msg), target: Some((_, qos)), .. }) => list.push((msg, qos)),
                Ok(_) => {}
                Err(e) => {
                    if let Some(suppressed) = LINES.admit(&format!("kept:{e}")) {
                        tracing::warn!(offset = record.offset, error = %e, suppressed, "Kept message skipped.");
                    }
                }
            }
        }
    }
    Ok((kept, end))
}

/// Polls once and returns the records. Blocking.
fn poll_records(consumer: &mut dyn Consumer, poll: Duration) -> QueueResult<Vec<Record>> {
    let mut out = Vec::new();
    for event in consumer.poll(poll, MAX_RECORDS)? {
        if let ConsumerEvent::Records(records) = event {
            out.extend(records);
        }
    }
    Ok(out)
}

/// What a subscriptions record says about an MQTT client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientRecord {
    pub client_id: String,
    /// The node that wrote it.
    pub node: String,
    pub ended: bool,
    /// The session's expiry interval, seconds.
    pub expiry: u32,
    pub subscriptions: Vec<ClientSubscription>,
    /// The writing node's sequence number of the record.
    pub seq: Option<u64>,
    /// When the session's client disconnected (ms since the epoch); `None` while connected.
    pub disconnected_at: Option<i64>,
    /// The client's QoS 2 packet ids awaiting PUBREL when it disconnected.
    pub awaiting_pubrel: Vec<u16>,
}

/// Encodes an MQTT client's record.
pub(crate) fn encode_client(
    node: &str,
    ended: bool,
    expiry: u32,
    subscriptions: &[ClientSubscription],
    seq: Option<u64>,
    detached: Option<&Detached>,
) -> Vec<u8> {
    ClientSubscriptionsProto {
        subscriptions: subscriptions
            .iter()
            .map(|s| TopicSubscriptionProto {
                topic: s.filter.clone(),
                qos: s.qos as i32,
                share_name: None,
                no_local: s.no_local,
                retain_as_published: s.retain_as_published,
                subscription_id: s.sub_id.and_then(|id| u32::try_from(id).ok()),
            })
            .collect(),
        source: Some(SubscriptionsSourceProto::MqttClient as i32),
        wire_version: WIRE_VERSION,
        service_id: Some(node.to_owned()),
        session_ended: ended,
        session_expiry_interval: Some(expiry),
        node_seq: seq,
        disconnected_at: detached.map(|d| d.at_ms),
        awaiting_pubrel: detached
            .map(|d| d.awaiting_pubrel.iter().map(|&p| u32::from(p)).collect())
            .unwrap_or_default(),
    }
    .encode_to_vec()
}

/// An MQTT client's record: `None` for markers, integrations' records, records without a node
/// (TBMQ's own) and undecodable ones. Filters are kept as written (the router skips invalid ones).
pub(crate) fn decode_client(key: Option<&[u8]>, value: &[u8]) -> Option<ClientRecord> {
    let client_id = std::str::from_utf8(key?).ok()?;
    if client_id.starts_with(MARKER_KEY_PREFIX) || value.is_empty() {
        return None;
    }
    let proto = ClientSubscriptionsProto::decode(value).ok()?;
    if proto.source != Some(SubscriptionsSourceProto::MqttClient as i32) {
        return None;
    }
    let node = proto.service_id?;
    let subscriptions = proto
        .subscriptions
        .into_iter()
        .filter_map(|s| {
            Some(ClientSubscription {
                qos: u8::try_from(s.qos).ok().and_then(QoS::from_u8)?,
                filter: match s.share_name {
                    // TBMQ's form: the share name apart from the filter.
                    Some(name) if !s.topic.starts_with("$share/") => format!("$share/{name}/{}", s.topic),
                    _ => s.topic,
                },
                no_local: s.no_local,
                retain_as_published: s.retain_as_published,
                sub_id: s.subscription_id.and_then(|id| usize::try_from(id).ok()),
            })
        })
        .collect();
    Some(ClientRecord {
        client_id: client_id.to_owned(),
        node,
        ended: proto.session_ended,
        expiry: proto.session_expiry_interval.unwrap_or(0),
        subscriptions,
        seq: proto.node_seq,
        disconnected_at: proto.disconnected_at,
        // Packet ids are 1..=65535; anything else is not one.
        awaiting_pubrel: proto
            .awaiting_pubrel
            .into_iter()
            .filter_map(|p| u16::try_from(p).ok())
            .filter(|&p| p != 0)
            .collect(),
    })
}

/// Encodes a message for another node; `addressed` names the one client (and QoS) it goes to.
pub(crate) fn encode_publish(
    target: &NodeTarget<'_>,
    msg: &PublishedMessage,
    origin: &str,
    addressed: Option<(&str, QoS)>,
) -> Vec<u8> {
    ClusterPublishMsgProto {
        publish_msg: Some(publish_msg_proto(msg)),
        to_subscribers: target.to_subscribers,
        shared_groups: target
            .groups
            .iter()
            .map(|(name, filter)| SharedGroupProto {
                share_name: (*name).to_owned(),
                topic_filter: (*filter).to_owned(),
            })
            .collect(),
        origin_service_id: origin.to_owned(),
        received_at: i64::try_from(msg.received_at_ms).unwrap_or(i64::MAX),
        target_client_id: addressed.map(|(client, _)| client.to_owned()),
        target_qos: addressed.map(|(_, qos)| qos as i32),
        wire_version: WIRE_VERSION,
    }
    .encode_to_vec()
}

/// A message from another node: the message with its expiry interval reduced by the time since
/// it was received (`None` once expired), what to deliver it to, and the client it is addressed
/// to with its QoS (a takeover's hand-over).
pub(crate) struct FromNode {
    pub msg: Option<PublishedMessage>,
    pub to_subscribers: bool,
    pub groups: Vec<(String, String)>,
    pub target: Option<(String, QoS)>,
}

/// Decodes a record of this node's downlink topic read at `now_ms`.
pub(crate) fn decode_publish(value: &[u8], now_ms: u64) -> Result<FromNode, String> {
    let proto = ClusterPublishMsgProto::decode(value).map_err(|e| e.to_string())?;
    let publish = proto.publish_msg.ok_or("no message")?;
    validate_topic_name(&publish.topic_name).map_err(|e| e.to_string())?;
    let qos = u8::try_from(publish.qos).ok().and_then(QoS::from_u8).ok_or("invalid qos")?;
    let props = publish.mqtt_properties.unwrap_or_default();
    let received_at_ms = u64::try_from(proto.received_at).unwrap_or(0);
    let mut expiry = props.message_expiry_interval;
    let mut expired = false;
    if let Some(interval) = expiry {
        let left_ms = (u64::from(interval) * 1000).saturating_sub(now_ms.saturating_sub(received_at_ms));
        expired = left_ms == 0;
        expiry = Some(u32::try_from(left_ms.div_ceil(1000)).unwrap_or(u32::MAX));
    }
    let target = match (proto.target_client_id, proto.target_qos) {
        (Some(client), Some(q)) => Some((client, u8::try_from(q).ok().and_then(QoS::from_u8).ok_or("invalid qos")?)),
        _ => None,
    };
    let msg = (!expired).then(|| PublishedMessage {
        topic: publish.topic_name,
        payload: publish.payload,
        qos,
        retain: publish.retain,
        client_id: publish.client_id.into(),
        user_properties: publish.user_properties.into_iter().map(|p| (p.key, p.value)).collect(),
        content_type: props.content_type,
        correlation_data: props.correlation_data.map(bytes::Bytes::from),
        response_topic: props.response_topic,
        message_expiry_interval: expiry,
        payload_format_indicator: props.payload_format_indicator.and_then(|p| u8::try_from(p).ok()),
        received_at_ms,
    });
    Ok(FromNode {
        msg,
        to_subscribers: proto.to_subscribers,
        groups: proto.shared_groups.into_iter().map(|g| (g.share_name, g.topic_filter)).collect(),
        target,
    })
}

impl Inner {
    /// Sends a record without waiting; `confirm` hears when it is stored.
    fn send(&self, topic: &str, key: &[u8], value: &[u8], confirm: Confirm) {
        self.send_tracked(topic, key, value, confirm, Track::Other);
    }

    /// [`Inner::send`], with what the record means for the persisted messages topic.
    fn send_tracked(&self, topic: &str, key: &[u8], value: &[u8], confirm: Confirm, track: Track) {
        let delivery = self.producer.send(topic, Partitioning::Fixed(0), Some(key), value);
        if let Err(mpsc::SendError((_, Some(confirm), _))) = self.acks.send((delivery, confirm, track)) {
            // The accounting thread is gone; the record itself is with the queue.
            let _ = confirm.send(Ok(()));
        }
    }

    /// Writes this node's record for a client; `connected`: the one a connection announced by
    /// `connecting` writes; `detached`: what the session's client left (it waits for it).
    fn write_client(
        &self,
        client_id: &str,
        ended: bool,
        expiry: u32,
        subscriptions: &[ClientSubscription],
        connected: bool,
        detached: Option<&Detached>,
    ) {
        let seq = {
            // Noted before the send (the reader may see the record before `send` returns), and
            // numbered under the lock: the latest noted is the latest written.
            let mut pending = self.pending.lock();
            let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
            let entry = pending.entry(client_id.to_owned()).or_default();
            entry.latest = Some(seq);
            if connected {
                entry.connecting = entry.connecting.saturating_sub(1);
            }
            seq
        };
        let value = encode_client(&self.service_id, ended, expiry, subscriptions, Some(seq), detached);
        self.send(&self.subscriptions_topic, client_id.as_bytes(), &value, None);
    }

    /// Applies one subscriptions record. During catch-up `stale` collects this node's live
    /// sessions of an earlier run (the last record of each).
    fn apply(&self, record: &Record, stale: Option<&mut HashMap<String, ClientRecord>>) {
        let Some(rec) = decode_client(record.key.as_deref(), &record.value) else { return };
        let Some(router) = self.router.upgrade() else { return };
        if rec.node == self.service_id {
            let mut pending = self.pending.lock();
            match pending.get_mut(&rec.client_id) {
                Some(p) => {
                    // The latest record (or a later one: no number, an earlier version) is back.
                    if p.latest.is_some_and(|latest| rec.seq.is_none_or(|seq| seq >= latest)) {
                        p.latest = None;
                    }
                    if p.is_done() {
                        pending.remove(&rec.client_id);
                    }
                }
                None => {
                    if let Some(stale) = stale {
                        match rec.ended {
                            true => stale.remove(&rec.client_id),
                            false => stale.insert(rec.client_id.clone(), rec.clone()),
                        };
                    }
                }
            }
            // The latest word on the client is this node's.
            router.remove_remote_client(&rec.client_id, None);
            return;
        }
        let held = {
            // Held until this node's session (if any) is gone: a client connecting here
            // meanwhile waits in `connecting`, and its record then comes after this one.
            let pending = self.pending.lock();
            if pending.contains_key(&rec.client_id) {
                // This node's own later record wins (written, or about to be by a connection).
                return;
            }
            if rec.ended {
                router.remove_remote_client(&rec.client_id, Some(&rec.node));
                return;
            }
            if let Some(stale) = stale {
                // Another node holds it now.
                stale.remove(&rec.client_id);
            }
            router.set_remote_client(&rec.client_id, &rec.node, rec.subscriptions, rec.awaiting_pubrel);
            let Some(sessions) = self.sessions.lock().as_ref().and_then(Weak::upgrade) else { return };
            let Some(held) = sessions.hand_over(&router, &rec.client_id) else { return };
            held
        };
        self.take_over(&rec.client_id, &rec.node, held);
    }

    /// Another node holds `client_id` now and this node's session of it is gone: the QoS 1 and
    /// 2 messages it held go to that node for the client.
    fn take_over(&self, client_id: &str, node: &str, held: Vec<SessionDelivery>) {
        tracing::info!(client_id, node, messages = held.len(), "Session taken over by another broker node.");
        let topic = self.names.basic_downlink(node);
        let target = NodeTarget { node, to_subscribers: false, groups: Vec::new() };
        for delivery in held {
            let msg = &delivery.msg.msg;
            let value = encode_publish(&target, msg, &self.service_id, Some((client_id, delivery.qos)));
            self.send(&topic, msg.topic.as_bytes(), &value, None);
        }
        // After the hand-over records: a node that dies in between keeps them still.
        self.cleared(client_id);
    }

    /// The key of this node's liveness record on the subscriptions topic.
    fn alive_key(&self) -> String {
        format!("{MARKER_KEY_PREFIX}alive-{}", self.service_id)
    }

    /// Writes this node's liveness record when the interval has passed since the last one.
    fn beat_alive(&self) {
        {
            let mut beat = self.alive_beat.lock();
            if beat.1.is_some_and(|last| last.elapsed() < beat.0) {
                return;
            }
            beat.1 = Some(Instant::now());
        }
        let left = Detached { at_ms: trib_queue::now_ms(), awaiting_pubrel: Vec::new() };
        let value = encode_client(&self.service_id, true, 0, &[], None, Some(&left));
        self.send(&self.subscriptions_topic, self.alive_key().as_bytes(), &value, None);
    }

    /// Whether `node` is alive (as far as this node knows; without a liveness source, yes).
    fn is_alive(&self, node: &str) -> bool {
        let Some(alive) = self.alive.lock().clone() else { return true };
        alive().is_none_or(|alive| alive.contains(node))
    }

    /// Looks (at most once per [`NODE_CHECK_INTERVAL`]) for nodes that went down since the last
    /// look: what they kept for the sessions this node holds now is fetched.
    fn check_nodes(&self) {
        let Some(alive) = self.alive.lock().clone() else { return };
        let gone: Vec<String> = {
            let mut before = self.alive_before.lock();
            if before.1.elapsed() < NODE_CHECK_INTERVAL {
                return;
            }
            let Some(now) = alive() else { return };
            let gone = before.0.difference(&now).filter(|n| **n != self.service_id).cloned().collect();
            *before = (now, Instant::now());
            gone
        };
        if gone.is_empty() {
            return;
        }
        let Some(sessions) = self.sessions.lock().as_ref().and_then(Weak::upgrade) else { return };
        let clients: HashSet<String> = sessions.client_ids().into_iter().map(|c| c.to_string()).collect();
        self.adopted.lock().retain(|client, _| clients.contains(client));
        for node in gone {
            let from: HashSet<String> =
                self.adopted.lock().iter().filter(|(_, n)| **n == node).map(|(c, _)| c.clone()).collect();
            if from.is_empty() {
                continue;
            }
            tracing::info!(
                node,
                sessions = from.len(),
                "Broker node is down: fetching what it kept for sessions held here."
            );
            self.fetch_kept_later(&node, from);
        }
    }

    /// Fetches, on a thread of its own, what `node` (down) held for `clients`, sessions that
    /// moved here from it: what it kept for them since their last clearing records (each message
    /// is queued, and kept, for the client's session here, and a clearing record on that node's
    /// topic says the messages moved), then what other nodes sent it for them after its last
    /// committed position on its downlink topic (up to now, [`SWITCH_GRACE`] after the move;
    /// the position is then committed there, so that node does not deliver it again).
    fn fetch_kept_later(&self, node: &str, clients: HashSet<String>) {
        let Some(sessions) = self.sessions.lock().as_ref().and_then(Weak::upgrade) else { return };
        let topic = self.names.persisted_msg(node);
        let group = self.names.persisted_msg_group(node);
        let client_name = format!("{}persisted-msg-fetch-{}", self.names.prefix, self.service_id);
        let (queue, node) = (self.queue.clone(), node.to_owned());
        let (this, me) = (self.me.clone(), self.me.clone());
        let spawned = std::thread::Builder::new().name("broker-cluster-fetch".into()).spawn(move || {
            let result = (|| -> QueueResult<usize> {
                if !queue.topic_exists(&topic)? {
                    return Ok(0);
                }
                let tp = TopicPartition::new(&topic, 0);
                let mut consumer = queue.assign(&group, &client_name, &tp)?;
                let deadline = Instant::now() + CATCH_UP_TIMEOUT;
                let (kept, _) = scan_kept(consumer.as_mut(), &topic, FETCH_POLL, deadline, |c| clients.contains(c))?;
                let Some(this) = this.upgrade() else { return Ok(0) };
                let mut fetched = 0;
                for (client_id, (messages, _)) in kept {
                    if messages.is_empty() {
                        continue;
                    }
                    if let Some(session) = sessions.get(&client_id) {
                        let mut stored = Handovers::default();
                        for (msg, qos) in messages {
                            let delivery = SessionDelivery {
                                msg: RoutedMessage::new(msg),
                                qos,
                                retain: false,
                                sub_ids: Vec::new(),
                            };
                            fetched += usize::from(session.enqueue_kept(delivery, Some(this.as_ref()), Some(&mut stored)));
                        }
                        // Kept here now (stored first: a crash in between leaves two copies,
                        // never none); the node, if it starts again, has nothing to send.
                        match stored.wait_blocking() {
                            Ok(()) => this.send(&topic, client_id.as_bytes(), &[], None),
                            Err(e) => tracing::error!(
                                node,
                                client_id,
                                error = %e,
                                "Messages taken over from a node that is down could not be kept here; that node's copy stays."
                            ),
                        }
                    }
                }
                for id in &clients {
                    this.adopted.lock().remove(id);
                }
                drop(this);
                std::thread::sleep(SWITCH_GRACE);
                let Some(this) = me.upgrade() else { return Ok(fetched) };
                fetched += this.fetch_downlink(&node, &clients, &client_name)?;
                Ok(fetched)
            })();
            match result {
                Ok(0) => {}
                Ok(messages) => tracing::info!(node, messages, "Messages kept by a node that is down taken over."),
                Err(e) => tracing::error!(node, error = %e, "Could not fetch what a node that is down kept."),
            }
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "Could not start the thread that fetches what a node that is down kept.");
        }
    }

    /// Delivers to `clients` (sessions that moved here from `node`, down) what other nodes sent
    /// `node` for them after its last committed position, and commits past it. Returns how many
    /// sessions queued a message.
    fn fetch_downlink(&self, node: &str, clients: &HashSet<String>, client_name: &str) -> QueueResult<usize> {
        let topic = self.names.basic_downlink(node);
        if !self.queue.topic_exists(&topic)? {
            return Ok(0);
        }
        let tp = TopicPartition::new(&topic, 0);
        let mut consumer = self.queue.assign(&self.names.basic_downlink_group(node), client_name, &tp)?;
        let (first, end) = consumer.watermarks(&tp)?;
        // A node that never committed: where it stood is unknown, nothing is read.
        let start = consumer.committed(&tp)?.unwrap_or(end).clamp(first, end);
        consumer.seek(&tp, start)?;
        let (Some(router), Some(sessions)) =
            (self.router.upgrade(), self.sessions.lock().as_ref().and_then(Weak::upgrade))
        else {
            return Ok(0);
        };
        let deadline = Instant::now() + CATCH_UP_TIMEOUT;
        let (mut next, mut delivered) = (start, 0);
        let mut stored = Handovers::default();
        while next < end {
            if Instant::now() >= deadline {
                return Err(QueueError::Backend(format!("could not read {topic} up to offset {end} in time")));
            }
            for record in poll_records(consumer.as_mut(), FETCH_POLL)? {
                next = record.offset + 1;
                if record.offset >= end {
                    break;
                }
                let Ok(FromNode { msg: Some(msg), to_subscribers, groups, target }) =
                    decode_publish(&record.value, now_ms())
                else {
                    continue;
                };
                let msg = RoutedMessage::new(msg);
                delivered += match target {
                    None => router.publish_from_node(&msg, to_subscribers, &groups, Some(clients), Some(&mut stored)),
                    Some((client_id, qos)) if clients.contains(&client_id) => sessions.get(&client_id).map_or(0, |s| {
                        let delivery = SessionDelivery { msg, qos, retain: false, sub_ids: Vec::new() };
                        usize::from(s.enqueue_kept(delivery, Some(self), Some(&mut stored)))
                    }),
                    Some(_) => 0,
                };
            }
        }
        // Past the records only once this node keeps their copies: a crash before leaves them
        // to be read again (duplicates, never a loss).
        stored.wait_blocking().map_err(|e| {
            QueueError::Backend(format!("copies of what {topic} held for sessions that moved here were not kept: {e}"))
        })?;
        consumer.commit(&tp, end)?;
        Ok(delivered)
    }

    /// Delivers one record of this node's downlink topic; the copies kept for persistent sessions go to `kept`.
    fn deliver(&self, record: &Record, kept: &mut Handovers) {
        let from = match decode_publish(&record.value, now_ms()) {
            Ok(from) => from,
            Err(e) => {
                if let Some(suppressed) = LINES.admit(&format!("downlink:{e}")) {
                    tracing::warn!(offset = record.offset, error = %e, suppressed, "Message from another node skipped.");
                }
                return;
            }
        };
        let Some(msg) = from.msg else { return };
        let Some(router) = self.router.upgrade() else { return };
        let msg = RoutedMessage::new(msg);
        match from.target {
            None => {
                router.publish_from_node(&msg, from.to_subscribers, &from.groups, None, Some(kept));
            }
            Some((client_id, qos)) => {
                let Some(sessions) = self.sessions.lock().as_ref().and_then(Weak::upgrade) else { return };
                if let Some(session) = sessions.get(&client_id) {
                    let delivery = SessionDelivery { msg, qos, retain: false, sub_ids: Vec::new() };
                    session.enqueue_kept(delivery, Some(self), Some(kept));
                }
            }
        }
    }
}

impl SessionLog for Inner {
    fn changed(&self, client_id: &str, expiry_interval: u32, subscriptions: Vec<ClientSubscription>) {
        self.write_client(client_id, false, expiry_interval, &subscriptions, false, None);
    }

    fn detached(&self, client_id: &str, expiry_interval: u32, subscriptions: Vec<ClientSubscription>, left: Detached) {
        self.write_client(client_id, false, expiry_interval, &subscriptions, false, Some(&left));
    }

    fn connecting(&self, client_id: &str) {
        self.pending.lock().entry(client_id.to_owned()).or_default().connecting += 1;
    }

    fn connected(&self, client_id: &str, state: Option<(u32, Vec<ClientSubscription>)>, resumed_from: Option<&str>) {
        match state {
            Some((expiry, subscriptions)) => {
                self.write_client(client_id, false, expiry, &subscriptions, true, None);
                if let Some(node) = resumed_from {
                    self.adopted.lock().insert(client_id.to_owned(), node.to_owned());
                    // A node that is down hands nothing over: what it kept is fetched.
                    if !self.is_alive(node) {
                        self.fetch_kept_later(node, HashSet::from([client_id.to_owned()]));
                    }
                }
            }
            None => {
                let mut pending = self.pending.lock();
                if let Some(p) = pending.get_mut(client_id) {
                    p.connecting = p.connecting.saturating_sub(1);
                    if p.is_done() {
                        pending.remove(client_id);
                    }
                }
            }
        }
    }

    fn ended(&self, client_id: &str) {
        self.write_client(client_id, true, 0, &[], false, None);
        self.cleared(client_id);
    }

    fn persist(&self, client_id: &str, msg: &PublishedMessage, qos: QoS) -> Handover {
        let target = NodeTarget { node: &self.service_id, to_subscribers: false, groups: Vec::new() };
        let value = encode_publish(&target, msg, &self.service_id, Some((client_id, qos)));
        let track = Track::Kept(client_id.to_owned());
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.send_tracked(&self.persisted_topic, client_id.as_bytes(), &value, Some(tx), track);
        Handover::Pending(rx)
    }

    fn cleared(&self, client_id: &str) {
        let track = Track::Cleared(client_id.to_owned());
        self.send_tracked(&self.persisted_topic, client_id.as_bytes(), &[], None, track);
    }
}

impl ClusterSink for Inner {
    fn send(&self, target: &NodeTarget<'_>, msg: &PublishedMessage) -> Handover {
        let value = encode_publish(target, msg, &self.service_id, None);
        let topic = self.names.basic_downlink(target.node);
        let (confirm, handover) = match msg.qos {
            QoS::AtMostOnce => (None, Handover::Stored),
            _ => {
                let (tx, rx) = tokio::sync::oneshot::channel();
                (Some(tx), Handover::Pending(rx))
            }
        };
        Inner::send(self, &topic, msg.topic.as_bytes(), &value, confirm);
        handover
    }
}

/// Starts the thread that waits for the queue's answers and tells the publishers; it also
/// follows where the kept messages start and commits past what no session needs.
fn spawn_acks(rx: mpsc::Receiver<(Delivery, Confirm, Track)>, kept: Arc<Mutex<KeptOffsets>>) -> QueueResult<()> {
    std::thread::Builder::new()
        .name("broker-cluster-acks".into())
        .spawn(move || {
            let mut last_commit = Instant::now();
            loop {
                // Ends when the link (the only sender) is gone.
                match rx.recv_timeout(KEPT_COMMIT_INTERVAL) {
                    Ok((delivery, confirm, track)) => {
                        let result = wait_delivery(delivery);
                        if let Ok((_, offset)) = &result {
                            kept.lock().stored(track, *offset);
                        }
                        let result = result.map(drop).map_err(|e| {
                            if let Some(suppressed) = LINES.admit("not stored") {
                                tracing::error!(error = %e, suppressed, "Cluster record was not stored by the queue.");
                            }
                            match e {
                                QueueError::Full(reason) => NotStored::quota(reason),
                                other => NotStored::new(other.to_string()),
                            }
                        });
                        if let Some(confirm) = confirm {
                            // The connection may be gone; then nobody waits for the answer.
                            let _ = confirm.send(result);
                        }
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Err(mpsc::RecvTimeoutError::Disconnected) => return,
                }
                if last_commit.elapsed() >= KEPT_COMMIT_INTERVAL {
                    last_commit = Instant::now();
                    kept.lock().commit();
                }
            }
        })
        .map(drop)
        .map_err(|e| QueueError::Backend(format!("cannot start the cluster ack thread: {e}")))
}
