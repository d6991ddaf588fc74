//! `/api/integration*` and `/api/executors`.

use poem_openapi::{
    param::{Path, Query},
    payload::Json,
    OpenApi, Tags,
};

use super::{
    dead_letter_range,
    dto::{DeadLetterPage, ExecutorDto, IntegrationDto, IntegrationPage, IntegrationRequest, ReplayDto, StatusDto},
    error::{ApiResult, ChangeErrors, DeadLetterErrors, GetErrors, PageErrors, SaveErrors, TokenErrors},
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
        Ok(Json(self.0.service.get(id).await?.into()))
    }

    /// A page of integrations; `textSearch` is a case-insensitive "contains" on the name.
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
    ) -> ApiResult<Json<IntegrationPage>, PageErrors> {
        let link =
            page_link(page_size.0, page.0, text_search.0, sort_property.0, sort_order.0, INTEGRATION_SORT_PROPERTIES)?;
        Ok(Json(self.0.service.list(&link).await?.into()))
    }

    /// Create (no id) or update (id) an integration. An executor of its type validates the
    /// configuration first: 400 at once when no running executor serves the type, 400 with
    /// `fieldErrors` when the executor rejects it, 504 when no executor answers in time.
    #[oai(path = "/integration", method = "post", operation_id = "saveIntegration")]
    async fn save(&self, body: Json<IntegrationRequest>) -> ApiResult<Json<IntegrationDto>, SaveErrors> {
        let input = body.0.into_input()?;
        Ok(Json(self.0.service.save(input).await?.into()))
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
        Ok(Json(self.0.service.restart(id).await?.into()))
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
        Ok(Json(self.0.service.set_enabled(id, true).await?.into()))
    }

    /// Disable an integration; returns it. Matching messages keep queuing for it.
    #[oai(path = "/integration/:integrationId/disable", method = "post", operation_id = "disableIntegration")]
    async fn disable(
        &self,
        #[oai(name = "integrationId")] integration_id: Path<UuidParam>,
    ) -> ApiResult<Json<IntegrationDto>, ChangeErrors> {
        let id = integration_id.0 .0;
        Ok(Json(self.0.service.set_enabled(id, false).await?.into()))
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

    /// Integration executors this node heard from, with their types and refused plugins.
    #[oai(path = "/executors", method = "get", operation_id = "getExecutors")]
    async fn executors(&self) -> ApiResult<Json<Vec<ExecutorDto>>, TokenErrors> {
        Ok(Json(self.0.service.executors().into_iter().map(Into::into).collect()))
    }
}
