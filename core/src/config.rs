//! Executor settings, with TBMQ's names, environment variables and defaults.
//!
//! [`ExecutorConfig::default`] is TBMQ's `tbmq-integration-executor.yml`; [`ExecutorConfig::from_env`]
//! applies the TBMQ environment variables on top. (The YAML file layer lives in `dist/`.)

use std::{path::PathBuf, time::Duration};

use trib_queue::config::{millis, parse, Lookup};
pub use trib_queue::config::{service_id_or_host_name, ConfigError};

use crate::topics::TopicNames;

/// How a pack's failures are handled (`queue.integration-msg.ack-strategy.*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckStrategy {
    /// Commit after one attempt whatever happened (TBMQ's default). Failures are counted, not retried.
    SkipAll,
    /// Retry the failed and timed-out messages of a pack; `retries` 0 means forever.
    RetryAll {
        /// Attempts after the first; 0 = unlimited.
        retries: u32,
        /// Pause before the first retry.
        pause: Duration,
        /// Longest pause (ours). Above `pause`, each retry waits twice as long as the one before,
        /// up to this, with ±20 % jitter; equal to `pause` (the default), every pause is `pause`,
        /// as in TBMQ.
        max_pause: Duration,
    },
}

/// The values of [`AckStrategy::RetryAll`], whatever the executor-wide type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAllDefaults {
    /// `TB_IE_MSG_ACK_STRATEGY_RETRIES`: attempts after the first; 0 = unlimited.
    pub retries: u32,
    /// `TB_IE_MSG_ACK_STRATEGY_PAUSE_BETWEEN_RETRIES`: the pause before the first retry.
    pub pause: Duration,
    /// `TB_IE_MSG_ACK_STRATEGY_MAX_PAUSE_BETWEEN_RETRIES`: the longest pause.
    pub max_pause: Duration,
}

impl Default for RetryAllDefaults {
    /// TBMQ's: 5 retries, 1 s apart.
    fn default() -> Self {
        RetryAllDefaults { retries: 5, pause: Duration::from_secs(1), max_pause: Duration::from_secs(1) }
    }
}

