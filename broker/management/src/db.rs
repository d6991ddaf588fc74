//! The database: integrations, events and administrators, on SQLite or PostgreSQL with the
//! same code and migrations. The only module that imports sea-orm; it speaks the domain
//! types of [`crate::model`].

mod credentials;
mod entity;
mod migration;

use sea_orm::{
    sea_query::{Expr, Func},
    ActiveModelTrait, ColumnTrait, Condition, ConnectOptions, ConnectionTrait, Database, DatabaseConnection,
    EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use sea_orm_migration::MigratorTrait;
use uuid::Uuid;

use self::entity::{admin_user, event, integration};
use crate::model::{Event, EventBody, EventFilter, EventKind, Integration, Page, PageLink, SortOrder, TimeWindow};

/// A database failure.
#[derive(Debug, thiserror::Error)]
#[error("database error: {0}")]
pub struct DbError(String);

impl From<sea_orm::DbErr> for DbError {
    fn from(e: sea_orm::DbErr) -> Self {
        DbError(e.to_string())
    }
}

/// Result alias.
pub type DbResult<T> = Result<T, DbError>;

/// Sort properties accepted for integrations (API name).
pub const INTEGRATION_SORT_PROPERTIES: &[&str] = &["id", "createdTime", "name", "type", "enabled"];
/// Sort properties accepted for events (API name).
pub const EVENT_SORT_PROPERTIES: &[&str] = &["id", "createdTime", "ts"];

/// A connection pool with the schema migrated.
#[derive(Clone, Debug)]
pub struct Db {
    conn: DatabaseConnection,
}

impl Db {
    /// Connects and runs pending migrations.
    pub async fn connect(url: &str, max_connections: u32) -> DbResult<Self> {
        let mut options = ConnectOptions::new(url.to_string());
        options.max_connections(max_connections.max(1)).sqlx_logging(false);
        let conn = Database::connect(options).await?;
        migration::Migrator::up(&conn, None).await?;
        Ok(Db { conn })
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> DbResult<()> {
        Ok(self.conn.ping().await?)
    }

    /// Closes the pool.
    pub async fn close(self) {
        let _ = self.conn.close().await;
    }

    /// One integration.
    pub async fn integration(&self, id: Uuid) -> DbResult<Option<Integration>> {
        Ok(integration::Entity::find_by_id(id).one(&self.conn).await?.map(to_integration))
    }

    /// The integration with this exact name, if any.
    pub async fn integration_by_name(&self, name: &str) -> DbResult<Option<Integration>> {
        let found = integration::Entity::find().filter(integration::Column::Name.eq(name)).one(&self.conn).await?;
        Ok(found.map(to_integration))
    }

    /// Every integration (for startup and the cleanup task).
    pub async fn all_integrations(&self) -> DbResult<Vec<Integration>> {
        let rows = integration::Entity::find().order_by_asc(integration::Column::Id).all(&self.conn).await?;
        Ok(rows.into_iter().map(to_integration).collect())
    }

    /// A page of integrations; `link.sort` must name one of [`INTEGRATION_SORT_PROPERTIES`].
    pub async fn integrations(&self, link: &PageLink, integration_type: Option<&str>) -> DbResult<Page<Integration>> {
        let mut query = integration::Entity::find();
        if let Some(ty) = integration_type.filter(|t| !t.is_empty()) {
            query = query.filter(integration::Column::IntegrationType.eq(ty.to_ascii_uppercase()));
        }
        if let Some(text) = link.text_search.as_deref().filter(|t| !t.is_empty()) {
            let pattern = format!("%{}%", escape_like(&text.to_lowercase()));
            query = query.filter(
                Expr::expr(Func::lower(Expr::col(integration::Column::Name)))
                    .like(sea_orm::sea_query::LikeExpr::new(pattern).escape('\\')),
            );
        }
        let total = query.clone().count(&self.conn).await?;
        let (property, order) = link.sort.clone().unwrap_or(("id".into(), SortOrder::Asc));
        let column = match property.as_str() {
            "createdTime" => integration::Column::CreatedTime,
            "name" => integration::Column::Name,
            "type" => integration::Column::IntegrationType,
            "enabled" => integration::Column::Enabled,
            _ => integration::Column::Id,
        };
        query = query.order_by(column, sea_order(order)).order_by_asc(integration::Column::Id);
        let rows = query.offset(link.page * link.page_size).limit(link.page_size).all(&self.conn).await?;
        Ok(Page::new(rows.into_iter().map(to_integration).collect(), total, link))
    }

    /// Inserts or replaces an integration.
    pub async fn save_integration(&self, i: &Integration) -> DbResult<()> {
        let exists = integration::Entity::find_by_id(i.id).one(&self.conn).await?.is_some();
        let model = integration::ActiveModel {
            id: Set(i.id),
            created_time: Set(i.created_time),
            disconnected_time: Set(Some(i.disconnected_time)),
            additional_info: Set(i.additional_info.as_ref().map(|v| v.to_string())),
            configuration: Set(i.configuration.to_string()),
            enabled: Set(i.enabled),
            name: Set(i.name.clone()),
            integration_type: Set(i.integration_type.clone()),
            status: Set(i.status.as_ref().filter(|s| !s.is_null()).map(|s| s.to_string())),
        };
        if exists {
            model.update(&self.conn).await?;
        } else {
            model.insert(&self.conn).await?;
        }
        Ok(())
    }

    /// Sets only the status column (not a read-modify-write of the whole row, unlike TBMQ).
    /// Returns whether the integration exists.
    pub async fn set_status(&self, id: Uuid, status: Option<&serde_json::Value>) -> DbResult<bool> {
        let result = integration::Entity::update_many()
            .col_expr(integration::Column::Status, Expr::value(status.map(|s| s.to_string())))
            .filter(integration::Column::Id.eq(id))
            .exec(&self.conn)
            .await?;
        Ok(result.rows_affected > 0)
    }

    /// Deletes an integration; returns whether it existed.
    pub async fn delete_integration(&self, id: Uuid) -> DbResult<bool> {
        Ok(integration::Entity::delete_by_id(id).exec(&self.conn).await?.rows_affected > 0)
    }

    /// Stores an event.
    pub async fn insert_event(&self, e: &Event) -> DbResult<()> {
        let mut model = event::ActiveModel {
            id: Set(e.id),
            ts: Set(e.ts),
            entity_id: Set(e.entity_id),
            event_type: Set(e.body.kind().name().to_string()),
            service_id: Set(e.service_id.clone()),
            e_type: Set(None),
            e_success: Set(None),
            e_method: Set(None),
            e_error: Set(None),
            e_messages_processed: Set(None),
            e_errors_occurred: Set(None),
        };
        match &e.body {
            EventBody::Lifecycle { event, success, error } => {
                model.e_type = Set(Some(event.clone()));
                model.e_success = Set(Some(*success));
                model.e_error = Set(error.clone());
            }
            EventBody::Error { method, error } => {
                model.e_method = Set(Some(method.clone()));
                model.e_error = Set(error.clone());
            }
            EventBody::Stats { messages_processed, errors_occurred } => {
                model.e_messages_processed = Set(Some(*messages_processed));
                model.e_errors_occurred = Set(Some(*errors_occurred));
            }
        }
        event::Entity::insert(model).exec(&self.conn).await?;
        Ok(())
    }

    /// A page of an integration's events; `link.sort` must name one of [`EVENT_SORT_PROPERTIES`].
    pub async fn events(
        &self,
        entity_id: Uuid,
        filter: &EventFilter,
        window: TimeWindow,
        link: &PageLink,
    ) -> DbResult<Page<Event>> {
        let query = event::Entity::find().filter(event_condition(entity_id, filter, window));
        let total = query.clone().count(&self.conn).await?;
        let query = match &link.sort {
            Some((p, order)) if p == "createdTime" || p == "ts" => {
                query.order_by(event::Column::Ts, sea_order(*order)).order_by_asc(event::Column::Id)
            }
            Some((_, order)) => query.order_by(event::Column::Id, sea_order(*order)),
            None => query.order_by_asc(event::Column::Id),
        };
        let rows = query.offset(link.page * link.page_size).limit(link.page_size).all(&self.conn).await?;
        Ok(Page::new(rows.into_iter().map(to_event).collect(), total, link))
    }

    /// The newest event of a kind.
    pub async fn last_event(&self, entity_id: Uuid, kind: EventKind) -> DbResult<Option<Event>> {
        let row = event::Entity::find()
            .filter(event_condition(entity_id, &EventFilter::all(kind), TimeWindow::default()))
            .order_by_desc(event::Column::Ts)
            .one(&self.conn)
            .await?;
        Ok(row.map(to_event))
    }

    /// Deletes the matching events; returns how many.
    pub async fn clear_events(&self, entity_id: Uuid, filter: &EventFilter, window: TimeWindow) -> DbResult<u64> {
        let result =
            event::Entity::delete_many().filter(event_condition(entity_id, filter, window)).exec(&self.conn).await?;
        Ok(result.rows_affected)
    }

    /// Deletes every event received before `ts` (the TTL task); returns how many.
    pub async fn delete_events_before(&self, ts: i64) -> DbResult<u64> {
        Ok(event::Entity::delete_many().filter(event::Column::Ts.lt(ts)).exec(&self.conn).await?.rows_affected)
    }

    /// The password hash of an administrator.
    pub async fn admin_password_hash(&self, email: &str) -> DbResult<Option<String>> {
        Ok(admin_user::Entity::find_by_id(email.to_string()).one(&self.conn).await?.map(|u| u.password_hash))
    }

    /// Number of administrators.
    pub async fn admin_count(&self) -> DbResult<u64> {
        Ok(admin_user::Entity::find().count(&self.conn).await?)
    }

    /// Deletes every administrator but `email`; returns the names deleted.
    pub async fn delete_admins_except(&self, email: &str) -> DbResult<Vec<String>> {
        let others: Vec<String> = admin_user::Entity::find()
            .filter(admin_user::Column::Email.ne(email))
            .all(&self.conn)
            .await?
            .into_iter()
            .map(|u| u.email)
            .collect();
        if !others.is_empty() {
            admin_user::Entity::delete_many().filter(admin_user::Column::Email.ne(email)).exec(&self.conn).await?;
        }
        Ok(others)
    }

    /// Creates an administrator or replaces their password.
    pub async fn upsert_admin(&self, email: &str, password_hash: &str, now: i64) -> DbResult<()> {
        let existing = admin_user::Entity::find_by_id(email.to_string()).one(&self.conn).await?;
        let model = admin_user::ActiveModel {
            email: Set(email.to_string()),
            password_hash: Set(password_hash.to_string()),
            created_time: Set(existing.as_ref().map_or(now, |u| u.created_time)),
        };
        if existing.is_some() {
            model.update(&self.conn).await?;
        } else {
            model.insert(&self.conn).await?;
        }
        Ok(())
    }

    /// Which backend this is (`sqlite` or `postgres`), for logs.
    pub fn backend(&self) -> &'static str {
        match self.conn.get_database_backend() {
            sea_orm::DatabaseBackend::Postgres => "postgres",
            sea_orm::DatabaseBackend::Sqlite => "sqlite",
            sea_orm::DatabaseBackend::MySql => "mysql",
        }
    }
}

fn sea_order(order: SortOrder) -> sea_orm::Order {
    match order {
        SortOrder::Asc => sea_orm::Order::Asc,
        SortOrder::Desc => sea_orm::Order::Desc,
    }
}

fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

/// `LOWER(col) LIKE %text%`: TBMQ's `ILIKE`, portable to SQLite.
fn contains(column: event::Column, text: Option<&String>) -> Option<sea_orm::sea_query::SimpleExpr> {
    let text = text.filter(|t| !t.is_empty())?;
    let pattern = format!("%{}%", escape_like(&text.to_lowercase()));
    Some(Expr::expr(Func::lower(Expr::col(column))).like(sea_orm::sea_query::LikeExpr::new(pattern).escape('\\')))
}

fn event_condition(entity_id: Uuid, filter: &EventFilter, window: TimeWindow) -> Condition {
    let mut c = Condition::all()
        .add(event::Column::EntityId.eq(entity_id))
        .add(event::Column::EventType.eq(filter.kind().name()));
    if let Some(start) = window.start {
        c = c.add(event::Column::Ts.gte(start));
    }
    if let Some(end) = window.end {
        c = c.add(event::Column::Ts.lte(end));
    }
    let positive = |v: &Option<i64>| v.filter(|v| *v > 0);
    match filter {
        EventFilter::Lifecycle { server, event, status, error_str } => {
            c = c.add_option(contains(event::Column::ServiceId, server.as_ref()));
            c = c.add_option(contains(event::Column::EType, event.as_ref()));
            c = c.add_option(contains(event::Column::EError, error_str.as_ref()));
            if let Some(s) = status.as_deref().filter(|s| !s.is_empty()) {
                c = c.add(event::Column::ESuccess.eq(s.eq_ignore_ascii_case("success")));
            }
        }
        EventFilter::Error { server, method, error_str } => {
            c = c.add_option(contains(event::Column::ServiceId, server.as_ref()));
            c = c.add_option(contains(event::Column::EMethod, method.as_ref()));
            c = c.add_option(contains(event::Column::EError, error_str.as_ref()));
        }
        EventFilter::Stats {
            server,
            min_messages_processed,
            max_messages_processed,
            min_errors_occurred,
            max_errors_occurred,
        } => {
            c = c.add_option(contains(event::Column::ServiceId, server.as_ref()));
            if let Some(v) = positive(min_messages_processed) {
                c = c.add(event::Column::EMessagesProcessed.gte(v));
            }
            if let Some(v) = positive(max_messages_processed) {
                c = c.add(event::Column::EMessagesProcessed.lt(v));
            }
            if let Some(v) = positive(min_errors_occurred) {
                c = c.add(event::Column::EErrorsOccurred.gte(v));
            }
            if let Some(v) = positive(max_errors_occurred) {
                c = c.add(event::Column::EErrorsOccurred.lt(v));
            }
        }
    }
    c
}

fn parse_json(text: Option<String>) -> Option<serde_json::Value> {
    text.and_then(|t| serde_json::from_str(&t).ok())
}

fn to_integration(m: integration::Model) -> Integration {
    Integration {
        id: m.id,
        created_time: m.created_time,
        disconnected_time: m.disconnected_time.unwrap_or(0),
        name: m.name,
        integration_type: m.integration_type,
        enabled: m.enabled,
        configuration: parse_json(Some(m.configuration)).unwrap_or(serde_json::Value::Null),
        additional_info: parse_json(m.additional_info),
        status: parse_json(m.status),
    }
}

fn to_event(m: event::Model) -> Event {
    let body = match EventKind::parse(&m.event_type) {
        Some(EventKind::Error) => EventBody::Error { method: m.e_method.unwrap_or_default(), error: m.e_error },
        Some(EventKind::Stats) => EventBody::Stats {
            messages_processed: m.e_messages_processed.unwrap_or(0),
            errors_occurred: m.e_errors_occurred.unwrap_or(0),
        },
        _ => EventBody::Lifecycle {
            event: m.e_type.unwrap_or_default(),
            success: m.e_success.unwrap_or(false),
            error: m.e_error,
        },
    };
    Event { id: m.id, ts: m.ts, entity_id: m.entity_id, service_id: m.service_id, body }
}

/// Creates or drops a whole PostgreSQL database through an administrative connection (tests).
#[cfg(test)]
pub async fn postgres_admin(admin_url: &str, statement: &str) -> DbResult<()> {
    let conn = Database::connect(admin_url).await?;
    conn.execute_unprepared(statement).await?;
    conn.close().await?;
    Ok(())
}
