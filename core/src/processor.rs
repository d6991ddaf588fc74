//! One integration's worker thread: owns the driver instance and the consumer of
//! `tbmq.msg.ie.<id32>`, applies lifecycle commands, and turns records into packs for the driver.
//!
//! Everything about one integration happens on its own thread, so a slow start, a slow target or
//! a hung driver call only ever delays that integration. Offsets are committed only once a
//! pack's outcome is final; a stop in the middle of a RETRY_ALL pack commits nothing.

use std::{
    sync::{mpsc, Arc},
    time::{Duration, Instant},
};

use crate::{
    config::AckStrategy,
    manager::{Context, IntegrationDef},
    queue::{wait_delivery, Consumer, ConsumerEvent, Partitioning, QueueError, Record, TopicPartition},
    registry::DriverHandle,
    retry::{decide, pause_before, AttemptResult, Decision},
    stats::{ProcessorStats, State},
    wire::{ComponentLifecycleEvent as Lc, DeadLetterProto, PublishIntegrationMsgProto, WIRE_VERSION},
};
use abi_stable::std_types::{RSlice, RStr};
use prost::Message as _;
use trib_plugin_api::{
    abi::{Message, StartConfig, UserProperty},
    driver::{ErrorKind, Outcome},
};

/// Commands from the manager.
#[derive(Debug)]
pub enum Command {
    /// Apply a (new) definition: restart with it, or stop if it is disabled.
    Apply(IntegrationDef),
    /// Stop; with `delete`, also remove the message topic and consumer group.
    Stop {
        /// The integration was deleted.
        delete: bool,
    },
}

struct Running {
    driver: DriverHandle,
    consumer: Box<dyn Consumer>,
    tp: TopicPartition,
}

/// How a pack ended.
enum PackEnd {
    Committed,
    Abandoned(Command),
    DriverBroken(String),
}

/// The worker of one integration.
pub struct Worker {
    ctx: Arc<Context>,
    def: IntegrationDef,
    commands: mpsc::Receiver<Command>,
    running: Option<Running>,
    failed_at: Option<Instant>,
    stats: Arc<ProcessorStats>,
    delivered_since_stats: u64,
    errors_since_stats: u64,
    last_stats_event: Instant,
}

impl Worker {
    /// Creates the worker; [`Worker::run`] does the work.
    pub fn new(ctx: Arc<Context>, def: IntegrationDef, commands: mpsc::Receiver<Command>) -> Self {
        let stats = ctx.stats.processor(def.id);
        Worker {
            ctx,
            def,
            commands,
            running: None,
            failed_at: None,
            stats,
            delivered_since_stats: 0,
            errors_since_stats: 0,
            last_stats_event: Instant::now(),
        }
    }

