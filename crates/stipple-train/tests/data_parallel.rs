//! The data-parallel trainer with its ranks as threads of this process, exchanging through
//! shared memory: the same checks as `mpi.rs` without MPI, so every build runs them. Two
//! ranks train like one process, a run resumes on another number of ranks, the observers run
//! on rank 0 only, and a batch the ranks cannot share or ranks with different configurations
//! are refused on every rank. Tolerances: see `support/equivalence.rs`.

#[path = "support/equivalence.rs"]
mod equivalence;

use std::path::Path;
use std::sync::{Arc, Barrier, Mutex};

use equivalence::{assert_close, opts, tiny_config, train_alone};
use stipple_train::{Collective, Dashboard, TrainError, Trainer, LOG_FILE};

/// What the ranks of one process share: a barrier and one slot per rank.
struct Shared {
    barrier: Barrier,
    slots: Mutex<Vec<Vec<u8>>>,
}

/// One rank of [`ranks`]: each operation posts this rank's bytes, waits for every rank,
/// combines all of them in rank order (the same on every rank), and waits again before the
/// slots are reused.
struct ThreadRank {
    rank: usize,
    shared: Arc<Shared>,
}

impl ThreadRank {
    fn exchange(&self, mine: Vec<u8>) -> Vec<Vec<u8>> {
        self.shared.slots.lock().unwrap()[self.rank] = mine;
        self.shared.barrier.wait();
        let all = self.shared.slots.lock().unwrap().clone();
        self.shared.barrier.wait();
        all
    }
}

fn ranks(size: usize) -> Vec<ThreadRank> {
    let shared = Arc::new(Shared { barrier: Barrier::new(size), slots: Mutex::new(vec![Vec::new(); size]) });
    (0..size).map(|rank| ThreadRank { rank, shared: shared.clone() }).collect()
}

impl Collective for ThreadRank {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.shared.slots.lock().unwrap().len()
    }

    fn all_reduce_mean(&self, buf: &mut [f32]) -> Result<(), TrainError> {
        let all = self.exchange(buf.iter().flat_map(|x| x.to_le_bytes()).collect());
        let n = all.len() as f32;
        for (i, x) in buf.iter_mut().enumerate() {
            let at = |bytes: &Vec<u8>| f32::from_le_bytes(bytes[4 * i..4 * i + 4].try_into().unwrap());
            *x = all.iter().map(at).sum::<f32>() / n;
        }
        Ok(())
    }

    fn broadcast(&self, buf: &mut [u8]) -> Result<(), TrainError> {
        let all = self.exchange(buf.to_vec());
        buf.copy_from_slice(&all[0]);
        Ok(())
    }

    fn all_gather(&self, value: u64) -> Result<Vec<u64>, TrainError> {
        let all = self.exchange(value.to_le_bytes().to_vec());
        Ok(all.iter().map(|b| u64::from_le_bytes(b[..].try_into().unwrap())).collect())
    }
}

/// Trains `steps` steps of `config(rank)` on `size` thread ranks in `run`, each with a
/// dashboard (which only rank 0's trainer runs); the result of every rank.
fn train_on(size: usize, run: &Path, resume: bool, steps: usize, config: impl Fn(usize) -> stipple_train::TrainConfig + Sync) -> Vec<Result<(), TrainError>> {
    std::thread::scope(|s| {
        let handles: Vec<_> = ranks(size)
            .into_iter()
            .map(|rank| {
                let cfg = config(rank.rank);
                s.spawn(move || {
                    let mut trainer = Trainer::with_collective(cfg, &opts(run, resume, steps), Box::new(rank))?;
                    trainer.run(&mut [&mut Dashboard::default()]).map(|_| ())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn two_thread_ranks_train_like_one_process_and_resume_on_any_number() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name);
    train_alone(&p("alone2"), 2);
    train_alone(&p("alone4"), 4);
    let ok = |results: Vec<Result<(), TrainError>>| results.into_iter().for_each(|r| r.unwrap());

    ok(train_on(2, &p("two"), false, 2, |_| tiny_config(4, 0)));
    assert_close(&p("two"), &p("alone2"), 2, "2 steps on 2 thread ranks vs 1 process");
    // Rank 0 alone logged, once per step.
    assert_eq!(std::fs::read_to_string(p("two").join(LOG_FILE)).unwrap().lines().count(), 2);

    ok(train_on(4, &p("two"), true, 4, |_| tiny_config(4, 0)));
    assert_close(&p("two"), &p("alone4"), 4, "2 steps on 2 thread ranks + 2 on 4 vs 4 steps in 1 process");
}

#[test]
fn bad_starts_are_refused_on_every_rank() {
    let dir = tempfile::tempdir().unwrap();
    let results = train_on(2, &dir.path().join("odd"), false, 2, |_| tiny_config(3, 0));
    for r in results {
        let e = r.unwrap_err().to_string();
        assert!(e.contains("batch size 3 must be a multiple of the number of ranks 2"), "{e}");
    }
    let results = train_on(2, &dir.path().join("seed"), false, 2, |rank| tiny_config(4, rank as u64));
    for r in results {
        let e = r.unwrap_err().to_string();
        assert!(e.contains("rank 1 runs a different configuration, starting step or program than rank 0"), "{e}");
    }
}
