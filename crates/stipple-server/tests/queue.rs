//! The job queue with a real worker thread and small test jobs.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use stipple_server::queue::{
    CancelOutcome, JobContext, JobEvent, JobId, JobQueue, JobState, Outcome, QueueConfig, QueueStartError, ShutdownMode,
    SubmitError, MAX_TIME_LIMIT,
};

/// What a test job does. Progress is a step number, the result a number, the error a text.
#[derive(Debug)]
enum Job {
    /// Returns its number at once.
    Quick(u32),
    /// Emits steps 1..=n, then waits (polling its context) until the gate opens; returns n.
    Hold { steps: u32, gate: Arc<AtomicBool> },
    /// Sleeps without polling, then returns 7.
    Sleep(Duration),
    Fail,
    Panic,
}

type Queue = JobQueue<Job, u32, u32, String>;

/// A queue whose job function logs the number of each job it starts, in order.
fn queue(config: QueueConfig) -> (Queue, Arc<Mutex<Vec<u32>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let ran = log.clone();
    let queue = JobQueue::new(config, move |job: &Job, ctx: &JobContext<'_, u32>| match job {
        Job::Quick(n) => {
            ran.lock().unwrap().push(*n);
            Ok(*n)
        }
        Job::Hold { steps, gate } => {
            for step in 1..=*steps {
                ctx.emit(step);
            }
            while !gate.load(Ordering::Acquire) && !ctx.is_cancelled() {
                std::thread::sleep(Duration::from_millis(1));
            }
            Ok(*steps)
        }
        Job::Sleep(d) => {
            std::thread::sleep(*d);
            Ok(7)
        }
        Job::Fail => Err("it failed".to_owned()),
        Job::Panic => panic!("job bug"),
    })
    .unwrap();
    (queue, log)
}

fn gate() -> Arc<AtomicBool> {
    Arc::new(AtomicBool::new(false))
}

fn hold(gate: &Arc<AtomicBool>) -> Job {
    Job::Hold { steps: 0, gate: gate.clone() }
}

/// Polls until `done` holds, at most 5 s.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(5), "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn state(queue: &Queue, id: JobId) -> JobState<u32, u32, String> {
    queue.status(id).expect("known job").state
}

fn wait_running(queue: &Queue, id: JobId) {
    wait_until("the job runs", || matches!(state(queue, id), JobState::Running { .. }));
}

fn wait_outcome(queue: &Queue, id: JobId) -> Outcome<u32, String> {
    let mut outcome = None;
    wait_until("the job finishes", || match state(queue, id) {
        JobState::Finished { outcome: o } => {
            outcome = Some(o);
            true
        }
        _ => false,
    });
    outcome.unwrap()
}

#[test]
fn queue_is_send_and_sync_and_subscriptions_move_between_threads() {
    fn shared<T: Send + Sync>() {}
    fn sent<T: Send>(_: &T) {}
    shared::<Queue>();
    let (queue, _) = queue(QueueConfig::default());
    let mut events = queue.subscribe(queue.submit(Job::Quick(1)).unwrap()).unwrap();
    sent(&events);
    // An SSE handler polls `next` on a multi-threaded runtime.
    sent(&events.next());
}

#[test]
fn zero_settings_are_refused() {
    let run = |_: &u8, _: &JobContext<'_, ()>| Ok::<(), ()>(());
    let zero = QueueConfig { capacity: 0, ..QueueConfig::default() };
    assert!(matches!(JobQueue::new(zero, run), Err(QueueStartError::Zero { name: "capacity" })));
    let zero = QueueConfig { event_buffer: 0, ..QueueConfig::default() };
    assert!(matches!(JobQueue::new(zero, run), Err(QueueStartError::Zero { name: "event_buffer" })));
    for limit in [Duration::ZERO, MAX_TIME_LIMIT + Duration::from_secs(1), Duration::MAX] {
        let config = QueueConfig { time_limit: limit, ..QueueConfig::default() };
        assert!(matches!(JobQueue::new(config, run), Err(QueueStartError::TimeLimit { .. })), "{limit:?}");
    }
    let longest = QueueConfig { time_limit: MAX_TIME_LIMIT, ..QueueConfig::default() };
    assert!(JobQueue::new(longest, run).is_ok());
}

