//! `GET /api/subscription/integration` (TBMQ's `SubscriptionController`).

use poem_openapi::{param::Query, payload::Json, OpenApi, Tags};

use super::{
    error::{ApiResult, QueryErrors},
    State, UuidParam,
};

#[derive(Tags)]
enum Tag {
    /// Subscriptions.
    Subscription,
}

/// Subscription endpoints.
pub struct SubscriptionApi(pub State);

#[OpenApi(tag = "Tag::Subscription")]
impl SubscriptionApi {
    /// The topic filters this node's subscription trie holds for an integration (sorted, no
    /// duplicates); an empty array when it has none or does not exist. The UI compares them
    /// with the configured filters to warn that a subscription is inactive.
    #[oai(path = "/subscription/integration", method = "get", operation_id = "getIntegrationSubscriptions")]
    async fn integration(
        &self,
        #[oai(name = "integrationId")] integration_id: Query<UuidParam>,
    ) -> ApiResult<Json<Vec<String>>, QueryErrors> {
        Ok(Json(self.0.service.subscriptions(integration_id.0 .0)))
    }
}
