//! The connection check and start against the server: what matches, what does not (a missing
//! column, a wrong type, a missing table, an idempotency key without a unique index), and TLS.

use serde_json::{json, Value};
use trib_plugin_api::driver::{Driver, ErrorKind, Host};

use super::{pg, process, started, GENEROUS};
use crate::{driver::PostgresqlDriver, tests::start_config};

fn check(config: &Value) -> Result<(), (ErrorKind, String)> {
    let mut driver = PostgresqlDriver::create(Host::detached()).expect("create");
    driver.check_connection(&start_config(&config.to_string())).map_err(|e| (e.kind, e.message))
}

#[test]
fn the_connection_check_names_what_does_not_match() {
    let Some(pg) = pg("the_connection_check_names_what_does_not_match") else { return };
    let table = pg.table("check", "time timestamptz, device int, k text");
    let good = json!({"time": {"source": "ts"}, "device": {"source": "jsonPath", "path": "$.d"}});
    assert_eq!(check(&pg.config(&table, good.clone(), json!({}))), Ok(()));
    let bad = json!({"time": {"source": "ts"}, "device": {"source": "clientId"}, "humidity": {"source": "jsonPath", "path": "$.h"}});
    let (kind, message) = check(&pg.config(&table, bad.clone(), json!({}))).unwrap_err();
    assert_eq!(kind, ErrorKind::Config);
    assert!(
        message.starts_with(&format!(
            "column \"device\" has type integer, which cannot hold text; use text, varchar, char or name; \
         column \"humidity\" does not exist in table \"{table}\""
        )),
        "{message}"
    );
    let (kind, message) = check(&pg.config("no_such_table_here", good.clone(), json!({}))).unwrap_err();
    assert_eq!(kind, ErrorKind::Config);
    assert!(
        message.starts_with("table \"no_such_table_here\" does not exist or is not visible to the user"),
        "{message}"
    );
    let keyed = json!({"time": {"source": "ts"}, "k": {"source": "messageKey"}});
    let (_, message) = check(&pg.config(&table, keyed, json!({"idempotencyKeyColumn": "k"}))).unwrap_err();
    assert!(
        message.contains(&format!(
            "idempotency key column \"k\" is in no unique index or constraint of table \"{table}\""
        )),
        "{message}"
    );
    // start refuses the same mismatch, so the integration shows as failed with the reason.
    let mut driver = PostgresqlDriver::create(Host::detached()).expect("create");
    let config = pg.config(&table, bad, json!({})).to_string();
    let error = driver.start(&start_config(&config)).unwrap_err();
    assert!(error.message.contains("column \"humidity\" does not exist"), "{error:?}");
    // A wrong password or database is a connection error.
    let (kind, message) = check(&pg.config(&table, good, json!({"database": "no_such_database_here"}))).unwrap_err();
    assert_eq!(kind, ErrorKind::Connection);
    assert!(message.contains("no_such_database_here"), "{message}");
}

#[test]
fn tls_modes_against_the_server() {
    let Some(pg) = pg("tls_modes_against_the_server") else { return };
    if pg.value("SHOW ssl") != "on" {
        super::report("tls_modes_against_the_server: skipped, the server has ssl = off");
        return;
    }
    let host = pg.config("x", json!({}), json!({}))["host"].as_str().unwrap_or_default().to_string();
    let cert_file = pg.value("SHOW ssl_cert_file");
    let Ok(cert) = std::fs::read_to_string(&cert_file) else {
        super::report(&format!(
            "tls_modes_against_the_server: skipped, cannot read the server certificate {cert_file}"
        ));
        return;
    };
    if host != "127.0.0.1" {
        super::report("tls_modes_against_the_server: skipped, the URL's host is not 127.0.0.1");
        return;
    }
    let table = pg.table("tls", "seq int");
    let columns = json!({"seq": {"source": "jsonPath", "path": "$.seq"}});
    let with = |extra: Value| pg.config(&table, columns.clone(), extra);
    // require: TLS, any certificate; the rows arrive over TLS.
    let mut driver = started(&with(json!({"sslMode": "require"})), Host::detached());
    super::all_delivered(&process(&mut driver, &super::numbered(0..3, json!({})), GENEROUS).0, 3);
    assert_eq!(
        pg.value(&format!(
            "SELECT bool_and(s.ssl)::text FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
             WHERE a.application_name = 'tributary: {table}'"
        )),
        "true"
    );
    // verify-ca: the chain leads to the given CA (the server's own, self-signed, certificate).
    assert_eq!(check(&with(json!({"sslMode": "verify-ca", "caCertificate": cert}))), Ok(()));
    // verify-full: that certificate names the machine, not 127.0.0.1.
    let (kind, message) = check(&with(json!({"sslMode": "verify-full", "caCertificate": cert}))).unwrap_err();
    assert_eq!(kind, ErrorKind::Connection);
    assert!(message.contains("certificate not valid for name \"127.0.0.1\""), "{message}");
    // verify-ca without a CA: the Mozilla roots do not know the server.
    let (_, message) = check(&with(json!({"sslMode": "verify-ca"}))).unwrap_err();
    assert!(message.contains("invalid peer certificate: UnknownIssuer"), "{message}");
}
