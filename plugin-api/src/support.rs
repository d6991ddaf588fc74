//! Helpers shared by drivers that are not part of the binary interface: the TBMQ JSON envelope
//! and the TBMQ credentials object. They follow the crate's semver, not the frozen ABI.

pub mod credentials;
pub mod envelope;
