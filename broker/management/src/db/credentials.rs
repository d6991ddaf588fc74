//! Table `mqtt_client_credentials` (TBMQ's columns, plus `client_id` so that the broker finds the
//! records binding a client id with one indexed query).

use sea_orm::{
    sea_query::{Expr, Func},
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use uuid::Uuid;

use super::{escape_like, sea_order, Db, DbError, DbResult};
use crate::credentials::{ClientType, CredentialsType, MqttClientCredentials};
use crate::model::{Page, PageLink, SortOrder};

/// The entity.
pub mod entity {
    use sea_orm::entity::prelude::*;

    /// A row.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "mqtt_client_credentials")]
    pub struct Model {
        /// Id.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        /// Created at (ms).
        pub created_time: i64,
        /// Unique name.
        #[sea_orm(column_type = "String(StringLen::N(255))")]
        pub name: String,
        /// `DEVICE` or `APPLICATION`.
        #[sea_orm(column_type = "String(StringLen::N(255))")]
        pub client_type: String,
        /// Unique key (`username|u`, `client_id|c`, `mixed|u|c`, `ssl|cn`).
        #[sea_orm(column_type = "Text")]
        pub credentials_id: String,
        /// `MQTT_BASIC` or `X_509`.
        #[sea_orm(column_type = "String(StringLen::N(255))")]
        pub credentials_type: String,
        /// JSON text, the password hashed.
        #[sea_orm(column_type = "Text")]
        pub credentials_value: String,
        /// The client id basic credentials bind, if any.
        #[sea_orm(column_type = "Text", nullable)]
        pub client_id: Option<String>,
        /// JSON text.
        #[sea_orm(column_type = "Text", nullable)]
        pub additional_info: Option<String>,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

use entity::{ActiveModel, Column, Entity, Model};

impl DbError {
    /// Whether the failure is a unique constraint (a concurrent save of the same credentials).
    pub fn is_unique_violation(&self) -> bool {
        let text = self.0.to_ascii_lowercase();
        text.contains("unique") || text.contains("duplicate key")
    }
}

impl Db {
    /// One record.
    pub async fn mqtt_credentials(&self, id: Uuid) -> DbResult<Option<MqttClientCredentials>> {
        Ok(Entity::find_by_id(id).one(&self.conn).await?.and_then(to_record))
    }

    /// The record with this `credentials_id`.
    pub async fn mqtt_credentials_by_credentials_id(&self, id: &str) -> DbResult<Option<MqttClientCredentials>> {
        Ok(Entity::find().filter(Column::CredentialsId.eq(id)).one(&self.conn).await?.and_then(to_record))
    }

    /// The record with this name.
    pub async fn mqtt_credentials_by_name(&self, name: &str) -> DbResult<Option<MqttClientCredentials>> {
        Ok(Entity::find().filter(Column::Name.eq(name)).one(&self.conn).await?.and_then(to_record))
    }

    /// Basic records whose `credentials_id` is one of `ids` or that bind `client_id`.
    pub async fn mqtt_basic_for_connect(
        &self,
        ids: &[String],
        client_id: &str,
    ) -> DbResult<Vec<MqttClientCredentials>> {
        let rows = Entity::find()
            .filter(Column::CredentialsType.eq(type_name(CredentialsType::MqttBasic)))
            .filter(Condition::any().add(Column::CredentialsId.is_in(ids.to_vec())).add(Column::ClientId.eq(client_id)))
            .all(&self.conn)
            .await?;
        Ok(rows.into_iter().filter_map(to_record).collect())
    }

    /// Every record of one type, oldest first.
    pub async fn mqtt_credentials_of_type(&self, kind: CredentialsType) -> DbResult<Vec<MqttClientCredentials>> {
        let rows = Entity::find()
            .filter(Column::CredentialsType.eq(type_name(kind)))
            .order_by_asc(Column::CreatedTime)
            .all(&self.conn)
            .await?;
        Ok(rows.into_iter().filter_map(to_record).collect())
    }

    /// A page; `link.sort` names one of `credentials::SORT_PROPERTIES`.
    pub async fn mqtt_credentials_page(&self, link: &PageLink) -> DbResult<Page<MqttClientCredentials>> {
        let mut query = Entity::find();
        if let Some(text) = link.text_search.as_deref().filter(|t| !t.is_empty()) {
            let pattern = format!("%{}%", escape_like(&text.to_lowercase()));
            query = query.filter(
                Expr::expr(Func::lower(Expr::col(Column::Name)))
                    .like(sea_orm::sea_query::LikeExpr::new(pattern).escape('\\')),
            );
        }
        let total = query.clone().count(&self.conn).await?;
        let (property, order) = link.sort.clone().unwrap_or(("createdTime".into(), SortOrder::Desc));
        let column = match property.as_str() {
            "name" => Column::Name,
            "clientType" => Column::ClientType,
            "credentialsType" => Column::CredentialsType,
            _ => Column::CreatedTime,
        };
        query = query.order_by(column, sea_order(order)).order_by_asc(Column::Id);
        let rows = query.offset(link.page * link.page_size).limit(link.page_size).all(&self.conn).await?;
        Ok(Page::new(rows.into_iter().filter_map(to_record).collect(), total, link))
    }

    /// Inserts (`insert`) or updates a record.
    pub async fn save_mqtt_credentials(&self, r: &MqttClientCredentials, insert: bool) -> DbResult<()> {
        let model = ActiveModel {
            id: Set(r.id),
            created_time: Set(r.created_time),
            name: Set(r.name.clone()),
            client_type: Set(client_type_name(r.client_type).to_owned()),
            credentials_id: Set(r.credentials_id.clone()),
            credentials_type: Set(type_name(r.credentials_type).to_owned()),
            credentials_value: Set(r.credentials_value.clone()),
            client_id: Set(r.client_id.clone()),
            additional_info: Set(r.additional_info.as_ref().map(|v| v.to_string())),
        };
        if insert {
            model.insert(&self.conn).await?;
        } else {
            model.update(&self.conn).await?;
        }
        Ok(())
    }

    /// Deletes a record; whether it existed.
    pub async fn delete_mqtt_credentials(&self, id: Uuid) -> DbResult<bool> {
        Ok(Entity::delete_by_id(id).exec(&self.conn).await?.rows_affected > 0)
    }
}

fn type_name(kind: CredentialsType) -> &'static str {
    match kind {
        CredentialsType::MqttBasic => "MQTT_BASIC",
        CredentialsType::X509 => "X_509",
    }
}

fn client_type_name(kind: ClientType) -> &'static str {
    match kind {
        ClientType::Device => "DEVICE",
        ClientType::Application => "APPLICATION",
    }
}

/// A row in domain form; a row with an unknown type (written by a newer version) is skipped.
fn to_record(m: Model) -> Option<MqttClientCredentials> {
    let credentials_type = match m.credentials_type.as_str() {
        "MQTT_BASIC" => CredentialsType::MqttBasic,
        "X_509" => CredentialsType::X509,
        _ => return None,
    };
    let client_type = if m.client_type == "APPLICATION" { ClientType::Application } else { ClientType::Device };
    Some(MqttClientCredentials {
        id: m.id,
        created_time: m.created_time,
        name: m.name,
        client_type,
        credentials_type,
        credentials_id: m.credentials_id,
        credentials_value: m.credentials_value,
        client_id: m.client_id,
        additional_info: m.additional_info.and_then(|t| serde_json::from_str(&t).ok()),
    })
}

/// The migration that creates the table.
pub mod migration {
    use sea_orm_migration::prelude::*;

    /// Creates `mqtt_client_credentials`.
    pub struct MqttClientCredentials;

    impl MigrationName for MqttClientCredentials {
        fn name(&self) -> &str {
            "m20261203_000001_mqtt_client_credentials"
        }
    }

    #[derive(DeriveIden)]
    enum Row {
        #[sea_orm(iden = "mqtt_client_credentials")]
        Table,
        Id,
        CreatedTime,
        Name,
        ClientType,
        CredentialsId,
        CredentialsType,
        CredentialsValue,
        ClientId,
        AdditionalInfo,
    }

    #[async_trait::async_trait]
    impl MigrationTrait for MqttClientCredentials {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            manager
                .create_table(
                    sea_query::Table::create()
                        .table(Row::Table)
                        .if_not_exists()
                        .col(ColumnDef::new(Row::Id).uuid().not_null().primary_key())
                        .col(ColumnDef::new(Row::CreatedTime).big_integer().not_null())
                        .col(ColumnDef::new(Row::Name).string_len(255).not_null().unique_key())
                        .col(ColumnDef::new(Row::ClientType).string_len(255).not_null())
                        .col(ColumnDef::new(Row::CredentialsId).text().not_null().unique_key())
                        .col(ColumnDef::new(Row::CredentialsType).string_len(255).not_null())
                        .col(ColumnDef::new(Row::CredentialsValue).text().not_null())
                        .col(ColumnDef::new(Row::ClientId).text())
                        .col(ColumnDef::new(Row::AdditionalInfo).text())
                        .to_owned(),
                )
                .await?;
            manager
                .create_index(
                    Index::create()
                        .if_not_exists()
                        .name("idx_mqtt_client_credentials_client_id")
                        .table(Row::Table)
                        .col(Row::ClientId)
                        .to_owned(),
                )
                .await
        }

        async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            manager.drop_table(sea_query::Table::drop().table(Row::Table).to_owned()).await
        }
    }
}
