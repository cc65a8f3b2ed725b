//! What a running job sees of the queue.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::JobId;

/// Handed to the job function for the duration of one job: poll `is_cancelled` at each step
/// and return soon after it reports `true`; `emit` progress for the job's subscribers.
pub struct JobContext<'a, P> {
    pub(crate) id: JobId,
    pub(crate) cancel: &'a AtomicBool,
    pub(crate) deadline: Instant,
    pub(crate) emit: &'a (dyn Fn(P) + Sync + 'a),
}

impl<P> JobContext<'_, P> {
    /// The running job's id.
    pub fn id(&self) -> JobId {
        self.id
    }

    /// Whether the job should stop: it was cancelled, the queue is shutting down with
    /// `CancelRunning`, or its time limit has passed. Once true, it stays true.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::Acquire) || Instant::now() >= self.deadline
    }

    /// When the job's time limit passes.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Sends `progress` to the job's subscribers (and keeps it as the job's last progress
    /// for `status` and for late subscribers).
    pub fn emit(&self, progress: P) {
        (self.emit)(progress)
    }
}
