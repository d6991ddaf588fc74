//! `/api/mqtt/client/credentials*`: TBMQ's MQTT client credentials endpoints and their JSON.
//!
//! The business rules (credentialsId, validation, password hashing) are in `crate::credentials`.

use poem_openapi::{
    param::{Path, Query},
    payload::Json,
    Enum, Object, OpenApi, Tags,
};
use serde_json::Value;

use super::{
    error::{ApiResult, EventBodyErrors, GetErrors, PageErrors},
    json::Text,
    page_link, State, UuidParam,
};
use crate::credentials::{self, ClientType, CredentialsInput, CredentialsType, MqttClientCredentials};
use crate::model::Page;

#[derive(Tags)]
enum Tag {
    /// MQTT client credentials.
    MqttClientCredentials,
}

/// `DEVICE` or `APPLICATION`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ClientTypeDto {
    /// A device.
    Device,
    /// An application.
    Application,
}

/// `MQTT_BASIC` or `X_509`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum CredentialsTypeDto {
    /// Client id and/or user name and password.
    #[oai(rename = "MQTT_BASIC")]
    MqttBasic,
    /// Client certificate CN.
    #[oai(rename = "X_509")]
    X509,
}

/// Create (no `id`) or update credentials. `credentialsValue` is JSON text: for `MQTT_BASIC`
/// `{"clientId","userName","password","authRules":{"pubAuthRulePatterns":[..],"subAuthRulePatterns":[..]}}`,
/// for `X_509` `{"certCnPattern","certCnIsRegex","authRulesMapping":{"<CN regex>":{..rules..}}}`.
/// `createdTime` and `credentialsId` are accepted (the console sends them back) and ignored.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", deny_unknown_fields)]
pub struct MqttClientCredentialsRequest {
    /// Id of the credentials to update.
    pub id: Option<UuidParam>,
    /// Unique name.
    pub name: Option<Text>,
    /// Defaults to `DEVICE`.
    pub client_type: Option<ClientTypeDto>,
    /// Required.
    pub credentials_type: Option<CredentialsTypeDto>,
    /// JSON text of the value.
    pub credentials_value: Option<Text>,
    /// Free JSON.
    pub additional_info: Option<Value>,
    /// Ignored.
    pub created_time: Option<i64>,
    /// Ignored: computed from the value.
    pub credentials_id: Option<Text>,
}

/// Credentials as answered: the password is never included (`additionalInfo.mqttBasicPasswordIsSet`).
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct MqttClientCredentialsDto {
    /// Id.
    pub id: String,
    /// Created at (ms).
    pub created_time: i64,
    /// Name.
    pub name: String,
    /// Client type.
    pub client_type: ClientTypeDto,
    /// Credentials type.
    pub credentials_type: CredentialsTypeDto,
    /// Unique key computed from the value.
    pub credentials_id: String,
    /// JSON text of the value, `"password": null`.
    pub credentials_value: String,
    /// Free JSON, with `mqttBasicPasswordIsSet` for basic credentials.
    pub additional_info: Option<Value>,
}

/// A list item (TBMQ's `ShortMqttClientCredentials`).
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct ShortMqttClientCredentials {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Client type.
    pub client_type: ClientTypeDto,
    /// Credentials type.
    pub credentials_type: CredentialsTypeDto,
    /// Created at (ms).
    pub created_time: i64,
    /// Free JSON, with `mqttBasicPasswordIsSet` for basic credentials.
    pub additional_info: Option<Value>,
}

/// A page of credentials.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct ShortMqttClientCredentialsPage {
    /// Items.
    pub data: Vec<ShortMqttClientCredentials>,
    /// Number of pages.
    pub total_pages: u64,
    /// Number of items.
    pub total_elements: u64,
    /// Whether there is a next page.
    pub has_next: bool,
}

/// TBMQ's `ChangePasswordRequest`; an empty or missing password means "none".
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChangePasswordRequest {
    /// The current password.
    pub current_password: Option<Text>,
    /// The new password.
    pub new_password: Option<Text>,
}

/// Credentials endpoints.
pub struct CredentialsApi(pub State);

#[OpenApi(tag = "Tag::MqttClientCredentials")]
impl CredentialsApi {
    /// Create or update MQTT client credentials (400 on bad JSON in `credentialsValue`, neither
    /// client id nor user name, an invalid regex, or credentials or a name that already exist).
    #[oai(path = "/mqtt/client/credentials", method = "post", operation_id = "saveMqttClientCredentials")]
    async fn save(
        &self,
        body: Json<MqttClientCredentialsRequest>,
    ) -> ApiResult<Json<MqttClientCredentialsDto>, EventBodyErrors> {
        let b = body.0;
        let input = CredentialsInput {
            id: b.id.map(|id| id.0),
            name: b.name.map(Text::into_inner),
            client_type: b.client_type.map(client_type),
            credentials_type: b.credentials_type.map(credentials_type),
            credentials_value: b.credentials_value.map(Text::into_inner),
            additional_info: b.additional_info,
        };
        Ok(Json(dto(&self.0.credentials.save(input).await?)))
    }

