//! The queue's vocabulary: ids, events, states, settings and errors.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A job's identifier: positive, increasing in submission order, never reused while the
/// queue lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "u64", try_from = "u64")]
pub struct JobId(pub(crate) u64);

impl JobId {
    /// The integer value.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl From<JobId> for u64 {
    fn from(id: JobId) -> u64 {
        id.0
    }
}

impl TryFrom<u64> for JobId {
    type Error = ParseJobIdError;

    fn try_from(value: u64) -> Result<Self, Self::Error> {
        if value >= 1 {
            Ok(JobId(value))
        } else {
            Err(ParseJobIdError(value.to_string()))
        }
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The text was not a job id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid job id {0:?}: expected a positive decimal integer without sign or leading zeros")]
pub struct ParseJobIdError(String);

impl FromStr for JobId {
    type Err = ParseJobIdError;

    /// Accepts exactly the canonical spelling `Display` writes.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        crate::decimal::parse_positive(s).map(JobId).ok_or_else(|| ParseJobIdError(s.chars().take(40).collect()))
    }
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", content = "value", rename_all = "snake_case")]
pub enum Outcome<R, E> {
    /// The job function returned `Ok`.
    Done(R),
    /// The job function returned `Err`.
    Failed(E),
    /// Cancelled while waiting (removed at once), while running (the job function saw the
    /// flag and returned; what it returned is dropped), or by a shutdown.
    Cancelled,
    /// Still running when its time limit passed; the job function saw its context report
    /// cancelled and returned.
    TimedOut,
    /// The job function panicked (a bug); the message, when it was a string.
    Panicked(String),
}

/// What a subscriber to a job hears, in this order: `Queued` (again each time its
/// position changes), `Started`, any number of `Progress`, then exactly one `Finished`.
/// A job cancelled while waiting goes from `Queued` straight to `Finished`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", content = "data", rename_all = "snake_case")]
pub enum JobEvent<P, R, E> {
    /// Waiting; `position` jobs wait ahead of it (0: it starts when the running job ends).
    Queued { position: usize },
    /// The worker took it.
    Started,
    /// What the job function emitted.
    Progress(P),
    /// The last event.
    Finished(Outcome<R, E>),
}

impl<P, R, E> JobEvent<P, R, E> {
    /// Whether this is the last event of its job.
    pub fn is_finished(&self) -> bool {
        matches!(self, JobEvent::Finished(_))
    }
}

/// Where a job stands.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum JobState<P, R, E> {
    /// Waiting; `position` jobs wait ahead of it.
    Queued { position: usize },
    /// Running; the last progress it emitted.
    Running { progress: Option<P> },
    /// Ended.
    Finished { outcome: Outcome<R, E> },
}

/// A job's state and times (milliseconds since the Unix epoch, UTC).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobStatus<P, R, E> {
    pub id: JobId,
    #[serde(flatten)]
    pub state: JobState<P, R, E>,
    pub submitted_ms: u64,
    pub started_ms: Option<u64>,
    pub finished_ms: Option<u64>,
}

/// The queue's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    /// Most jobs waiting at once (the running one not counted); a submit beyond is `Full`.
    pub capacity: usize,
    /// Longest a job may run, from its start; past it its context reports cancelled and it
    /// ends `TimedOut`. At most `MAX_TIME_LIMIT`.
    pub time_limit: Duration,
    /// Most finished jobs remembered for `status` and `subscribe` (the oldest go first).
    pub keep_finished: usize,
    /// How long a finished job is remembered.
    pub keep_finished_for: Duration,
    /// Events buffered per subscriber; one that falls further behind skips the oldest
    /// (never the last, `Finished`, which is the newest).
    pub event_buffer: usize,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            // A studio on one machine: 16 waiting generations is minutes of work already.
            capacity: 16,
            // Generously above a large image on a CPU.
            time_limit: Duration::from_secs(600),
            keep_finished: 256,
            keep_finished_for: Duration::from_secs(600),
            // One event per sampling step: a subscriber may fall 64 steps behind.
            event_buffer: 64,
        }
    }
}

/// The largest `QueueConfig::time_limit`: a year, far beyond any job, and far from the
/// overflow of a deadline computed as start + limit.
pub const MAX_TIME_LIMIT: Duration = Duration::from_secs(365 * 24 * 3600);

/// A settings value the queue cannot work with, or no thread for its worker.
#[derive(Debug, thiserror::Error)]
pub enum QueueStartError {
    #[error("queue setting {name} must be at least 1, got 0")]
    Zero { name: &'static str },
    #[error("queue time limit must lie in (0, {} s], got {limit:?}", MAX_TIME_LIMIT.as_secs())]
    TimeLimit { limit: Duration },
    #[error("could not start the queue's worker thread: {0}")]
    Spawn(#[source] std::io::Error),
}

/// Why a job was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// `capacity` jobs are waiting. `retry_after` (whole seconds, at least one) estimates
    /// when the running job ends and frees a place: the mean run time of recent jobs less
    /// what the running one has run.
    #[error("the queue is full; retry in {} s", retry_after.as_secs())]
    Full { retry_after: Duration },
    /// The queue is shutting down and takes no more jobs.
    #[error("the queue is shutting down and takes no more jobs")]
    ShuttingDown,
}

/// What `cancel` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelOutcome {
    /// It was waiting: removed, and finished as `Cancelled`.
    Removed,
    /// It is running: its flag is set, and it finishes when its function next polls it.
    Signalled,
    /// It had already finished; nothing changed.
    AlreadyFinished,
}

/// What `shutdown` does with the running job (waiting jobs are always cancelled).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownMode {
    /// Set its cancel flag, then wait for it to return.
    CancelRunning,
    /// Let it finish (within its time limit).
    FinishRunning,
}

/// The queue at a glance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueSnapshot {
    pub running: Option<JobId>,
    /// Waiting jobs, next first.
    pub waiting: Vec<JobId>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_parse_only_in_canonical_form() {
        assert_eq!("12".parse::<JobId>().unwrap(), JobId(12));
        assert_eq!(JobId(12).to_string(), "12");
        assert_eq!(serde_json::from_str::<JobId>("12").unwrap(), JobId(12));
        assert!(serde_json::from_str::<JobId>("0").is_err());
        for bad in ["0", "012", "-1", "x"] {
            assert!(bad.parse::<JobId>().is_err(), "{bad:?}");
        }
    }
}
