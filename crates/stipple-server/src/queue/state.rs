//! The queue's book-keeping, kept behind one mutex. Every event is sent while that mutex is
//! held, so a subscriber that copies the history and subscribes under it misses nothing and
//! hears nothing twice.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::broadcast;

use super::{CancelOutcome, JobEvent, JobId, JobState, JobStatus, Outcome, QueueConfig, QueueSnapshot, SubmitError, Subscription};

/// The run-time estimate before any job has finished, for `SubmitError::Full`.
const FIRST_ESTIMATE: Duration = Duration::from_secs(5);
/// Weight of the newest run time in the running mean (an exponential moving average over
/// roughly the last 1/α = 5 jobs).
const MEAN_WEIGHT: f64 = 0.2;

enum Phase<J, P, R, E> {
    Waiting { job: J, position: usize },
    Running { progress: Option<P>, cancel: Arc<AtomicBool> },
    Finished { outcome: Outcome<R, E>, started: bool, progress: Option<P> },
}

struct Entry<J, P, R, E> {
    phase: Phase<J, P, R, E>,
    submitted_ms: u64,
    started_ms: Option<u64>,
    finished_ms: Option<u64>,
    /// Dropped when the job finishes, which ends every live receiver after `Finished`.
    events: Option<broadcast::Sender<JobEvent<P, R, E>>>,
}

/// A job the worker has taken.
pub(crate) struct Started<J> {
    pub id: JobId,
    pub job: J,
    pub cancel: Arc<AtomicBool>,
    pub deadline: Instant,
}

pub(crate) struct State<J, P, R, E> {
    config: QueueConfig,
    jobs: HashMap<JobId, Entry<J, P, R, E>>,
    waiting: VecDeque<JobId>,
    running: Option<(JobId, Instant)>,
    /// Finished jobs, oldest first, with when they finished.
    finished: VecDeque<(JobId, Instant)>,
    last_id: u64,
    accepting: bool,
    mean_run: Option<Duration>,
}

impl<J, P: Clone, R: Clone, E: Clone> State<J, P, R, E> {
    pub fn new(config: QueueConfig) -> Self {
        State {
            config,
            jobs: HashMap::new(),
            waiting: VecDeque::new(),
            running: None,
            finished: VecDeque::new(),
            last_id: 0,
            accepting: true,
            mean_run: None,
        }
    }

    pub fn submit(&mut self, job: J) -> Result<JobId, SubmitError> {
        if !self.accepting {
            return Err(SubmitError::ShuttingDown);
        }
        if self.waiting.len() >= self.config.capacity {
            return Err(SubmitError::Full { retry_after: self.retry_after() });
        }
        self.last_id += 1;
        let id = JobId(self.last_id);
        let position = self.waiting.len();
        let (events, _) = broadcast::channel(self.config.event_buffer);
        let entry = Entry {
            phase: Phase::Waiting { job, position },
            submitted_ms: now_ms(),
            started_ms: None,
            finished_ms: None,
            events: Some(events),
        };
        self.jobs.insert(id, entry);
        self.waiting.push_back(id);
        Ok(id)
    }

    /// Moves the next waiting job to running, for the worker.
    pub fn start_next(&mut self) -> Option<Started<J>> {
        let id = self.waiting.pop_front()?;
        let entry = self.jobs.get_mut(&id).expect("a waiting id has its entry");
        let cancel = Arc::new(AtomicBool::new(false));
        let running = Phase::Running { progress: None, cancel: cancel.clone() };
        let Phase::Waiting { job, .. } = std::mem::replace(&mut entry.phase, running) else {
            unreachable!("a waiting id is in the waiting phase")
        };
        entry.started_ms = Some(now_ms());
        let now = Instant::now();
        self.running = Some((id, now));
        self.send(id, JobEvent::Started);
        self.renumber_from(0);
        Some(Started { id, job, cancel, deadline: now + self.config.time_limit })
    }

    pub fn progress(&mut self, id: JobId, progress: P) {
        if let Some(Entry { phase: Phase::Running { progress: last, .. }, .. }) = self.jobs.get_mut(&id) {
            *last = Some(progress.clone());
            self.send(id, JobEvent::Progress(progress));
        }
    }

    /// Records the running job's end from what its function returned (`Err`: it panicked,
    /// with this message). The outcome is decided here, under the lock `cancel` takes too, so
    /// a `cancel` answered `Signalled` always ends the job `Cancelled` (unless it panicked).
    pub fn finish_running(&mut self, returned: Result<Result<R, E>, String>, deadline: Instant) {
        let Some((id, since)) = self.running.take() else { return };
        let cancelled = matches!(
            self.jobs.get(&id),
            Some(Entry { phase: Phase::Running { cancel, .. }, .. }) if cancel.load(Ordering::Acquire)
        );
        let outcome = match returned {
            Err(message) => Outcome::Panicked(message),
            Ok(_) if cancelled => Outcome::Cancelled,
            Ok(_) if Instant::now() >= deadline => Outcome::TimedOut,
            Ok(Ok(done)) => Outcome::Done(done),
            Ok(Err(failed)) => Outcome::Failed(failed),
        };
        if !cancelled {
            let run = since.elapsed();
            self.mean_run = Some(match self.mean_run {
                None => run,
                Some(mean) => mean.mul_f64(1.0 - MEAN_WEIGHT) + run.mul_f64(MEAN_WEIGHT),
            });
        }
        self.finish(id, outcome);
    }

