//! The pack stages as data: records in, driver results per attempt in, and out what each
//! attempt settled to, the batches the driver saw, the counters (TBMQ's names) and the dead
//! letters. The expected counters are the ones the executor tests in `crate::tests::executor`
//! read through a running executor.

use bytes::Bytes;
use prost::Message as _;
use trib_plugin_api::driver::{Error, ErrorKind, Outcome};

use super::{decode, Attempt, Settled};
use crate::{
    config::AckStrategy,
    processor::message::{to_message, user_properties},
    queue::{Record, TopicPartition},
    retry::RetryPolicy,
    stats::Counter,
    wire::{PublishIntegrationMsgProto, PublishMsgProto},
};

fn record(offset: i64, value: Vec<u8>) -> Record {
    Record {
        tp: TopicPartition::new("tbmq.msg.ie.x", 0),
        offset,
        key: Some(Bytes::from_static(b"t/1")),
        value: value.into(),
    }
}

/// A record of an integration message with this payload, as the broker writes it (without a
/// timestamp: no known age).
fn publish(offset: i64, payload: &str) -> Record {
    publish_at(offset, payload, 0)
}

/// As [`publish`], queued by the broker at `timestamp` (ms).
fn publish_at(offset: i64, payload: &str, timestamp: i64) -> Record {
    let msg = PublishIntegrationMsgProto {
        publish_msg_proto: Some(PublishMsgProto {
            payload: Bytes::copy_from_slice(payload.as_bytes()),
            topic_name: "t/1".into(),
            ..Default::default()
        }),
        timestamp,
        ..Default::default()
    };
    record(offset, msg.encode_to_vec())
}

/// One record per payload, at offsets 0, 1, ...
fn pack_of(payloads: &[&str]) -> Vec<Record> {
    payloads.iter().enumerate().map(|(i, p)| publish(i as i64, p)).collect()
}