    /// Runs until stopped.
    pub fn run(mut self) {
        let span = tracing::info_span!("integration", integration_id = %self.def.id, integration_type = %self.def.integration_type);
        let _guard = span.enter();
        self.start();
        loop {
            let command = match self.commands.try_recv() {
                Ok(c) => Some(c),
                Err(mpsc::TryRecvError::Empty) => None,
                Err(mpsc::TryRecvError::Disconnected) => Some(Command::Stop { delete: false }),
            };
            if let Some(c) = command {
                if !self.apply(c) {
                    return;
                }
                continue;
            }
            self.maybe_send_statistics();
            if self.running.is_some() {
                if let Some(c) = self.poll_and_process() {
                    if !self.apply(c) {
                        return;
                    }
                }
            } else {
                let wait = self.idle_wait();
                match self.commands.recv_timeout(wait) {
                    Ok(c) => {
                        if !self.apply(c) {
                            return;
                        }
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => self.maybe_reinit(),
                    Err(mpsc::RecvTimeoutError::Disconnected) => {
                        self.stop(false);
                        return;
                    }
                }
            }
        }
    }

    /// Applies a command; false when the worker must exit.
    fn apply(&mut self, command: Command) -> bool {
        match command {
            Command::Apply(def) if def.enabled => {
                self.teardown();
                self.def = def;
                self.start();
                true
            }
            Command::Apply(def) => {
                self.def = def;
                self.stop(false);
                false
            }
            Command::Stop { delete } => {
                self.stop(delete);
                false
            }
        }
    }

    fn idle_wait(&self) -> Duration {
        let poll = self.ctx.config.msg_poll_interval.max(Duration::from_millis(100));
        match (self.failed_at, self.ctx.config.reinit_enabled) {
            (Some(at), true) => self.ctx.config.reinit_frequency.saturating_sub(at.elapsed()).min(poll),
            _ => poll,
        }
    }

    fn maybe_reinit(&mut self) {
        let due = self.failed_at.is_some_and(|at| at.elapsed() >= self.ctx.config.reinit_frequency);
        if due && self.ctx.config.reinit_enabled {
            tracing::info!("Re-initialising failed integration.");
            self.ctx.events.lifecycle(self.def.id, Lc::Reinit, None);
            self.start();
        }
    }

    fn start(&mut self) {
        match self.try_start() {
            Ok(running) => {
                self.running = Some(running);
                self.failed_at = None;
                self.ctx.events.lifecycle(self.def.id, Lc::Started, None);
                self.ctx.stats.activity(&self.def.integration_type, "start", true);
                self.ctx.stats.set_state(self.def.id, &self.def.integration_type, Some(State::Started));
                tracing::info!(name = %self.def.name, "Integration started.");
            }
            Err(error) => {
                self.failed_at = Some(Instant::now());
                self.ctx.events.lifecycle(self.def.id, Lc::Failed, Some(&error));
                self.ctx.stats.activity(&self.def.integration_type, "start", false);
                self.ctx.stats.set_state(self.def.id, &self.def.integration_type, Some(State::Failed));
                tracing::warn!(name = %self.def.name, error = %error, "Integration failed to start.");
            }
        }
    }

    fn try_start(&mut self) -> Result<Running, String> {
        let ctx = &self.ctx;
        let client_configuration = self.def.client_configuration().ok_or("clientConfiguration field is missing!")?;
        let mut driver =
            ctx.registry.create(&self.def.integration_type, &self.def.id.to_string()).map_err(|e| e.message)?;
        let errors = driver.validate(&client_configuration).map_err(|e| e.message)?;
        if !errors.is_empty() {
            let text: Vec<String> = errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect();
            return Err(format!("invalid configuration: {}", text.join("; ")));
        }
        let metadata = self.def.metadata_json();
        let id = self.def.id.to_string();
        let config = StartConfig {
            integration_id: RStr::from_str(&id),
            integration_name: RStr::from_str(&self.def.name),
            service_id: RStr::from_str(&ctx.service_id),
            client_configuration: RStr::from_str(&client_configuration),
            metadata: RStr::from_str(&metadata),
        };
        driver.start(&config).map_err(|e| e.message)?;
        let topics = &ctx.config.topics;
        let spec = topics.msg_spec(self.def.id).map_err(|e| e.to_string())?;
        ctx.queue.create_topic(&spec).map_err(|e| e.to_string())?;
        let tp = TopicPartition::new(spec.name.clone(), 0);
        let client_id = format!("{}ie-msg-consumer-{}-{}", topics.prefix, ctx.service_id, self.def.id);
        let mut consumer =
            ctx.queue.assign(&topics.msg_group(self.def.id), &client_id, &tp).map_err(|e| e.to_string())?;
        // The broker commits the group's first offset when the integration is saved, so starts
        // resume from the committed offset and deliver the backlog. Without one (a group deleted
        // by hand, a broker that does not commit it) this starts at the end, as TBMQ does.
        match consumer.committed(&tp).map_err(|e| e.to_string())? {
            Some(offset) => tracing::info!(offset, "Message consumer resumes at the committed offset."),
            None => {
                let (_, end) = consumer.watermarks(&tp).map_err(|e| e.to_string())?;
                tracing::info!(
                    offset = end,
                    "Message consumer has no committed offset; starting at the end (first start)."
                );
                consumer.commit(&tp, end).map_err(|e| e.to_string())?;
                consumer.seek(&tp, end).map_err(|e| e.to_string())?;
            }
        }
        Ok(Running { driver, consumer, tp })
    }

    /// Stops the driver and the consumer (no events).
    fn teardown(&mut self) {
        if let Some(mut r) = self.running.take() {
            if let Err(e) = r.driver.stop() {
                tracing::warn!(error = %e, "Driver stop failed.");
            }
        }
    }

    fn stop(&mut self, delete: bool) {
        let was_active = self.running.is_some() || self.failed_at.is_some();
        self.teardown();
        self.send_statistics_if_any();
        if was_active {
            self.ctx.events.lifecycle(self.def.id, Lc::Stopped, None);
            self.ctx.stats.activity(&self.def.integration_type, "stop", true);
        }
        self.ctx.stats.set_state(self.def.id, &self.def.integration_type, None);
        if delete {
            self.delete_queue_data();
        }
        tracing::info!(deleted = delete, "Integration stopped.");
    }

    /// Removes the message topic and consumer group of a deleted integration, and its dead
    /// letters (TBMQ waits 10 s first so that in-flight broker writes land; the group and topic
    /// go together).
    fn delete_queue_data(&self) {
        let (queue, topics, id) = (self.ctx.queue.clone(), self.ctx.config.topics.clone(), self.def.id);
        let _ = std::thread::Builder::new().name("ie-msg-cleanup".into()).spawn(move || {
            std::thread::sleep(Duration::from_secs(10));
            let deleted = queue
                .delete_group(&topics.msg_group(id))
                .and_then(|_| queue.delete_topic(&topics.msg(id)))
                .and_then(|_| queue.delete_group(&topics.dlq_replay_group(id)))
                .and_then(|_| queue.delete_topic(&topics.dlq(id)));
            if let Err(e) = deleted {
                tracing::warn!(integration_id = %id, error = %e, "Could not delete the queue data of a deleted integration.");
            }
        });
    }

    fn maybe_send_statistics(&mut self) {
        let c = &self.ctx.config;
        if c.statistics_enabled && self.last_stats_event.elapsed() >= c.statistics_persist_frequency {
            self.ctx.events.statistics(self.def.id, self.delivered_since_stats, self.errors_since_stats);
            self.delivered_since_stats = 0;
            self.errors_since_stats = 0;
            self.last_stats_event = Instant::now();
        }
    }

    fn send_statistics_if_any(&mut self) {
        if self.ctx.config.statistics_enabled && (self.delivered_since_stats > 0 || self.errors_since_stats > 0) {
            self.ctx.events.statistics(self.def.id, self.delivered_since_stats, self.errors_since_stats);
            self.delivered_since_stats = 0;
            self.errors_since_stats = 0;
        }
    }

    /// Polls once and processes what arrived. Returns a command that interrupted a pack.
    fn poll_and_process(&mut self) -> Option<Command> {
        let (interval, max) = (self.ctx.config.msg_poll_interval, self.ctx.config.msg_max_poll_records);
        let running = self.running.as_mut()?;
        let events = match running.consumer.poll(interval, max) {
            Ok(events) => events,
            Err(e) => {
                tracing::warn!(error = %e, "Polling the integration's messages failed.");
                std::thread::sleep(interval.min(Duration::from_secs(1)));
                return None;
            }
        };
        for event in events {
            if let ConsumerEvent::Records(records) = event {
                match self.process_pack(&records) {
                    PackEnd::Committed => {}
                    PackEnd::Abandoned(c) => return Some(c),
                    PackEnd::DriverBroken(reason) => {
                        self.recreate_driver(&reason);
                        return None;
                    }
                }
            }
        }
        None
    }

    /// After a driver panic its state is suspect: stop it, re-create it, and rewind to the
    /// last committed offset so nothing is skipped.
    fn recreate_driver(&mut self, reason: &str) {
        tracing::warn!(reason, "Re-creating the driver instance after a driver failure.");
        self.ctx.events.error(self.def.id, "onMsgProcess", reason);
        self.teardown();
        self.start();
    }

    fn process_pack(&mut self, records: &[Record]) -> PackEnd {
        let id = self.def.id;
        let last_offset = records.last().map_or(0, |r| r.offset);
        let mut decoded = Vec::with_capacity(records.len());
        let mut sources: Vec<&Record> = Vec::with_capacity(records.len());
        // Messages given up on in this pack: (record, reason, attempts).
        let mut dead: Vec<(&Record, String, u32)> = Vec::new();
        for r in records {
            match PublishIntegrationMsgProto::decode(r.value.clone()) {
                Ok(m) if m.publish_msg_proto.is_some() => {
                    decoded.push(m);
                    sources.push(r);
                }
                _ => {
                    tracing::error!(offset = r.offset, "Undecodable record on the integration topic was skipped.");
                    self.stats.add(id, 5, 1);
                    dead.push((r, "undecodable record".to_string(), 0));
                }
            }
        }
        let props: Vec<Vec<UserProperty<'_>>> = decoded.iter().map(user_properties).collect();
        let messages: Vec<Message<'_>> = decoded.iter().zip(&props).map(|(m, p)| to_message(m, p)).collect();
        self.stats.add(id, 0, messages.len() as u64);
        let mut pending: Vec<usize> = (0..messages.len()).collect();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let batch: Vec<Message<'_>> = pending.iter().map(|&i| messages[i]).collect();
            let timeout = self.ctx.config.pack_processing_timeout;
            let Some(running) = self.running.as_mut() else {
                return PackEnd::Committed;
            };
            let (outcomes, broken) = match running.driver.process(&batch, timeout) {
                Ok(o) => (o, None),
                Err(e) => {
                    let reason = format!("driver error: {}", e.message);
                    let broken = (e.kind == ErrorKind::Panic).then(|| reason.clone());
                    (vec![Outcome::Retry(reason); batch.len()], broken)
                }
            };
            let result = AttemptResult::classify(&outcomes);
            self.account(&outcomes, &result);
            let decision = if broken.is_some() && self.ctx.config.ack_strategy != AckStrategy::SkipAll {
                // A broken driver must be re-created before any retry; nothing is committed.
                return PackEnd::DriverBroken(broken.unwrap_or_default());
            } else {
                decide(self.ctx.config.ack_strategy, attempt, &result)
            };
            match decision {
                Decision::Commit => {
                    self.stats.add(id, 4, result.timed_out.len() as u64);
                    self.stats.add(id, 5, (result.failed.len() + result.rejected.len()) as u64);
                    let clean = result.timed_out.is_empty() && result.failed.is_empty() && result.rejected.is_empty();
                    self.stats.add(id, if clean { 6 } else { 7 }, 1);
                    for &j in result.timed_out.iter().chain(&result.failed).chain(&result.rejected) {
                        dead.push((sources[pending[j]], outcome_reason(&outcomes[j]), attempt));
                    }
                    if let Some(command) = self.store_dead_letters(&mut dead) {
                        return PackEnd::Abandoned(command);
                    }
                    self.commit(last_offset + 1);
                    return match broken {
                        Some(reason) => PackEnd::DriverBroken(reason),
                        None => PackEnd::Committed,
                    };
                }
                Decision::Retry => {
                    self.stats.add(id, 2, result.timed_out.len() as u64);
                    self.stats.add(id, 3, result.failed.len() as u64);
                    self.stats.add(id, 5, result.rejected.len() as u64);
                    for &j in &result.rejected {
                        dead.push((sources[pending[j]], outcome_reason(&outcomes[j]), attempt));
                    }
                    self.stats.add(id, 7, 1);
                    let mut retry: Vec<usize> =
                        result.timed_out.iter().chain(&result.failed).map(|&i| pending[i]).collect();
                    retry.sort_unstable();
                    pending = retry;
                    if let AckStrategy::RetryAll { pause, max_pause, .. } = self.ctx.config.ack_strategy {
                        let pause = pause_before(attempt, pause, max_pause, 0.8 + 0.4 * fastrand::f64());
                        if let Ok(c) = self.commands.recv_timeout(pause) {
                            tracing::info!(
                                undelivered = pending.len(),
                                "Pack abandoned without commit; it will be redelivered."
                            );
                            return PackEnd::Abandoned(c);
                        }
                    }
                }
            }
        }
    }

