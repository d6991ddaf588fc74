//! The request threads of the driver library: one pool shared by every instance, whose threads
//! start when requests wait and end after [`THREAD_IDLE`] without work, so an idle integration
//! owns no thread of its own here. Each instance reaches the pool through its [`Pool`], which
//! enforces the instance's `maxParallelRequestsCount` (TBMQ's limit): at most that many of its
//! requests are queued to or held by the shared threads; the rest wait in the instance's own
//! queue, in order, and move up as its requests finish: the thread that finished one sends the
//! instance's next waiting request itself, so a busy instance keeps `maxParallelRequestsCount`
//! threads busy without a hand-over per request. A request holds a thread only while it is
//! being sent.
//!
//! A thread that idles out first closes the kept-alive connections of every instance that sent
//! nothing for as long ([`Service::close_idle`]), the last thread those of every instance (no
//! request can be in flight without a thread); a thread that keeps working does the same at most
//! once per idle period. So connections a burst opened are closed about that long after it.
//!
//! The deadline rule: a request that has not started when the batch's deadline passes is never
//! sent. Each request of a batch has a state that moves once, from pending to either started (by
//! a thread, just before sending) or cancelled (by [`Pool::run`], when it gives up at the
//! deadline); whoever moves it first wins. So a message reported as "not sent" really was not
//! sent, even later (TBMQ sends it anyway after reporting the timeout; we do not).

use std::{
    collections::VecDeque,
    panic::{catch_unwind, AssertUnwindSafe},
    sync::{
        atomic::{AtomicU8, Ordering},
        Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError, Weak,
    },
    time::{Duration, Instant},
};

use trib_plugin_api::driver::Outcome;

use crate::{
    request::Body,
    retry::{self, Exchange},
    service::Service,
};

/// How long a thread of the pool waits for work before it ends.
pub const THREAD_IDLE: Duration = Duration::from_secs(10);

/// The most threads the shared pool runs at once; beyond that, requests wait for a free thread
/// (and the deadline rule applies to them as to any waiting request).
pub const MAX_THREADS: usize = 512;

/// The prefix of the shared pool's thread names (`trib-http-7`).
pub const THREAD_PREFIX: &str = "trib-http-";

/// How one request of a batch ended, as far as [`Pool::run`] knows.
#[derive(Debug)]
pub enum Completion {
    /// The request finished: its outcome, plus the start of the response body for the logs.
    Done {
        /// The classified outcome.
        outcome: Outcome,
        /// The start of a non-2xx response body.
        detail: Option<String>,
    },
    /// The deadline passed before a thread was free; the request was not sent.
    NotSent,
    /// The request was sent but no answer came before the deadline.
    NoReply,
}

/// Threads shared by instances: a queue of ready requests and the threads that send them.
#[derive(Debug)]
pub struct Threads {
    prefix: &'static str,
    max: usize,
    idle: Duration,
    state: Mutex<ThreadsState>,
    work: Condvar,
}

#[derive(Debug, Default)]
struct ThreadsState {
    ready: VecDeque<Job>,
    /// Threads alive.
    alive: usize,
    /// Threads waiting for work.
    waiting: usize,
    /// The number of the next thread's name.
    next: u64,
    /// The instances' services, for closing their idle connections.
    services: Vec<Weak<Service>>,
    /// When idle connections were last closed.
    swept: Option<Instant>,
}

impl Threads {
    /// A pool whose threads are named `prefix` + a number, at most `max` at once, each ending
    /// after `idle` without work.
    pub fn new(prefix: &'static str, max: usize, idle: Duration) -> Arc<Threads> {
        Arc::new(Threads { prefix, max: max.max(1), idle, state: Mutex::default(), work: Condvar::new() })
    }

    /// The pool of this driver library, shared by all its instances.
    pub fn shared() -> Arc<Threads> {
        static SHARED: OnceLock<Arc<Threads>> = OnceLock::new();
        Arc::clone(SHARED.get_or_init(|| Threads::new(THREAD_PREFIX, MAX_THREADS, THREAD_IDLE)))
    }

    /// Threads alive right now.
    pub fn alive(&self) -> usize {
        self.lock().alive
    }

    fn lock(&self) -> MutexGuard<'_, ThreadsState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `jobs` and makes sure a thread will take each one: a waiting thread is woken, or
    /// a new one started (up to the maximum).
    fn push(self: &Arc<Threads>, jobs: Vec<Job>) {
        if jobs.is_empty() {
            return;
        }
        let mut state = self.lock();
        state.ready.extend(jobs);
        let mut spawn = 0;
        while state.ready.len() > state.waiting + spawn && state.alive + spawn < self.max {
            spawn += 1;
        }
        let wake = state.ready.len().min(state.waiting);
        let mut started = 0;
        for _ in 0..spawn {
            let name = format!("{}{}", self.prefix, state.next);
            let threads = Arc::clone(self);
            // A thread that cannot be started leaves its request to the others (or to the
            // deadline rule when there are none).
            if std::thread::Builder::new().name(name).spawn(move || threads.work()).is_ok() {
                state.next += 1;
                started += 1;
            }
        }
        state.alive += started;
        drop(state);
        for _ in 0..wake {
            self.work.notify_one();
        }
    }

