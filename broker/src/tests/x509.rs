//! TLS client certificates: a CA made for the test signs the server's and the clients'
//! certificates; another CA signs an untrusted one. The certificate's CN is the client's identity
//! for authentication (no password) and for the ACL.

use std::path::PathBuf;

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};
use rumqttc::v5::mqttbytes::v5::{PubAckReason, SubscribeReasonCode as Sub5};
use rumqttc::v5::mqttbytes::QoS as Q5;
use rumqttc::v5::{Event, Incoming};

use super::support::{start, C4, C5};
use crate::auth::{hash_password, Credential};
use crate::config::ClientAuth;

/// A CA made for a test.
pub(super) struct Ca {
    pub(super) cert: Certificate,
    key: KeyPair,
}

impl Ca {
    pub(super) fn new(name: &str) -> Ca {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).expect("ca certificate");
        Ca { cert, key }
    }

    /// A leaf certificate and its key, both PEM.
    pub(super) fn issue(&self, cn: &str, usage: ExtendedKeyUsagePurpose) -> (String, String) {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).expect("params");
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &self.cert, &self.key).expect("leaf certificate");
        (cert.pem(), key.serialize_pem())
    }
}

/// A test CA's files for the broker, and client certificates (PEM certificate, PEM key).
pub(super) struct Pki {
    _dir: tempfile::TempDir,
    pub(super) ca_pem: String,
    pub(super) server_cert: PathBuf,
    pub(super) server_key: PathBuf,
    pub(super) ca_file: PathBuf,
    /// `device-1`, signed by the test CA (`Tributary test CA`).
    pub(super) device: (String, String),
    untrusted: (String, String),
}

pub(super) fn pki() -> Pki {
    // rumqttc's client takes the process default provider (several are compiled in the workspace).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca = Ca::new("Tributary test CA");
    let other = Ca::new("Someone else's CA");
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = ca.issue("localhost", ExtendedKeyUsagePurpose::ServerAuth);
    let server_cert = dir.path().join("server.pem");
    let server_key = dir.path().join("server.key");
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&server_cert, cert).expect("write");
    std::fs::write(&server_key, key).expect("write");
    std::fs::write(&ca_file, ca.cert.pem()).expect("write");
    Pki {
        ca_pem: ca.cert.pem(),
        server_cert,
        server_key,
        ca_file,
        device: ca.issue("device-1", ExtendedKeyUsagePurpose::ClientAuth),
        untrusted: other.issue("device-1", ExtendedKeyUsagePurpose::ClientAuth),
        _dir: dir,
    }
}

impl Pki {
    pub(super) fn transport(&self, client: Option<&(String, String)>) -> rumqttc::Transport {
        rumqttc::Transport::Tls(rumqttc::TlsConfiguration::Simple {
            ca: self.ca_pem.clone().into_bytes(),
            alpn: None,
            client_auth: client.map(|(c, k)| (c.clone().into_bytes(), k.clone().into_bytes())),
        })
    }

    async fn broker(&self, mode: ClientAuth, f: impl FnOnce(&mut crate::BrokerConfig)) -> crate::BrokerHandle {
        start(|c| {
            c.listener.ssl.enabled = true;
            c.listener.ssl.bind_address = "127.0.0.1".to_owned();
            c.listener.ssl.bind_port = 0;
            c.listener.ssl.cert_file = Some(self.server_cert.clone());
            c.listener.ssl.key_file = Some(self.server_key.clone());
            c.listener.ssl.client_auth = mode;
            c.listener.ssl.client_ca_file = Some(self.ca_file.clone());
            c.security.allow_anonymous = false;
            f(c);
        })
        .await
    }
}

/// The connection fails before any CONNACK (the TLS handshake refused the client).
async fn refused_by_tls(mut c: C5) {
    loop {
        match c.next().await {
            Ok(Event::Incoming(Incoming::ConnAck(a))) => panic!("connected: {a:?}"),
            Ok(_) => {}
            Err(rumqttc::v5::ConnectionError::ConnectionRefused(code)) => panic!("refused by MQTT, not TLS: {code:?}"),
            Err(_) => return,
        }
    }
}

