//! Login hardening shared by the REST administrator login and MQTT passwords.
//!
//! * [`PasswordPool`]: argon2 hashing and verification on tokio's blocking pool behind a
//!   semaphore, so that a flood of logins never runs a hash on an async worker and never holds
//!   more than a fixed number of blocking threads. A login for an unknown user verifies against a
//!   dummy hash, so it costs what a wrong password costs (no user enumeration by timing).
//! * [`Lockout`]: after `max_failed_attempts` failures in a row for one name, the name is refused
//!   (even with the right password) for `lockout`, without any hashing.
//!
//! What a "name" is (an administrator's e-mail, an MQTT user name or client id) is the caller's
//! choice; this module knows nothing about users or credentials.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use parking_lot::Mutex;
use tokio::sync::Semaphore;

#[cfg(test)]
mod tests;

/// ThingsBoard's default `maxFailedLoginAttempts` (TBMQ itself has no lockout).
pub const DEFAULT_MAX_FAILED_ATTEMPTS: u32 = 5;
/// How long a name stays locked after too many failures.
pub const DEFAULT_LOCKOUT: Duration = Duration::from_secs(300);
/// Names tracked at most; past it, names whose lock expired are forgotten first, then the oldest.
const MAX_TRACKED_NAMES: usize = 100_000;

/// Why a password could not be hashed.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// argon2 refused the input.
    #[error("cannot hash password: {0}")]
    Hash(String),
    /// The blocking task did not finish (the runtime is shutting down).
    #[error("password hashing was interrupted")]
    Interrupted,
}

/// Counters of a [`PasswordPool`], for tests and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// Hashes and verifications finished.
    pub completed: u64,
    /// The most that ever ran at the same time.
    pub max_concurrent: usize,
    /// The thread the last one ran on.
    pub last_thread: Option<ThreadId>,
}

/// argon2 on a bounded share of tokio's blocking pool.
#[derive(Debug, Clone)]
pub struct PasswordPool {
    inner: Arc<PoolInner>,
}

#[derive(Debug)]
struct PoolInner {
    permits: Semaphore,
    running: AtomicUsize,
    max_concurrent: AtomicUsize,
    completed: AtomicU64,
    last_thread: Mutex<Option<ThreadId>>,
}

impl PasswordPool {
    /// A pool running at most `max_concurrent` (at least 1) hashes at once.
    pub fn new(max_concurrent: usize) -> PasswordPool {
        PasswordPool {
            inner: Arc::new(PoolInner {
                permits: Semaphore::new(max_concurrent.max(1)),
                running: AtomicUsize::new(0),
                max_concurrent: AtomicUsize::new(0),
                completed: AtomicU64::new(0),
                last_thread: Mutex::new(None),
            }),
        }
    }

    /// A pool as wide as the machine has cores: hashing is CPU-bound, more threads only queue.
    pub fn with_default_size() -> PasswordPool {
        PasswordPool::new(std::thread::available_parallelism().map_or(2, usize::from))
    }

    /// The process's pool: every login of the process (REST and MQTT) shares one bound.
    pub fn shared() -> PasswordPool {
        static SHARED: OnceLock<PasswordPool> = OnceLock::new();
        SHARED.get_or_init(PasswordPool::with_default_size).clone()
    }

    /// Hashes `password` with argon2id and a random salt (a PHC string).
    pub async fn hash(&self, password: String) -> Result<String, PasswordError> {
        self.run(move || hash_password(&password)).await.unwrap_or(Err(PasswordError::Interrupted))
    }

    /// Whether `password` matches one of `hashes`: the index of the first that does. With no
    /// hashes (an unknown user) it verifies against a dummy hash and answers `None`, so that the
    /// answer takes as long as for a known user with a wrong password.
    pub async fn verify_any(&self, hashes: Vec<String>, password: Vec<u8>) -> Option<usize> {
        self.run(move || {
            if hashes.is_empty() {
                verify(dummy_hash(), &password);
                return None;
            }
            hashes.iter().position(|h| verify(h, &password))
        })
        .await
        .flatten()
    }

    /// What the pool did so far.
    pub fn stats(&self) -> PoolStats {
        PoolStats {
            completed: self.inner.completed.load(Ordering::Relaxed),
            max_concurrent: self.inner.max_concurrent.load(Ordering::Relaxed),
            last_thread: *self.inner.last_thread.lock(),
        }
    }

