use super::*;

fn sub(filter: &str, qos: QoS) -> ClientSubscription {
    ClientSubscription { filter: filter.into(), qos, no_local: false, retain_as_published: false, sub_id: None }
}

#[test]
fn a_client_record_round_trips_with_its_node_and_options() {
    let subs = vec![
        sub("a/+", QoS::ExactlyOnce),
        ClientSubscription {
            no_local: true,
            retain_as_published: true,
            sub_id: Some(7),
            ..sub("$share/g/b/#", QoS::AtLeastOnce)
        },
    ];
    let detached = Detached { at_ms: 1_700_000_000_000, awaiting_pubrel: vec![3, 65535] };
    let value = encode_client("node-1", false, 300, &subs, Some(7), Some(&detached));
    let rec = decode_client(Some(b"client-1"), &value).expect("a client record");
    assert_eq!(
        rec,
        ClientRecord {
            client_id: "client-1".into(),
            node: "node-1".into(),
            ended: false,
            expiry: 300,
            subscriptions: subs,
            seq: Some(7),
            disconnected_at: Some(1_700_000_000_000),
            awaiting_pubrel: vec![3, 65535],
        }
    );
    let ended =
        decode_client(Some(b"client-1"), &encode_client("node-1", true, 0, &[], None, None)).expect("a client record");
    assert!(ended.ended && ended.subscriptions.is_empty());
}

/// A restarted node counts a persistent session's expiry from its client's disconnection.
#[test]
fn expiry_left_counts_from_the_disconnection() {
    let record = |expiry, disconnected_at| ClientRecord {
        client_id: "c".into(),
        node: "n".into(),
        ended: false,
        expiry,
        subscriptions: Vec::new(),
        seq: None,
        disconnected_at,
        awaiting_pubrel: Vec::new(),
    };
    let now = 1_700_000_100_000;
    assert_eq!(expiry_left(&record(0, None), now), None, "a clean session");
    assert_eq!(expiry_left(&record(60, None), now), Some(60), "connected when the node stopped");
    assert_eq!(expiry_left(&record(60, Some(now - 15_000)), now), Some(45));
    assert_eq!(expiry_left(&record(60, Some(now - 59_600)), now), Some(1), "0.4 s left");
    assert_eq!(expiry_left(&record(60, Some(now - 60_000)), now), Some(0), "expired");
    assert_eq!(expiry_left(&record(60, Some(now - 3_600_000)), now), Some(0), "long expired");
    assert_eq!(expiry_left(&record(60, Some(now + 5_000)), now), Some(60), "a clock that went back");
}

#[test]
fn markers_integrations_tbmq_records_without_a_node_and_garbage_are_not_client_records() {
    let value = encode_client("node-1", false, 0, &[sub("t", QoS::AtMostOnce)], None, None);
    assert_eq!(decode_client(Some(format!("{MARKER_KEY_PREFIX}x").as_bytes()), &value), None);
    assert_eq!(decode_client(None, &value), None);
    assert_eq!(decode_client(Some(b"c"), &[]), None);
    assert_eq!(decode_client(Some(b"c"), &[0xff, 0xff]), None);
    let integration = ClientSubscriptionsProto {
        source: Some(SubscriptionsSourceProto::Integration as i32),
        service_id: Some("node-1".into()),
        ..Default::default()
    };
    assert_eq!(decode_client(Some(b"c"), &integration.encode_to_vec()), None);
    let tbmq =
        ClientSubscriptionsProto { source: Some(SubscriptionsSourceProto::MqttClient as i32), ..Default::default() };
    assert_eq!(decode_client(Some(b"c"), &tbmq.encode_to_vec()), None);
}

#[test]
fn tbmq_s_share_name_field_becomes_a_shared_filter() {
    let proto = ClientSubscriptionsProto {
        subscriptions: vec![TopicSubscriptionProto {
            topic: "s/#".into(),
            qos: 1,
            share_name: Some("g".into()),
            ..Default::default()
        }],
        source: Some(SubscriptionsSourceProto::MqttClient as i32),
        service_id: Some("n".into()),
        ..Default::default()
    };
    let rec = decode_client(Some(b"c"), &proto.encode_to_vec()).expect("record");
    assert_eq!(rec.subscriptions[0].filter, "$share/g/s/#");
}

fn message(expiry: Option<u32>, received_at_ms: u64) -> PublishedMessage {
    PublishedMessage {
        topic: "t/1".into(),
        payload: bytes::Bytes::from_static(b"p"),
        qos: QoS::AtLeastOnce,
        retain: true,
        client_id: "pub".into(),
        user_properties: vec![("k".into(), "v".into())],
        content_type: Some("text/plain".into()),
        correlation_data: None,
        response_topic: Some("r".into()),
        message_expiry_interval: expiry,
        payload_format_indicator: Some(1),
        received_at_ms,
    }
}

#[test]
fn a_message_for_another_node_round_trips_and_its_expiry_counts_from_reception() {
    let msg = message(Some(10), 1_000_000);
    let target = NodeTarget { node: "b", to_subscribers: true, groups: vec![("g", "s/#")] };
    let value = encode_publish(&target, &msg, "a", None);
    let from = decode_publish(&value, 1_004_000).expect("decodes");
    assert!(from.to_subscribers);
    assert_eq!(from.groups, vec![("g".to_string(), "s/#".to_string())]);
    assert_eq!(from.target, None);
    assert_eq!(from.msg, Some(PublishedMessage { message_expiry_interval: Some(6), ..msg.clone() }));
    // Expired on the way: nothing to deliver.
    assert_eq!(decode_publish(&value, 1_010_000).expect("decodes").msg, None);
    // Addressed to one client (a takeover's hand-over).
    let value = encode_publish(&target, &message(None, 5), "a", Some(("x", QoS::ExactlyOnce)));
    assert_eq!(decode_publish(&value, 6).expect("decodes").target, Some(("x".into(), QoS::ExactlyOnce)));
    assert!(decode_publish(&[0xff, 0x01], 0).is_err());
}

/// The queue's answers for a session's clearing record and for a message kept for it right
/// after can be handled in either order; what the message needs stays needed either way.
#[test]
fn a_kept_copy_answered_before_the_clearing_record_it_follows_stays_needed() {
    let needed = |k: &KeptOffsets| k.first.values().map(|r| r.0).min().unwrap_or(k.next);
    let c = || "keeper".to_string();
    // In offset order: kept 5, cleared 10, kept 11.
    let mut k = KeptOffsets::default();
    k.stored(Track::Kept(c()), 5);
    k.stored(Track::Cleared(c()), 10);
    k.stored(Track::Kept(c()), 11);
    assert_eq!(needed(&k), 11);
    // The kept copy at 11 answered before the clearing record at 10.
    let mut k = KeptOffsets::default();
    k.stored(Track::Kept(c()), 5);
    k.stored(Track::Kept(c()), 11);
    k.stored(Track::Cleared(c()), 10);
    assert_eq!(needed(&k), 10, "from the clearing record on, not past the copy at 11");
    let mut k = KeptOffsets::default();
    k.stored(Track::Kept(c()), 11);
    k.stored(Track::Cleared(c()), 10);
    assert_eq!(needed(&k), 11);
    // A copy answered after a later clearing record is not needed.
    let mut k = KeptOffsets::default();
    k.stored(Track::Cleared(c()), 10);
    k.stored(Track::Kept(c()), 5);
    assert_eq!(needed(&k), 11);
    // Records of other topics do not count.
    k.stored(Track::Other, 200);
    assert_eq!(needed(&k), 11);
}
