//! `/api/integration*` and `/api/executors`.

use poem_openapi::{
    param::{Path, Query},
    payload::Json,
    OpenApi, Tags,
};

use super::{
    dead_letter_range,
    dto::{
        DeadLetterPage, ExecutorDto, HistoryPointDto, IntegrationDto, IntegrationPage, IntegrationRequest,
        IntegrationTypeDto, ReplayDto, StateDto, StatusDto,
    },
    error::{ApiError, ApiResult, ChangeErrors, DeadLetterErrors, GetErrors, PageErrors, SaveErrors, TokenErrors},
    page_link, State, UuidParam,
};
use crate::db::INTEGRATION_SORT_PROPERTIES;

#[derive(Tags)]
enum Tag {
    /// Integrations.
    Integration,
}

/// Integration endpoints.
pub struct IntegrationApi(pub State);

#[OpenApi(tag = "Tag::Integration")]
impl IntegrationApi {
    /// Get an integration by id (404 if it does not exist).
    #[oai(path = "/integration/:integrationId", method = "get", operation_id = "getIntegrationById")]
    async fn get(
        &self,
        #[oai(name = "integrationId")] integration_id: Path<UuidParam>,
    ) -> ApiResult<Json<IntegrationDto>, GetErrors> {
        let id = integration_id.0 .0;
        Ok(Json(self.0.service.shown(self.0.service.get(id).await?).into()))
    }

    /// A page of integrations; `textSearch` is a case-insensitive "contains" on the name;
    /// `type` (ours) keeps the integrations of one type (case-insensitive).
    #[oai(path = "/integrations", method = "get", operation_id = "getIntegrations")]
    async fn list(
        &self,
        #[oai(name = "pageSize", validator(minimum(value = "1"), maximum(value = "100000")))] page_size: Query<i64>,
        #[oai(validator(minimum(value = "0"), maximum(value = "1000000000")))] page: Query<i64>,
        #[oai(name = "textSearch")] text_search: Query<Option<String>>,
        #[oai(name = "sortProperty", validator(pattern = r"^(id|createdTime|name|type|enabled)?$"))]
        sort_property: Query<Option<String>>,
        #[oai(name = "sortOrder", validator(pattern = r"^([Aa][Ss][Cc]|[Dd][Ee][Ss][Cc])?$"))] sort_order: Query<
            Option<String>,
        >,
        #[oai(name = "type", validator(max_length = 255))] integration_type: Query<Option<String>>,
    ) -> ApiResult<Json<IntegrationPage>, PageErrors> {
        let link =
            page_link(page_size.0, page.0, text_search.0, sort_property.0, sort_order.0, INTEGRATION_SORT_PROPERTIES)?;
        let mut page = self.0.service.list(&link, integration_type.0.as_deref()).await?;
        page.data = page.data.into_iter().map(|i| self.0.service.shown(i)).collect();
        Ok(Json(page.into()))
    }

    /// Create (no id) or update (id) an integration. An executor of its type validates the
    /// configuration first: 400 at once when no running executor serves the type, 400 with
    /// `fieldErrors` when the executor rejects it, 504 when no executor answers in time.
    #[oai(path = "/integration", method = "post", operation_id = "saveIntegration")]
    async fn save(&self, body: Json<IntegrationRequest>) -> ApiResult<Json<IntegrationDto>, SaveErrors> {
        let input = body.0.into_input()?;
        Ok(Json(self.0.service.shown(self.0.service.save(input).await?).into()))
    }

    /// Ask an executor to connect to the target with this configuration; nothing is saved.
    #[oai(path = "/integration/check", method = "post", operation_id = "checkIntegrationConnection")]
    async fn check(&self, body: Json<IntegrationRequest>) -> ApiResult<(), SaveErrors> {
        let input = body.0.into_input()?;
        Ok(self.0.service.check(input).await?)
    }

    /// Restart (re-initialise) an enabled integration; returns it.
    #[oai(path = "/integration/:integrationId", method = "post", operation_id = "restartIntegration")]
    async fn restart(
        &self,
        #[oai(name = "integrationId")] integration_id: Path<UuidParam>,
    ) -> ApiResult<Json<IntegrationDto>, ChangeErrors> {
        let id = integration_id.0 .0;
        Ok(Json(self.0.service.shown(self.0.service.restart(id).await?).into()))
    }

    /// Delete an integration.
    #[oai(path = "/integration/:integrationId", method = "delete", operation_id = "deleteIntegration")]
    async fn delete(
        &self,
        #[oai(name = "integrationId")] integration_id: Path<UuidParam>,
    ) -> ApiResult<(), ChangeErrors> {
        let id = integration_id.0 .0;
        Ok(self.0.service.delete(id).await?)
    }

    /// Enable an integration; returns it.
    #[oai(path = "/integration/:integrationId/enable", method = "post", operation_id = "enableIntegration")]
    async fn enable(
        &self,
        #[oai(name = "integrationId")] integration_id: Path<UuidParam>,
    ) -> ApiResult<Json<IntegrationDto>, ChangeErrors> {
        let id = integration_id.0 .0;
        Ok(Json(self.0.service.shown(self.0.service.set_enabled(id, true).await?).into()))
    }

    /// Disable an integration; returns it. Matching messages keep queuing for it.
    #[oai(path = "/integration/:integrationId/disable", method = "post", operation_id = "disableIntegration")]
    async fn disable(
        &self,
        #[oai(name = "integrationId")] integration_id: Path<UuidParam>,
    ) -> ApiResult<Json<IntegrationDto>, ChangeErrors> {
        let id = integration_id.0 .0;
        Ok(Json(self.0.service.shown(self.0.service.set_enabled(id, false).await?).into()))
    }

