//! Which network addresses a driver may connect to: the host's target policy.
//!
//! An integration's target is chosen by whoever may edit integrations, and the executor connects
//! to it from inside the deployment. Without a guard, an HTTP integration can reach the cloud
//! metadata service (169.254.169.254) or the management API of the very process that runs it,
//! and "check connection" becomes a port scanner. TBMQ has no such guard; Tributary does.
//!
//! A [`TargetPolicy`] is two lists of [`Rule`]s, deny and allow. An address is refused when a
//! deny rule matches it and no allow rule does: **allow wins over deny**, so an operator can
//! open one private target (or a whole default) explicitly. [`TargetPolicy::default`] denies the
//! link-local networks (169.254.0.0/16, fe80::/10) and the cloud metadata addresses in them and
//! beside them (169.254.169.254, fd00:ec2::254, 100.100.100.200); loopback is *not* denied by
//! default (local targets are common in tests and single-machine setups; deny it with a rule).
//!
//! Each driver library holds one policy for the whole process ([`current`]), the default until
//! the host installs its own through the module-level control operation
//! [`crate::abi::control_op::TARGET_POLICY`] (which [`crate::export_driver!`] answers for drivers
//! that announce [`crate::abi::capabilities::TARGET_POLICY`]). So a driver is never unguarded,
//! even under a host that predates the operation. A driver applies it to the addresses it
//! actually connects to, after name resolution, so that a name that resolves to a denied address
//! (DNS rebinding included) is refused too: a driver that picks the address itself keeps the
//! allowed ones ([`allowed`]); a driver whose client library connects by name refuses a name
//! with any denied address ([`resolve`], [`check_every`]).
//!
//! Rules read as text, the same in the executor's environment (`TB_IE_TARGET_DENY`,
//! `TB_IE_TARGET_ALLOW`) and in the JSON the host sends:
//!
//! | text | matches |
//! |---|---|
//! | `169.254.0.0/16`, `fe80::/10` | every address of the network, every port |
//! | `10.1.2.3`, `::1` | that address (a /32 or /128), every port |
//! | `10.0.0.0/8:8083`, `10.0.0.0/8:8000-8099` | the network on that port or port range |
//! | `[fd00::/8]:443`, `[::1]:8083` | an IPv6 network or address with ports |
//! | `local:8083` | every address of this machine (loopback, unspecified, any address bound to one of its interfaces) on that port |
//!
//! IPv4-mapped IPv6 addresses (`::ffff:169.254.169.254`) are checked as the IPv4 address they
//! carry, and rules written that way apply to the IPv4 address too.
//!
//! What this module does not do: connect, or resolve names asynchronously (a driver with an
//! async runtime resolves with it and checks the addresses with [`allowed`]).

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs, UdpSocket},
    sync::{Arc, OnceLock, PoisonError, RwLock},
};

use serde::{Deserialize, Serialize};

/// Where the rules of [`TargetPolicy::default`] come from, as error messages name it.
pub const DEFAULT_SOURCE: &str = "default: link-local and cloud metadata addresses";

/// An allow and a deny list of [`Rule`]s; see the module documentation for the precedence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetPolicy {
    deny: Vec<Rule>,
    allow: Vec<Rule>,
}

impl Default for TargetPolicy {
    /// Denies link-local networks and cloud metadata addresses; allows everything else.
    fn default() -> Self {
        let deny = ["169.254.0.0/16", "fe80::/10", "fd00:ec2::254", "100.100.100.200"]
            .iter()
            .map(|text| Rule::parse(text).expect("the default rules parse").with_source(DEFAULT_SOURCE))
            .collect();
        TargetPolicy { deny, allow: Vec::new() }
    }
}

impl TargetPolicy {
    /// A policy with no rule: every address is allowed.
    pub fn allow_all() -> Self {
        TargetPolicy { deny: Vec::new(), allow: Vec::new() }
    }

    /// Adds a deny rule (after the existing ones).
    pub fn deny(&mut self, rule: Rule) -> &mut Self {
        self.deny.push(rule);
        self
    }

    /// Adds an allow rule; an address an allow rule matches is never refused.
    pub fn allow(&mut self, rule: Rule) -> &mut Self {
        self.allow.push(rule);
        self
    }

    /// The deny rules, in order.
    pub fn deny_rules(&self) -> &[Rule] {
        &self.deny
    }

    /// The allow rules, in order.
    pub fn allow_rules(&self) -> &[Rule] {
        &self.allow
    }

