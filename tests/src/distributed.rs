//! The distributed deployment on real services: two `tbmq` processes (broker nodes of one
//! cluster: Kafka queue, PostgreSQL) and two `tbmq-integration-executor` processes, one serving
//! only HTTP and one serving all types. Both nodes list both nodes and both executors
//! (`GET /api/cluster/nodes`); an HTTP integration saved through node 1 delivers every message
//! published at QoS 1 on node 2, and node 1 serves a retained message set on node 2. An MQTT and a Kafka integration deliver every message once, in
//! order, to their targets. HTTP integrations spread over both pools deliver every message published at QoS 1
//! (duplicates are counted and reported), across one executor killed with SIGKILL in the middle
//! of a burst (the survivor takes its integrations over) and started again, and across the
//! broker killed with SIGKILL in the middle of a burst and started again.
//! `TRIB_TEST_KEEP_LOGS=1` keeps the processes' directories and logs.
//!
//! Consumer groups use a 6 s session timeout and 1 s heartbeats
//! (`TB_KAFKA_DEFAULT_CONSUMER_CONFIG`), so a killed executor's partitions move after about
//! 6 s (+ one rebalance and the downlink restore) instead of TBMQ's 10 s session.
//!
//! Runs only when both `TRIB_TEST_KAFKA_BOOTSTRAP` and `TRIB_TEST_POSTGRES_URL` are set; the
//! database is created for the run with `psql` and dropped afterwards, and the Kafka topics carry
//! a prefix unique to the run.

use std::{
    process::Command,
    time::{Duration, Instant},
};

use rumqttc::QoS;
use serde_json::json;

use crate::{
    devices::{publish_all, publish_qos, publish_retained, publish_through_restarts, Subscriber},
    http_target::{numbers, HttpTarget},
    mqtt_to_kafka::{consume, create_topics},
    node::{unique, wait_for, Mode, Node},
    report,
    rest::{http_integration, Rest},
};

const COUNT: i64 = 200;
/// The end of the burst published across a broker kill (1000 messages per integration).
const LAST: i64 = 3 * COUNT + 1000;
/// The end of the last burst (1000 messages per integration, published on node 2 across its
/// kill, failing over to node 1).
const END: i64 = LAST + 1000;

