//! The binary's memory allocator: jemalloc on Linux with glibc, with its background thread
//! purging freed pages.
//!
//! glibc's allocator kept memory after a burst even with `malloc_trim`: after 100 integrations
//! delivered 10,000 messages of 4 KB each, the program held 5 MiB more than before, yet the
//! process stayed 54 MiB above its RSS before the traffic (32 MiB with `MALLOC_ARENA_MAX=2`):
//! pages pinned by a few live blocks among freed ones. jemalloc keeps small and large blocks
//! apart and gives back the pages of freed runs after `dirty_decay_ms` (10 s): 30 s after the
//! same traffic the process is 12 MiB above (`cargo bench -p trib-tests --bench queue_backlog`).
//!
//! Driver libraries are separate `cdylib`s and allocate with the C library's `malloc` (their
//! `abi_stable` values are freed by the side that allocated them); `trib_ops::memory` trims that
//! heap. `/metrics` shows both: `process_jemalloc_allocated_bytes` and
//! `process_jemalloc_resident_bytes` (the binary's), `process_heap_allocated_bytes` and
//! `process_heap_free_bytes` (glibc's, the drivers').

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Starts jemalloc's background thread (which returns freed pages while the process is idle;
/// without it jemalloc purges only when it allocates) and registers its gauges.
pub fn start() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if let Err(e) = tikv_jemalloc_ctl::background_thread::write(true) {
            tracing::warn!(error = %e, "jemalloc's background thread did not start: freed memory is given back only while the process allocates.");
        }
        trib_ops::add_collector(Box::new(render));
    }
}

/// Appends jemalloc's gauges to a Prometheus text (stale by at most one scrape if the statistics
/// cannot be refreshed).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn render(text: &mut String) {
    use std::fmt::Write;
    let _ = tikv_jemalloc_ctl::epoch::advance();
    let (Ok(allocated), Ok(resident)) =
        (tikv_jemalloc_ctl::stats::allocated::read(), tikv_jemalloc_ctl::stats::resident::read())
    else {
        return;
    };
    let _ = write!(
        text,
        "# TYPE process_jemalloc_allocated_bytes gauge\nprocess_jemalloc_allocated_bytes {allocated}\n\
         # TYPE process_jemalloc_resident_bytes gauge\nprocess_jemalloc_resident_bytes {resident}\n"
    );
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    /// The binary's allocations go to jemalloc, and its gauges say so.
    #[test]
    fn the_binary_allocates_with_jemalloc_and_renders_its_gauges() {
        let block = vec![7u8; 8 << 20];
        let mut text = String::new();
        super::render(&mut text);
        let allocated: usize = text
            .lines()
            .find_map(|l| l.strip_prefix("process_jemalloc_allocated_bytes "))
            .and_then(|v| v.parse().ok())
            .expect("the allocated gauge");
        assert!(allocated >= 8 << 20, "{allocated}: the 8 MiB block is not jemalloc's\n{text}");
        assert!(text.contains("\nprocess_jemalloc_resident_bytes "), "{text}");
        drop(block);
    }
}
