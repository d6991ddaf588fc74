//! What the executor's parts share: the [`Context`] every integration worker gets, and
//! [`IntegrationDef`], an integration as the executor sees it. Kept apart from `manager` (which
//! starts workers) and `processor` (which runs them), so neither depends on the other for them.

use std::sync::Arc;

use uuid::Uuid;

use crate::{
    config::ExecutorConfig,
    events::Events,
    queue::Queue,
    registry::Registry,
    stats::Stats,
    wire::{uuid_from_bits, IntegrationMsgProto},
};

/// What every worker shares.
pub struct Context {
    /// Settings.
    pub config: ExecutorConfig,
    /// This executor's service id.
    pub service_id: String,
    /// Served drivers.
    pub registry: Registry,
    /// The queue.
    pub queue: Arc<dyn Queue>,
    /// Uplink events.
    pub events: Arc<Events>,
    /// Statistics.
    pub stats: Arc<Stats>,
}

/// An integration as the executor sees it (TBMQ's `IntegrationLifecycleMsg`).
#[derive(Debug, Clone, PartialEq)]
pub struct IntegrationDef {
    /// Id.
    pub id: Uuid,
    /// Type, upper case.
    pub integration_type: String,
    /// Name.
    pub name: String,
    /// Enabled flag.
    pub enabled: bool,
    /// The whole `configuration` object.
    pub configuration: serde_json::Value,
}

impl IntegrationDef {
    /// From a lifecycle message; `None` when it carries no configuration (DELETED).
    pub fn from_msg(msg: &IntegrationMsgProto) -> Option<Self> {
        let configuration = serde_json::from_str(msg.configuration.as_deref()?).unwrap_or(serde_json::Value::Null);
        Some(IntegrationDef {
            id: uuid_from_bits(msg.integration_id_msb, msg.integration_id_lsb),
            integration_type: msg.r#type.to_ascii_uppercase(),
            name: msg.name.clone().unwrap_or_default(),
            enabled: msg.enabled.unwrap_or(false),
            configuration,
        })
    }

    /// `configuration.clientConfiguration` as JSON text.
    pub fn client_configuration(&self) -> Option<String> {
        self.configuration.get("clientConfiguration").filter(|c| !c.is_null()).map(|c| c.to_string())
    }

    /// `{"integrationName": name} ∪ configuration.metadata` (metadata wins), values as text.
    pub fn metadata_json(&self) -> String {
        let mut map = serde_json::Map::new();
        map.insert("integrationName".into(), self.name.clone().into());
        if let Some(serde_json::Value::Object(m)) = self.configuration.get("metadata") {
            for (k, v) in m {
                let text = match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                map.insert(k.clone(), text.into());
            }
        }
        serde_json::Value::Object(map).to_string()
    }
}
