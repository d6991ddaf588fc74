//! Which addresses this executor's drivers may connect to: the target policy, read from
//! `TB_IE_TARGET_DENY` / `TB_IE_TARGET_ALLOW`, completed with the process's own listeners, and
//! handed to every driver library when it is loaded (at start and when hot-plugged).
//!
//! The rules and their checks live in `trib_plugin_api::support::target_policy`, because every
//! driver library applies them itself, to the addresses it actually connects to. What lives here
//! is the host's side: reading the settings ([`from_lookup`]), adding the own listeners
//! ([`deny_own_listeners`]) and sending the policy through the module-level control operation
//! ([`hand_to`]). A driver that does not announce the capability keeps whatever it does (for a
//! first-party driver built before it, nothing) and is named in one warning.

use std::net::SocketAddr;

use abi_stable::std_types::{RResult, RStr};
use trib_plugin_api::{
    abi::{capabilities, control_op},
    support::target_policy::{parse_list, Rule, TargetPolicy},
};
use trib_queue::config::{ConfigError, Lookup};

use crate::loader::LoadedDriver;

/// The environment variable of extra deny rules.
pub const DENY_VAR: &str = "TB_IE_TARGET_DENY";
/// The environment variable of allow rules, which win over every deny rule.
pub const ALLOW_VAR: &str = "TB_IE_TARGET_ALLOW";

/// The default policy (link-local and cloud metadata addresses denied) plus the rules of
/// `TB_IE_TARGET_DENY` and `TB_IE_TARGET_ALLOW` (comma-separated, see the rule forms in
/// `trib_plugin_api::support::target_policy`). A bad rule is an error naming the variable.
pub fn from_lookup(lookup: Lookup<'_>) -> Result<TargetPolicy, ConfigError> {
    let mut policy = TargetPolicy::default();
    for rule in rules(lookup, DENY_VAR)? {
        policy.deny(rule);
    }
    for rule in rules(lookup, ALLOW_VAR)? {
        policy.allow(rule);
    }
    Ok(policy)
}

/// Adds a deny rule for each listener of this process (`name` says which, in refusals): the
/// listener's address and port, or every address of this machine on that port when it listens
/// on the unspecified address. A loopback listener is also denied on the unspecified address
/// of its family (a connection to `0.0.0.0` or `::` reaches loopback). Port 0 (not bound yet) is
/// skipped.
pub fn deny_own_listeners(policy: &mut TargetPolicy, listeners: &[(&str, SocketAddr)]) {
    for (name, addr) in listeners.iter().filter(|(_, addr)| addr.port() != 0) {
        let source = format!("own listener: {name} on {addr}");
        policy.deny(Rule::listener(*addr).with_source(source.clone()));
        if addr.ip().is_loopback() {
            let unspecified = match addr {
                SocketAddr::V4(_) => SocketAddr::from((std::net::Ipv4Addr::UNSPECIFIED, addr.port())),
                SocketAddr::V6(_) => SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, addr.port())),
            };
            policy.deny(Rule::exact(unspecified).with_source(source));
        }
    }
}

/// What became of the policy sent to one driver library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handed {
    /// The driver took it.
    Applied,
    /// The driver does not announce [`capabilities::TARGET_POLICY`]: it applies no host policy.
    NotSupported,
    /// The driver announces it but refused the policy (the message says why).
    Failed(String),
}

/// Sends `policy` to `driver`'s library (module-level, once per library) and logs a warning
/// naming the file when the driver does not apply it.
pub fn hand_to(driver: &LoadedDriver, policy: &TargetPolicy) -> Handed {
    let handed = send(driver, policy);
    let file = driver.path.display();
    let integration_type = driver.integration_type();
    match &handed {
        Handed::Applied => {
            tracing::debug!(plugin = %file, integration_type, "Driver applies the target policy.")
        }
        Handed::NotSupported => tracing::warn!(
            plugin = %file,
            integration_type,
            "Driver does not apply the target policy (TB_IE_TARGET_DENY / TB_IE_TARGET_ALLOW): its integrations may connect to any address, including link-local, cloud metadata and this process's own listeners."
        ),
        Handed::Failed(error) => tracing::warn!(
            plugin = %file,
            integration_type,
            error = %error,
            "Driver refused the target policy; it keeps its default policy."
        ),
    }
    handed
}

fn send(driver: &LoadedDriver, policy: &TargetPolicy) -> Handed {
    if driver.metadata.capabilities & capabilities::TARGET_POLICY == 0 {
        return Handed::NotSupported;
    }
    let json = policy.to_json();
    match (driver.module.control())(RStr::from_str(control_op::TARGET_POLICY), RStr::from_str(&json)) {
        RResult::ROk(_) => Handed::Applied,
        RResult::RErr(e) => Handed::Failed(e.message.as_str().lines().next().unwrap_or_default().to_string()),
    }
}

fn rules(lookup: Lookup<'_>, name: &str) -> Result<Vec<Rule>, ConfigError> {
    let Some(value) = lookup(name) else {
        return Ok(Vec::new());
    };
    let rules = parse_list(&value).map_err(|reason| ConfigError { name: name.into(), value: value.clone(), reason })?;
    Ok(rules.into_iter().map(|rule| rule.with_source(name)).collect())
}

#[cfg(test)]
mod tests;