#[tokio::test]
async fn required_client_certificate_authenticates_and_names_the_client_for_the_acl() {
    let pki = pki();
    let broker = pki
        .broker(ClientAuth::Required, |c| {
            c.security.acl = "cert device-1\ntopic readwrite devices/device-1/#".to_owned();
        })
        .await;
    let addr = broker.tls_addr().expect("tls");

    // No user name, no password: the certificate is the credential.
    let (mut device, _) = C5::connect(addr, "dev", |o| {
        o.set_transport(pki.transport(Some(&pki.device)));
    })
    .await;
    // The CN is the identity the ACL knows.
    let ok = device.subscribe("devices/device-1/#", Q5::AtLeastOnce).await;
    assert_eq!(ok.return_codes, [Sub5::Success(Q5::AtLeastOnce)]);
    let refused = device.subscribe("devices/device-2/#", Q5::AtLeastOnce).await;
    assert_eq!(refused.return_codes, [Sub5::NotAuthorized]);
    device.client.publish("devices/device-2/t", Q5::AtLeastOnce, false, "x").await.expect("queued");
    let ack = device
        .wait_for("puback", |ev| match ev {
            Event::Incoming(Incoming::PubAck(a)) => Some(a.clone()),
            _ => None,
        })
        .await;
    assert_eq!(ack.reason, PubAckReason::NotAuthorized);
    device.publish("devices/device-1/t", Q5::AtLeastOnce, false, b"mine").await;
    assert_eq!(&device.message().await.payload[..], b"mine");

    // Without a certificate, or with one from another CA, the handshake fails.
    refused_by_tls(C5::spawn(addr, "nocert", |o| {
        o.set_transport(pki.transport(None));
    }))
    .await;
    refused_by_tls(C5::spawn(addr, "untrusted", |o| {
        o.set_transport(pki.transport(Some(&pki.untrusted)));
    }))
    .await;
    // The device is still served.
    device.publish("devices/device-1/t", Q5::AtLeastOnce, false, b"still").await;
    assert_eq!(&device.message().await.payload[..], b"still");
}

#[tokio::test]
async fn optional_client_certificate_falls_back_to_passwords() {
    let pki = pki();
    let hash = hash_password("pw").expect("hash");
    let broker = pki
        .broker(ClientAuth::Optional, |c| {
            c.security.credentials = vec![Credential { username: "bob".to_owned(), password_hash: hash }];
        })
        .await;
    let addr = broker.tls_addr().expect("tls");
    // A certificate is enough; a user name sent with it is not checked.
    C4::connect(addr, "cert4", |o| {
        o.set_transport(pki.transport(Some(&pki.device)));
        o.set_credentials("nobody", "wrong");
    })
    .await;
    // Without one, the password decides, and anonymous is off.
    C4::connect(addr, "bob", |o| {
        o.set_transport(pki.transport(None));
        o.set_credentials("bob", "pw");
    })
    .await;
    let mut anonymous = C4::spawn(addr, "anon", |o| {
        o.set_transport(pki.transport(None));
    });
    match anonymous.closed().await {
        rumqttc::ConnectionError::ConnectionRefused(code) => {
            assert_eq!(code, rumqttc::ConnectReturnCode::NotAuthorized)
        }
        other => panic!("expected CONNACK 5, got {other:?}"),
    }
    // A certificate that is presented must still be trusted.
    refused_by_tls(C5::spawn(addr, "untrusted", |o| {
        o.set_transport(pki.transport(Some(&pki.untrusted)));
    }))
    .await;
}

#[tokio::test]
async fn client_auth_without_a_ca_file_is_a_config_error() {
    let mut c = crate::BrokerConfig::default();
    c.listener.ssl.enabled = true;
    c.listener.ssl.cert_file = Some("cert.pem".into());
    c.listener.ssl.key_file = Some("key.pem".into());
    c.listener.ssl.client_auth = ClientAuth::Required;
    assert_eq!(c.validate().err(), Some(crate::ConfigError::MissingClientCa));
}