    /// Writes the pack's given-up messages to the integration's dead-letter topic and waits until
    /// the queue stored them, so the pack is committed only once nothing is lost. A queue that
    /// refuses is retried every second; a command in the meantime abandons the pack (it is
    /// redelivered). Dead letters off: they are only counted, as TBMQ does.
    ///
    /// Returns the command that interrupted the wait, if any.
    fn store_dead_letters(&mut self, dead: &mut Vec<(&Record, String, u32)>) -> Option<Command> {
        if dead.is_empty() || !self.ctx.config.dead_letters_enabled {
            return None;
        }
        dead.sort_by_key(|(r, _, _)| r.offset);
        let topics = &self.ctx.config.topics;
        let topic = topics.dlq(self.def.id);
        let producer = self.ctx.queue.producer();
        loop {
            let stored =
                topics.dlq_spec(self.def.id).and_then(|spec| self.ctx.queue.create_topic(&spec)).and_then(|()| {
                    let deliveries: Vec<_> = dead
                        .iter()
                        .map(|(record, reason, attempts)| {
                            let letter = DeadLetterProto {
                                record: record.value.to_vec(),
                                offset: record.offset,
                                reason: reason.clone(),
                                attempts: *attempts,
                                failed_at: crate::now_ms(),
                                service_id: self.ctx.service_id.clone(),
                                wire_version: WIRE_VERSION,
                            };
                            producer.send(
                                &topic,
                                Partitioning::Fixed(0),
                                record.key.as_deref(),
                                &letter.encode_to_vec(),
                            )
                        })
                        .collect();
                    deliveries.into_iter().try_for_each(|d| wait_delivery(d).map(|_| ()))
                });
            match stored {
                Ok(()) => {
                    metrics::counter!("ie_dead_letters_total", "integration" => self.def.id.to_string())
                        .increment(dead.len() as u64);
                    tracing::warn!(count = dead.len(), topic, "Messages given up on were stored as dead letters.");
                    return None;
                }
                Err(e) => {
                    tracing::error!(error = %e, topic, "Dead letters could not be stored; the pack is not committed, retrying.");
                    if let Ok(command) = self.commands.recv_timeout(Duration::from_secs(1)) {
                        return Some(command);
                    }
                }
            }
        }
    }

