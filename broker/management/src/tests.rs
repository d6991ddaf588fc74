//! Tests: the REST API end to end against a real executor (scripted driver) on the embedded
//! queue, on SQLite always and on PostgreSQL when `TRIB_TEST_POSTGRES_URL` is set; plus unit
//! tests of the small pure pieces.

mod api_shape;
mod auth;
mod cluster;
mod credentials;
mod dead_letters;
mod events;
mod integrations;
mod readiness;
mod secrets;
mod status;
mod strict_bodies;
mod subscriptions;
mod support;
mod tasks;
mod units;
mod validation;
mod xss;