    /// Whether a driver may connect to `addr`: refused when a deny rule matches and no allow
    /// rule does; the error names the address and the rule.
    pub fn check(&self, addr: SocketAddr) -> Result<(), Refused> {
        let target = Target::of(addr);
        if self.allow.iter().any(|rule| rule.matches(&target)) {
            return Ok(());
        }
        match self.deny.iter().find(|rule| rule.matches(&target)) {
            Some(rule) => Err(Refused { addr, rule: rule.to_string(), source: rule.source.clone() }),
            None => Ok(()),
        }
    }

    /// `addrs` without the refused ones; when every one is refused (or there is none), the
    /// first refusal.
    pub fn allowed(&self, addrs: impl IntoIterator<Item = SocketAddr>) -> Result<Vec<SocketAddr>, Refused> {
        let mut first_refusal = None;
        let mut kept = Vec::new();
        for addr in addrs {
            match self.check(addr) {
                Ok(()) => kept.push(addr),
                Err(refused) => {
                    first_refusal.get_or_insert(refused);
                }
            }
        }
        match (kept.is_empty(), first_refusal) {
            (true, Some(refused)) => Err(refused),
            _ => Ok(kept),
        }
    }

    /// `Ok` when the policy allows every one of `addrs`, else the first refusal: for a client
    /// library that resolves the name again and connects to whichever address it likes.
    pub fn check_every(&self, addrs: impl IntoIterator<Item = SocketAddr>) -> Result<(), Refused> {
        addrs.into_iter().try_for_each(|addr| self.check(addr))
    }

    /// The policy as the JSON text of [`crate::abi::control_op::TARGET_POLICY`]:
    /// `{"deny":[{"rule":"169.254.0.0/16","source":".."}],"allow":[..]}`.
    pub fn to_json(&self) -> String {
        let wire = Wire {
            deny: self.deny.iter().map(WireRule::of).collect(),
            allow: self.allow.iter().map(WireRule::of).collect(),
        };
        serde_json::to_string(&wire).expect("a policy always serialises")
    }

    /// Reads the JSON text of [`TargetPolicy::to_json`]; the error names the bad rule.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let wire: Wire = serde_json::from_str(text).map_err(|e| format!("invalid target policy: {e}"))?;
        let read = |rules: Vec<WireRule>| -> Result<Vec<Rule>, String> {
            rules.into_iter().map(|r| Ok(Rule::parse(&r.rule)?.with_source(r.source))).collect()
        };
        Ok(TargetPolicy { deny: read(wire.deny)?, allow: read(wire.allow)? })
    }
}

/// One network (or "this machine") with an optional port range, and where it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    network: Network,
    /// Inclusive; `None` = every port.
    ports: Option<(u16, u16)>,
    source: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Network {
    V4 {
        addr: u32,
        prefix: u8,
    },
    V6 {
        addr: u128,
        prefix: u8,
    },
    /// Every address of this machine.
    Local,
}

impl Rule {
    /// Reads one rule (see the module documentation for the forms); the error says what is
    /// wrong with the text.
    pub fn parse(text: &str) -> Result<Rule, String> {
        let text = text.trim();
        let bad = |why: &str| format!("invalid target rule '{text}': {why}");
        let (network, ports) = if let Some(rest) = text.strip_prefix('[') {
            let (net, after) = rest.split_once(']').ok_or_else(|| bad("missing ']'"))?;
            let ports = match after {
                "" => None,
                _ => Some(after.strip_prefix(':').ok_or_else(|| bad("expected ':' and ports after ']'"))?),
            };
            (net, ports)
        } else if text.matches(':').count() > 1 {
            // An IPv6 network without ports; ports need the bracketed form.
            (text, None)
        } else {
            match text.split_once(':') {
                Some((net, ports)) => (net, Some(ports)),
                None => (text, None),
            }
        };
        let network = parse_network(network).map_err(|why| bad(&why))?;
        let ports = ports.map(parse_ports).transpose().map_err(|why| bad(&why))?;
        if network == Network::Local && ports.is_none() {
            return Err(bad("'local' needs ports, e.g. local:8083"));
        }
        Ok(Rule { network, ports, source: String::new() })
    }

    /// Every address of this machine on `port` (a listener bound to `0.0.0.0` or `::`).
    pub fn local_port(port: u16) -> Rule {
        Rule { network: Network::Local, ports: Some((port, port)), source: String::new() }
    }

