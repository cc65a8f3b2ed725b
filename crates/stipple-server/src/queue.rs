//! A bounded first-in-first-out job queue with one worker thread and live events per job.
//!
//! Jobs (generations, trainings) are CPU-bound and synchronous, so one plain thread runs
//! them one at a time with the job function given to `JobQueue::new`; the async side only
//! submits, asks and subscribes, each a short critical section under one mutex that the
//! worker never holds while a job runs. So a `JobQueue` may be called from async handlers
//! directly (except `shutdown` and `drop`, which wait for the worker).
//!
//! A job's life: `submit` puts it at the back (`SubmitError::Full` when `capacity` wait
//! already, which a server answers with 429 and `Retry-After`); it moves up as jobs ahead
//! leave, each move announced as `JobEvent::Queued { position }`; the worker takes it
//! (`Started`), and the job function runs with a `JobContext` to `emit` progress and to
//! poll `is_cancelled`, which turns true on `cancel`, on a `CancelRunning` shutdown, or
//! when the time limit passes; the job ends with one `Finished(Outcome)`. Finished jobs are
//! remembered for `status` and `subscribe` up to a count and an age, then forgotten.
//!
//! How the outcome is decided when the job function returns: a panic is `Panicked`; else,
//! if its cancel flag was set it is `Cancelled`, else if its deadline had passed it is
//! `TimedOut` (what the function returned is dropped in both cases: its context was
//! reporting cancelled); else `Done` or `Failed` by its result. The decision is taken under
//! the queue's lock, so a `cancel` answered `Signalled` always ends in `Cancelled`, and one
//! that comes later is answered `AlreadyFinished`.

mod context;
mod state;
mod subscription;
mod types;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

pub use context::JobContext;
use state::State;
pub use subscription::Subscription;
pub use types::{
    CancelOutcome, JobEvent, JobId, JobState, JobStatus, Outcome, ParseJobIdError, QueueConfig, QueueSnapshot, QueueStartError,
    ShutdownMode, SubmitError, MAX_TIME_LIMIT,
};

/// A job queue for jobs of type `J` whose function emits progress `P` and returns
/// `Result<R, E>`. `Send + Sync`: share it in an `Arc`. Dropping it shuts it down with
/// `ShutdownMode::CancelRunning`.
pub struct JobQueue<J, P: Clone, R: Clone, E: Clone> {
    shared: Arc<Shared<J, P, R, E>>,
    worker: Mutex<Option<JoinHandle<()>>>,
}

struct Shared<J, P, R, E> {
    state: Mutex<State<J, P, R, E>>,
    /// Wakes the worker on a submit or a shutdown.
    wake: Condvar,
}

impl<J, P, R, E> Shared<J, P, R, E>
where
    P: Clone,
    R: Clone,
    E: Clone,
{
    /// The state, with finished jobs past their keeping time forgotten. The state is
    /// consistent between any two statements that can panic (only internal invariant
    /// checks), so a poisoned lock is taken over.
    fn state(&self) -> MutexGuard<'_, State<J, P, R, E>> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.prune();
        state
    }
}

impl<J, P, R, E> JobQueue<J, P, R, E>
where
    J: Send + 'static,
    P: Clone + Send + 'static,
    R: Clone + Send + 'static,
    E: Clone + Send + 'static,
{
    /// Starts the worker thread, which runs `run` on each job in turn.
    pub fn new<F>(config: QueueConfig, run: F) -> Result<Self, QueueStartError>
    where
        F: Fn(&J, &JobContext<'_, P>) -> Result<R, E> + Send + 'static,
    {
        for (name, value) in [("capacity", config.capacity), ("event_buffer", config.event_buffer)] {
            if value == 0 {
                return Err(QueueStartError::Zero { name });
            }
        }
        if config.time_limit.is_zero() || config.time_limit > MAX_TIME_LIMIT {
            return Err(QueueStartError::TimeLimit { limit: config.time_limit });
        }
        let shared = Arc::new(Shared { state: Mutex::new(State::new(config)), wake: Condvar::new() });
        let worker_shared = shared.clone();
        let worker = std::thread::Builder::new()
            .name("job-queue".into())
            .spawn(move || work(&worker_shared, run))
            .map_err(QueueStartError::Spawn)?;
        Ok(JobQueue { shared, worker: Mutex::new(Some(worker)) })
    }

    /// Puts `job` at the back of the queue.
    pub fn submit(&self, job: J) -> Result<JobId, SubmitError> {
        let id = self.shared.state().submit(job)?;
        self.shared.wake.notify_one();
        Ok(id)
    }

    /// Where job `id` stands; `None` if it is unknown or forgotten.
    pub fn status(&self, id: JobId) -> Option<JobStatus<P, R, E>> {
        self.shared.state().status(id)
    }

    /// Cancels job `id`: a waiting job is removed at once, a running one is signalled.
    /// `None` if it is unknown or forgotten.
    pub fn cancel(&self, id: JobId) -> Option<CancelOutcome> {
        self.shared.state().cancel(id)
    }

    /// Follows job `id`'s events; `None` if it is unknown or forgotten.
    pub fn subscribe(&self, id: JobId) -> Option<Subscription<P, R, E>> {
        self.shared.state().subscribe(id)
    }

    /// The running job and the waiting ones.
    pub fn snapshot(&self) -> QueueSnapshot {
        self.shared.state().snapshot()
    }
}

impl<J, P: Clone, R: Clone, E: Clone> JobQueue<J, P, R, E> {
    /// Stops taking jobs (`submit` then fails with `ShuttingDown`), cancels the waiting
    /// jobs, cancels or lets finish the running one as `mode` says, and waits for the
    /// worker thread to end. Blocks: call it from a blocking context. Later calls return at
    /// once; a call from within the job function does not wait (it would wait for itself).
    pub fn shutdown(&self, mode: ShutdownMode) {
        self.shared.state().close(mode == ShutdownMode::CancelRunning);
        self.shared.wake.notify_all();
        let worker = self.worker.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(worker) = worker {
            if worker.thread().id() != std::thread::current().id() {
                // The worker catches the job function's panics; it cannot panic itself
                // short of a broken invariant, already reported by the panic message.
                let _ = worker.join();
            }
        }
    }
}

impl<J, P: Clone, R: Clone, E: Clone> Drop for JobQueue<J, P, R, E> {
    fn drop(&mut self) {
        self.shutdown(ShutdownMode::CancelRunning);
    }
}

/// The worker thread: takes jobs in order and runs them until the queue is closed and empty.
fn work<J, P, R, E, F>(shared: &Shared<J, P, R, E>, run: F)
where
    J: Send,
    P: Clone + Send,
    R: Clone + Send,
    E: Clone + Send,
    F: Fn(&J, &JobContext<'_, P>) -> Result<R, E>,
{
    loop {
        let started = {
            let mut state = shared.state();
            loop {
                if let Some(started) = state.start_next() {
                    break started;
                }
                if state.is_closed_and_idle() {
                    return;
                }
                state = shared.wake.wait(state).unwrap_or_else(PoisonError::into_inner);
            }
        };
        let id = started.id;
        let emit = |progress: P| shared.state().progress(id, progress);
        let context = JobContext { id, cancel: &started.cancel, deadline: started.deadline, emit: &emit };
        let returned = catch_unwind(AssertUnwindSafe(|| run(&started.job, &context)))
            .map_err(|panic| panic_message(panic.as_ref()));
        drop(started.job);
        shared.state().finish_running(returned, started.deadline);
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
        (Some(message), _) => (*message).to_owned(),
        (_, Some(message)) => message.clone(),
        _ => "the job panicked".to_owned(),
    }
}