/// What a pack came to.
#[derive(Debug, PartialEq)]
struct After {
    /// Per attempt, the payloads the driver was given.
    batches: Vec<Vec<String>>,
    /// Per attempt, what settling it said.
    settled: Vec<Settled>,
    /// Non-zero counters, in print order.
    counters: Vec<(&'static str, u64)>,
    /// Dead letters: (offset, reason, attempts).
    dead: Vec<(i64, String, u32)>,
}

/// Runs `records` through decode and one attempt per entry of `driver` (what the driver
/// returned for that attempt), settling each with `strategy` and no age limit.
fn run(strategy: AckStrategy, records: &[Record], driver: Vec<Result<Vec<Outcome>, Error>>) -> After {
    let policy = RetryPolicy { strategy, jitter: false, max_message_age: None };
    run_with(&policy, &[NOW], records, driver)
}

/// The time every attempt of [`run_with`] is settled at.
const NOW: i64 = 1_000_000_000;

/// As [`run`], with an integration's `policy`, attempt `i` settled at `times[i]` (ms; the last
/// time for the attempts after).
fn run_with(
    policy: &RetryPolicy,
    times: &[i64],
    records: &[Record],
    driver: Vec<Result<Vec<Outcome>, Error>>,
) -> After {
    let (decoded, mut pack) = decode(records);
    let props: Vec<_> = decoded.iter().map(user_properties).collect();
    let messages: Vec<_> = decoded.iter().zip(&props).map(|(m, p)| to_message(m, p)).collect();
    let (mut batches, mut settled) = (Vec::new(), Vec::new());
    for (i, returned) in driver.into_iter().enumerate() {
        let now = times[i.min(times.len() - 1)];
        let batch = pack.next_batch(&messages);
        batches.push(batch.iter().map(|m| String::from_utf8_lossy(m.payload.as_slice()).into_owned()).collect());
        settled.push(pack.settle(&Attempt::checked(batch.len(), returned), policy, now));
    }
    let counters = Counter::ALL.iter().map(|c| (c.name(), pack.tally.get(*c))).filter(|(_, v)| *v > 0).collect();
    let dead = pack.dead.iter().map(|d| (d.record.offset, d.reason.clone(), d.attempts)).collect();
    After { batches, settled, counters, dead }
}

fn retry_all(retries: u32) -> AckStrategy {
    AckStrategy::RetryAll { retries, pause: std::time::Duration::ZERO, max_pause: std::time::Duration::ZERO }
}

fn ok(outcomes: &[Outcome]) -> Result<Vec<Outcome>, Error> {
    Ok(outcomes.to_vec())
}

fn retry(reason: &str) -> Outcome {
    Outcome::Retry(reason.into())
}

fn dead(offset: i64, reason: &str, attempts: u32) -> (i64, String, u32) {
    (offset, reason.to_string(), attempts)
}

fn batch(payloads: &[&str]) -> Vec<String> {
    payloads.iter().map(|p| p.to_string()).collect()
}

const D: Outcome = Outcome::Delivered;

#[test]
fn decode_sets_undecodable_records_aside_with_zero_attempts() {
    let empty_envelope = PublishIntegrationMsgProto::default().encode_to_vec();
    let records = [publish(0, "a"), record(1, b"\xff\xff".to_vec()), record(2, empty_envelope), publish(3, "b")];
    let (decoded, pack) = decode(&records);
    assert_eq!(decoded.len(), 2);
    assert_eq!(pack.sources.iter().map(|r| r.offset).collect::<Vec<_>>(), [0, 3]);
    assert_eq!(pack.pending, [0, 1]);
    assert_eq!(pack.next_offset, 4, "the whole pack is committed, undecodable records too");
    let letters: Vec<_> = pack.dead.iter().map(|d| (d.record.offset, d.reason.as_str(), d.attempts)).collect();
    assert_eq!(letters, [(1, "undecodable record", 0), (2, "undecodable record", 0)]);
    assert_eq!((pack.tally.get(Counter::TotalMsgs), pack.tally.get(Counter::FailedMsgs)), (2, 2));
}

#[test]
fn skip_all_commits_after_one_attempt_and_gives_up_on_failures() {
    let after = run(AckStrategy::SkipAll, &pack_of(&["ok", "bad"]), vec![ok(&[D, retry("503")])]);
    assert_eq!(
        after,
        After {
            batches: vec![batch(&["ok", "bad"])],
            settled: vec![Settled::Commit],
            counters: vec![("totalMsgs", 2), ("successfulMsgs", 1), ("failedMsgs", 1), ("failedIterations", 1)],
            dead: vec![dead(1, "retry: 503", 1)],
        }
    );
}

#[test]
fn a_clean_pack_is_one_successful_iteration() {
    let after = run(retry_all(3), &pack_of(&["a", "b"]), vec![ok(&[D, D])]);
    assert_eq!(after.settled, [Settled::Commit]);
    assert_eq!(after.counters, [("totalMsgs", 2), ("successfulMsgs", 2), ("successfulIterations", 1)]);
    assert_eq!(after.dead, []);
}

#[test]
fn retry_all_retries_then_gives_up() {
    let r = || ok(&[retry("down")]);
    let after = run(retry_all(2), &pack_of(&["x"]), vec![r(), r(), r()]);
    assert_eq!(
        after,
        After {
            batches: vec![batch(&["x"]); 3],
            settled: vec![Settled::Retry, Settled::Retry, Settled::Commit],
            counters: vec![("totalMsgs", 1), ("tmpFailed", 2), ("failedMsgs", 1), ("failedIterations", 3)],
            dead: vec![dead(0, "retry: down", 3)],
        }
    );
}

#[test]
fn only_the_failed_messages_are_retried_in_offset_order() {
    let after = run(
        retry_all(3),
        &pack_of(&["a", "b", "c", "d"]),
        vec![ok(&[retry("1"), D, Outcome::Timeout("2".into()), retry("3")]), ok(&[D, D, D])],
    );
    assert_eq!(after.batches, [batch(&["a", "b", "c", "d"]), batch(&["a", "c", "d"])]);
    assert_eq!(after.settled, [Settled::Retry, Settled::Commit]);
    assert_eq!(
        after.counters,
        [
            ("totalMsgs", 4),
            ("successfulMsgs", 4),
            ("tmpTimeout", 1),
            ("tmpFailed", 2),
            ("successfulIterations", 1),
            ("failedIterations", 1)
        ]
    );
}

#[test]
fn rejected_messages_are_given_up_on_at_once() {
    let after = run(retry_all(0), &pack_of(&["reject", "fine"]), vec![ok(&[Outcome::Rejected("404".into()), D])]);
    assert_eq!(after.settled, [Settled::Commit], "nothing is retryable");
    assert_eq!(after.counters, [("totalMsgs", 2), ("successfulMsgs", 1), ("failedMsgs", 1), ("failedIterations", 1)]);
    assert_eq!(after.dead, [dead(0, "rejected: 404", 1)]);
}

#[test]
fn a_rejection_on_a_retry_names_the_right_record() {
    let after = run(
        retry_all(3),
        &pack_of(&["a", "b", "c"]),
        vec![ok(&[D, retry("x"), retry("y")]), ok(&[Outcome::Rejected("gone".into()), D])],
    );
    assert_eq!(after.batches[1], batch(&["b", "c"]));
    assert_eq!(after.dead, [dead(1, "rejected: gone", 2)]);
    assert_eq!(
        after.counters,
        [("totalMsgs", 3), ("successfulMsgs", 2), ("tmpFailed", 2), ("failedMsgs", 1), ("failedIterations", 2)]
    );
}

#[test]
fn dead_letters_of_a_mixed_pack_keep_reason_and_attempts() {
    // The pack of the executor test `given_up_messages_become_dead_letters_with_their_reason`.
    let after = run(
        retry_all(1),
        &pack_of(&["reject", "retry", "fine"]),
        vec![
            ok(&[Outcome::Rejected("scripted reject".into()), retry("scripted retry"), D]),
            ok(&[retry("scripted retry")]),
        ],
    );
    assert_eq!(after.settled, [Settled::Retry, Settled::Commit]);
    assert_eq!(after.dead, [dead(0, "rejected: scripted reject", 1), dead(1, "retry: scripted retry", 2)]);
    assert_eq!(
        after.counters,
        [("totalMsgs", 3), ("successfulMsgs", 1), ("tmpFailed", 1), ("failedMsgs", 2), ("failedIterations", 2)]
    );
}

#[test]
fn timeouts_count_as_timeouts_until_given_up() {
    let late = || Outcome::Timeout("late".into());
    let after = run(retry_all(1), &pack_of(&["slow", "fast"]), vec![ok(&[late(), D]), ok(&[late()])]);
    assert_eq!(
        after.counters,
        [("totalMsgs", 2), ("successfulMsgs", 1), ("tmpTimeout", 1), ("timeoutMsgs", 1), ("failedIterations", 2)]
    );
    assert_eq!(after.dead, [dead(0, "timeout: late", 2)]);
}

#[test]
fn unlimited_retries_never_commit() {
    let after = run(retry_all(0), &pack_of(&["x"]), (0..5).map(|_| ok(&[retry("down")])).collect());
    assert_eq!(after.settled, [Settled::Retry; 5]);
    assert_eq!(after.counters, [("totalMsgs", 1), ("tmpFailed", 5), ("failedIterations", 5)]);
}

#[test]
fn a_panic_under_retry_all_abandons_the_pack_without_counting_an_iteration() {
    let after = run(retry_all(3), &pack_of(&["a", "b"]), vec![Err(Error::new(ErrorKind::Panic, "boom"))]);
    assert_eq!(after.settled, [Settled::Abandon]);
    assert_eq!(after.counters, [("totalMsgs", 2)]);
    assert_eq!(after.dead, []);
}

#[test]
fn a_panic_under_skip_all_gives_the_pack_up() {
    let after = run(AckStrategy::SkipAll, &pack_of(&["a", "b"]), vec![Err(Error::new(ErrorKind::Panic, "boom"))]);
    assert_eq!(after.settled, [Settled::Commit]);
    assert_eq!(after.counters, [("totalMsgs", 2), ("failedMsgs", 2), ("failedIterations", 1)]);
    assert_eq!(after.dead, [dead(0, "retry: driver error: boom", 1), dead(1, "retry: driver error: boom", 1)]);
}

#[test]
fn a_pack_of_undecodable_records_still_makes_one_empty_attempt() {
    let after = run(AckStrategy::SkipAll, &[record(7, b"\xff".to_vec())], vec![ok(&[])]);
    assert_eq!(after.batches, [Vec::<String>::new()]);
    assert_eq!(after.counters, [("failedMsgs", 1), ("successfulIterations", 1)]);
    assert_eq!(after.dead, [dead(7, "undecodable record", 0)]);
}

fn check_attempt(messages: usize, returned: Result<Vec<Outcome>, Error>, expected: (Vec<Outcome>, Option<&str>)) {
    let attempt = Attempt::checked(messages, returned);
    assert_eq!((attempt.outcomes, attempt.broken.as_deref()), expected);
}

#[test]
fn one_outcome_per_message_is_taken_as_is() {
    let outcomes = vec![D, retry("x"), Outcome::Rejected("y".into())];
    check_attempt(3, Ok(outcomes.clone()), (outcomes, None));
}

#[test]
fn too_few_outcomes_make_every_message_a_retry() {
    let reason = "driver error: driver returned 1 outcomes for 2 messages";
    check_attempt(2, ok(&[D]), (vec![retry(reason); 2], None));
}

#[test]
fn too_many_outcomes_make_every_message_a_retry() {
    let reason = "driver error: driver returned 3 outcomes for 2 messages";
    check_attempt(2, ok(&[D, D, D]), (vec![retry(reason); 2], None));
}

#[test]
fn a_driver_error_makes_every_message_a_retry() {
    check_attempt(
        2,
        Err(Error::new(ErrorKind::Connection, "refused")),
        (vec![retry("driver error: refused"); 2], None),
    );
}

#[test]
fn a_driver_panic_also_marks_the_driver_broken() {
    let reason = "driver error: boom";
    check_attempt(1, Err(Error::new(ErrorKind::Panic, "boom")), (vec![retry(reason)], Some(reason)));
}

/// Retries forever, with messages expiring one minute after they were queued.
fn expiring() -> RetryPolicy {
    RetryPolicy { strategy: retry_all(0), jitter: false, max_message_age: Some(std::time::Duration::from_secs(60)) }
}

#[test]
fn a_message_past_the_maximum_age_is_dead_lettered_instead_of_retried() {
    let records = [publish_at(0, "old", NOW - 61_000), publish_at(1, "young", NOW - 59_000), publish_at(2, "ok", NOW)];
    let after = run_with(&expiring(), &[NOW], &records, vec![ok(&[retry("503"), retry("503"), D]), ok(&[D])]);
    assert_eq!(after.batches, [batch(&["old", "young", "ok"]), batch(&["young"])], "only the young one is retried");
    assert_eq!(after.settled, [Settled::Retry, Settled::Commit]);
    assert_eq!(
        after.dead,
        [dead(0, "expired: message age 61000 ms exceeded maxMessageAgeMs (60000 ms); last attempt: retry: 503", 1)]
    );
    assert_eq!(
        after.counters,
        [
            ("totalMsgs", 3),
            ("successfulMsgs", 2),
            ("tmpFailed", 1),
            ("failedMsgs", 1),
            ("successfulIterations", 1),
            ("failedIterations", 1)
        ]
    );
}

#[test]
fn a_pack_whose_retryable_messages_all_expired_is_final() {
    let late = || Outcome::Timeout("late".into());
    let records = [publish_at(0, "a", NOW - 120_000), publish_at(1, "b", NOW - 90_000), publish_at(2, "c", NOW)];
    let after =
        run_with(&expiring(), &[NOW], &records, vec![ok(&[late(), retry("down"), Outcome::Rejected("no".into())])]);
    assert_eq!(after.settled, [Settled::Commit], "nothing is left to retry");
    assert_eq!(
        after.dead,
        [
            dead(2, "rejected: no", 1),
            dead(
                0,
                "expired: message age 120000 ms exceeded maxMessageAgeMs (60000 ms); last attempt: timeout: late",
                1
            ),
            dead(1, "expired: message age 90000 ms exceeded maxMessageAgeMs (60000 ms); last attempt: retry: down", 1),
        ]
    );
    assert_eq!(after.counters, [("totalMsgs", 3), ("timeoutMsgs", 1), ("failedMsgs", 2), ("failedIterations", 1)]);
}

#[test]
fn a_message_that_ages_during_its_retries_is_dead_lettered_then() {
    // Queued 50 s ago: retried on the first attempt, and given up on when it fails again past 60 s.
    let records = [publish_at(0, "x", NOW - 50_000)];
    let down = || ok(&[retry("down")]);
    let after = run_with(&expiring(), &[NOW, NOW + 5_000, NOW + 20_000], &records, vec![down(), down(), down()]);
    assert_eq!(after.settled, [Settled::Retry, Settled::Retry, Settled::Commit]);
    assert_eq!(
        after.dead,
        [dead(0, "expired: message age 70000 ms exceeded maxMessageAgeMs (60000 ms); last attempt: retry: down", 3)]
    );
}

#[test]
fn without_an_age_limit_or_a_timestamp_messages_are_retried_whatever_their_age() {
    let unlimited = RetryPolicy { max_message_age: None, ..expiring() };
    let old = [publish_at(0, "x", 1)];
    assert_eq!(run_with(&unlimited, &[NOW], &old, vec![ok(&[retry("down")])]).settled, [Settled::Retry]);
    let no_timestamp = [publish(0, "x")];
    assert_eq!(run_with(&expiring(), &[NOW], &no_timestamp, vec![ok(&[retry("down")])]).settled, [Settled::Retry]);
}

#[test]
fn the_age_limit_does_not_cut_retries_short_under_a_retry_count() {
    // A young message still runs out of retries the usual way, with the usual reason.
    let policy = RetryPolicy { strategy: retry_all(1), ..expiring() };
    let after = run_with(&policy, &[NOW], &[publish_at(0, "x", NOW)], vec![ok(&[retry("down")]), ok(&[retry("down")])]);
    assert_eq!(after.dead, [dead(0, "retry: down", 2)]);
}
