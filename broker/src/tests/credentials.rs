//! TBMQ's MQTT client credentials end to end: the broker service (broker + management plane on
//! SQLite and the embedded queue) in process, credentials created and deleted over REST, devices
//! connecting with rumqttc, over TCP with passwords and over TLS with client certificates.

use std::net::SocketAddr;
use std::sync::Arc;

use rumqttc::v5::mqttbytes::v5::{ConnectReturnCode as Connack5, PubAckReason, SubscribeReasonCode as Sub5};
use rumqttc::v5::mqttbytes::QoS as Q5;
use serde_json::{json, Value};
use trib_queue::queue::embedded::EmbeddedQueue;

use super::support::{service_env, within, Rest, ADMIN, C5, PASSWORD};
use super::x509::{pki, Ca};
use crate::service::BrokerService;

struct Service {
    service: BrokerService,
    rest: Rest,
    _dir: tempfile::TempDir,
}

impl Service {
    async fn start(extra: &[(&str, &str)]) -> Service {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let mut base = vec![("SECURITY_ALLOW_ANONYMOUS", "false"), ("SECURITY_MQTT_BASIC_ENABLED", "true")];
        base.extend_from_slice(extra);
        let env = service_env(&db, &base);
        let lookup = move |name: &str| env.get(name).cloned();
        let service = BrokerService::start(&lookup, Arc::new(EmbeddedQueue::new())).await.expect("service starts");
        let rest = Rest::login(service.http_addr(), ADMIN, PASSWORD).await;
        Service { service, rest, _dir: dir }
    }

    fn mqtt(&self) -> SocketAddr {
        self.service.mqtt_addr().expect("tcp listener")
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.rest.call(method, path, body).await
    }

    /// Creates MQTT_BASIC credentials; returns their id.
    async fn basic(&self, name: &str, value: Value) -> String {
        let body = json!({"name": name, "clientType": "DEVICE", "credentialsType": "MQTT_BASIC",
                          "credentialsValue": value.to_string()});
        let (status, saved) = self.call(reqwest::Method::POST, "/api/mqtt/client/credentials", Some(body)).await;
        assert_eq!(status, 200, "{saved}");
        saved["id"].as_str().expect("id").to_owned()
    }
}

fn rules(publish: &[&str], subscribe: &[&str]) -> Value {
    json!({"pubAuthRulePatterns": publish, "subAuthRulePatterns": subscribe})
}

/// The CONNACK code of a CONNECT with these credentials (`Success` when accepted).
async fn connack(addr: SocketAddr, id: &str, login: Option<(&str, &str)>) -> Connack5 {
    connack_with(addr, id, |o| {
        if let Some((u, p)) = login {
            o.set_credentials(u, p);
        }
    })
    .await
}

/// The CONNACK code of a CONNECT with the options `f` sets.
async fn connack_with(addr: SocketAddr, id: &str, f: impl FnOnce(&mut rumqttc::v5::MqttOptions)) -> Connack5 {
    let mut c = C5::spawn(addr, id, f);
    match c.next().await {
        Ok(rumqttc::v5::Event::Incoming(rumqttc::v5::Incoming::ConnAck(a))) => a.code,
        Err(rumqttc::v5::ConnectionError::ConnectionRefused(code)) => code,
        other => panic!("expected a CONNACK, got {other:?}"),
    }
}

