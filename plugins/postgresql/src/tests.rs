//! Unit tests of the PostgreSQL driver. The pure parts (configuration, plan, encoding, SQL
//! text, classification) are tested as data tables; `live` runs the driver against the server
//! named by `TRIB_TEST_POSTGRES_URL` (and reports itself skipped without it), each test in a
//! table of its own. Shared helpers live here; the tests are grouped by topic in `tests/`.

mod conformance;
mod encode;
mod live;
mod mapping;
mod retry;
mod schema;
mod sql;
mod target_policy;
mod unreachable;
mod validation;

use serde_json::{json, Value};
use trib_plugin_api::{
    abi_stable::std_types::RStr,
    driver::{Driver, Host, StartConfig},
};

use crate::driver::PostgresqlDriver;

/// The envelope metadata every test instance gets.
const METADATA: &str = r#"{"integrationName":"My PostgreSQL","site":"plant-7","line":3}"#;

/// Prints one line about a test (a skipped tier); shown with `--nocapture`.
#[allow(clippy::print_stderr)]
fn report(text: &str) {
    eprintln!("[trib-driver-postgresql] {text}");
}

/// A minimal valid configuration plus the fields of `extra` (an object), which win.
fn config(extra: Value) -> Value {
    let mut config = json!({
        "host": "127.0.0.1",
        "database": "test",
        "username": "postgres",
        "table": "readings",
        "columns": {"topic": {"source": "topic"}}
    });
    if let (Some(target), Value::Object(fields)) = (config.as_object_mut(), extra) {
        target.extend(fields);
    }
    config
}

fn start_config(client_configuration: &str) -> StartConfig<'_> {
    StartConfig {
        integration_id: RStr::from_str("3f1c2d4e-0000-4000-8000-000000000007"),
        integration_name: RStr::from_str("My PostgreSQL"),
        service_id: RStr::from_str("tbmq-ie1"),
        client_configuration: RStr::from_str(client_configuration),
        metadata: RStr::from_str(METADATA),
    }
}

fn driver() -> PostgresqlDriver {
    PostgresqlDriver::create(Host::detached()).expect("create")
}
