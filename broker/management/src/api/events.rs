//! `/api/events/{entityId}...` (TBMQ's `EventController`).

use poem_openapi::{
    param::{Path, Query},
    payload::Json,
    OpenApi, Tags,
};

use super::{
    dto::{EventFilterRequest, EventPage},
    error::{ApiResult, EventBodyErrors, PageErrors},
    page_link, EventKindParam, State, UuidParam,
};
use crate::{
    db::EVENT_SORT_PROPERTIES,
    model::{EventFilter, TimeWindow},
    service::ServiceError,
};

#[derive(Tags)]
enum Tag {
    /// Integration events.
    Event,
}

/// Event endpoints.
pub struct EventApi(pub State);

#[OpenApi(tag = "Tag::Event")]
impl EventApi {
    /// A page of events of one type (`LC_EVENT`, `ERROR`, `STATS`; case-insensitive).
    /// `textSearch` is accepted and ignored, like TBMQ.
    #[allow(clippy::too_many_arguments)]
    #[oai(path = "/events/:entityId/:eventType", method = "get", operation_id = "getEvents")]
    async fn by_type(
        &self,
        #[oai(name = "entityId")] entity_id: Path<UuidParam>,
        #[oai(name = "eventType")] event_type: Path<EventKindParam>,
        #[oai(name = "pageSize", validator(minimum(value = "1"), maximum(value = "100000")))] page_size: Query<i64>,
        #[oai(validator(minimum(value = "0"), maximum(value = "1000000000")))] page: Query<i64>,
        #[oai(name = "textSearch")] _text_search: Query<Option<String>>,
        #[oai(name = "sortProperty", validator(pattern = r"^(id|createdTime|ts)?$"))] sort_property: Query<
            Option<String>,
        >,
        #[oai(name = "sortOrder", validator(pattern = r"^([Aa][Ss][Cc]|[Dd][Ee][Ss][Cc])?$"))] sort_order: Query<
            Option<String>,
        >,
        #[oai(name = "startTime")] start_time: Query<Option<i64>>,
        #[oai(name = "endTime")] end_time: Query<Option<i64>>,
    ) -> ApiResult<Json<EventPage>, PageErrors> {
        let id = entity_id.0 .0;
        let kind = event_type.0 .0;
        let link = page_link(page_size.0, page.0, None, sort_property.0, sort_order.0, EVENT_SORT_PROPERTIES)?;
        let window = TimeWindow { start: start_time.0, end: end_time.0 };
        let page =
            self.0.service.db.events(id, &EventFilter::all(kind), window, &link).await.map_err(ServiceError::from)?;
        Ok(Json(page.into()))
    }

    /// A page of events matching a filter.
    #[allow(clippy::too_many_arguments)]
    #[oai(path = "/events/:entityId", method = "post", operation_id = "getEventsByFilter")]
    async fn by_filter(
        &self,
        #[oai(name = "entityId")] entity_id: Path<UuidParam>,
        #[oai(name = "pageSize", validator(minimum(value = "1"), maximum(value = "100000")))] page_size: Query<i64>,
        #[oai(validator(minimum(value = "0"), maximum(value = "1000000000")))] page: Query<i64>,
        #[oai(name = "textSearch")] _text_search: Query<Option<String>>,
        #[oai(name = "sortProperty", validator(pattern = r"^(id|createdTime|ts)?$"))] sort_property: Query<
            Option<String>,
        >,
        #[oai(name = "sortOrder", validator(pattern = r"^([Aa][Ss][Cc]|[Dd][Ee][Ss][Cc])?$"))] sort_order: Query<
            Option<String>,
        >,
        #[oai(name = "startTime")] start_time: Query<Option<i64>>,
        #[oai(name = "endTime")] end_time: Query<Option<i64>>,
        filter: Json<EventFilterRequest>,
    ) -> ApiResult<Json<EventPage>, EventBodyErrors> {
        let id = entity_id.0 .0;
        let link = page_link(page_size.0, page.0, None, sort_property.0, sort_order.0, EVENT_SORT_PROPERTIES)?;
        let window = TimeWindow { start: start_time.0, end: end_time.0 };
        let filter = EventFilter::from(filter.0);
        let page = self.0.service.db.events(id, &filter, window, &link).await.map_err(ServiceError::from)?;
        Ok(Json(page.into()))
    }

    /// Delete the events matching a filter and time window.
    #[oai(path = "/events/:entityId/clear", method = "post", operation_id = "clearEvents")]
    async fn clear(
        &self,
        #[oai(name = "entityId")] entity_id: Path<UuidParam>,
        #[oai(name = "startTime")] start_time: Query<Option<i64>>,
        #[oai(name = "endTime")] end_time: Query<Option<i64>>,
        filter: Json<EventFilterRequest>,
    ) -> ApiResult<(), EventBodyErrors> {
        let id = entity_id.0 .0;
        let window = TimeWindow { start: start_time.0, end: end_time.0 };
        self.0.service.db.clear_events(id, &EventFilter::from(filter.0), window).await.map_err(ServiceError::from)?;
        Ok(())
    }
}