    /// Counters and error events for one attempt.
    fn account(&mut self, outcomes: &[Outcome], result: &AttemptResult) {
        let (id, ty) = (self.def.id, self.def.integration_type.clone());
        self.stats.add(id, 1, result.delivered.len() as u64);
        self.delivered_since_stats += result.delivered.len() as u64;
        for _ in &result.delivered {
            self.ctx.stats.activity(&ty, "msgUplink", true);
        }
        for o in outcomes {
            if let Outcome::Retry(reason) | Outcome::Rejected(reason) = o {
                self.errors_since_stats += 1;
                self.ctx.stats.activity(&ty, "msgUplink", false);
                self.ctx.events.error(id, "onMsgProcess", reason);
            }
        }
    }

    fn commit(&mut self, next_offset: i64) {
        if let Some(r) = self.running.as_mut() {
            match r.consumer.commit(&r.tp, next_offset) {
                Ok(()) => {}
                Err(QueueError::Closed) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "Commit failed; the pack may be delivered again.")
                }
            }
        }
    }
}

fn user_properties(m: &PublishIntegrationMsgProto) -> Vec<UserProperty<'_>> {
    m.publish_msg_proto.as_ref().map_or_else(Vec::new, |p| {
        p.user_properties
            .iter()
            .map(|u| UserProperty { key: RStr::from_str(&u.key), value: RStr::from_str(&u.value) })
            .collect()
    })
}

