//! Two broker services (broker + management plane) in one process on one embedded queue and one
//! SQLite database, as two nodes of a cluster: an integration saved through node 1 gets the
//! messages published on node 2, one copy per PUBLISH written by the node that received it, and
//! each node lists both. (The same on Kafka and PostgreSQL with processes: the distributed e2e.)
//! An executor serving HTTP is stood in for by a thread that announces it and accepts every
//! validation request, since the broker crate never links the executor.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use prost::Message as _;
use rumqttc::v5::mqttbytes::QoS as Q5;
use serde_json::{json, Value};
use trib_queue::{
    queue::{embedded::EmbeddedQueue, wait_delivery, ConsumerEvent, Partitioning, Queue, TopicPartition},
    topics::TopicNames,
    wire::{
        DownlinkIntegrationMsgProto, IntegrationValidationResponseProto, PublishIntegrationMsgProto, ServiceInfo,
        UplinkIntegrationMsgProto, UplinkIntegrationNotificationMsgProto, WIRE_VERSION,
    },
};

use super::support::{service_env, within, Rest, ADMIN, C5, PASSWORD};
use crate::service::BrokerService;

/// A bound against a hanging test, not a timing assertion.
const WAIT: Duration = Duration::from_secs(20);

struct Node {
    service: BrokerService,
    id: String,
    rest: Rest,
}

impl Node {
    async fn start(id: &str, db: &str, queue: Arc<dyn Queue>) -> Node {
        let env = service_env(
            db,
            &[("TB_SERVICE_ID", id), ("TB_IE_UPLINK_POLL_INTERVAL", "20"), ("TB_SERVICE_INFO_INTERVAL_MS", "200")],
        );
        let lookup = move |name: &str| env.get(name).cloned();
        let service = BrokerService::start(&lookup, queue).await.expect("service starts");
        let rest = Rest::login(service.http_addr(), ADMIN, PASSWORD).await;
        Node { service, id: id.to_owned(), rest }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.rest.call(method, path, body).await
    }

    async fn get(&self, path: &str) -> Value {
        let (status, body) = self.call(reqwest::Method::GET, path, None).await;
        assert_eq!(status, 200, "{path}: {body}");
        body
    }

    async fn wait_until(&self, what: &str, path: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let body = self.get(path).await;
            if done(&body) {
                return body;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}: {body}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Publishes one QoS 1 message and waits for its PUBACK (sent once the queue stored every
    /// integration copy).
    async fn publish(&self, client_id: &str, topic: &str, payload: &[u8]) {
        let mut c = C5::spawn(self.service.mqtt_addr().expect("tcp listener"), client_id, |_| {});
        c.client.publish(topic, Q5::AtLeastOnce, false, payload.to_vec()).await.expect("queued");
        c.wait_for("puback", |ev| match ev {
            rumqttc::v5::Event::Incoming(rumqttc::v5::Incoming::PubAck(_)) => Some(()),
            _ => None,
        })
        .await;
    }
}

/// Announces an executor serving HTTP and accepts every validation request until `stop`.
fn fake_executor(queue: Arc<dyn Queue>, stop: Arc<AtomicBool>) -> JoinHandle<()> {
    let names = TopicNames::default();
    queue.create_topic(&names.uplink_spec().expect("spec")).expect("uplink topic");
    let info = ServiceInfo {
        service_id: "fake-ie".into(),
        service_type: Some("tbmq-integration-executor".into()),
        integration_types: vec!["HTTP@1.0.0".into()],
        timestamp: trib_queue::now_ms(),
        ..Default::default()
    };
    let announcement =
        UplinkIntegrationMsgProto { event_proto: None, service_info_proto: Some(info), wire_version: WIRE_VERSION };
    let producer = queue.producer();
    wait_delivery(producer.send(&names.uplink(), Partitioning::ByKey, Some(b"fake-ie"), &announcement.encode_to_vec()))
        .expect("announced");
    queue.create_topic(&names.downlink_spec("HTTP").expect("spec")).expect("downlink topic");
    let mut consumer = queue.subscribe("fake-ie-group", "fake-ie", &[names.downlink("HTTP")]).expect("consumer");
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            for event in consumer.poll(Duration::from_millis(20), 100).expect("poll") {
                let ConsumerEvent::Records(records) = event else { continue };
                for r in records {
                    let Some(request) = DownlinkIntegrationMsgProto::decode(r.value.as_ref())
                        .ok()
                        .and_then(|m| m.validation_request_msg)
                    else {
                        continue;
                    };
                    let response = IntegrationValidationResponseProto {
                        id_msb: request.id_msb,
                        id_lsb: request.id_lsb,
                        executor_service_id: "fake-ie".into(),
                        ..Default::default()
                    };
                    let answer = UplinkIntegrationNotificationMsgProto {
                        integration_validation_response_msg: Some(response),
                        wire_version: WIRE_VERSION,
                    };
                    let topic = names.notifications(&request.service_id);
                    wait_delivery(producer.send(&topic, Partitioning::Fixed(0), None, &answer.encode_to_vec()))
                        .expect("answered");
                }
            }
        }
    })
}