    /// A page of credentials; `textSearch` is a case-insensitive "contains" on the name.
    #[oai(path = "/mqtt/client/credentials", method = "get", operation_id = "getCredentials")]
    async fn list(
        &self,
        #[oai(name = "pageSize", validator(minimum(value = "1"), maximum(value = "100000")))] page_size: Query<i64>,
        #[oai(validator(minimum(value = "0"), maximum(value = "1000000000")))] page: Query<i64>,
        #[oai(name = "textSearch")] text_search: Query<Option<String>>,
        #[oai(name = "sortProperty", validator(pattern = r"^(createdTime|name|clientType|credentialsType)?$"))]
        sort_property: Query<Option<String>>,
        #[oai(name = "sortOrder", validator(pattern = r"^([Aa][Ss][Cc]|[Dd][Ee][Ss][Cc])?$"))] sort_order: Query<
            Option<String>,
        >,
    ) -> ApiResult<Json<ShortMqttClientCredentialsPage>, PageErrors> {
        let link =
            page_link(page_size.0, page.0, text_search.0, sort_property.0, sort_order.0, credentials::SORT_PROPERTIES)?;
        Ok(Json(to_page(self.0.credentials.list(&link).await?)))
    }

    /// One credentials record (404 when missing).
    #[oai(path = "/mqtt/client/credentials/:credentialsId", method = "get", operation_id = "getCredentialsById")]
    async fn get(
        &self,
        #[oai(name = "credentialsId")] id: Path<UuidParam>,
    ) -> ApiResult<Json<MqttClientCredentialsDto>, GetErrors> {
        Ok(Json(dto(&self.0.credentials.get(id.0 .0).await?)))
    }

    /// Delete credentials (404 when missing): the next CONNECT with them is refused.
    #[oai(path = "/mqtt/client/credentials/:credentialsId", method = "delete", operation_id = "deleteCredentials")]
    async fn delete(&self, #[oai(name = "credentialsId")] id: Path<UuidParam>) -> ApiResult<(), GetErrors> {
        Ok(self.0.credentials.delete(id.0 .0).await?)
    }

    /// Change the password of `MQTT_BASIC` credentials: `currentPassword` must match.
    #[oai(
        path = "/mqtt/client/credentials/:credentialsId",
        method = "post",
        operation_id = "changeMqttBasicCredentialsPassword"
    )]
    async fn change_password(
        &self,
        #[oai(name = "credentialsId")] id: Path<UuidParam>,
        body: Json<ChangePasswordRequest>,
    ) -> ApiResult<Json<MqttClientCredentialsDto>, EventBodyErrors> {
        let b = body.0;
        let current = b.current_password.map(Text::into_inner);
        let new = b.new_password.map(Text::into_inner);
        Ok(Json(dto(&self.0.credentials.change_password(id.0 .0, current, new).await?)))
    }
}

fn client_type(t: ClientTypeDto) -> ClientType {
    match t {
        ClientTypeDto::Device => ClientType::Device,
        ClientTypeDto::Application => ClientType::Application,
    }
}

fn client_type_dto(t: ClientType) -> ClientTypeDto {
    match t {
        ClientType::Device => ClientTypeDto::Device,
        ClientType::Application => ClientTypeDto::Application,
    }
}

fn credentials_type(t: CredentialsTypeDto) -> CredentialsType {
    match t {
        CredentialsTypeDto::MqttBasic => CredentialsType::MqttBasic,
        CredentialsTypeDto::X509 => CredentialsType::X509,
    }
}

fn credentials_type_dto(t: CredentialsType) -> CredentialsTypeDto {
    match t {
        CredentialsType::MqttBasic => CredentialsTypeDto::MqttBasic,
        CredentialsType::X509 => CredentialsTypeDto::X509,
    }
}

fn dto(r: &MqttClientCredentials) -> MqttClientCredentialsDto {
    let (credentials_value, additional_info) = credentials::sanitized(r);
    MqttClientCredentialsDto {
        id: r.id.to_string(),
        created_time: r.created_time,
        name: r.name.clone(),
        client_type: client_type_dto(r.client_type),
        credentials_type: credentials_type_dto(r.credentials_type),
        credentials_id: r.credentials_id.clone(),
        credentials_value,
        additional_info,
    }
}

fn to_page(p: Page<MqttClientCredentials>) -> ShortMqttClientCredentialsPage {
    ShortMqttClientCredentialsPage {
        data: p
            .data
            .iter()
            .map(|r| ShortMqttClientCredentials {
                id: r.id.to_string(),
                name: r.name.clone(),
                client_type: client_type_dto(r.client_type),
                credentials_type: credentials_type_dto(r.credentials_type),
                created_time: r.created_time,
                additional_info: credentials::sanitized(r).1,
            })
            .collect(),
        total_pages: p.total_pages,
        total_elements: p.total_elements,
        has_next: p.has_next,
    }
}
