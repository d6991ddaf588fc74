//! HTTPS: a private CA as the only trust anchor, client certificates (mTLS), and skipping
//! verification for a self-signed server.

use serde_json::{json, Value};
use trib_plugin_api::driver::Outcome;

use super::{config, deliver, retry_reason, single};
use crate::test_server::{
    pki::{server_config, Ca, Leaf},
    Reply, TestServer,
};

fn https_server(server: &Leaf, client_ca: Option<&Ca>) -> TestServer {
    TestServer::start_tls(server_config(server, client_ca), |_, _| Reply::Status(200))
}

fn cert_pem(ca: &str, client: Option<&Leaf>) -> Value {
    json!({"credentials": {
        "type": "cert.PEM",
        "caCert": ca,
        "cert": client.map_or("", |c| c.cert_pem.as_str()),
        "privateKey": client.map_or("", |c| c.key_pem.as_str()),
    }})
}

#[test]
fn https_with_a_private_ca_is_delivered() {
    let ca = Ca::new("test CA");
    let server = https_server(&ca.server(), None);
    let outcomes = deliver(&config(&server.url("/secure"), cert_pem(&ca.cert_pem(), None)), &[b"x"]);
    assert_eq!(outcomes, vec![Outcome::Delivered]);
    assert_eq!(single(&server.requests()).target, "/secure");
}

#[test]
fn https_signed_by_an_untrusted_ca_is_retry() {
    let ca = Ca::new("test CA");
    let server = https_server(&ca.server(), None);
    // No caCert: only the public roots are trusted, and they do not know this CA.
    let outcomes = deliver(&config(&server.url("/secure"), json!({})), &[b"x"]);
    assert!(retry_reason(&outcomes[0]).ends_with("invalid peer certificate: UnknownIssuer"), "{outcomes:?}");
    assert!(server.requests().is_empty());
}

#[test]
fn the_ca_cert_is_the_only_trust_anchor() {
    let (ca, other) = (Ca::new("server CA"), Ca::new("other CA"));
    let server = https_server(&ca.server(), None);
    let outcomes = deliver(&config(&server.url("/secure"), cert_pem(&other.cert_pem(), None)), &[b"x"]);
    assert!(retry_reason(&outcomes[0]).ends_with("invalid peer certificate: UnknownIssuer"), "{outcomes:?}");
    assert!(server.requests().is_empty());
}

#[test]
fn mtls_with_a_client_certificate_is_delivered() {
    let ca = Ca::new("test CA");
    let server = https_server(&ca.server(), Some(&ca));
    let client = ca.client();
    let outcomes = deliver(&config(&server.url("/mtls"), cert_pem(&ca.cert_pem(), Some(&client))), &[b"x"]);
    assert_eq!(outcomes, vec![Outcome::Delivered]);
    assert_eq!(single(&server.requests()).target, "/mtls");
}

#[test]
fn mtls_without_a_client_certificate_is_refused() {
    let ca = Ca::new("test CA");
    let server = https_server(&ca.server(), Some(&ca));
    let outcomes = deliver(&config(&server.url("/mtls"), cert_pem(&ca.cert_pem(), None)), &[b"x"]);
    assert!(matches!(outcomes[0], Outcome::Retry(_)), "{outcomes:?}");
    assert!(server.requests().is_empty());
}

#[test]
fn mtls_with_a_certificate_from_another_ca_is_refused() {
    let (ca, other) = (Ca::new("test CA"), Ca::new("other CA"));
    let server = https_server(&ca.server(), Some(&ca));
    let client = other.client();
    let outcomes = deliver(&config(&server.url("/mtls"), cert_pem(&ca.cert_pem(), Some(&client))), &[b"x"]);
    assert!(matches!(outcomes[0], Outcome::Retry(_)), "{outcomes:?}");
    assert!(server.requests().is_empty());
}

#[test]
fn skip_verification_accepts_a_self_signed_server() {
    let server = https_server(&Leaf::self_signed_server(), None);
    let outcomes = deliver(&config(&server.url("/any"), json!({"skipCertificateVerification": true})), &[b"x"]);
    assert_eq!(outcomes, vec![Outcome::Delivered]);
    assert_eq!(single(&server.requests()).target, "/any");
}

#[test]
fn a_self_signed_server_is_refused_by_default() {
    let server = https_server(&Leaf::self_signed_server(), None);
    let outcomes = deliver(&config(&server.url("/any"), json!({})), &[b"x"]);
    assert!(retry_reason(&outcomes[0]).ends_with("invalid peer certificate: UnknownIssuer"), "{outcomes:?}");
    assert!(server.requests().is_empty());
}
