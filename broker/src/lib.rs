//! Tributary's MQTT broker: MQTT 3.1, 3.1.1 and 5.0 over TCP, TLS and WebSocket, embeddable in a tokio
//! process.
//!
//! Start it with [`Broker::start`] and keep the [`BrokerHandle`]; the handle's [`Router`] takes
//! integration subscriptions, whose matching messages go to an [`IntegrationSink`].
//! `forward::QueueForwarder` is the sink that puts those messages on the queue to the executors;
//! `retained_topic::RetainedTopic` keeps retained messages on the compacted `tbmq.msg.retained`
//! topic, so that they survive a restart and reach every node;
//! the REST API and database live in the `trib-management` crate (`broker/management/`). All three
//! need the default `service` feature; without it (the fuzz build) the crate is the MQTT broker alone.
//!
//! Module map: `config` (serde config and its checked form), `protocol` (wire format on top of
//! rumqttc's codecs), `server` (listeners, start/stop), `link` (one connection), `session`
//! (session state and registry), `router` (subscription trie, retained messages, integration
//! hook), `auth` (authentication), `acl` (topic authorization), `limits`, `message`, `tls`
//! (including client certificates), `ws` (MQTT over WebSocket).

pub mod acl;
pub mod auth;
pub mod cluster;
pub mod config;
#[cfg(feature = "service")]
pub mod forward;
mod limits;
mod link;
mod message;
mod metrics;
pub mod protocol;
#[cfg(feature = "service")]
pub mod retained_topic;
pub mod router;
mod server;
#[cfg(feature = "service")]
pub mod service;
mod session;
mod sessions;
mod tls;
mod ws;

pub use acl::{Acl, AclError};
pub use auth::{AuthDecision, AuthRequest, Authenticator, BasicAuthenticator, Credential, Locking, TopicRules};
pub use config::{BrokerConfig, ClientAuth, ConfigError};
pub use message::PublishedMessage;
pub use protocol::QoS;
pub use router::{
    ClientSubscription, ClusterSink, Detached, Handover, Handovers, IntegrationRoute, IntegrationSink, NodeTarget,
    NotStored, RetainedLog, Router, RouterError, SessionLog,
};
pub use server::{Broker, BrokerHandle, BrokerHooks, StartError};
pub use tls::TlsError;

#[cfg(test)]
mod tests;
