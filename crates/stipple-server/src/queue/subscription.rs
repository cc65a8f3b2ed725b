//! Following one job's events: the history so far, then the live ones.

use std::collections::VecDeque;

use tokio::sync::broadcast::{self, error::RecvError};

use super::JobEvent;

/// A job's events for one subscriber: first the events that bring it to the job's present
/// state (`Queued` with the current position; or `Started` and the last `Progress`; then
/// `Finished` if it has ended), then each new event as it happens, ending with `Finished`.
pub struct Subscription<P, R, E> {
    history: VecDeque<JobEvent<P, R, E>>,
    live: Option<broadcast::Receiver<JobEvent<P, R, E>>>,
}

impl<P: Clone, R: Clone, E: Clone> Subscription<P, R, E> {
    pub(crate) fn new(history: Vec<JobEvent<P, R, E>>, live: Option<broadcast::Receiver<JobEvent<P, R, E>>>) -> Self {
        Subscription { history: history.into(), live }
    }

    /// The next event; `None` after `Finished`. Waits (asynchronously) for live events. A
    /// subscriber that falls more than `QueueConfig::event_buffer` events behind skips the
    /// oldest it missed; `Finished`, always the newest, is never skipped.
    pub async fn next(&mut self) -> Option<JobEvent<P, R, E>> {
        if let Some(event) = self.history.pop_front() {
            if event.is_finished() {
                self.live = None;
            }
            return Some(event);
        }
        let live = self.live.as_mut()?;
        loop {
            match live.recv().await {
                Ok(event) => {
                    if event.is_finished() {
                        self.live = None;
                    }
                    return Some(event);
                }
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => {
                    self.live = None;
                    return None;
                }
            }
        }
    }
}