/// The integration copies on an integration's message topic: the node that wrote each.
fn copies(queue: &dyn Queue, topic: &str, expected: usize) -> Vec<String> {
    let mut c = queue.assign("test-reader", "test-reader", &TopicPartition::new(topic, 0)).expect("reader");
    let deadline = Instant::now() + WAIT;
    let mut nodes = Vec::new();
    while nodes.len() < expected {
        assert!(Instant::now() < deadline, "only {} of {expected} copies: {nodes:?}", nodes.len());
        for event in c.poll(Duration::from_millis(50), 100).expect("poll") {
            if let ConsumerEvent::Records(records) = event {
                nodes.extend(
                    records
                        .iter()
                        .map(|r| PublishIntegrationMsgProto::decode(r.value.as_ref()).expect("copy").tbmq_node),
                );
            }
        }
    }
    // Nothing more than expected.
    for event in c.poll(Duration::from_millis(200), 100).expect("poll") {
        if let ConsumerEvent::Records(records) = event {
            panic!("{} copies more than expected", records.len());
        }
    }
    nodes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_integration_saved_on_one_node_gets_what_the_other_node_receives() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}?mode=rwc", dir.path().join("cluster.db").display());
    let queue: Arc<dyn Queue> = Arc::new(EmbeddedQueue::new());
    let stop = Arc::new(AtomicBool::new(false));
    let executor = tokio::task::block_in_place(|| fake_executor(queue.clone(), stop.clone()));
    let node1 = Node::start("node-1", &db, queue.clone()).await;
    let node2 = Node::start("node-2", &db, queue.clone()).await;
    node1.wait_until("node 1 hears the executor", "/api/executors", |e| e[0]["live"] == true).await;

    let body = json!({
        "name": "cross", "type": "HTTP", "enabled": true,
        "configuration": {"clientConfiguration": {}, "topicFilters": ["cross/#"], "metadata": {}}
    });
    let (status, saved) = node1.call(reqwest::Method::POST, "/api/integration", Some(body)).await;
    assert_eq!(status, 200, "{saved}");
    let id = saved["id"].as_str().expect("id").to_owned();
    // Node 2's router (the endpoint reads its trie) gets the filters through the queue.
    let path = format!("/api/subscription/integration?integrationId={id}");
    node2.wait_until("node 2's router has the filters", &path, |f| f == &json!(["cross/#"])).await;

    within("publish on node 2", node2.publish("device-2", "cross/a", b"from-2")).await;
    within("publish on node 1", node1.publish("device-1", "cross/b", b"from-1")).await;
    let topic = TopicNames::default().msg(id.parse().expect("uuid"));
    let nodes = tokio::task::block_in_place(|| copies(queue.as_ref(), &topic, 2));
    assert_eq!(nodes, ["node-2", "node-1"], "one copy per PUBLISH, written by the node that received it");

    for node in [&node1, &node2] {
        let view = node
            .wait_until("both nodes with their MQTT listeners", "/api/cluster/nodes", |v| {
                let nodes = v["nodes"].as_array().cloned().unwrap_or_default();
                nodes.len() == 2
                    && nodes.iter().all(|n| {
                        n["alive"] == true
                            && n["listeners"].as_array().is_some_and(|l| {
                                l.iter().any(|u| u.as_str().is_some_and(|u| u.starts_with("mqtt://127.0.0.1:")))
                            })
                    })
            })
            .await;
        assert_eq!(view["serviceId"], node.id.as_str());
        assert_eq!(view["executors"][0]["serviceId"], "fake-ie", "{view}");
    }

    // A delete through node 2 leaves node 1's router without the filters.
    let (status, _) = node2.call(reqwest::Method::DELETE, &format!("/api/integration/{id}"), None).await;
    assert_eq!(status, 200);
    node1.wait_until("node 1's router lost the filters", &path, |f| f == &json!([])).await;
    stop.store(true, Ordering::Relaxed);
    executor.join().expect("fake executor");
    node2.service.shutdown().await;
    node1.service.shutdown().await;
}