/// Executor settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutorConfig {
    /// `service.id` (`TB_SERVICE_ID`); empty = host name.
    pub service_id: String,
    /// `service.integrations.supported` (`TB_SERVICE_INTEGRATIONS_SUPPORTED`).
    pub integrations_supported: String,
    /// `service.integrations.excluded` (`TB_SERVICE_INTEGRATIONS_EXCLUDED`).
    pub integrations_excluded: String,
    /// Where driver libraries are loaded from (`TB_PLUGINS_DIR`; ours).
    pub plugins_dir: PathBuf,
    /// How often the plugins directory is scanned for new driver libraries while the executor
    /// runs (`TB_PLUGINS_SCAN_INTERVAL_MS`; ours); zero turns hot plugging off.
    pub plugins_scan_interval: Duration,
    /// Topic names and properties.
    pub topics: TopicNames,
    /// `queue.integration-downlink.poll-interval` (`TB_IE_DOWNLINK_POLL_INTERVAL`, ms).
    pub downlink_poll_interval: Duration,
    /// `queue.integration-msg.poll-interval` (`TB_IE_MSG_POLL_INTERVAL`, ms): the longest wait of an
    /// idle integration consumer; records are handed over as soon as they arrive.
    pub msg_poll_interval: Duration,
    /// `max.poll.records` of the message consumers (from `TB_KAFKA_IE_MSG_ADDITIONAL_CONSUMER_CONFIG`):
    /// the largest pack. Default 500 (TBMQ: 50, which holds an integration to 50 messages per
    /// target round trip: 26k msg/s to a local Mosquitto here, against 54-64k with 500).
    pub msg_max_poll_records: usize,
    /// `queue.integration-msg.pack-processing-timeout` (`TB_IE_MSG_PACK_PROCESSING_TIMEOUT`, ms).
    pub pack_processing_timeout: Duration,
    /// `queue.integration-msg.pipeline-depth` (`TB_IE_MSG_PIPELINE_DEPTH`; ours): how many packs an
    /// integration may have handed to a driver that pipelines (MQTT, Kafka) before the oldest
    /// one's outcomes are in, and never more messages than two full packs; 1 = stop-and-wait, as
    /// TBMQ. Default 8: the target keeps receiving while acknowledgements travel back, and at low
    /// rates (small packs) one slow acknowledgement does not hold up the messages behind it.
    pub msg_pipeline_depth: usize,
    /// `queue.integration-msg.dead-letters` (`TB_IE_MSG_DEAD_LETTERS_ENABLED`; ours): messages an
    /// integration gives up on go to `<p>tbmq.ie.dlq.<id32>` with the reason before the pack is
    /// committed. Off = TBMQ's behaviour (counted and dropped).
    pub dead_letters_enabled: bool,
    /// `queue.integration-msg.ack-strategy.*`.
    pub ack_strategy: AckStrategy,
    /// The `RETRY_ALL` values of `queue.integration-msg.ack-strategy.*`, kept under `SKIP_ALL`
    /// too: the defaults of an integration whose `retryPolicy` chooses `RETRY_ALL` (ours; see
    /// [`crate::retry::policy`]). Under `RETRY_ALL` they equal the values in `ack_strategy`.
    pub retry_all_defaults: RetryAllDefaults,
    /// `integrations.statistics.enabled` (`INTEGRATIONS_STATISTICS_ENABLED`).
    pub statistics_enabled: bool,
    /// `integrations.statistics.persist-frequency` (`INTEGRATIONS_STATISTICS_PERSIST_FREQUENCY`, ms).
    pub statistics_persist_frequency: Duration,
    /// `integrations.reinit.enabled` (`INTEGRATIONS_REINIT_ENABLED`).
    pub reinit_enabled: bool,
    /// `integrations.reinit.frequency` (`INTEGRATIONS_REINIT_FREQUENCY_MS`).
    pub reinit_frequency: Duration,
    /// `stats.ie.enabled` (`STATS_IE_ENABLED`).
    pub stats_enabled: bool,
    /// `stats.ie.print-interval-ms` (`STATS_IE_PRINT_INTERVAL_MS`).
    pub stats_print_interval: Duration,
    /// `event.error.rate-limits.enabled` (`EVENT_ERROR_RATE_LIMITS_ENABLED`).
    pub error_rate_limits_enabled: bool,
    /// `event.error.rate-limits.integration` (`EVENT_ERROR_RATE_LIMITS_INTEGRATION`), `tokens:seconds,...`.
    pub error_rate_limits: String,
    /// How often the executor announces itself and its types on the uplink topic
    /// (`TB_IE_SERVICE_INFO_INTERVAL_MS`; ours, TBMQ uses 5 min for a bare service info).
    pub service_info_interval: Duration,
    /// `integrations.destroy.forced-shutdown-timeout-ms` (`INTEGRATIONS_DESTROY_FORCED_SHUTDOWN_TIMEOUT_MS`).
    pub forced_shutdown_timeout: Duration,
    /// Which addresses drivers may connect to (`TB_IE_TARGET_DENY`, `TB_IE_TARGET_ALLOW`; ours,
    /// TBMQ has no such guard): link-local and cloud metadata addresses denied by default, plus
    /// the process's own listeners added by the service ([`crate::target_policy`]).
    pub target_policy: trib_plugin_api::support::target_policy::TargetPolicy,
    /// `queue.integration-msg.watchdog-grace` (`TB_IE_MSG_WATCHDOG_GRACE_MS`; ours): how long a
    /// driver call may overrun its deadline before the watchdog abandons the integration's
    /// worker, reports it FAILED and starts a fresh one (the uncommitted pack comes again).
    pub watchdog_grace: Duration,
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        ExecutorConfig {
            service_id: String::new(),
            integrations_supported: "ALL".into(),
            integrations_excluded: "NONE".into(),
            plugins_dir: PathBuf::from("plugins"),
            plugins_scan_interval: Duration::from_millis(2_000),
            topics: TopicNames::default(),
            downlink_poll_interval: Duration::from_millis(1000),
            msg_poll_interval: Duration::from_millis(1000),
            msg_max_poll_records: 500,
            pack_processing_timeout: Duration::from_millis(30_000),
            msg_pipeline_depth: 8,
            ack_strategy: AckStrategy::SkipAll,
            retry_all_defaults: RetryAllDefaults::default(),
            dead_letters_enabled: true,
            statistics_enabled: true,
            statistics_persist_frequency: Duration::from_millis(3_600_000),
            reinit_enabled: true,
            reinit_frequency: Duration::from_millis(300_000),
            stats_enabled: true,
            stats_print_interval: Duration::from_millis(60_000),
            error_rate_limits_enabled: true,
            error_rate_limits: "5000:3600,100:60".into(),
            service_info_interval: Duration::from_millis(10_000),
            forced_shutdown_timeout: Duration::from_millis(15_000),
            watchdog_grace: Duration::from_millis(10_000),
            target_policy: Default::default(),
        }
    }
}

