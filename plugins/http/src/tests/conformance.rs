//! The plugin-boundary contract, checked through the ABI by `trib-plugin-testkit`: a dead target
//! (closed port) for the connection check, a target that accepts and never answers for delivery.

use trib_plugin_testkit::conformance::{assert_conforms, Scenario};

use crate::driver::HttpDriver;

#[test]
fn http_driver_conforms() {
    assert_conforms::<HttpDriver>(
        &Scenario::new(r#"{"restEndpointUrl": "http://127.0.0.1:{{blackhole_port}}/ingest"}"#)
            .unreachable(r#"{"restEndpointUrl": "http://127.0.0.1:{{closed_port}}/ingest"}"#)
            .black_hole(r#"{"restEndpointUrl": "http://127.0.0.1:{{blackhole_port}}/ingest", "readTimeoutMs": 0}"#)
            .invalid("{}")
            .invalid(r#"{"restEndpointUrl": "ftp://127.0.0.1/x"}"#),
    );
}