    /// What connects to a listener bound to `addr`: that address and port, or every address of
    /// this machine on that port when the listener is bound to the unspecified address.
    pub fn listener(addr: SocketAddr) -> Rule {
        match addr.ip() {
            ip if ip.is_unspecified() => Rule::local_port(addr.port()),
            _ => Rule::exact(addr),
        }
    }

    /// Exactly `addr`: that address (a /32 or /128) on that port.
    pub fn exact(addr: SocketAddr) -> Rule {
        Rule { network: network_of(addr.ip(), None), ports: Some((addr.port(), addr.port())), source: String::new() }
    }

    /// The same rule, saying where it comes from (`TB_IE_TARGET_DENY`, `own listener: REST API`).
    pub fn with_source(mut self, source: impl Into<String>) -> Rule {
        self.source = source.into();
        self
    }

    /// Where the rule comes from; empty when not said.
    pub fn source(&self) -> &str {
        &self.source
    }

    fn matches(&self, target: &Target) -> bool {
        if let Some((low, high)) = self.ports {
            if !(low..=high).contains(&target.port) {
                return false;
            }
        }
        match (self.network, target.ip) {
            (Network::V4 { addr, prefix }, IpAddr::V4(ip)) => u32::from(ip) & mask32(prefix) == addr,
            (Network::V6 { addr, prefix }, IpAddr::V6(ip)) => u128::from(ip) & mask128(prefix) == addr,
            (Network::Local, ip) => is_local(ip),
            _ => false,
        }
    }
}

impl fmt::Display for Rule {
    /// The rule as text in its canonical form (`10.0.0.0/8:80-443`, `[fe80::/10]:443`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ports = match self.ports {
            None => String::new(),
            Some((low, high)) if low == high => format!(":{low}"),
            Some((low, high)) => format!(":{low}-{high}"),
        };
        match self.network {
            Network::V4 { addr, prefix } => write!(f, "{}/{prefix}{ports}", Ipv4Addr::from(addr)),
            Network::V6 { addr, prefix } if ports.is_empty() => write!(f, "{}/{prefix}", Ipv6Addr::from(addr)),
            Network::V6 { addr, prefix } => write!(f, "[{}/{prefix}]{ports}", Ipv6Addr::from(addr)),
            Network::Local => write!(f, "local{ports}"),
        }
    }
}

/// Reads a comma-separated list of rules (the form of `TB_IE_TARGET_DENY`); blanks are
/// skipped, so an empty text is an empty list.
pub fn parse_list(text: &str) -> Result<Vec<Rule>, String> {
    text.split(',').filter(|part| !part.trim().is_empty()).map(Rule::parse).collect()
}

/// A connection the policy refused: the address and the rule that denied it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The address that was refused.
    pub addr: SocketAddr,
    /// The deny rule that matched, as text.
    pub rule: String,
    /// Where that rule comes from (may be empty).
    pub source: String,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "target {} is refused by the target policy: denied by {}", self.addr, self.rule)?;
        if !self.source.is_empty() {
            write!(f, " ({})", self.source)?;
        }
        f.write_str("; an operator can allow it with TB_IE_TARGET_ALLOW")
    }
}

impl std::error::Error for Refused {}

impl Refused {
    /// The refusal as an I/O error of kind `PermissionDenied`, for code paths (resolvers,
    /// connectors) that can only return one; [`Refused::in_io`] finds it again.
    pub fn into_io(self) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::PermissionDenied, self)
    }

    /// The refusal inside an I/O error made by [`Refused::into_io`], if it is one.
    pub fn in_io(error: &std::io::Error) -> Option<&Refused> {
        error.get_ref().and_then(|inner| inner.downcast_ref::<Refused>())
    }
}

/// The policy in force in this driver library: the host's, once it installed one, else
/// [`TargetPolicy::default`].
pub fn current() -> Arc<TargetPolicy> {
    if let Some(policy) = CURRENT.read().unwrap_or_else(PoisonError::into_inner).as_ref() {
        return Arc::clone(policy);
    }
    static DEFAULT: OnceLock<Arc<TargetPolicy>> = OnceLock::new();
    Arc::clone(DEFAULT.get_or_init(|| Arc::new(TargetPolicy::default())))
}

/// Makes `policy` the one in force in this driver library, for every instance and every
/// connection made from now on. The export layer calls it when the host sends the policy.
pub fn install(policy: TargetPolicy) {
    *CURRENT.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(policy));
}

