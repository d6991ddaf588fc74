//! Reading back what a test produced to Kafka (feature `kafka`): rdkafka's mock cluster or the
//! real broker of `TRIB_TEST_KAFKA_BOOTSTRAP`, used by the Kafka driver's tests and the
//! end-to-end ones.

use std::time::{Duration, Instant};

use rdkafka::{
    consumer::{BaseConsumer, Consumer},
    message::{Headers, Message as _},
    ClientConfig, Offset, TopicPartitionList,
};

/// A record as the consumer saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
}

/// How long [`consume`] keeps reading after `count` records arrived, to catch records that
/// should not be there (a duplicate, a stray record).
pub const SETTLE: Duration = Duration::from_millis(300);

/// Reads partition 0 of `topic` from the beginning (a group of its own, nothing committed)
/// until `count` records arrived, then for [`SETTLE`] more; fails unless exactly `count` came.
/// `patience` bounds the wait for them (a safety bound against a hanging test, not a timing
/// assertion).
pub fn consume(bootstrap: &str, topic: &str, count: usize, patience: Duration) -> Vec<Received> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", crate::unique("trib-reader"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(topic, 0, Offset::Beginning).expect("partition");
    consumer.assign(&assignment).expect("assign");
    let deadline = Instant::now() + patience;
    let mut records = Vec::new();
    let mut settle: Option<Instant> = None;
    loop {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => records.push(Received {
                key: m.key().map(<[u8]>::to_vec),
                value: m.payload().unwrap_or_default().to_vec(),
                headers: m
                    .headers()
                    .map(|h| h.iter().map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec())).collect())
                    .unwrap_or_default(),
            }),
            Some(Err(e)) => panic!("consumer error on {topic}: {e}"),
            None => {}
        }
        if records.len() >= count && *settle.get_or_insert_with(|| Instant::now() + SETTLE) < Instant::now() {
            break;
        }
        assert!(Instant::now() < deadline, "{topic}: {} of {count} records arrived", records.len());
    }
    assert_eq!(records.len(), count, "{topic}: exactly {count} records: {records:?}");
    records
}