#[test]
fn jobs_run_in_submission_order_with_positions() {
    let (queue, log) = queue(QueueConfig::default());
    let g = gate();
    let first = queue.submit(hold(&g)).unwrap();
    wait_running(&queue, first);
    let ids: Vec<JobId> = (1..=3).map(|n| queue.submit(Job::Quick(n)).unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    for (position, id) in ids.iter().enumerate() {
        assert_eq!(state(&queue, *id), JobState::Queued { position });
    }
    let snapshot = queue.snapshot();
    assert_eq!(snapshot.running, Some(first));
    assert_eq!(snapshot.waiting, ids);

    g.store(true, Ordering::Release);
    for (n, id) in (1..=3).zip(&ids) {
        assert_eq!(wait_outcome(&queue, *id), Outcome::Done(n));
        let status = queue.status(*id).unwrap();
        let (started, finished) = (status.started_ms.unwrap(), status.finished_ms.unwrap());
        assert!(status.submitted_ms <= started && started <= finished, "{status:?}");
    }
    assert_eq!(*log.lock().unwrap(), [1, 2, 3]);
}

#[test]
fn a_full_queue_refuses_with_retry_after() {
    let (queue, _) = queue(QueueConfig { capacity: 2, ..QueueConfig::default() });
    let g = gate();
    let running = queue.submit(hold(&g)).unwrap();
    wait_running(&queue, running);
    let a = queue.submit(Job::Quick(1)).unwrap();
    queue.submit(Job::Quick(2)).unwrap();
    match queue.submit(Job::Quick(3)) {
        Err(SubmitError::Full { retry_after }) => {
            assert!(retry_after >= Duration::from_secs(1), "{retry_after:?}");
            assert_eq!(retry_after.subsec_nanos(), 0, "whole seconds");
        }
        other => panic!("expected Full, got {other:?}"),
    }
    // A place freed by a cancel is taken again.
    assert_eq!(queue.cancel(a), Some(CancelOutcome::Removed));
    queue.submit(Job::Quick(3)).unwrap();
    g.store(true, Ordering::Release);
}

#[test]
fn cancelling_a_waiting_job_removes_it_and_moves_the_others_up() {
    let (queue, log) = queue(QueueConfig::default());
    let g = gate();
    let running = queue.submit(hold(&g)).unwrap();
    wait_running(&queue, running);
    let a = queue.submit(Job::Quick(1)).unwrap();
    let b = queue.submit(Job::Quick(2)).unwrap();
    let c = queue.submit(Job::Quick(3)).unwrap();
    assert_eq!(queue.cancel(b), Some(CancelOutcome::Removed));
    assert_eq!(state(&queue, b), JobState::Finished { outcome: Outcome::Cancelled });
    assert_eq!(state(&queue, a), JobState::Queued { position: 0 });
    assert_eq!(state(&queue, c), JobState::Queued { position: 1 });
    assert_eq!(queue.cancel(b), Some(CancelOutcome::AlreadyFinished));
    g.store(true, Ordering::Release);
    wait_outcome(&queue, c);
    assert_eq!(*log.lock().unwrap(), [1, 3]);
    assert_eq!(queue.cancel("999".parse().unwrap()), None);
}

#[test]
fn a_running_job_sees_its_cancel_flag() {
    let (queue, _) = queue(QueueConfig::default());
    let never = gate();
    let id = queue.submit(Job::Hold { steps: 2, gate: never }).unwrap();
    wait_running(&queue, id);
    assert_eq!(queue.cancel(id), Some(CancelOutcome::Signalled));
    // The job function returned `Ok` after seeing the flag; the outcome is still Cancelled.
    assert_eq!(wait_outcome(&queue, id), Outcome::Cancelled);
    assert_eq!(queue.cancel(id), Some(CancelOutcome::AlreadyFinished));
    // The worker goes on with the next job.
    let next = queue.submit(Job::Quick(5)).unwrap();
    assert_eq!(wait_outcome(&queue, next), Outcome::Done(5));
}

#[test]
fn a_job_past_its_time_limit_times_out() {
    let limit = Duration::from_millis(60);
    let (queue, _) = queue(QueueConfig { time_limit: limit, ..QueueConfig::default() });
    let id = queue.submit(hold(&gate())).unwrap();
    assert_eq!(wait_outcome(&queue, id), Outcome::TimedOut);
    let status = queue.status(id).unwrap();
    let ran = status.finished_ms.unwrap() - status.started_ms.unwrap();
    assert!(ran >= limit.as_millis() as u64, "stopped after {ran} ms");
    // A job within its limit is done.
    let quick = queue.submit(Job::Quick(1)).unwrap();
    assert_eq!(wait_outcome(&queue, quick), Outcome::Done(1));
}

#[test]
fn failures_and_panics_are_outcomes_and_the_worker_survives() {
    let (queue, _) = queue(QueueConfig::default());
    let failed = queue.submit(Job::Fail).unwrap();
    let panicked = queue.submit(Job::Panic).unwrap();
    let after = queue.submit(Job::Quick(9)).unwrap();
    assert_eq!(wait_outcome(&queue, failed), Outcome::Failed("it failed".into()));
    assert_eq!(wait_outcome(&queue, panicked), Outcome::Panicked("job bug".into()));
    assert_eq!(wait_outcome(&queue, after), Outcome::Done(9));
}

#[tokio::test]
async fn subscribers_see_positions_then_progress_then_the_end() {
    let (queue, _) = queue(QueueConfig::default());
    let g = gate();
    let running = queue.submit(hold(&g)).unwrap();
    wait_running(&queue, running);
    queue.submit(Job::Quick(1)).unwrap();
    let g2 = gate();
    let id = queue.submit(Job::Hold { steps: 3, gate: g2.clone() }).unwrap();
    let mut events = queue.subscribe(id).unwrap();
    assert_eq!(events.next().await, Some(JobEvent::Queued { position: 1 }));
    g.store(true, Ordering::Release);
    g2.store(true, Ordering::Release);
    let mut rest = Vec::new();
    while let Some(event) = events.next().await {
        rest.push(event);
    }
    assert_eq!(
        rest,
        [
            JobEvent::Queued { position: 0 },
            JobEvent::Started,
            JobEvent::Progress(1),
            JobEvent::Progress(2),
            JobEvent::Progress(3),
            JobEvent::Finished(Outcome::Done(3)),
        ]
    );
}

#[tokio::test]
async fn a_late_subscriber_sees_the_history_so_far() {
    let (queue, _) = queue(QueueConfig::default());
    let g = gate();
    let id = queue.submit(Job::Hold { steps: 4, gate: g.clone() }).unwrap();
    wait_until("progress 4 is out", || state(&queue, id) == JobState::Running { progress: Some(4) });

    // While it runs: the start and the last progress only, then the live events.
    let mut running = queue.subscribe(id).unwrap();
    assert_eq!(running.next().await, Some(JobEvent::Started));
    assert_eq!(running.next().await, Some(JobEvent::Progress(4)));
    g.store(true, Ordering::Release);
    assert_eq!(running.next().await, Some(JobEvent::Finished(Outcome::Done(4))));
    assert_eq!(running.next().await, None);

    // After it finished: the same history, ending with the outcome.
    let mut finished = queue.subscribe(id).unwrap();
    let mut history = Vec::new();
    while let Some(event) = finished.next().await {
        history.push(event);
    }
    assert_eq!(history, [JobEvent::Started, JobEvent::Progress(4), JobEvent::Finished(Outcome::Done(4))]);

    // A job cancelled while waiting never started.
    let g = gate();
    let blocker = queue.submit(hold(&g)).unwrap();
    wait_running(&queue, blocker);
    let waiting = queue.submit(Job::Quick(1)).unwrap();
    queue.cancel(waiting);
    let mut cancelled = queue.subscribe(waiting).unwrap();
    assert_eq!(cancelled.next().await, Some(JobEvent::Finished(Outcome::Cancelled)));
    assert_eq!(cancelled.next().await, None);
    g.store(true, Ordering::Release);
}

#[test]
fn finished_jobs_are_forgotten_by_count_and_age() {
    let config = QueueConfig { keep_finished: 2, keep_finished_for: Duration::from_millis(500), ..QueueConfig::default() };
    let (queue, _) = queue(config);
    let ids: Vec<JobId> = (1..=4).map(|n| queue.submit(Job::Quick(n)).unwrap()).collect();
    wait_outcome(&queue, ids[3]);
    assert!(queue.status(ids[0]).is_none() && queue.status(ids[1]).is_none());
    assert!(queue.subscribe(ids[0]).is_none());
    assert_eq!(state(&queue, ids[2]), JobState::Finished { outcome: Outcome::Done(3) });
    wait_until("the finished jobs expire", || queue.status(ids[3]).is_none());
    assert!(queue.status(ids[2]).is_none());
}

#[test]
fn shutdown_cancelling_the_running_job() {
    let (queue, log) = queue(QueueConfig::default());
    let running = queue.submit(hold(&gate())).unwrap();
    wait_running(&queue, running);
    let waiting = queue.submit(Job::Quick(1)).unwrap();
    queue.shutdown(ShutdownMode::CancelRunning);
    assert_eq!(state(&queue, running), JobState::Finished { outcome: Outcome::Cancelled });
    assert_eq!(state(&queue, waiting), JobState::Finished { outcome: Outcome::Cancelled });
    assert_eq!(queue.submit(Job::Quick(2)), Err(SubmitError::ShuttingDown));
    assert!(log.lock().unwrap().is_empty());
    queue.shutdown(ShutdownMode::CancelRunning); // again: returns at once
}

#[test]
fn shutdown_letting_the_running_job_finish() {
    let (queue, log) = queue(QueueConfig::default());
    let running = queue.submit(Job::Sleep(Duration::from_millis(80))).unwrap();
    wait_running(&queue, running);
    let waiting = queue.submit(Job::Quick(1)).unwrap();
    queue.shutdown(ShutdownMode::FinishRunning);
    assert_eq!(state(&queue, running), JobState::Finished { outcome: Outcome::Done(7) });
    assert_eq!(state(&queue, waiting), JobState::Finished { outcome: Outcome::Cancelled });
    assert_eq!(queue.submit(Job::Quick(2)), Err(SubmitError::ShuttingDown));
    assert!(log.lock().unwrap().is_empty());
}

#[test]
fn dropping_the_queue_cancels_and_joins_the_running_job() {
    let saw_cancel = Arc::new(AtomicBool::new(false));
    let saw = saw_cancel.clone();
    let queue = JobQueue::new(QueueConfig::default(), move |_: &(), ctx: &JobContext<'_, ()>| {
        while !ctx.is_cancelled() {
            std::thread::sleep(Duration::from_millis(1));
        }
        saw.store(true, Ordering::Release);
        Ok::<(), ()>(())
    })
    .unwrap();
    let id = queue.submit(()).unwrap();
    wait_until("the job runs", || queue.snapshot().running == Some(id));
    drop(queue);
    assert!(saw_cancel.load(Ordering::Acquire), "the drop returned before the job saw its flag");
}

