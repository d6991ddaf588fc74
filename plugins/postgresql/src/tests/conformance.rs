//! The plugin-boundary contract, checked through the ABI by `trib-plugin-testkit`: a closed port
//! for the connection check, a listener that accepts and never answers for delivery (the
//! PostgreSQL startup message then gets no reply).

use trib_plugin_testkit::conformance::{assert_conforms, Scenario};

use crate::driver::PostgresqlDriver;

fn target(port: &str, extra: &str) -> String {
    format!(
        r#"{{"host": "127.0.0.1", "port": {port}, "database": "test", "username": "postgres", "sslMode": "disable",
            "table": "readings", "columns": {{"topic": {{"source": "topic"}}}}, "connectTimeoutMs": 2000{extra}}}"#
    )
}

#[test]
fn postgresql_driver_conforms() {
    assert_conforms::<PostgresqlDriver>(
        &Scenario::new(target("{{blackhole_port}}", ""))
            .unreachable(target("{{closed_port}}", ""))
            .black_hole(target("{{blackhole_port}}", ""))
            .invalid("{}")
            .invalid(target("5432", r#", "writeMode": "upsert""#))
            .invalid(target("0", "")),
    );
}