    async fn run<R: Send + 'static>(&self, work: impl FnOnce() -> R + Send + 'static) -> Option<R> {
        let _permit = self.inner.permits.acquire().await.ok()?;
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let now = inner.running.fetch_add(1, Ordering::SeqCst) + 1;
            inner.max_concurrent.fetch_max(now, Ordering::SeqCst);
            *inner.last_thread.lock() = Some(std::thread::current().id());
            let result = work();
            inner.running.fetch_sub(1, Ordering::SeqCst);
            inner.completed.fetch_add(1, Ordering::Relaxed);
            result
        })
        .await
        .ok()
    }
}

/// Hashes a password with argon2id and a random salt, synchronously (for tools and startup).
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Whether `password` matches the PHC string `hash`; a hash that does not parse matches nothing.
/// Synchronous and slow: call it through [`PasswordPool`] from async code.
pub fn verify(hash: &str, password: &[u8]) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| Argon2::default().verify_password(password, &h).is_ok())
}

/// A hash of a random password, with the default parameters: what an unknown user is checked
/// against.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let random: [u8; 16] = std::array::from_fn(|_| rand_byte());
        hash_password(&format!("{random:?}")).expect("argon2 with default parameters hashes any input")
    })
}

fn rand_byte() -> u8 {
    use argon2::password_hash::rand_core::RngCore;
    (OsRng.next_u32() & 0xff) as u8
}

/// Failed logins per name, and the names locked because of them.
#[derive(Debug)]
pub struct Lockout {
    max_failed_attempts: u32,
    duration: Duration,
    names: Mutex<HashMap<String, Failures>>,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    locked_until: Option<Instant>,
}

impl Lockout {
    /// Locks a name for `duration` after `max_failed_attempts` failures in a row; 0 attempts or a
    /// zero duration turn the lockout off.
    pub fn new(max_failed_attempts: u32, duration: Duration) -> Lockout {
        Lockout { max_failed_attempts, duration, names: Mutex::new(HashMap::new()) }
    }

    /// Whether `name` is locked now.
    pub fn is_locked(&self, name: &str) -> bool {
        self.is_locked_at(name, Instant::now())
    }

    /// Counts a failure of `name`; returns whether this failure locked it.
    pub fn failed(&self, name: &str) -> bool {
        self.failed_at(name, Instant::now())
    }

    /// Forgets the failures of `name` after a successful login.
    pub fn succeeded(&self, name: &str) {
        self.names.lock().remove(name);
    }

    fn enabled(&self) -> bool {
        self.max_failed_attempts > 0 && !self.duration.is_zero()
    }

    fn is_locked_at(&self, name: &str, now: Instant) -> bool {
        self.enabled() && self.names.lock().get(name).and_then(|f| f.locked_until).is_some_and(|until| now < until)
    }

    fn failed_at(&self, name: &str, now: Instant) -> bool {
        if !self.enabled() {
            return false;
        }
        let mut names = self.names.lock();
        if names.len() >= MAX_TRACKED_NAMES && !names.contains_key(name) {
            forget_some(&mut names, now);
        }
        let entry = names.entry(name.to_owned()).or_insert(Failures { count: 0, last: now, locked_until: None });
        if entry.locked_until.is_some_and(|until| now >= until) {
            // The lock ran out: the name starts again with a clean count.
            *entry = Failures { count: 0, last: now, locked_until: None };
        }
        entry.count += 1;
        entry.last = now;
        if entry.count >= self.max_failed_attempts && entry.locked_until.is_none() {
            entry.locked_until = Some(now + self.duration);
            return true;
        }
        false
    }
}

/// Makes room in a full table: expired locks go first, then the least recently failed tenth.
fn forget_some(names: &mut HashMap<String, Failures>, now: Instant) {
    names.retain(|_, f| f.locked_until.is_none_or(|until| now < until));
    if names.len() < MAX_TRACKED_NAMES {
        return;
    }
    let mut by_age: Vec<(Instant, String)> = names.iter().map(|(n, f)| (f.last, n.clone())).collect();
    by_age.sort();
    for (_, name) in by_age.into_iter().take(MAX_TRACKED_NAMES / 10) {
        names.remove(&name);
    }
}