/// 16 threads submit 50 jobs each into a small queue, cancel some, and ask and subscribe
/// meanwhile; every accepted job must end, and nothing may hang.
#[test]
fn many_concurrent_submitters_do_not_deadlock() {
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let config = QueueConfig { capacity: 8, keep_finished: 1000, ..QueueConfig::default() };
        let (queue, log) = queue(config);
        let queue = Arc::new(queue);
        let full = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..16u32)
            .map(|t| {
                let (queue, full) = (queue.clone(), full.clone());
                std::thread::spawn(move || {
                    let (mut accepted, mut signalled) = (Vec::new(), 0);
                    for i in 0..50u32 {
                        match queue.submit(Job::Quick(t * 1000 + i)) {
                            Ok(id) => {
                                if i % 3 == 0 && queue.cancel(id) == Some(CancelOutcome::Signalled) {
                                    // It had started, so it ran; it must still end Cancelled.
                                    signalled += 1;
                                }
                                let _ = queue.status(id);
                                let _ = queue.subscribe(id);
                                accepted.push(id);
                            }
                            Err(SubmitError::Full { .. }) => {
                                full.fetch_add(1, Ordering::Relaxed);
                                std::thread::yield_now();
                            }
                            Err(SubmitError::ShuttingDown) => panic!("not shutting down"),
                        }
                    }
                    (accepted, signalled)
                })
            })
            .collect();
        let (mut accepted, mut signalled) = (Vec::<JobId>::new(), 0);
        for thread in threads {
            let (ids, n) = thread.join().unwrap();
            accepted.extend(ids);
            signalled += n;
        }
        wait_until("the queue drains", || {
            let snapshot = queue.snapshot();
            snapshot.running.is_none() && snapshot.waiting.is_empty()
        });
        let mut done = 0;
        for id in &accepted {
            match state(&queue, *id) {
                JobState::Finished { outcome: Outcome::Done(_) } => done += 1,
                JobState::Finished { outcome: Outcome::Cancelled } => {}
                other => panic!("job {id} ended as {other:?}"),
            }
        }
        assert_eq!(done + signalled, log.lock().unwrap().len(), "every job that started ran exactly once");
        assert_eq!(accepted.len() + full.load(Ordering::Relaxed), 16 * 50);
        done_tx.send(()).unwrap();
    });
    match done_rx.recv_timeout(Duration::from_secs(30)) {
        Ok(()) => {}
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("deadlock: the submitters did not finish in 30 s"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("the test thread panicked (see above)"),
    }
}
