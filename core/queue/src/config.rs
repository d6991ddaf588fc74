//! Settings values read by the broker and the executor alike: the error of a bad value, the
//! parsing helpers every configuration reader uses, and TBMQ's service-id rule.

use std::time::Duration;

/// Reads a setting through a lookup function (so tests need not touch the process env).
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// A bad setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid value '{value}' for {name}: {reason}")]
pub struct ConfigError {
    /// Environment variable or key.
    pub name: String,
    /// The value.
    pub value: String,
    /// Why.
    pub reason: String,
}

/// Parses the setting `name` into `target` when it is set; leaves `target` alone otherwise.
pub fn parse<T: std::str::FromStr>(lookup: Lookup<'_>, name: &str, target: &mut T) -> Result<(), ConfigError>
where
    T::Err: std::fmt::Display,
{
    if let Some(v) = lookup(name) {
        *target = v.trim().parse().map_err(|e: T::Err| ConfigError {
            name: name.into(),
            value: v.clone(),
            reason: e.to_string(),
        })?;
    }
    Ok(())
}

/// Parses a setting given in milliseconds into `target` when it is set.
pub fn millis(lookup: Lookup<'_>, name: &str, target: &mut Duration) -> Result<(), ConfigError> {
    let mut ms = target.as_millis() as u64;
    parse(lookup, name, &mut ms)?;
    *target = Duration::from_millis(ms);
    Ok(())
}

/// TBMQ's `key:value;key:value` property strings.
pub fn parse_properties(text: &str) -> Vec<(String, String)> {
    text.split(';')
        .filter_map(|kv| kv.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .filter(|(k, _)| !k.is_empty())
        .collect()
}

/// TBMQ's rule for `TB_SERVICE_ID`: the configured id, else the host name, else `<prefix>-` and
/// ten random characters.
pub fn service_id_or_host_name(configured: &str, prefix: &str) -> String {
    if !configured.is_empty() {
        return configured.to_string();
    }
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| format!("{prefix}-{}", &uuid::Uuid::new_v4().simple().to_string()[..10]))
}