/// The PUBACK reason of a QoS 1 PUBLISH to `topic`.
async fn puback(c: &mut C5, topic: &str) -> PubAckReason {
    c.client.publish(topic, Q5::AtLeastOnce, false, b"x".to_vec()).await.expect("queued");
    c.wait_for("puback", |ev| match ev {
        rumqttc::v5::Event::Incoming(rumqttc::v5::Incoming::PubAck(a)) => Some(a.reason),
        _ => None,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_credentials_over_rest_authenticate_the_next_connect_and_stop_when_deleted() {
    let s = Service::start(&[]).await;
    let addr = s.mqtt();
    assert_eq!(connack(addr, "dev-1", Some(("device", "secret"))).await, Connack5::BadUserNamePassword);
    let id = s
        .basic("device", json!({"userName": "device", "password": "secret", "authRules": rules(&[".*"], &[".*"])}))
        .await;
    assert_eq!(connack(addr, "dev-1", Some(("device", "secret"))).await, Connack5::Success);
    assert_eq!(connack(addr, "dev-1", Some(("device", "wrong"))).await, Connack5::BadUserNamePassword);
    assert_eq!(connack(addr, "dev-1", Some(("nobody", "secret"))).await, Connack5::BadUserNamePassword);
    assert_eq!(connack(addr, "dev-1", None).await, Connack5::NotAuthorized);
    let (status, _) = s.call(reqwest::Method::DELETE, &format!("/api/mqtt/client/credentials/{id}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(connack(addr, "dev-1", Some(("device", "secret"))).await, Connack5::BadUserNamePassword);
    s.service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_and_subscribe_rules_of_the_credentials_apply() {
    let s = Service::start(&[]).await;
    let addr = s.mqtt();
    s.basic(
        "sensor",
        json!({"userName": "sensor", "password": "pw", "authRules": rules(&["sensors/.*"], &["cmd/sensor"])}),
    )
    .await;
    let (mut c, _) = C5::connect(addr, "sensor-1", |o| {
        o.set_credentials("sensor", "pw");
    })
    .await;
    assert_eq!(c.subscribe("cmd/sensor", Q5::AtLeastOnce).await.return_codes, [Sub5::Success(Q5::AtLeastOnce)]);
    assert_eq!(c.subscribe("cmd/#", Q5::AtLeastOnce).await.return_codes, [Sub5::NotAuthorized]);
    assert_eq!(puback(&mut c, "other/x").await, PubAckReason::NotAuthorized);
    assert_eq!(puback(&mut c, "sensors/1").await, PubAckReason::Success);
    s.service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bound_client_id_cannot_be_stolen_and_the_holder_stays_connected() {
    let s = Service::start(&[]).await;
    let addr = s.mqtt();
    s.basic("victim", json!({"clientId": "victim-id", "userName": "victim", "password": "v-pw", "authRules": rules(&[".*"], &[".*"])}))
        .await;
    s.basic("attacker", json!({"userName": "attacker", "password": "a-pw", "authRules": rules(&[".*"], &[".*"])}))
        .await;
    let (mut victim, _) = C5::connect(addr, "victim-id", |o| {
        o.set_credentials("victim", "v-pw");
    })
    .await;
    assert_eq!(victim.subscribe("t", Q5::AtLeastOnce).await.return_codes, [Sub5::Success(Q5::AtLeastOnce)]);
    // Valid credentials of its own, but not the ones the id is bound to.
    assert_eq!(connack(addr, "victim-id", Some(("attacker", "a-pw"))).await, Connack5::NotAuthorized);
    assert_eq!(connack(addr, "victim-id", None).await, Connack5::NotAuthorized);
    // The holder was not disconnected: it still gets messages.
    let (mut publisher, _) = C5::connect(addr, "attacker-own-id", |o| {
        o.set_credentials("attacker", "a-pw");
    })
    .await;
    publisher.publish("t", Q5::AtLeastOnce, false, b"still here").await;
    let got = within("victim receives", victim.message()).await;
    assert_eq!(&got.payload[..], b"still here");
    s.service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_is_locked_after_the_configured_failures() {
    let s = Service::start(&[("SECURITY_MAX_FAILED_LOGIN_ATTEMPTS", "3")]).await;
    let addr = s.mqtt();
    s.basic("locked", json!({"userName": "locked", "password": "right", "authRules": rules(&[".*"], &[".*"])})).await;
    for _ in 0..3 {
        assert_eq!(connack(addr, "l", Some(("locked", "wrong"))).await, Connack5::BadUserNamePassword);
    }
    assert_eq!(connack(addr, "l", Some(("locked", "right"))).await, Connack5::NotAuthorized);
    s.service.shutdown().await;
}

/// TBMQ's X.509 chain walk: one record for the CA's CN admits a device certificate it signed,
/// when the device presents its chain, with the topics the record maps to the device's CN.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_x509_record_for_the_ca_admits_the_devices_it_signed() {
    let pki = pki();
    let path = |p: &std::path::Path| p.to_str().expect("utf-8 path").to_owned();
    let (cert, key, ca) = (path(&pki.server_cert), path(&pki.server_key), path(&pki.ca_file));
    let s = Service::start(&[
        ("SECURITY_MQTT_SSL_ENABLED", "true"),
        ("LISTENER_SSL_ENABLED", "true"),
        ("LISTENER_SSL_BIND_ADDRESS", "127.0.0.1"),
        ("LISTENER_SSL_BIND_PORT", "0"),
        ("LISTENER_SSL_PEM_CERT", &cert),
        ("LISTENER_SSL_PEM_KEY", &key),
        ("LISTENER_SSL_CLIENT_AUTH", "required"),
        ("LISTENER_SSL_PEM_CLIENT_CA", &ca),
    ])
    .await;
    let addr = s.service.mqtts_addr().expect("tls listener");
    // device-1's certificate followed by the CA's: the chain as the device presents it.
    let chain = (format!("{}{}", pki.device.0, pki.ca_pem), pki.device.1.clone());
    let with_chain = |o: &mut rumqttc::v5::MqttOptions| {
        o.set_transport(pki.transport(Some(&chain)));
    };
    assert_eq!(connack_with(addr, "device-1", with_chain).await, Connack5::NotAuthorized);

    let own = json!({"pubAuthRulePatterns": ["devices/${cn}/.*"], "subAuthRulePatterns": []});
    let value = json!({"certCnPattern": "Tributary test CA", "certCnIsRegex": false,
                       "authRulesMapping": {"^device-": own}});
    let body = json!({"name": "fleet", "clientType": "DEVICE", "credentialsType": "X_509",
                      "credentialsValue": value.to_string()});
    let (status, saved) = s.call(reqwest::Method::POST, "/api/mqtt/client/credentials", Some(body)).await;
    assert_eq!(status, 200, "{saved}");

    let (mut device, _) = C5::connect(addr, "device-1", with_chain).await;
    assert_eq!(puback(&mut device, "devices/device-1/t").await, PubAckReason::Success);
    assert_eq!(puback(&mut device, "devices/device-2/t").await, PubAckReason::NotAuthorized);
    // Only the certificates a client presents are walked (as TBMQ): the leaf alone has no record.
    let leaf_only = |o: &mut rumqttc::v5::MqttOptions| {
        o.set_transport(pki.transport(Some(&pki.device)));
    };
    assert_eq!(connack_with(addr, "device-1b", leaf_only).await, Connack5::NotAuthorized);

    // A certificate appended to the chain that signed nothing in it is not walked, even with a
    // record of its own (rustls verified the device against the test CA and ignored it).
    let mallory = Ca::new("Privileged CA");
    let value = json!({"certCnPattern": "Privileged CA", "authRulesMapping": {".*": {"pubAuthRulePatterns": [".*"]}}});
    let body = json!({"name": "mallory", "clientType": "DEVICE", "credentialsType": "X_509",
                      "credentialsValue": value.to_string()});
    let (status, saved) = s.call(reqwest::Method::POST, "/api/mqtt/client/credentials", Some(body)).await;
    assert_eq!(status, 200, "{saved}");
    let forged = (format!("{}{}", pki.device.0, mallory.cert.pem()), pki.device.1.clone());
    let with_forged = |o: &mut rumqttc::v5::MqttOptions| {
        o.set_transport(pki.transport(Some(&forged)));
    };
    assert_eq!(connack_with(addr, "device-1c", with_forged).await, Connack5::NotAuthorized);
    s.service.shutdown().await;
}
