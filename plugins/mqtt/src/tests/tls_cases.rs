//! TLS: a TLS-terminating proxy (rustls, client certificates required) in front of the embedded
//! broker, with a CA, server and client certificates made by rcgen for each test.

use std::{net::SocketAddr, sync::Arc};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rumqttc::tokio_rustls::{
    rustls::{
        pki_types::{CertificateDer, PrivateKeyDer},
        server::WebPkiClientVerifier,
        RootCertStore, ServerConfig,
    },
    TlsAcceptor,
};
use serde_json::json;
use trib_plugin_api::driver::{Driver, ErrorKind, Host, Outcome};

use super::{
    recorder::Recorder,
    support::{config_for, deadline, embedded, message, start_config, started, unique, Extras},
};
use crate::driver::MqttDriver;

/// PEM texts of one test PKI.
struct Pki {
    ca: String,
    client_cert: String,
    client_key: String,
    server: (CertificateDer<'static>, PrivateKeyDer<'static>),
    ca_der: CertificateDer<'static>,
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "trib test CA");
    let ca = ca_params.self_signed(&ca_key).expect("ca cert");
    let server_key = KeyPair::generate().expect("server key");
    let server = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .expect("server params")
        .signed_by(&server_key, &ca, &ca_key)
        .expect("server cert");
    let client_key = KeyPair::generate().expect("client key");
    let mut client_params = CertificateParams::new(Vec::<String>::new()).expect("client params");
    client_params.distinguished_name.push(DnType::CommonName, "trib-driver");
    let client = client_params.signed_by(&client_key, &ca, &ca_key).expect("client cert");
    Pki {
        ca: ca.pem(),
        client_cert: client.pem(),
        client_key: client_key.serialize_pem(),
        server: (server.der().clone(), PrivateKeyDer::Pkcs8(server_key.serialize_der().into())),
        ca_der: ca.der().clone(),
    }
}

/// Starts a TLS proxy that demands a client certificate signed by `pki`'s CA; returns its port.
fn tls_proxy(pki: &Pki, upstream: SocketAddr) -> u16 {
    let provider = Arc::new(rumqttc::tokio_rustls::rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    roots.add(pki.ca_der.clone()).expect("ca in store");
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build().expect("verifier");
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocols")
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![pki.server.0.clone()], pki.server.1.clone_key())
        .expect("server config");
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind tls proxy");
    let port = listener.local_addr().expect("address").port();
    listener.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let Ok(mut plain) = tokio::net::TcpStream::connect(upstream).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
    });
    port
}

fn upstream(version: u8) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], embedded().port(version)))
}

#[test]
fn mutual_tls_with_custom_ca() {
    let pki = pki();
    for version in [4, 5] {
        let port = tls_proxy(&pki, upstream(version));
        let base = unique("trib/tls");
        let rec = Recorder::start(embedded(), version, &format!("{base}/#"));
        let creds =
            json!({"type": "cert.PEM", "caCert": pki.ca, "cert": pki.client_cert, "privateKey": pki.client_key});
        let cfg = config_for(
            embedded(),
            version,
            json!({"port": port, "ssl": true, "credentials": creds, "topicName": format!("{base}/out"), "sendOnlyMsgPayload": true}),
        );
        let mut driver = started(&cfg);
        let msgs = [message("in", b"secret", 1, false, Extras::default())];
        assert_eq!(driver.process(&msgs, deadline()), vec![Outcome::Delivered], "v{version}");
        let got = rec.expect(1).remove(0);
        assert_eq!((got.topic, got.payload), (format!("{base}/out"), b"secret".to_vec()), "v{version}");
    }
}

#[test]
fn cert_pem_credentials_use_tls_even_without_the_ssl_flag() {
    let pki = pki();
    let port = tls_proxy(&pki, upstream(4));
    let creds = json!({"type": "cert.PEM", "caCert": pki.ca, "cert": pki.client_cert, "privateKey": pki.client_key});
    let cfg = config_for(
        embedded(),
        4,
        json!({"port": port, "ssl": false, "credentials": creds, "topicName": unique("trib/tls")}),
    );
    let mut driver = started(&cfg);
    let msgs = [message("in", b"x", 1, false, Extras::default())];
    assert_eq!(driver.process(&msgs, deadline()), vec![Outcome::Delivered]);
}

#[test]
fn untrusted_server_or_missing_client_cert_fails_start() {
    let pki = pki();
    let other = pki_ca_only();
    let port = tls_proxy(&pki, upstream(4));
    let cases = [
        json!({"type": "cert.PEM", "caCert": other, "cert": pki.client_cert, "privateKey": pki.client_key}),
        json!({"type": "cert.PEM", "caCert": pki.ca}),
    ];
    for creds in cases {
        let cfg = config_for(embedded(), 4, json!({"port": port, "ssl": true, "credentials": creds, "topicName": "t"}));
        let err =
            MqttDriver::create(Host::detached()).expect("create").start(&start_config(&cfg)).expect_err("TLS refused");
        assert_eq!(err.kind, ErrorKind::Connection);
        assert!(
            err.message.starts_with(&format!("Failed to connect to MQTT broker at 127.0.0.1:{port}")),
            "{}",
            err.message
        );
    }
}

fn pki_ca_only() -> String {
    pki().ca
}
