//! Starting and stopping an integration on its worker: create and start the driver instance,
//! assign the message consumer at the committed offset, and on stop or delete take both down.
//! Which command leads here is decided in the parent module's loop.

use std::time::{Duration, Instant};

use abi_stable::std_types::RStr;
use trib_plugin_api::abi::StartConfig;

use super::{Running, Worker};
use crate::{
    queue::{Consumer, TopicPartition},
    registry::DriverHandle,
    retry::RetryPolicy,
    stats::State,
    wire::ComponentLifecycleEvent as Lc,
};

impl Worker {
    pub(super) fn start(&mut self) {
        match self.try_start() {
            Ok(running) => {
                self.running = Some(running);
                self.failed_at = None;
                self.last_backlog_check = None;
                self.committed_next = None;
                self.read_next = None;
                self.lifecycle(Lc::Started, None);
                self.ctx.stats.set_state(self.def.id, &self.def.integration_type, Some(State::Started));
                tracing::info!(name = ?self.def.name, "Integration started.");
            }
            Err(error) => {
                self.failed_at = Some(Instant::now());
                self.lifecycle(Lc::Failed, Some(&error));
                self.ctx.stats.set_state(self.def.id, &self.def.integration_type, Some(State::Failed));
                tracing::warn!(name = ?self.def.name, error = ?error, "Integration failed to start.");
            }
        }
    }

    fn try_start(&mut self) -> Result<Running, String> {
        // The policy is part of the configuration: one that is invalid fails the start as a
        // driver's field error does.
        self.policy = RetryPolicy::of(&self.def.configuration, &self.ctx.config).map_err(|errors| {
            let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
            format!("invalid configuration: {}", text.join("; "))
        })?;
        let (driver, pipelined) = self.create_driver()?;
        let (consumer, tp) = self.open_consumer()?;
        Ok(Running { driver, consumer, tp, pipelined })
    }

    /// Creates, validates and starts a driver instance for the current definition, and
    /// switches it to pipelining when configured and supported (the second value).
    pub(super) fn create_driver(&self) -> Result<(DriverHandle, bool), String> {
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
        driver.watch(self.watch.clone());
        let pipelined = ctx.config.msg_pipeline_depth > 1 && driver.enable_pipeline();
        if pipelined {
            tracing::debug!(depth = ctx.config.msg_pipeline_depth, "Driver pipelines packs.");
        }
        Ok((driver, pipelined))
    }

    /// Creates the consumer of the integration's message topic, positioned at the committed
    /// offset (or at the end, committed, when there is none).
    pub(super) fn open_consumer(&self) -> Result<(Box<dyn Consumer>, TopicPartition), String> {
        let ctx = &self.ctx;
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
        Ok((consumer, tp))
    }

    /// Stops the driver and the consumer (no events).
    pub(super) fn teardown(&mut self) {
        // Packs in flight die with the driver instance, uncommitted: they are delivered again.
        self.in_flight.clear();
        self.connectivity = None;
        self.stats.clear_connected();
        if let Some(mut r) = self.running.take() {
            if let Err(e) = r.driver.stop() {
                tracing::warn!(error = %e, "Driver stop failed.");
            }
        }
    }

    pub(super) fn stop(&mut self, delete: bool) {
        let was_active = self.running.is_some() || self.failed_at.is_some();
        self.teardown();
        self.send_statistics_if_any();
        if was_active {
            self.lifecycle(Lc::Stopped, None);
        }
        if !self.abandoned.load(std::sync::atomic::Ordering::Relaxed) {
            // An abandoned worker's integration belongs to the worker that replaced it.
            // Series first, so that whoever hears the integration stopped finds them gone.
            self.ctx.stats.remove_processor(self.def.id);
            self.ctx.stats.set_state(self.def.id, &self.def.integration_type, None);
        }
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
}