/// Node 2 of the cluster hears both executors and both nodes hear each other; an HTTP
/// integration saved through node 1 gets every QoS 1 message published on node 2.
fn two_nodes_act_as_one(node1: &Node, node2: &Node) {
    let rests = [Rest::login(&node1.api()), Rest::login(&node2.api())];
    rests[1].wait_executors(&["HTTP"], 2);
    rests[1].wait_executors(&["MQTT", "KAFKA"], 1);
    let mut ids = vec![node1.service_id.clone(), node2.service_id.clone()];
    ids.sort();
    for rest in &rests {
        wait_for("both broker nodes alive in the cluster view", || {
            let (code, view) = rest.get("/api/cluster/nodes");
            let nodes = view["nodes"].as_array().cloned().unwrap_or_default();
            let listed: Vec<String> =
                nodes.iter().filter_map(|n| n["serviceId"].as_str().map(str::to_string)).collect();
            let executors = view["executors"].as_array().map_or(0, Vec::len);
            (code == 200 && listed == ids && nodes.iter().all(|n| n["alive"] == true) && executors == 2).then_some(())
        });
    }
    report("distributed: both broker nodes list both nodes (alive) and both executors");

    let target = HttpTarget::start();
    let root = unique("cross");
    let filter = format!("{root}/#");
    let id = rests[0].create_integration(&http_integration(&unique("dist-cross"), &target.url("/in"), &filter));
    rests[0].wait_state(&id, "Active");
    // Within a second in practice; the test waits for it rather than timing it.
    wait_for("node 2 to have the integration's filters", || {
        let (_, filters) = rests[1].get(&format!("/api/subscription/integration?integrationId={id}"));
        (filters == json!([filter])).then_some(())
    });
    let messages: Vec<(String, Vec<u8>)> =
        (0..COUNT).map(|n| (format!("{root}/line"), format!("{{\"n\":{n}}}").into_bytes())).collect();
    publish_all(node2.mqtt_port, &unique("dev-node2"), &messages);
    target.wait_delivered("every message published on node 2", |d| {
        let seen = numbers(d);
        (0..COUNT).all(|n| seen.contains(&n))
    });
    let seen = numbers(&target.delivered());
    report(&format!(
        "distributed: saved through node 1, {COUNT} QoS 1 messages published on node 2: {} delivered ({} duplicate(s))",
        seen.len(),
        seen.len().saturating_sub(COUNT as usize)
    ));

    // A retained message set on node 2 is served by node 1 to a new subscriber (through the
    // compacted tbmq.msg.retained), and clearing it on node 2 clears it on node 1.
    let retained = format!("{root}/state");
    publish_retained(node2.mqtt_port, &unique("dev-retain"), &retained, b"on");
    let first_retained = |what: &str| {
        let subscriber = Subscriber::start("127.0.0.1", node1.mqtt_port, &unique(what), &retained);
        subscriber.drain(Duration::from_millis(300)).into_iter().find(|m| m.retain)
    };
    let got = wait_for("node 1 to serve node 2's retained message", || first_retained("retain-reader"));
    assert_eq!(got.payload, b"on");
    publish_retained(node2.mqtt_port, &unique("dev-retain"), &retained, b"");
    wait_for("node 1 to forget the retained message cleared on node 2", || {
        first_retained("retain-reader").is_none().then_some(())
    });
    report("distributed: a retained message set on node 2 is served by node 1, and cleared on both");

    // A subscriber on node 1 gets what devices publish on node 2, at QoS 0, 1 and 2, once each
    // (node 2 learns the subscription from tbmq.client.subscriptions and sends the messages to
    // node 1's tbmq.msg.downlink.basic.<serviceId>).
    let live = format!("{root}/live");
    let subscriber = Subscriber::start_qos(
        "127.0.0.1",
        node1.mqtt_port,
        &unique("live-sub"),
        &format!("{live}/#"),
        QoS::ExactlyOnce,
    );
    wait_for("node 2 to route to node 1's subscriber", || {
        publish_qos(node2.mqtt_port, &unique("probe"), &[(format!("{live}/probe"), b"p".to_vec(), 1)]);
        subscriber.drain(Duration::from_millis(200)).iter().any(|m| m.topic.ends_with("/probe")).then_some(())
    });
    // Probes still on their way.
    subscriber.drain(Duration::from_millis(500));
    let sent: Vec<(String, Vec<u8>, u8)> =
        (0..3u8).map(|q| (format!("{live}/q{q}"), format!("qos {q}").into_bytes(), q)).collect();
    publish_qos(node2.mqtt_port, &unique("dev-live"), &sent);
    let got: Vec<(String, Vec<u8>, u8)> =
        subscriber.take(sent.len()).into_iter().map(|m| (m.topic, m.payload, m.qos)).collect();
    assert_eq!(got, sent, "node 1's subscriber got node 2's messages in order, at their QoS");
    let extra = subscriber.drain(Duration::from_millis(500));
    assert!(extra.is_empty(), "each message once: {extra:?}");
    report("distributed: a subscriber on node 1 got node 2's QoS 0, 1 and 2 messages once each");
    drop(subscriber);

    // A persistent session moves from node 1 to node 2 with the messages queued for it on node 1.
    wait_for("node 2 to forget node 1's clean sessions", || {
        (rests[1].metric("broker_cluster_remote_clients")? == 0.0).then_some(())
    });
    let mover = unique("mover");
    Subscriber::start_persistent("127.0.0.1", node1.mqtt_port, &mover, &format!("{root}/moved/#")).leave();
    wait_for("node 2 to know the persistent session on node 1", || {
        (rests[1].metric("broker_cluster_remote_clients")? == 1.0).then_some(())
    });
    let queued: Vec<(String, Vec<u8>)> =
        (1..=3).map(|n| (format!("{root}/moved/{n}"), format!("queued {n}").into_bytes())).collect();
    publish_all(node1.mqtt_port, &unique("dev-queue"), &queued);
    let moved = Subscriber::resume("127.0.0.1", node2.mqtt_port, &mover);
    let got: Vec<(String, Vec<u8>)> = moved.take(queued.len()).into_iter().map(|m| (m.topic, m.payload)).collect();
    assert_eq!(got, queued, "the messages queued on node 1, in order, on node 2");
    // Its subscription moved too: node 1 now sends the client's messages to node 2.
    let later = [(format!("{root}/moved/4"), b"later".to_vec())];
    publish_all(node1.mqtt_port, &unique("dev-queue"), &later);
    assert_eq!(moved.take(1)[0].payload, b"later");
    report(
        "distributed: a persistent session moved from node 1 to node 2 with its 3 queued messages and its subscription",
    );
}

