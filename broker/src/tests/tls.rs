//! The TLS listener, with a self-signed certificate made for the test.

use rumqttc::QoS as Q4;

use super::support::{start, C4, C5};

#[tokio::test]
async fn tls_listener_serves_v4_and_v5_clients() {
    // rumqttc's client builds its rustls config from the process default provider; with several
    // providers compiled into the workspace, one has to be chosen. The broker names its own.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).expect("certificate");
    let dir = tempfile::tempdir().expect("tempdir");
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, certified.cert.pem()).expect("write cert");
    std::fs::write(&key_path, certified.key_pair.serialize_pem()).expect("write key");
    let broker = start(|c| {
        c.listener.ssl.enabled = true;
        c.listener.ssl.bind_address = "127.0.0.1".to_owned();
        c.listener.ssl.bind_port = 0;
        c.listener.ssl.cert_file = Some(cert_path.clone());
        c.listener.ssl.key_file = Some(key_path.clone());
    })
    .await;
    let tls_addr = broker.tls_addr().expect("tls listener");
    let ca = certified.cert.pem().into_bytes();
    let transport =
        || rumqttc::Transport::Tls(rumqttc::TlsConfiguration::Simple { ca: ca.clone(), alpn: None, client_auth: None });
    let (mut sub, _) = C4::connect(tls_addr, "tls4", |o| {
        o.set_transport(transport());
    })
    .await;
    sub.subscribe("secure", Q4::AtLeastOnce).await;
    let (mut publisher, _) = C5::connect(tls_addr, "tls5", |o| {
        o.set_transport(transport());
    })
    .await;
    publisher.publish("secure", rumqttc::v5::mqttbytes::QoS::AtLeastOnce, false, b"over tls").await;
    assert_eq!(&sub.message().await.payload[..], b"over tls");
    // The plain listener runs alongside.
    let (mut plain, _) = C4::connect(broker.tcp_addr().expect("tcp"), "plain", |_| {}).await;
    plain.publish("secure", Q4::AtLeastOnce, false, b"plain").await;
    assert_eq!(&sub.message().await.payload[..], b"plain");
}