    pub fn cancel(&mut self, id: JobId) -> Option<CancelOutcome> {
        match &self.jobs.get(&id)?.phase {
            Phase::Finished { .. } => Some(CancelOutcome::AlreadyFinished),
            Phase::Running { cancel, .. } => {
                cancel.store(true, Ordering::Release);
                Some(CancelOutcome::Signalled)
            }
            Phase::Waiting { .. } => {
                if let Some(index) = self.waiting.iter().position(|&w| w == id) {
                    self.waiting.remove(index);
                    self.renumber_from(index);
                }
                self.finish(id, Outcome::Cancelled);
                Some(CancelOutcome::Removed)
            }
        }
    }

    /// Stops accepting jobs and cancels the waiting ones; with `cancel_running`, also sets
    /// the running job's flag.
    pub fn close(&mut self, cancel_running: bool) {
        self.accepting = false;
        while let Some(id) = self.waiting.pop_front() {
            self.finish(id, Outcome::Cancelled);
        }
        if let Some((id, _)) = self.running.filter(|_| cancel_running) {
            self.cancel(id);
        }
    }

    /// Whether the worker has nothing left to do, ever.
    pub fn is_closed_and_idle(&self) -> bool {
        !self.accepting && self.waiting.is_empty()
    }

    pub fn status(&self, id: JobId) -> Option<JobStatus<P, R, E>> {
        let entry = self.jobs.get(&id)?;
        let state = match &entry.phase {
            Phase::Waiting { position, .. } => JobState::Queued { position: *position },
            Phase::Running { progress, .. } => JobState::Running { progress: progress.clone() },
            Phase::Finished { outcome, .. } => JobState::Finished { outcome: outcome.clone() },
        };
        Some(JobStatus { id, state, submitted_ms: entry.submitted_ms, started_ms: entry.started_ms, finished_ms: entry.finished_ms })
    }

    /// The events that bring a new subscriber to the job's present state (the latest
    /// position; or `Started` and the last progress; then `Finished`), and a receiver of
    /// the events to come (none once finished).
    pub fn subscribe(&self, id: JobId) -> Option<Subscription<P, R, E>> {
        let entry = self.jobs.get(&id)?;
        let started_with = |progress: &Option<P>| {
            let mut events = vec![JobEvent::Started];
            events.extend(progress.clone().map(JobEvent::Progress));
            events
        };
        let history = match &entry.phase {
            Phase::Waiting { position, .. } => vec![JobEvent::Queued { position: *position }],
            Phase::Running { progress, .. } => started_with(progress),
            Phase::Finished { outcome, started, progress } => {
                let mut events = if *started { started_with(progress) } else { Vec::new() };
                events.push(JobEvent::Finished(outcome.clone()));
                events
            }
        };
        Some(Subscription::new(history, entry.events.as_ref().map(broadcast::Sender::subscribe)))
    }

    pub fn snapshot(&self) -> QueueSnapshot {
        QueueSnapshot { running: self.running.map(|(id, _)| id), waiting: self.waiting.iter().copied().collect() }
    }

    /// Forgets finished jobs beyond the configured count and age.
    pub fn prune(&mut self) {
        while let Some(&(id, at)) = self.finished.front() {
            if self.finished.len() <= self.config.keep_finished && at.elapsed() < self.config.keep_finished_for {
                break;
            }
            self.finished.pop_front();
            self.jobs.remove(&id);
        }
    }

    fn finish(&mut self, id: JobId, outcome: Outcome<R, E>) {
        let Some(entry) = self.jobs.get_mut(&id) else { return };
        let (started, progress) = match &mut entry.phase {
            Phase::Running { progress, .. } => (true, progress.take()),
            _ => (false, None),
        };
        entry.phase = Phase::Finished { outcome: outcome.clone(), started, progress };
        entry.finished_ms = Some(now_ms());
        self.send(id, JobEvent::Finished(outcome));
        if let Some(entry) = self.jobs.get_mut(&id) {
            entry.events = None;
        }
        self.finished.push_back((id, Instant::now()));
        self.prune();
    }

    /// Gives the waiting jobs from index `from` on their new positions.
    fn renumber_from(&mut self, from: usize) {
        for index in from..self.waiting.len() {
            let id = self.waiting[index];
            if let Some(Entry { phase: Phase::Waiting { position, .. }, .. }) = self.jobs.get_mut(&id) {
                *position = index;
            }
            self.send(id, JobEvent::Queued { position: index });
        }
    }

    fn send(&self, id: JobId, event: JobEvent<P, R, E>) {
        if let Some(events) = self.jobs.get(&id).and_then(|e| e.events.as_ref()) {
            // An error only says that nobody listens now.
            let _ = events.send(event);
        }
    }

    fn retry_after(&self) -> Duration {
        let mean = self.mean_run.unwrap_or(FIRST_ESTIMATE);
        let ran = self.running.map_or(Duration::ZERO, |(_, since)| since.elapsed());
        Duration::from_secs(mean.saturating_sub(ran).as_secs_f64().ceil().max(1.0) as u64)
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
