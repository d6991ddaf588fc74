//! `/api/integration*` and `/api/executors`.

use poem_openapi::{
    param::{Path, Query},
    payload::Json,
    OpenApi, Tags,
};

use super::{
    dto::{ExecutorDto, IntegrationDto, IntegrationPage, IntegrationRequest, StatusDto},
    error::{ApiResult, ChangeErrors, GetErrors, PageErrors, SaveErrors, TokenErrors},
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

    /// Integration executors this node heard from, with their types and refused plugins.
    #[oai(path = "/executors", method = "get", operation_id = "getExecutors")]
    async fn executors(&self) -> ApiResult<Json<Vec<ExecutorDto>>, TokenErrors> {
        Ok(Json(self.0.service.executors().into_iter().map(Into::into).collect()))
    }
}
