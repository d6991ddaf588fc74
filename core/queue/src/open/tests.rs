//! The in-process queue's bounds as read from settings.

use super::*;
use crate::queue::embedded::{DEFAULT_CACHE_MAX_BYTES, DEFAULT_MAX_PARTITION_BYTES};

fn check(settings: &[(&str, &str)], expected: Result<(usize, usize), &str>) {
    let lookup = |name: &str| settings.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string());
    let got = embedded_limits(&lookup).map(|l| (l.max_partition_bytes, l.cache_max_bytes)).map_err(|e| e.name);
    assert_eq!(got, expected.map_err(str::to_string), "{settings:?}");
}

#[test]
fn defaults_are_256_mib_per_partition_and_a_64_mib_cache() {
    check(&[], Ok((DEFAULT_MAX_PARTITION_BYTES, DEFAULT_CACHE_MAX_BYTES)));
    assert_eq!((DEFAULT_MAX_PARTITION_BYTES, DEFAULT_CACHE_MAX_BYTES), (256 << 20, 64 << 20));
}

#[test]
fn settings_override_the_defaults() {
    check(
        &[("TB_QUEUE_IN_MEMORY_MAX_PARTITION_BYTES", "1048576"), ("TB_QUEUE_IN_MEMORY_CACHE_MAX_BYTES", " 0 ")],
        Ok((1_048_576, 0)),
    );
}

#[test]
fn bad_values_name_their_setting() {
    check(&[("TB_QUEUE_IN_MEMORY_CACHE_MAX_BYTES", "64MiB")], Err("TB_QUEUE_IN_MEMORY_CACHE_MAX_BYTES"));
    check(&[("TB_QUEUE_IN_MEMORY_MAX_PARTITION_BYTES", "-1")], Err("TB_QUEUE_IN_MEMORY_MAX_PARTITION_BYTES"));
    check(&[("TB_QUEUE_IN_MEMORY_MAX_PARTITION_BYTES", "0")], Err("TB_QUEUE_IN_MEMORY_MAX_PARTITION_BYTES"));
}
