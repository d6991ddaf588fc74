//! The worker threads of one instance: a fixed number of threads, each sending one request at a
//! time through the shared [`Service`], so a batch goes out concurrently with at most `workers`
//! requests in flight (TBMQ's `maxParallelRequestsCount`).
//!
//! The deadline rule: a request that has not started when the batch's deadline passes is never
//! sent. Each request of a batch has a state that moves once, from pending to either started (by
//! a worker, just before sending) or cancelled (by [`Pool::run`], when it gives up at the
//! deadline); whoever moves it first wins. So a message reported as "not sent" really was not
//! sent, even later (TBMQ sends it anyway after reporting the timeout; we do not).

use std::{
    panic::{catch_unwind, AssertUnwindSafe},
    sync::{
        atomic::{AtomicU8, Ordering},
        Arc, Condvar, Mutex, MutexGuard, PoisonError,
    },
    thread::JoinHandle,
    time::Instant,
};

use crossbeam_channel::{Receiver, Sender};
use trib_plugin_api::driver::Outcome;

use crate::{
    request::Body,
    retry::{self, Exchange},
    service::Service,
};

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
    /// The deadline passed before a worker was free; the request was not sent.
    NotSent,
    /// The request was sent but no answer came before the deadline.
    NoReply,
}

/// The worker threads and the queue that feeds them.
#[derive(Debug)]
pub struct Pool {
    jobs: Option<Sender<Job>>,
    workers: Vec<JoinHandle<()>>,
}

impl Pool {
    /// Starts `workers` threads sending through `service`.
    pub fn new(service: Arc<Service>, workers: usize) -> std::io::Result<Pool> {
        let (jobs, queue) = crossbeam_channel::unbounded::<Job>();
        let mut pool = Pool { jobs: Some(jobs), workers: Vec::with_capacity(workers) };
        for i in 0..workers.max(1) {
            let queue = queue.clone();
            let service = Arc::clone(&service);
            let handle =
                std::thread::Builder::new().name(format!("trib-http-{i}")).spawn(move || work(&service, &queue))?;
            pool.workers.push(handle);
        }
        Ok(pool)
    }

    /// Sends every body (`None` = no body, for GET and DELETE) and returns one completion per
    /// body, in order, by `deadline`.
    ///
    /// Completions are written into the batch's slots by the workers; only the last one wakes
    /// this thread (one wake-up per batch instead of one per request).
    pub fn run(&self, bodies: Vec<Option<Body>>, deadline: Instant) -> Vec<Completion> {
        let count = bodies.len();
        let batch = Arc::new(Batch {
            states: (0..count).map(|_| AtomicU8::new(PENDING)).collect(),
            done: Mutex::new(Done { slots: (0..count).map(|_| None).collect(), missing: count }),
            all_done: Condvar::new(),
        });
        let mut queued = 0;
        if let Some(jobs) = &self.jobs {
            for (slot, body) in bodies.into_iter().enumerate() {
                if jobs.send(Job { slot, body, deadline, batch: Arc::clone(&batch) }).is_err() {
                    break;
                }
                queued += 1;
            }
        }
        // Requests no worker will ever see (the pool is stopped): not sent.
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

    /// Stops the workers: queued requests are dropped unsent, and each worker finishes its
    /// current request (bounded by that request's deadline) before it exits.
    pub fn shutdown(&mut self) {
        self.jobs = None;
        for worker in self.workers.drain(..) {
            let _ = worker.join();
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

/// The per-request states of one batch, and the completions the workers wrote.
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

    /// Cancels `slot`, or finds it already cancelled by a worker that saw the deadline pass
    /// (its `NotSent` may not have reached the slots before [`Pool::run`] took them); false only
    /// when a worker started sending it.
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
}

fn work(service: &Service, queue: &Receiver<Job>) {
    for job in queue.iter() {
        if Instant::now() >= job.deadline {
            if job.batch.cancel(job.slot) {
                job.batch.finish(job.slot, Completion::NotSent);
            }
            continue;
        }
        if !job.batch.start(job.slot) {
            continue;
        }
        let Job { slot, body, deadline, batch } = job;
        // A panic inside the HTTP stack must not kill the worker (the pool would shrink).
        let completion = catch_unwind(AssertUnwindSafe(|| {
            let exchange = service.send(body, deadline);
            let outcome = retry::classify(service.method().as_str(), service.url(), &exchange);
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
}