impl ExecutorConfig {
    /// Defaults overridden by the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(&|name| std::env::var(name).ok())
    }

    /// Defaults overridden by `lookup` (an environment).
    pub fn from_lookup(lookup: Lookup<'_>) -> Result<Self, ConfigError> {
        let mut c = ExecutorConfig::default();
        parse(lookup, "TB_SERVICE_ID", &mut c.service_id)?;
        parse(lookup, "TB_SERVICE_INTEGRATIONS_SUPPORTED", &mut c.integrations_supported)?;
        parse(lookup, "TB_SERVICE_INTEGRATIONS_EXCLUDED", &mut c.integrations_excluded)?;
        if let Some(dir) = lookup("TB_PLUGINS_DIR") {
            c.plugins_dir = PathBuf::from(dir);
        }
        c.topics = TopicNames::from_lookup(lookup)?;
        millis(lookup, "TB_IE_DOWNLINK_POLL_INTERVAL", &mut c.downlink_poll_interval)?;
        millis(lookup, "TB_IE_MSG_POLL_INTERVAL", &mut c.msg_poll_interval)?;
        if let Some(v) = lookup("TB_KAFKA_IE_MSG_ADDITIONAL_CONSUMER_CONFIG") {
            if let Some(n) = v.split(';').find_map(|kv| kv.trim().strip_prefix("max.poll.records:")) {
                c.msg_max_poll_records = n.trim().parse().map_err(|_| ConfigError {
                    name: "TB_KAFKA_IE_MSG_ADDITIONAL_CONSUMER_CONFIG".into(),
                    value: v.clone(),
                    reason: "max.poll.records is not a number".into(),
                })?;
            }
        }
        millis(lookup, "TB_IE_MSG_PACK_PROCESSING_TIMEOUT", &mut c.pack_processing_timeout)?;
        parse(lookup, "TB_IE_MSG_PIPELINE_DEPTH", &mut c.msg_pipeline_depth)?;
        if c.msg_pipeline_depth == 0 {
            return Err(ConfigError {
                name: "TB_IE_MSG_PIPELINE_DEPTH".into(),
                value: "0".into(),
                reason: "must be at least 1 (1 = no pipelining)".into(),
            });
        }
        (c.ack_strategy, c.retry_all_defaults) = ack_strategy(lookup)?;
        parse(lookup, "TB_IE_MSG_DEAD_LETTERS_ENABLED", &mut c.dead_letters_enabled)?;
        parse(lookup, "INTEGRATIONS_STATISTICS_ENABLED", &mut c.statistics_enabled)?;
        millis(lookup, "INTEGRATIONS_STATISTICS_PERSIST_FREQUENCY", &mut c.statistics_persist_frequency)?;
        parse(lookup, "INTEGRATIONS_REINIT_ENABLED", &mut c.reinit_enabled)?;
        millis(lookup, "INTEGRATIONS_REINIT_FREQUENCY_MS", &mut c.reinit_frequency)?;
        parse(lookup, "STATS_IE_ENABLED", &mut c.stats_enabled)?;
        millis(lookup, "STATS_IE_PRINT_INTERVAL_MS", &mut c.stats_print_interval)?;
        parse(lookup, "EVENT_ERROR_RATE_LIMITS_ENABLED", &mut c.error_rate_limits_enabled)?;
        parse(lookup, "EVENT_ERROR_RATE_LIMITS_INTEGRATION", &mut c.error_rate_limits)?;
        millis(lookup, "TB_IE_SERVICE_INFO_INTERVAL_MS", &mut c.service_info_interval)?;
        millis(lookup, "INTEGRATIONS_DESTROY_FORCED_SHUTDOWN_TIMEOUT_MS", &mut c.forced_shutdown_timeout)?;
        millis(lookup, "TB_IE_MSG_WATCHDOG_GRACE_MS", &mut c.watchdog_grace)?;
        millis(lookup, "TB_PLUGINS_SCAN_INTERVAL_MS", &mut c.plugins_scan_interval)?;
        c.target_policy = crate::target_policy::from_lookup(lookup)?;
        Ok(c)
    }

    /// The service id, or the host name when none is configured.
    pub fn effective_service_id(&self) -> String {
        service_id_or_host_name(&self.service_id, "tbmq-ie")
    }
}

