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

use std::time::Duration;

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
}
