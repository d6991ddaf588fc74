//! Schema migrations; the same ones run on SQLite and PostgreSQL.

use sea_orm_migration::prelude::*;

/// All migrations, in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(Initial), Box::new(super::credentials::migration::MqttClientCredentials)]
    }
}

struct Initial;

impl MigrationName for Initial {
    fn name(&self) -> &str {
        "m20250101_000001_initial"
    }
}

#[derive(DeriveIden)]
enum Integration {
    Table,
    Id,
    CreatedTime,
    DisconnectedTime,
    AdditionalInfo,
    Configuration,
    Enabled,
    Name,
    Type,
    Status,
}

// Column names mirror the entity, so one of them repeats the table's name.
#[allow(clippy::enum_variant_names)]
#[derive(DeriveIden)]
enum Event {
    Table,
    Id,
    Ts,
    EntityId,
    EventType,
    ServiceId,
    EType,
    ESuccess,
    EMethod,
    EError,
    EMessagesProcessed,
    EErrorsOccurred,
}

#[derive(DeriveIden)]
enum AdminUser {
    Table,
    Email,
    PasswordHash,
    CreatedTime,
}

#[async_trait::async_trait]
impl MigrationTrait for Initial {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Integration::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(Integration::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Integration::CreatedTime).big_integer().not_null())
                    .col(ColumnDef::new(Integration::DisconnectedTime).big_integer())
                    .col(ColumnDef::new(Integration::AdditionalInfo).text())
                    .col(ColumnDef::new(Integration::Configuration).text().not_null())
                    .col(ColumnDef::new(Integration::Enabled).boolean().not_null())
                    .col(ColumnDef::new(Integration::Name).string_len(255).not_null())
                    .col(ColumnDef::new(Integration::Type).string_len(255).not_null())
                    .col(ColumnDef::new(Integration::Status).text())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Event::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(Event::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Event::Ts).big_integer().not_null())
                    .col(ColumnDef::new(Event::EntityId).uuid().not_null())
                    .col(ColumnDef::new(Event::EventType).string_len(16).not_null())
                    .col(ColumnDef::new(Event::ServiceId).string_len(255).not_null())
                    .col(ColumnDef::new(Event::EType).string_len(32))
                    .col(ColumnDef::new(Event::ESuccess).boolean())
                    .col(ColumnDef::new(Event::EMethod).string_len(255))
                    .col(ColumnDef::new(Event::EError).text())
                    .col(ColumnDef::new(Event::EMessagesProcessed).big_integer())
                    .col(ColumnDef::new(Event::EErrorsOccurred).big_integer())
                    .to_owned(),
            )
            .await?;
        // TBMQ indexes each event table on (entity_id, ts DESC); the type column joins the key
        // because the three tables are one here.
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("idx_event_entity_type_ts")
                    .table(Event::Table)
                    .col(Event::EntityId)
                    .col(Event::EventType)
                    .col((Event::Ts, IndexOrder::Desc))
                    .to_owned(),
            )
            .await?;
        // For the TTL task, which deletes by age across all integrations.
        manager
            .create_index(
                Index::create().if_not_exists().name("idx_event_ts").table(Event::Table).col(Event::Ts).to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AdminUser::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(AdminUser::Email).string_len(255).not_null().primary_key())
                    .col(ColumnDef::new(AdminUser::PasswordHash).text().not_null())
                    .col(ColumnDef::new(AdminUser::CreatedTime).big_integer().not_null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(AdminUser::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Event::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Integration::Table).to_owned()).await
    }
}