/// A PostgreSQL database for one test, dropped on drop.
struct Database {
    admin_url: String,
    name: String,
    url: String,
}

impl Database {
    fn create(admin_url: &str) -> Database {
        let name = unique("trib_e2e").replace('-', "_");
        psql(admin_url, &format!("CREATE DATABASE {name}"));
        let base = admin_url.split('?').next().unwrap_or(admin_url);
        let server = &base[..base.rfind('/').expect("TRIB_TEST_POSTGRES_URL has a database path")];
        Database { admin_url: admin_url.to_string(), url: format!("{server}/{name}"), name }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([&self.admin_url, "-c", &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)])
            .output();
    }
}

fn psql(url: &str, sql: &str) {
    let out = Command::new("psql").args([url, "-c", sql]).output().expect("run psql");
    assert!(out.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn two_executor_pools_deliver_everything() {
    let (Some(kafka), Some(postgres)) = (
        std::env::var("TRIB_TEST_KAFKA_BOOTSTRAP").ok().filter(|v| !v.trim().is_empty()),
        std::env::var("TRIB_TEST_POSTGRES_URL").ok().filter(|v| !v.trim().is_empty()),
    ) else {
        report("distributed: skipped (set TRIB_TEST_KAFKA_BOOTSTRAP and TRIB_TEST_POSTGRES_URL to run it)");
        return;
    };
    let database = Database::create(&postgres);
    let mut dir = tempfile::tempdir().expect("temp dir");
    if std::env::var("TRIB_TEST_KEEP_LOGS").is_ok_and(|v| v.trim() == "1") {
        report(&format!("distributed: node directories and logs kept in {}", dir.path().display()));
        dir.disable_cleanup(true);
    }
    let prefix = format!("{}.", unique("e2e"));
    let common = [
        ("TB_QUEUE_TYPE", "kafka"),
        ("TB_KAFKA_SERVERS", kafka.as_str()),
        ("TB_KAFKA_PREFIX", prefix.as_str()),
        ("SPRING_DATASOURCE_URL", database.url.as_str()),
        ("TB_KAFKA_DEFAULT_CONSUMER_CONFIG", "session.timeout.ms:6000;heartbeat.interval.ms:1000"),
        // Broker nodes' heartbeats: a killed node counts as down after three (3 s, not 30 s).
        ("TB_SERVICE_INFO_INTERVAL_MS", "1000"),
    ];
    let broker = Node::start(Mode::Broker, &dir.path().join("broker"), &common);
    let mut http_only = common.to_vec();
    http_only.push(("TB_SERVICE_INTEGRATIONS_SUPPORTED", "HTTP"));
    // The HTTP-only executor starts first and joins the HTTP downlink group alone, so it leads
    // that group; the executor killed below is the other one. Tansu 0.6.0 cannot re-form a group
    // whose leader died (see trib-core's README, "Takeover on Kafka"); Apache Kafka can, and
    // there the order does not matter.
    let first = Node::start(Mode::Executor, &dir.path().join("ie-http"), &http_only);
    wait_for("the first executor to join the HTTP downlink group", || {
        first.log_tail().contains("Downlink partition assigned.").then_some(())
    });
    let mut executors = vec![first, Node::start(Mode::Executor, &dir.path().join("ie-all"), &common)];
    let rest = Rest::login(&broker.api());
    rest.wait_executors(&["HTTP"], 2);
    rest.wait_executors(&["MQTT", "KAFKA"], 1);
    let broker2 = Node::start(Mode::Broker, &dir.path().join("broker-2"), &common);
    two_nodes_act_as_one(&broker, &broker2);

    // MQTT and Kafka integrations (only the executor serving every type runs them): each
    // message reaches the target broker and the Kafka topic once, in order. The MQTT target is
    // the broker named by TRIB_TEST_MQTT_BROKER, or else this broker itself (under another topic).
    let (mqtt_host, mqtt_port) = match std::env::var("TRIB_TEST_MQTT_BROKER").ok().filter(|v| !v.trim().is_empty()) {
        Some(addr) => {
            let (host, port) = addr.rsplit_once(':').expect("TRIB_TEST_MQTT_BROKER is host:port");
            (host.to_string(), port.parse::<u16>().expect("a port number"))
        }
        None => ("127.0.0.1".to_string(), broker.mqtt_port),
    };
    let (source, out, kafka_topic) = (unique("mk"), unique("out"), unique("dist-out"));
    let subscriber = Subscriber::start(&mqtt_host, mqtt_port, &unique("sub"), &format!("{out}/#"));
    create_topics(&kafka, std::slice::from_ref(&kafka_topic));
    let mqtt_id = rest.create_integration(&json!({
        "name": unique("dist-mqtt"), "type": "MQTT", "enabled": true,
        "configuration": {
            "clientConfiguration": {
                "host": mqtt_host, "port": mqtt_port, "clientId": unique("dist-bridge"),
                "topicName": format!("{out}/${{topic}}"), "useMsgTopicName": false,
                "qos": 1, "useMsgQoS": false, "retained": false, "sendOnlyMsgPayload": true
            },
            "topicFilters": [format!("{source}/#")], "metadata": {}
        }
    }));
    let kafka_id = rest.create_integration(&json!({
        "name": unique("dist-kafka"), "type": "KAFKA", "enabled": true,
        "configuration": {
            "clientConfiguration": {
                "bootstrapServers": kafka, "topic": kafka_topic, "key": "${clientId}",
                "acks": "-1", "compression": "none", "sendOnlyMsgPayload": true
            },
            "topicFilters": [format!("{source}/#")], "metadata": {}
        }
    }));
    rest.wait_state(&mqtt_id, "Active");
    rest.wait_state(&kafka_id, "Active");
    let messages: Vec<(String, Vec<u8>)> =
        (0..20).map(|i| (format!("{source}/line/{}", i % 2), format!("m{i}").into_bytes())).collect();
    publish_all(broker.mqtt_port, &unique("dev"), &messages);
    let forwarded: Vec<Vec<u8>> = subscriber.take(messages.len()).into_iter().map(|m| m.payload).collect();
    let produced: Vec<Vec<u8>> = consume(&kafka, &kafka_topic, messages.len()).into_iter().map(|(_, v)| v).collect();
    let sent: Vec<Vec<u8>> = messages.iter().map(|(_, p)| p.clone()).collect();
    assert_eq!(forwarded, sent, "the MQTT target got every message once, in order");
    assert_eq!(produced, sent, "the Kafka topic got every message once, in order");
    report("distributed: MQTT and Kafka integrations delivered 20 messages each, in order");
    drop(subscriber);

    // Several integrations, so that both executors get some (they are spread by partition).
    let root = unique("plant");
    let targets: Vec<HttpTarget> = (0..6).map(|_| HttpTarget::start()).collect();
    for (i, target) in targets.iter().enumerate() {
        let id =
            rest.create_integration(&http_integration(&unique("dist"), &target.url("/in"), &format!("{root}/{i}")));
        rest.wait_state(&id, "Active");
    }
    let device = unique("dev");
    let count = targets.len();
    let broker_port = broker.mqtt_port;
    let burst = move |device: String, root: String, range: std::ops::Range<i64>| {
        let root = root.as_str();
        let messages: Vec<(String, Vec<u8>)> = range
            .flat_map(|n| (0..count).map(move |i| (format!("{root}/{i}"), format!("{{\"n\":{n}}}").into_bytes())))
            .collect();
        publish_all(broker_port, &device, &messages);
    };
    let wait_all = |what: &str, upto: i64| {
        for target in &targets {
            target.wait_delivered(what, |d| {
                let seen = numbers(d);
                (0..upto).all(|n| seen.contains(&n))
            });
        }
    };
    burst(device.clone(), root.clone(), 0..COUNT);
    wait_all("the first burst", COUNT);

    // SIGKILL, in the middle of a burst, the executor that joined second, then start it again.
    // On by default; `TRIB_TEST_DISTRIBUTED_KILL=0` skips it. (Runs on Tansu before 2026-11-26
    // lost blocks of 11-18 messages around this kill about one time in three; since the broker
    // acknowledges only what Kafka stored and the producer is idempotent, 10 runs in a row lost
    // nothing. The cause on the Tansu side was not pinned down: if it comes back, keep the logs
    // with TRIB_TEST_KEEP_LOGS=1 and compare the integration topic's records with what was
    // acknowledged.)
    let kill = !std::env::var("TRIB_TEST_DISTRIBUTED_KILL").is_ok_and(|v| v.trim() == "0");
    let victim = 1;
    let publisher = std::thread::spawn({
        let (device, root) = (device.clone(), root.clone());
        move || burst(device, root, COUNT..2 * COUNT)
    });
    if kill {
        assert!(
            executors[victim].log_tail().contains("Integration started."),
            "the executor to kill runs no integration (all six landed on the other one's partitions)"
        );
        std::thread::sleep(Duration::from_millis(300));
        let killed_at = Instant::now();
        executors[victim].kill();
        publisher.join().expect("the publisher");
        wait_all("every message after the kill (the survivor takes over)", 2 * COUNT);
        report(&format!(
            "distributed: executor {victim} killed with SIGKILL; all messages delivered {:.1} s after the kill",
            killed_at.elapsed().as_secs_f64()
        ));
        // The killed executor comes back (same service id) and delivery goes on.
        executors[victim].restart();
        rest.wait_executors(&["HTTP"], 2);
    } else {
        publisher.join().expect("the publisher");
        wait_all("the second burst", 2 * COUNT);
        report("distributed: executor kill skipped (TRIB_TEST_DISTRIBUTED_KILL=0)");
    }
    burst(device.clone(), root.clone(), 2 * COUNT..3 * COUNT);
    wait_all("every message of the third burst", 3 * COUNT);

    // The broker is killed with SIGKILL in the middle of a burst and started again; the device
    // reconnects and sends again what was not acknowledged. Every acknowledged message was
    // stored by Kafka before its PUBACK, so nothing is lost.
    let mut broker = broker;
    let publisher = std::thread::spawn({
        let (device, root) = (device.clone(), root.clone());
        move || {
            let messages: Vec<(String, Vec<u8>)> = (3 * COUNT..LAST)
                .flat_map(|n| {
                    let root = root.clone();
                    (0..count).map(move |i| (format!("{root}/{i}"), format!("{{\"n\":{n}}}").into_bytes()))
                })
                .collect();
            publish_through_restarts(&[broker_port], &device, &messages)
        }
    });
    // Long enough (6000 messages) for the kill to land in the middle; the connection count
    // reported below shows whether it did.
    std::thread::sleep(Duration::from_millis(300));
    broker.kill();
    broker.restart();
    let connections = publisher.join().expect("the publisher");
    wait_all("every message after the broker restart", LAST);
    report(&format!("distributed: broker killed with SIGKILL mid-burst and restarted; the device needed {connections} connection(s)"));

    // Node 2 is killed with SIGKILL in the middle of a burst its device publishes; the device
    // fails over to node 1 and sends again what node 2 had not acknowledged. Every acknowledged
    // message reaches the integrations and a subscriber on node 1 (node 2 acknowledged a
    // message only once its integration copies and the record for node 1 were stored).
    let mut broker2 = broker2;
    // A persistent session on node 2 whose client is away, with QoS 1 messages queued for it:
    // node 2 acknowledged them once their kept copies were stored on its
    // tbmq.msg.persisted.<serviceId>, so its kill below loses none of them.
    let (keeper, kept_root) = (unique("keeper"), unique("kept"));
    Subscriber::start_persistent("127.0.0.1", broker2.mqtt_port, &keeper, &format!("{kept_root}/#")).leave();
    let kept: Vec<(String, Vec<u8>)> =
        (1..=3).map(|n| (format!("{kept_root}/{n}"), format!("kept {n}").into_bytes())).collect();
    publish_all(broker2.mqtt_port, &unique("dev-kept"), &kept);
    let watcher = Subscriber::start("127.0.0.1", broker_port, &unique("failover-sub"), &format!("{root}/#"));
    wait_for("node 2 to route to node 1's subscriber", || {
        publish_qos(broker2.mqtt_port, &unique("probe"), &[(format!("{root}/probe"), b"p".to_vec(), 1)]);
        watcher.drain(Duration::from_millis(200)).iter().any(|m| m.topic.ends_with("/probe")).then_some(())
    });
    let ports = [broker2.mqtt_port, broker_port];
    let publisher = std::thread::spawn({
        let (device, root) = (unique("dev-failover"), root.clone());
        move || {
            let messages: Vec<(String, Vec<u8>)> = (LAST..END)
                .flat_map(|n| {
                    let root = root.clone();
                    (0..count).map(move |i| (format!("{root}/{i}"), format!("{{\"n\":{n}}}").into_bytes()))
                })
                .collect();
            publish_through_restarts(&ports, &device, &messages)
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    broker2.kill();
    let connections = publisher.join().expect("the publisher");
    wait_all("every message after node 2's kill", END);
    let mut watched: Vec<Vec<i64>> = vec![Vec::new(); count];
    let deadline = Instant::now() + Duration::from_secs(60);
    while watched.iter().any(|seen| (LAST..END).any(|n| !seen.contains(&n))) {
        assert!(Instant::now() < deadline, "node 1's subscriber is missing acknowledged messages");
        for m in watcher.drain(Duration::from_millis(200)) {
            let Some(i) = m.topic.rsplit('/').next().and_then(|i| i.parse::<usize>().ok()) else { continue };
            let body: serde_json::Value = serde_json::from_slice(&m.payload).expect("a JSON payload");
            watched[i].push(body["n"].as_i64().expect("n"));
        }
    }
    let received: usize = watched.iter().map(Vec::len).sum();
    let expected = count * (END - LAST) as usize;
    report(&format!(
        "distributed: node 2 killed with SIGKILL mid-burst, its device failed over to node 1 ({connections} connection(s)); node 1's subscriber got all {expected} messages ({} duplicate(s))",
        received - expected
    ));

    // The persistent session's client comes back on node 1: it gets what node 2 kept for it
    // (read from node 2's topic once node 2 is known to be down), and node 1 delivers to it.
    let resumed = Subscriber::resume("127.0.0.1", broker_port, &keeper);
    let got: Vec<(String, Vec<u8>)> = resumed.take(kept.len()).into_iter().map(|m| (m.topic, m.payload)).collect();
    assert_eq!(got, kept, "what node 2 kept for the session, in order, on node 1");
    publish_all(broker_port, &unique("dev-kept"), &[(format!("{kept_root}/4"), b"after".to_vec())]);
    assert_eq!(resumed.take(1)[0].payload, b"after");
    let again = resumed.drain(Duration::from_millis(500));
    assert!(again.is_empty(), "each kept message once: {again:?}");
    report("distributed: a persistent session of node 2 (client away, 3 QoS 1 messages queued) resumed on node 1 after node 2's SIGKILL with all 3");
    drop(resumed);

    for (i, target) in targets.iter().enumerate() {
        let seen = numbers(&target.delivered());
        let mut distinct = seen.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct, (0..END).collect::<Vec<_>>(), "integration {i}: nothing lost");
        report(&format!(
            "distributed: integration {i}: {} delivered, {} duplicate(s), {} refused",
            seen.len(),
            seen.len() - distinct.len(),
            target.refused()
        ));
    }
    drop(watcher);
    drop(executors);
    drop(broker);
}
