//! sea-orm entities of the three tables. Column names follow TBMQ's schema.

/// Table `integration` (TBMQ §1.2).
pub mod integration {
    use sea_orm::entity::prelude::*;

    /// A row.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "integration")]
    pub struct Model {
        /// Id.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        /// Created at (ms).
        pub created_time: i64,
        /// Disabled since (ms), 0 while enabled.
        pub disconnected_time: Option<i64>,
        /// JSON text.
        #[sea_orm(column_type = "Text", nullable)]
        pub additional_info: Option<String>,
        /// JSON text.
        #[sea_orm(column_type = "Text")]
        pub configuration: String,
        /// Enabled flag.
        pub enabled: bool,
        /// Name.
        #[sea_orm(column_type = "String(StringLen::N(255))")]
        pub name: String,
        /// Type.
        #[sea_orm(column_name = "type", column_type = "String(StringLen::N(255))")]
        pub integration_type: String,
        /// JSON text or null.
        #[sea_orm(column_type = "Text", nullable)]
        pub status: Option<String>,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Table `event`: TBMQ's `lc_event`, `error_event` and `stats_event` in one table with a type column.
pub mod event {
    use sea_orm::entity::prelude::*;

    /// A row.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "event")]
    pub struct Model {
        /// Id.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        /// Received at (ms).
        pub ts: i64,
        /// Integration id.
        pub entity_id: Uuid,
        /// `LC_EVENT`, `ERROR` or `STATS`.
        #[sea_orm(column_type = "String(StringLen::N(16))")]
        pub event_type: String,
        /// Producing service.
        #[sea_orm(column_type = "String(StringLen::N(255))")]
        pub service_id: String,
        /// Lifecycle event name.
        #[sea_orm(column_type = "String(StringLen::N(32))", nullable)]
        pub e_type: Option<String>,
        /// Lifecycle success flag.
        pub e_success: Option<bool>,
        /// Error method.
        #[sea_orm(column_type = "String(StringLen::N(255))", nullable)]
        pub e_method: Option<String>,
        /// Error text (lifecycle and error events).
        #[sea_orm(column_type = "Text", nullable)]
        pub e_error: Option<String>,
        /// Statistics.
        pub e_messages_processed: Option<i64>,
        /// Statistics.
        pub e_errors_occurred: Option<i64>,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Table `admin_user`.
pub mod admin_user {
    use sea_orm::entity::prelude::*;

    /// A row.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "admin_user")]
    pub struct Model {
        /// Login name.
        #[sea_orm(primary_key, auto_increment = false, column_type = "String(StringLen::N(255))")]
        pub email: String,
        /// Argon2 PHC string.
        #[sea_orm(column_type = "Text")]
        pub password_hash: String,
        /// Created at (ms).
        pub created_time: i64,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
