//! Memory that traffic used comes back to the system once it is freed.
//!
//! glibc's allocator keeps freed memory in its arenas (one per thread that allocated, up to
//! eight per core) instead of returning it: after 1,000,000 messages of 4 KB went through 100
//! integrations, an all-in-one process held 520 MiB of RSS, of which `malloc_trim` gave back
//! 345 MiB (`cargo bench -p trib-tests --bench queue_backlog`). [`start_trimmer`] checks every
//! interval how much the arenas hold free and trims when it is more than [`TRIM_ABOVE`]; the
//! check (`mallinfo2`) and the trim walk the arenas under their locks, a few milliseconds at most
//! for a large heap, so it runs at most once per interval. Other C libraries return memory on
//! their own or not at all; there it does nothing.
//!
//! A trim gives back only memory that was freed. A `VecDeque` never frees the room a burst made
//! it grow to: a partition of the embedded queue that held 10,000 records keeps room for 16,384
//! entries (1 MiB) after they were consumed, and 100 such integrations kept 100 MiB for good.
//! Queues that fill up in bursts call [`shrink_drained`] after taking entries out.

use std::{collections::VecDeque, time::Duration};

/// The capacity [`shrink_drained`] never goes below (small queues are not worth shrinking).
pub const KEEP_CAPACITY: usize = 64;

/// Gives back the room of a queue that drained after a burst: when it holds less than a quarter
/// of its capacity, it shrinks to twice its length (not below [`KEEP_CAPACITY`]). Cheap enough
/// to call after every pop: each shrink copies at most a quarter of the capacity, and a queue
/// must halve again before the next one.
pub fn shrink_drained<T>(queue: &mut VecDeque<T>) {
    if queue.capacity() > KEEP_CAPACITY && queue.len() < queue.capacity() / 4 {
        queue.shrink_to((queue.len() * 2).max(KEEP_CAPACITY));
    }
}

/// Free bytes held by the allocator above which a trim is worth its cost.
pub const TRIM_ABOVE: usize = 32 * 1024 * 1024;

/// Starts a thread that trims the allocator's free memory every `interval` when it holds more
/// than [`TRIM_ABOVE`] (zero interval: nothing is started). Returns whether it started.
pub fn start_trimmer(interval: Duration) -> bool {
    if interval.is_zero() || !cfg!(all(target_os = "linux", target_env = "gnu")) {
        return false;
    }
    std::thread::Builder::new()
        .name("malloc-trim".into())
        .spawn(move || loop {
            std::thread::sleep(interval);
            trim_if_worth_it();
        })
        .is_ok()
}

/// The allocator's view of the heap: bytes handed out to the program (`allocated`, large blocks
/// mapped on their own included) and bytes it keeps free in its arenas (`free`). Together with
/// RSS they tell what a process holds after a burst: `allocated` back near idle with RSS still
/// high is memory the allocator cannot give back (fragments of pages partly in use); `allocated`
/// itself high is memory the program still holds. `None` outside glibc.
pub fn heap() -> Option<Heap> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: a plain glibc call without arguments; it takes the arena locks itself.
        let info = unsafe { libc::mallinfo2() };
        return Some(Heap { allocated: info.uordblks + info.hblkhd, free: info.fordblks });
    }
    #[allow(unreachable_code)]
    None
}

/// See [`heap`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heap {
    pub allocated: usize,
    pub free: usize,
}

/// Appends the [`heap`] gauges (`process_heap_allocated_bytes`, `process_heap_free_bytes`) to a
/// Prometheus text; nothing outside glibc. A [`crate::Collector`]: `/metrics` renders it.
pub fn render_heap(text: &mut String) {
    use std::fmt::Write;
    if let Some(Heap { allocated, free }) = heap() {
        let _ = write!(
            text,
            "# TYPE process_heap_allocated_bytes gauge\nprocess_heap_allocated_bytes {allocated}\n\
             # TYPE process_heap_free_bytes gauge\nprocess_heap_free_bytes {free}\n"
        );
    }
}

/// Trims when the arenas hold more than [`TRIM_ABOVE`] free; returns the free bytes there were.
pub fn trim_if_worth_it() -> Option<usize> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: both are plain glibc calls without arguments that point anywhere; glibc takes
        // the arena locks itself, so they are safe to call while other threads allocate.
        let free = unsafe { libc::mallinfo2() }.fordblks;
        if free > TRIM_ABOVE {
            // SAFETY: as above; 0 keeps no padding at the top of the heap.
            unsafe { libc::malloc_trim(0) };
            return Some(free);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Freed small blocks stay with the allocator until a trim, which happens only when there are
    /// enough of them.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn a_trim_happens_when_enough_is_free() {
        // 128 MiB in 4 KiB blocks (below glibc's mmap threshold: they come from an arena); every
        // other one is freed, so the holes cannot merge into the top of the heap (which glibc
        // gives back on its own) and stay with the allocator.
        let mut blocks: Vec<Option<Vec<u8>>> = (0..32_768).map(|i| Some(vec![i as u8; 4096])).collect();
        for block in blocks.iter_mut().step_by(2) {
            *block = None;
        }
        let free = trim_if_worth_it().expect("64 MiB freed in small blocks is worth a trim");
        assert!(free > TRIM_ABOVE, "{free}");
        drop(blocks);
        assert!(!start_trimmer(Duration::ZERO), "a zero interval starts nothing");
    }

    /// A block mapped on its own counts in `allocated`; the Prometheus text names both gauges.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn the_heap_gauges_follow_allocations() {
        // Other tests allocate and free at the same time, so only the block itself is certain.
        let block = vec![1u8; 16 << 20];
        let during = heap().expect("glibc").allocated;
        assert!(during >= 16 << 20, "{during}");
        drop(block);
        let mut text = String::new();
        render_heap(&mut text);
        assert!(text.contains("\nprocess_heap_allocated_bytes "), "{text}");
        assert!(text.contains("\nprocess_heap_free_bytes "), "{text}");
    }

    #[test]
    fn a_drained_queue_gives_its_room_back_and_a_busy_one_keeps_it() {
        let mut queue: VecDeque<u64> = (0..10_000).collect();
        let full = queue.capacity();
        while queue.len() > 3_000 {
            queue.pop_front();
            shrink_drained(&mut queue);
        }
        // Still more than a quarter full: nothing was given back.
        assert_eq!(queue.capacity(), full);
        while queue.pop_front().is_some() {
            shrink_drained(&mut queue);
        }
        assert_eq!(queue.capacity(), KEEP_CAPACITY);
        // What is left survives every shrink, in order.
        let mut queue: VecDeque<u64> = (0..10_000).collect();
        for _ in 0..9_990 {
            queue.pop_front();
            shrink_drained(&mut queue);
        }
        assert!(queue.capacity() < 128, "{}", queue.capacity());
        assert!(queue.iter().copied().eq(9_990..10_000));
    }
}
