//! Periodic tasks: removing the queue data of long-disabled integrations (TBMQ §6.4) and
//! deleting old events (TBMQ §6.6).

use std::{sync::Arc, time::Duration};

use tokio::sync::watch;

use crate::{db::Db, topics::Topics};

/// Every `period` (first run at once), deletes the message topic and consumer group of each
/// integration disabled for longer than `ttl`. The row and its subscriptions stay; saving or
/// enabling the integration recreates the topic.
pub fn spawn_cleanup(
    db: Db,
    topics: Arc<Topics>,
    period: Duration,
    ttl: Duration,
    stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    every(period, Duration::ZERO, stop, move || {
        let (db, topics) = (db.clone(), topics.clone());
        async move {
            if let Err(e) = cleanup_once(&db, &topics, ttl, trib_queue::now_ms()).await {
                tracing::warn!(error = %e, "Integration cleanup failed.");
            }
        }
    })
}

/// One cleanup pass at time `now`; returns how many integrations lost their queue data.
pub async fn cleanup_once(
    db: &Db,
    topics: &Topics,
    ttl: Duration,
    now: i64,
) -> Result<usize, Box<dyn std::error::Error + Send + Sync>> {
    let mut cleaned = 0;
    for i in db.all_integrations().await? {
        if !i.enabled && i.disconnected_time + (ttl.as_millis() as i64) < now && topics.msg_exists(i.id).await? {
            topics.delete_msg(i.id).await?;
            tracing::info!(integration_id = %i.id, "Queue data of a long-disabled integration deleted.");
            cleaned += 1;
        }
    }
    Ok(cleaned)
}

/// Every `interval` (first run after one interval), deletes events older than `ttl`.
pub fn spawn_event_ttl(
    db: Db,
    interval: Duration,
    ttl: Duration,
    stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    every(interval, interval, stop, move || {
        let db = db.clone();
        async move {
            let expired = trib_queue::now_ms() - ttl.as_millis() as i64;
            match db.delete_events_before(expired).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "Expired events deleted."),
                Err(e) => tracing::warn!(error = %e, "Event TTL cleanup failed."),
            }
        }
    })
}

fn every<F, Fut>(
    period: Duration,
    first: Duration,
    mut stop: watch::Receiver<bool>,
    f: F,
) -> tokio::task::JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut next = tokio::time::Instant::now() + first;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(next) => {}
                _ = stop.changed() => return,
            }
            f().await;
            next = tokio::time::Instant::now() + period;
        }
    })
}