    /// Status of an integration with its latest lifecycle, error and statistics events.
    #[oai(path = "/integration/:integrationId/status", method = "get", operation_id = "getIntegrationStatus")]
    async fn status(
        &self,
        #[oai(name = "integrationId")] integration_id: Path<UuidParam>,
    ) -> ApiResult<Json<StatusDto>, GetErrors> {
        let id = integration_id.0 .0;
        Ok(Json(self.0.service.status(id).await?.into()))
    }

    /// Delivery figures of the last 15 minutes (ours; the console's chart): one point per
    /// announcement of the executor running the integration (every `TB_IE_SERVICE_INFO_INTERVAL_MS`,
    /// 10 s), oldest first, with messages delivered, given up on and retried per second since the
    /// previous point, and the backlog. Kept in this node's memory: empty after a restart.
    #[oai(
        path = "/integration/:integrationId/deliveryHistory",
        method = "get",
        operation_id = "getIntegrationDeliveryHistory"
    )]
    async fn delivery_history(
        &self,
        #[oai(name = "integrationId")] integration_id: Path<UuidParam>,
    ) -> ApiResult<Json<Vec<HistoryPointDto>>, GetErrors> {
        let points = self.0.service.delivery_history(integration_id.0 .0).await?;
        Ok(Json(points.into_iter().map(Into::into).collect()))
    }

    /// The status now of several integrations (ours; what the console's list shows): state,
    /// reason and delivery figures as in `/api/integration/{integrationId}/status`, without the
    /// events. `integrationIds` is a comma-separated list of at most 1000 ids; ids of
    /// integrations that do not exist are left out of the answer.
    #[oai(path = "/integrations/status", method = "get", operation_id = "getIntegrationsStatus")]
    async fn states(
        &self,
        #[oai(name = "integrationIds", validator(max_length = 40000))] integration_ids: Query<String>,
    ) -> ApiResult<Json<Vec<StateDto>>, PageErrors> {
        let mut ids = Vec::new();
        for text in integration_ids.0.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let id = uuid::Uuid::parse_str(text).map_err(|_| {
                let shown: String = text.chars().take(64).collect();
                ApiError::bad_request(format!("Invalid integration id: '{shown}'"))
            })?;
            ids.push(id);
        }
        if ids.len() > 1000 {
            return Err(ApiError::bad_request("At most 1000 integration ids per request.").into());
        }
        let states = self.0.service.states(&ids).await?;
        Ok(Json(states.into_iter().map(|(id, health)| StateDto::new(id, health)).collect()))
    }

    /// Dead letters (ours): the messages the integration gave up on (TBMQ drops them), oldest
    /// first, at most `limit` (default 100, at most 1000) from `fromOffset` (default: the oldest
    /// kept). `total` counts the records in the dead-letter topic; dead letters below
    /// `replayedUpTo` were replayed. An integration without dead letters has an empty list.
    #[oai(path = "/integration/:integrationId/deadLetters", method = "get", operation_id = "getIntegrationDeadLetters")]
    async fn dead_letters(
        &self,
        #[oai(name = "integrationId")] integration_id: Path<UuidParam>,
        #[oai(validator(minimum(value = "1"), maximum(value = "1000")))] limit: Query<Option<i64>>,
        #[oai(name = "fromOffset", validator(minimum(value = "0")))] from_offset: Query<Option<i64>>,
    ) -> ApiResult<Json<DeadLetterPage>, DeadLetterErrors> {
        let id = integration_id.0 .0;
        let (limit, from) = dead_letter_range(limit.0, from_offset.0)?;
        Ok(Json(self.0.service.dead_letters(id, from, limit).await?.into()))
    }

    /// Replay the dead letters not replayed yet (ours): each one whose message decodes goes
    /// back, byte for byte and in order, to the integration's message topic, up to the last
    /// dead letter present when the call started; returns how many. A second call replays only
    /// newer ones. A disabled integration is allowed: the messages wait in its topic until it is
    /// enabled.
    #[oai(
        path = "/integration/:integrationId/deadLetters/replay",
        method = "post",
        operation_id = "replayIntegrationDeadLetters"
    )]
    async fn replay_dead_letters(
        &self,
        #[oai(name = "integrationId")] integration_id: Path<UuidParam>,
    ) -> ApiResult<Json<ReplayDto>, DeadLetterErrors> {
        let id = integration_id.0 .0;
        Ok(Json(ReplayDto { replayed: self.0.service.replay_dead_letters(id).await? }))
    }

    /// Integration executors this node heard from, with their types, driver libraries and
    /// refused plugins.
    #[oai(path = "/executors", method = "get", operation_id = "getExecutors")]
    async fn executors(&self) -> ApiResult<Json<Vec<ExecutorDto>>, TokenErrors> {
        Ok(Json(self.0.service.executors().into_iter().map(Into::into).collect()))
    }

    /// Integration types that live executors serve now (ours), each with its drivers' versions
    /// and the JSON Schema of its `clientConfiguration` when the driver declares one.
    #[oai(path = "/integration/types", method = "get", operation_id = "getIntegrationTypes")]
    async fn types(&self) -> ApiResult<Json<Vec<IntegrationTypeDto>>, TokenErrors> {
        Ok(Json(self.0.service.integration_types().into_iter().map(Into::into).collect()))
    }
}
