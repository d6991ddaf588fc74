//! Helpers shared by drivers that are not part of the binary interface: the TBMQ JSON envelope,
//! the TBMQ credentials object, a field-by-field reader of configuration objects, the checks
//! of a configuration schema and the host's target policy (which addresses a driver may connect
//! to). They follow the crate's semver, not the frozen ABI.

pub mod credentials;
pub mod envelope;
pub mod fields;
pub mod schema;
pub mod target_policy;