    /// A thread's life: take ready requests until none came for `idle`.
    fn work(self: Arc<Threads>) {
        loop {
            let mut state = self.lock();
            let job = loop {
                if let Some(job) = state.ready.pop_front() {
                    break Some(job);
                }
                state.waiting += 1;
                let (next, timeout) = self.work.wait_timeout(state, self.idle).unwrap_or_else(PoisonError::into_inner);
                state = next;
                state.waiting -= 1;
                if timeout.timed_out() && state.ready.is_empty() {
                    break None;
                }
            };
            let Some(job) = job else {
                state.alive -= 1;
                let last = state.alive == 0;
                drop(state);
                self.close_idle_connections(if last { Duration::ZERO } else { self.idle });
                return;
            };
            let sweep = state.swept.is_none_or(|at| at.elapsed() >= self.idle);
            drop(state);
            // The lane's next waiting request takes the finished one's place on this thread: no
            // hand-over to another thread (a wake-up and a context switch per request, and a new
            // thread started whenever none was waiting at that instant).
            let mut job = job;
            loop {
                let lane = Arc::clone(&job.lane);
                execute(job, &lane);
                match lane.release() {
                    Some(next) => job = next,
                    None => break,
                }
            }
            if sweep {
                self.close_idle_connections(self.idle);
            }
        }
    }

    /// Notes an instance's service, whose idle connections the threads close.
    fn register(&self, service: &Arc<Service>) {
        let mut state = self.lock();
        state.services.retain(|s| s.strong_count() > 0);
        state.services.push(Arc::downgrade(service));
    }

    /// Closes the kept-alive connections of the services that sent nothing for `idle`.
    fn close_idle_connections(&self, idle: Duration) {
        let services: Vec<Arc<Service>> = {
            let mut state = self.lock();
            state.swept = Some(Instant::now());
            state.services.retain(|s| s.strong_count() > 0);
            state.services.iter().filter_map(Weak::upgrade).collect()
        };
        for service in services {
            service.close_idle(idle);
        }
    }
}

/// One instance's access to the pool: its service, its limit and its waiting requests.
#[derive(Debug)]
pub struct Pool {
    lane: Arc<Lane>,
    threads: Arc<Threads>,
}

#[derive(Debug)]
struct Lane {
    service: Arc<Service>,
    limit: usize,
    state: Mutex<LaneState>,
    drained: Condvar,
}

#[derive(Debug, Default)]
struct LaneState {
    /// Requests of this instance queued to or held by the threads (at most `limit`).
    in_flight: usize,
    /// Requests waiting for one of those places, in order.
    waiting: VecDeque<Job>,
    closed: bool,
}

impl Lane {
    fn lock(&self) -> MutexGuard<'_, LaneState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A thread is done with one of this lane's requests: the next waiting one takes its place
    /// (returned for the same thread to send), else the lane has one request fewer in flight.
    fn release(&self) -> Option<Job> {
        let mut state = self.lock();
        let next = if state.closed { None } else { state.waiting.pop_front() };
        if next.is_none() {
            state.in_flight -= 1;
            if state.in_flight == 0 {
                self.drained.notify_all();
            }
        }
        next
    }
}

impl Pool {
    /// An instance sending through `service` on the library's shared threads, with at most
    /// `limit` requests in flight.
    pub fn new(service: Arc<Service>, limit: usize) -> Pool {
        Pool::on(Threads::shared(), service, limit)
    }

    /// An instance on the given threads (tests use a pool of their own).
    pub fn on(threads: Arc<Threads>, service: Arc<Service>, limit: usize) -> Pool {
        threads.register(&service);
        let lane = Lane { service, limit: limit.max(1), state: Mutex::default(), drained: Condvar::new() };
        Pool { lane: Arc::new(lane), threads }
    }

    /// Sends every body (`None` = no body, for GET and DELETE) and returns one completion per
    /// body, in order, by `deadline`.
    ///
    /// Completions are written into the batch's slots by the threads; only the last one wakes
    /// this thread (one wake-up per batch instead of one per request).
    pub fn run(&self, bodies: Vec<Option<Body>>, deadline: Instant) -> Vec<Completion> {
        let count = bodies.len();
        let batch = Arc::new(Batch {
            states: (0..count).map(|_| AtomicU8::new(PENDING)).collect(),
            done: Mutex::new(Done { slots: (0..count).map(|_| None).collect(), missing: count }),
            all_done: Condvar::new(),
        });
        let mut ready = Vec::new();
        let mut queued = 0;
        {
            let mut lane = self.lane.lock();
            if !lane.closed {
                for (slot, body) in bodies.into_iter().enumerate() {
                    let job = Job { slot, body, deadline, batch: Arc::clone(&batch), lane: Arc::clone(&self.lane) };
                    if lane.in_flight < self.lane.limit {
                        lane.in_flight += 1;
                        ready.push(job);
                    } else {
                        lane.waiting.push_back(job);
                    }
                    queued += 1;
                }
            }
        }
        self.threads.push(ready);
        // Requests no thread will ever see (the instance is stopped): not sent.
        for slot in queued..count {
            if batch.cancel(slot) {
                batch.finish(slot, Completion::NotSent);
            }
        }
        let mut done = batch.lock();
        while done.missing > 0 {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            done = batch.all_done.wait_timeout(done, deadline - now).unwrap_or_else(PoisonError::into_inner).0;
        }
        let slots = std::mem::take(&mut done.slots);
        drop(done);
        slots
            .into_iter()
            .enumerate()
            .map(|(slot, completion)| {
                completion.unwrap_or_else(|| {
                    if batch.cancel_or_cancelled(slot) {
                        Completion::NotSent
                    } else {
                        Completion::NoReply
                    }
                })
            })
            .collect()
    }