/// [`TargetPolicy::check`] with the policy in force.
pub fn check(addr: SocketAddr) -> Result<(), Refused> {
    current().check(addr)
}

/// [`TargetPolicy::allowed`] with the policy in force.
pub fn allowed(addrs: impl IntoIterator<Item = SocketAddr>) -> Result<Vec<SocketAddr>, Refused> {
    current().allowed(addrs)
}

/// [`TargetPolicy::check_every`] with the policy in force.
pub fn check_every(addrs: impl IntoIterator<Item = SocketAddr>) -> Result<(), Refused> {
    current().check_every(addrs)
}

/// Resolves `host:port` (blocking, with the system resolver; IPv6 literals with or without
/// brackets) and returns its addresses when the policy in force allows **every** one of them,
/// for drivers whose client library connects by name (it may pick any of the addresses). A
/// refusal comes back as [`Refused::into_io`]; a name that does not resolve as the resolver's
/// error.
pub fn resolve(host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
    let addrs: Vec<SocketAddr> =
        (host.trim_start_matches('[').trim_end_matches(']'), port).to_socket_addrs()?.collect();
    check_every(addrs.iter().copied()).map_err(Refused::into_io)?;
    Ok(addrs)
}

static CURRENT: RwLock<Option<Arc<TargetPolicy>>> = RwLock::new(None);

/// An address as rules see it: IPv4-mapped IPv6 as the IPv4 address it carries.
struct Target {
    ip: IpAddr,
    port: u16,
}

impl Target {
    fn of(addr: SocketAddr) -> Target {
        Target { ip: canonical(addr.ip()), port: addr.port() }
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// Whether `ip` reaches this machine: loopback, unspecified (which connects to this machine),
/// or an address some interface has (binding a UDP socket to it succeeds; nothing is sent).
fn is_local(ip: IpAddr) -> bool {
    ip.is_loopback() || ip.is_unspecified() || UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

fn parse_network(text: &str) -> Result<Network, String> {
    if text.eq_ignore_ascii_case("local") {
        return Ok(Network::Local);
    }
    let (addr, prefix) = match text.split_once('/') {
        Some((addr, prefix)) => (addr, Some(prefix)),
        None => (text, None),
    };
    let ip: IpAddr = addr.parse().map_err(|_| format!("'{addr}' is not an IP address"))?;
    let prefix = prefix.map(|p| p.parse::<u8>().map_err(|_| format!("'{p}' is not a prefix length"))).transpose()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    if prefix.is_some_and(|p| p > max) {
        return Err(format!("prefix length must be at most {max}"));
    }
    Ok(network_of(ip, prefix))
}

/// The network of `ip` with `prefix` (the whole address when `None`), host bits cleared; an
/// IPv4-mapped IPv6 network of at least /96 becomes the IPv4 network it covers.
fn network_of(ip: IpAddr, prefix: Option<u8>) -> Network {
    match ip {
        IpAddr::V4(v4) => {
            let prefix = prefix.unwrap_or(32);
            Network::V4 { addr: u32::from(v4) & mask32(prefix), prefix }
        }
        IpAddr::V6(v6) => {
            let prefix = prefix.unwrap_or(128);
            match v6.to_ipv4_mapped() {
                Some(v4) if prefix >= 96 => network_of(IpAddr::V4(v4), Some(prefix - 96)),
                _ => Network::V6 { addr: u128::from(v6) & mask128(prefix), prefix },
            }
        }
    }
}

fn parse_ports(text: &str) -> Result<(u16, u16), String> {
    let port = |p: &str| p.trim().parse::<u16>().map_err(|_| format!("'{p}' is not a port (0-65535)"));
    let (low, high) = match text.split_once('-') {
        Some((low, high)) => (port(low)?, port(high)?),
        None => (port(text)?, port(text)?),
    };
    if low > high {
        return Err(format!("port range {low}-{high} is empty"));
    }
    Ok((low, high))
}

fn mask32(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask128(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    #[serde(default)]
    deny: Vec<WireRule>,
    #[serde(default)]
    allow: Vec<WireRule>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireRule {
    rule: String,
    #[serde(default)]
    source: String,
}

impl WireRule {
    fn of(rule: &Rule) -> WireRule {
        WireRule { rule: rule.to_string(), source: rule.source.clone() }
    }
}

#[cfg(test)]
mod tests;