fn to_message<'a>(m: &'a PublishIntegrationMsgProto, props: &'a [UserProperty<'a>]) -> Message<'a> {
    let p = m.publish_msg_proto.as_ref().expect("records without a message were filtered out");
    let mp = p.mqtt_properties.as_ref();
    let opt_str = |s: Option<&'a String>| s.map(|s| RStr::from_str(s)).into();
    Message {
        topic: RStr::from_str(&p.topic_name),
        payload: RSlice::from_slice(&p.payload),
        qos: p.qos.clamp(0, 2) as u8,
        retain: p.retain,
        client_id: RStr::from_str(&p.client_id),
        broker_node: RStr::from_str(&m.tbmq_node),
        timestamp_ms: m.timestamp,
        user_properties: RSlice::from_slice(props),
        content_type: opt_str(mp.and_then(|x| x.content_type.as_ref())),
        correlation_data: mp.and_then(|x| x.correlation_data.as_deref()).map(RSlice::from_slice).into(),
        response_topic: opt_str(mp.and_then(|x| x.response_topic.as_ref())),
        message_expiry_secs: mp.and_then(|x| x.message_expiry_interval).into(),
        payload_is_utf8: mp.and_then(|x| x.payload_format_indicator).map(|v| v == 1).into(),
        client_cert_cn: opt_str(p.client_cert_cn.as_ref()),
    }
}

/// The reason a message was given up on, as stored with its dead letter.
fn outcome_reason(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Delivered => "delivered".to_string(),
        Outcome::Retry(reason) => format!("retry: {reason}"),
        Outcome::Rejected(reason) => format!("rejected: {reason}"),
    }
}