    /// Stops the instance: its waiting and queued requests are dropped unsent, and its requests
    /// being sent finish (each bounded by its deadline) before this returns. Idempotent.
    pub fn shutdown(&mut self) {
        let waiting = {
            let mut lane = self.lane.lock();
            lane.closed = true;
            std::mem::take(&mut lane.waiting)
        };
        drop(waiting);
        // This instance's requests still queued to the threads: taken back, never sent.
        let taken: VecDeque<Job> = {
            let mut state = self.threads.lock();
            let (mine, others) =
                std::mem::take(&mut state.ready).into_iter().partition(|job: &Job| Arc::ptr_eq(&job.lane, &self.lane));
            state.ready = others;
            mine
        };
        let mut lane = self.lane.lock();
        lane.in_flight -= taken.len();
        drop(taken);
        while lane.in_flight > 0 {
            lane = self.lane.drained.wait(lane).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shutdown();
    }
}

const PENDING: u8 = 0;
const STARTED: u8 = 1;
const CANCELLED: u8 = 2;

/// The per-request states of one batch, and the completions the threads wrote.
#[derive(Debug)]
struct Batch {
    states: Vec<AtomicU8>,
    done: Mutex<Done>,
    all_done: Condvar,
}

/// Completions so far; `missing` counts the empty slots.
#[derive(Debug)]
struct Done {
    slots: Vec<Option<Completion>>,
    missing: usize,
}

impl Batch {
    fn lock(&self) -> MutexGuard<'_, Done> {
        self.done.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records the completion of `slot`; the last one wakes [`Pool::run`]. After `run` has
    /// returned the slots are gone and this does nothing.
    fn finish(&self, slot: usize, completion: Completion) {
        let mut done = self.lock();
        let Some(entry) = done.slots.get_mut(slot) else {
            return;
        };
        let first = entry.is_none();
        *entry = Some(completion);
        if first {
            done.missing -= 1;
            if done.missing == 0 {
                self.all_done.notify_one();
            }
        }
    }

    /// Moves `slot` from pending to `to`; false when another party moved it first.
    fn claim(&self, slot: usize, to: u8) -> bool {
        self.states
            .get(slot)
            .is_some_and(|s| s.compare_exchange(PENDING, to, Ordering::AcqRel, Ordering::Acquire).is_ok())
    }

    fn start(&self, slot: usize) -> bool {
        self.claim(slot, STARTED)
    }

    fn cancel(&self, slot: usize) -> bool {
        self.claim(slot, CANCELLED)
    }

    /// Cancels `slot`, or finds it already cancelled by a thread that saw the deadline pass
    /// (its `NotSent` may not have reached the slots before [`Pool::run`] took them); false only
    /// when a thread started sending it.
    fn cancel_or_cancelled(&self, slot: usize) -> bool {
        self.cancel(slot) || self.states.get(slot).is_some_and(|s| s.load(Ordering::Acquire) == CANCELLED)
    }
}

/// One request to send.
#[derive(Debug)]
struct Job {
    slot: usize,
    body: Option<Body>,
    deadline: Instant,
    batch: Arc<Batch>,
    lane: Arc<Lane>,
}

/// Sends one request, unless its deadline passed or its instance stopped (then it is not sent).
fn execute(job: Job, lane: &Lane) {
    let Job { slot, body, deadline, batch, .. } = job;
    if Instant::now() >= deadline || lane.lock().closed {
        if batch.cancel(slot) {
            batch.finish(slot, Completion::NotSent);
        }
        return;
    }
    if !batch.start(slot) {
        return;
    }
    let service = &lane.service;
    // A panic inside the HTTP stack must not kill the thread.
    let completion = catch_unwind(AssertUnwindSafe(|| {
        let exchange = service.send(body, deadline);
        let outcome = retry::classify(service.method().as_str(), service.url(), &exchange, service.status_codes());
        let detail = match exchange {
            Exchange::Response { body_excerpt, .. } if outcome != Outcome::Delivered => Some(body_excerpt),
            _ => None,
        };
        Completion::Done { outcome, detail }
    }))
    .unwrap_or_else(|_| Completion::Done {
        outcome: Outcome::Retry("internal error: the HTTP client panicked".to_string()),
        detail: None,
    });
    batch.finish(slot, completion);
}