/// The ack strategy, and the `RETRY_ALL` values whatever the type.
fn ack_strategy(lookup: Lookup<'_>) -> Result<(AckStrategy, RetryAllDefaults), ConfigError> {
    let kind = lookup("TB_IE_MSG_ACK_STRATEGY_TYPE").unwrap_or_else(|| "SKIP_ALL".into());
    let mut retries: u32 = 5;
    let mut pause_secs: u64 = 1;
    parse(lookup, "TB_IE_MSG_ACK_STRATEGY_RETRIES", &mut retries)?;
    parse(lookup, "TB_IE_MSG_ACK_STRATEGY_PAUSE_BETWEEN_RETRIES", &mut pause_secs)?;
    let mut max_pause_secs: u64 = pause_secs;
    if lookup("TB_IE_MSG_ACK_STRATEGY_MAX_PAUSE_BETWEEN_RETRIES").is_some_and(|v| !v.trim().is_empty()) {
        parse(lookup, "TB_IE_MSG_ACK_STRATEGY_MAX_PAUSE_BETWEEN_RETRIES", &mut max_pause_secs)?;
    }
    if max_pause_secs < pause_secs {
        return Err(ConfigError {
            name: "TB_IE_MSG_ACK_STRATEGY_MAX_PAUSE_BETWEEN_RETRIES".into(),
            value: max_pause_secs.to_string(),
            reason: format!("must not be below TB_IE_MSG_ACK_STRATEGY_PAUSE_BETWEEN_RETRIES ({pause_secs})"),
        });
    }
    let (pause, max_pause) = (Duration::from_secs(pause_secs), Duration::from_secs(max_pause_secs));
    let defaults = RetryAllDefaults { retries, pause, max_pause };
    match kind.trim().to_ascii_uppercase().as_str() {
        "SKIP_ALL" => Ok((AckStrategy::SkipAll, defaults)),
        "RETRY_ALL" => Ok((AckStrategy::RetryAll { retries, pause, max_pause }, defaults)),
        _ => Err(ConfigError {
            name: "TB_IE_MSG_ACK_STRATEGY_TYPE".into(),
            value: kind,
            reason: "use SKIP_ALL or RETRY_ALL".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{AckStrategy, ExecutorConfig};

    fn config(vars: &[(&str, &str)]) -> Result<ExecutorConfig, super::ConfigError> {
        let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        ExecutorConfig::from_lookup(&|name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    #[test]
    fn retry_all_pauses_are_tbmqs_unless_a_longer_maximum_is_set() {
        let retry_all =
            [("TB_IE_MSG_ACK_STRATEGY_TYPE", "RETRY_ALL"), ("TB_IE_MSG_ACK_STRATEGY_PAUSE_BETWEEN_RETRIES", "2")];
        let c = config(&retry_all).expect("valid");
        let two = Duration::from_secs(2);
        assert_eq!(c.ack_strategy, AckStrategy::RetryAll { retries: 5, pause: two, max_pause: two });
        let mut with_max = retry_all.to_vec();
        with_max.push(("TB_IE_MSG_ACK_STRATEGY_MAX_PAUSE_BETWEEN_RETRIES", "60"));
        let c = config(&with_max).expect("valid");
        assert_eq!(
            c.ack_strategy,
            AckStrategy::RetryAll { retries: 5, pause: two, max_pause: Duration::from_secs(60) }
        );
        let mut below = retry_all.to_vec();
        below.push(("TB_IE_MSG_ACK_STRATEGY_MAX_PAUSE_BETWEEN_RETRIES", "1"));
        let e = config(&below).expect_err("a maximum below the pause");
        assert_eq!(e.name, "TB_IE_MSG_ACK_STRATEGY_MAX_PAUSE_BETWEEN_RETRIES");
    }

    #[test]
    fn dead_letters_are_on_unless_switched_off() {
        assert!(config(&[]).expect("valid").dead_letters_enabled);
        assert!(!config(&[("TB_IE_MSG_DEAD_LETTERS_ENABLED", "false")]).expect("valid").dead_letters_enabled);
        assert!(config(&[("TB_IE_MSG_DEAD_LETTERS_ENABLED", "maybe")]).is_err());
    }
}
