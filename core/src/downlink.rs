//! The consumer of one type's downlink topic (`tbmq.ie.downlink.<type>`), TBMQ's
//! `DefaultClusterIntegrationService`.
//!
//! On every partition assignment it rewinds to the beginning and enters *restoration mode* for
//! that partition: it reads up to the end, keeping only the latest lifecycle message per
//! integration and answering only validation requests whose deadline has not passed, then starts
//! the integrations it found and switches the partition to *real-time mode*, where every message takes effect at once.
//! When partitions are revoked, their integrations are stopped (another executor takes them).

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread::JoinHandle,
};

use prost::Message as _;
use uuid::Uuid;

use crate::{
    manager::Manager,
    queue::{ConsumerEvent, Record, TopicPartition},
    wire::{uuid_from_bits, ComponentLifecycleEvent as Lc, DownlinkIntegrationMsgProto, IntegrationMsgProto},
};

/// Per-partition state.
#[derive(Default)]
struct PartitionState {
    /// `Some((end, caught_up))` while restoring up to offset `end` (exclusive, as seen at
    /// assignment); `caught_up` once the record at `end - 1` was read.
    restoring: Option<(i64, bool)>,
    /// Latest lifecycle message per integration.
    latest: HashMap<Uuid, IntegrationMsgProto>,
}

/// Starts the downlink consumer thread of `integration_type`.
pub fn spawn(
    manager: Arc<Manager>,
    integration_type: String,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("ie-downlink-{}", integration_type.to_ascii_lowercase()))
        .spawn(move || run(&manager, &integration_type, &stop))
}

fn run(manager: &Manager, integration_type: &str, stop: &AtomicBool) {
    let ctx = manager.context().clone();
    let topics = &ctx.config.topics;
    let topic = topics.downlink(integration_type);
    let client_id =
        format!("{}{}-ie-downlink-consumer-{}", topics.prefix, integration_type.to_ascii_lowercase(), ctx.service_id);
    let mut consumer = loop {
        let subscribed =
            topics.downlink_spec(integration_type).and_then(|spec| ctx.queue.create_topic(&spec)).and_then(|_| {
                ctx.queue.subscribe(&topics.downlink_group(integration_type), &client_id, std::slice::from_ref(&topic))
            });
        match subscribed {
            Ok(c) => break c,
            Err(e) => {
                tracing::warn!(topic, error = %e, "Cannot subscribe to the downlink topic yet; retrying.");
                if sleep_unless_stopped(stop, ctx.config.downlink_poll_interval) {
                    return;
                }
            }
        }
    };
    tracing::info!(topic, "Downlink consumer started.");
    let mut partitions: HashMap<TopicPartition, PartitionState> = HashMap::new();
    while !stop.load(Ordering::Relaxed) {
        let events = match consumer.poll(ctx.config.downlink_poll_interval, 500) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(topic, error = %e, "Downlink poll failed.");
                sleep_unless_stopped(stop, ctx.config.downlink_poll_interval);
                continue;
            }
        };
        for event in events {
            match event {
                ConsumerEvent::Assigned(tps) => {
                    for tp in tps {
                        let state = match consumer.watermarks(&tp) {
                            Ok((first, end)) if end > first => {
                                if let Err(e) = consumer.seek(&tp, first) {
                                    tracing::warn!(partition = %tp, error = %e, "Cannot rewind downlink partition.");
                                }
                                PartitionState { restoring: Some((end, false)), latest: HashMap::new() }
                            }
                            Ok(_) => PartitionState::default(),
                            Err(e) => {
                                tracing::warn!(partition = %tp, error = %e, "Cannot read downlink offsets; treating as empty.");
                                PartitionState::default()
                            }
                        };
                        tracing::info!(partition = %tp, restoring = state.restoring.is_some(), "Downlink partition assigned.");
                        partitions.insert(tp, state);
                    }
                }
                ConsumerEvent::Revoked(tps) => {
                    tracing::info!(partitions = ?tps, "Downlink partitions revoked; stopping their integrations.");
                    manager.stop_partitions(&tps);
                    for tp in &tps {
                        partitions.remove(tp);
                    }
                }
                ConsumerEvent::Records(records) => {
                    for record in &records {
                        handle_record(manager, &mut partitions, record);
                    }
                }
            }
        }
        finish_restoration(manager, &mut partitions);
    }
    tracing::info!(topic, "Downlink consumer stopped.");
}

fn handle_record(manager: &Manager, partitions: &mut HashMap<TopicPartition, PartitionState>, record: &Record) {
    let Some(state) = partitions.get_mut(&record.tp) else {
        return;
    };
    let msg = match DownlinkIntegrationMsgProto::decode(record.value.clone()) {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(partition = %record.tp, offset = record.offset, error = %e, "Undecodable downlink record skipped.");
            return;
        }
    };
    if let Some((end, _)) = state.restoring {
        if let Some(lc) = msg.integration_msg {
            remember(state, lc);
        }
        // TBMQ skips every validation request read while restoring as stale; one whose deadline
        // has not passed is still awaited by a broker, so it is answered (the manager drops
        // expired ones). Otherwise a save right after an executor (re)joins would time out.
        if let Some(request) = msg.validation_request_msg {
            if request.deadline > crate::now_ms() {
                manager.handle_validation(request);
            }
        }
        if record.offset + 1 >= end {
            state.restoring = Some((end, true));
        }
        return;
    }
    if let Some(lc) = msg.integration_msg {
        remember(state, lc.clone());
        manager.handle_lifecycle(&lc, Some(&record.tp));
    }
    if let Some(request) = msg.validation_request_msg {
        manager.handle_validation(request);
    }
}

fn remember(state: &mut PartitionState, lc: IntegrationMsgProto) {
    let id = uuid_from_bits(lc.integration_id_msb, lc.integration_id_lsb);
    if lc.event == Lc::Deleted as i32 {
        state.latest.remove(&id);
    } else {
        state.latest.insert(id, lc);
    }
}

/// Switches partitions whose restoration reached its end to real time, starting what they hold.
fn finish_restoration(manager: &Manager, partitions: &mut HashMap<TopicPartition, PartitionState>) {
    for (tp, state) in partitions.iter_mut() {
        if let Some((_, true)) = state.restoring {
            state.restoring = None;
            tracing::info!(partition = %tp, integrations = state.latest.len(), "Downlink partition restored.");
            for msg in state.latest.values() {
                manager.handle_lifecycle(msg, Some(tp));
            }
        }
    }
}

fn sleep_unless_stopped(stop: &AtomicBool, total: std::time::Duration) -> bool {
    let step = std::time::Duration::from_millis(50);
    let mut waited = std::time::Duration::ZERO;
    while waited < total {
        if stop.load(Ordering::Relaxed) {
            return true;
        }
        std::thread::sleep(step);
        waited += step;
    }
    stop.load(Ordering::Relaxed)
}
