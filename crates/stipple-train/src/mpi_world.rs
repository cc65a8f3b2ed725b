//! [`Collective`] over MPI (rsmpi on the system's MPI library, e.g. OpenMPI): the processes
//! `mpirun -np N` started, or a world of one for a binary started on its own.
//!
//! MPI's blocking collectives have no timeout: a rank that died or hangs would keep the
//! others waiting forever. Every operation here is therefore started non-blocking and polled
//! against a deadline; past it, the rank says which operation timed out and aborts the whole
//! job (`MPI_Abort`), so no rank is left behind. (OpenMPI's `mpirun` also ends the job by
//! itself when a rank is killed or exits with an error; the deadline covers a rank that
//! hangs, or an MPI that does not.)

use std::io::Write;
use std::time::{Duration, Instant};

use mpi::collective::SystemOperation;
use mpi::environment::Universe;
use mpi::request::{Request, Scope};
use mpi::traits::{Communicator, CommunicatorCollectives, Root};

use crate::{Collective, TrainError};

/// Exit status of a job ended by a collective's deadline.
pub const TIMEOUT_EXIT_CODE: i32 = 124;

/// The MPI world: every rank `mpirun` started.
pub struct MpiWorld {
    universe: Universe,
    timeout: Duration,
}

impl MpiWorld {
    /// Initialises MPI (once per process); a collective that waits longer than `timeout`
    /// for the other ranks aborts the job.
    pub fn init(timeout: Duration) -> Result<MpiWorld, TrainError> {
        let universe = mpi::initialize().ok_or_else(|| {
            TrainError::Parallel("MPI is already initialised in this process (initialise the MPI world once)".into())
        })?;
        Ok(MpiWorld { universe, timeout })
    }

    /// Polls `request` until it completes; past the deadline, reports and aborts the job.
    fn wait<'a, D: ?Sized, S: Scope<'a>>(&self, mut request: Request<'a, D, S>, what: &str) {
        let start = Instant::now();
        // Back off from 10 µs to 1 ms between polls: a rank waiting for a slower one must not
        // take the CPU from it (ranks often share a machine's cores).
        let mut pause = Duration::from_micros(10);
        loop {
            match request.test() {
                Ok(_) => return,
                Err(pending) => request = pending,
            }
            if start.elapsed() > self.timeout {
                let report = format!(
                    "error: rank {} of {} waited more than {} s for the other ranks in {what}: a rank died or hangs; \
                     aborting the job\n",
                    self.rank(),
                    self.size(),
                    self.timeout.as_secs_f64()
                );
                // In one write: mpirun forwards a rank's output write by write, and its own abort
                // banner fell between the pieces that `eprintln!` writes one by one.
                let _ = std::io::stderr().write_all(report.as_bytes());
                self.universe.world().abort(TIMEOUT_EXIT_CODE);
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(1));
        }
    }
}

impl Collective for MpiWorld {
    fn rank(&self) -> usize {
        self.universe.world().rank() as usize
    }

    fn size(&self) -> usize {
        self.universe.world().size() as usize
    }

    fn all_reduce_mean(&self, buf: &mut [f32]) -> Result<(), TrainError> {
        let send = buf.to_vec();
        let world = self.universe.world();
        mpi::request::scope(|scope| {
            let request = world.immediate_all_reduce_into(scope, &send[..], &mut *buf, SystemOperation::sum());
            self.wait(request, "an all-reduce");
        });
        let n = self.size() as f32;
        buf.iter_mut().for_each(|x| *x /= n);
        Ok(())
    }

    fn broadcast(&self, buf: &mut [u8]) -> Result<(), TrainError> {
        let world = self.universe.world();
        mpi::request::scope(|scope| {
            let request = world.process_at_rank(0).immediate_broadcast_into(scope, buf);
            self.wait(request, "a broadcast");
        });
        Ok(())
    }

    fn all_gather(&self, value: u64) -> Result<Vec<u64>, TrainError> {
        let world = self.universe.world();
        let mut all = vec![0u64; self.size()];
        mpi::request::scope(|scope| {
            let request = world.immediate_all_gather_into(scope, &value, &mut all[..]);
            self.wait(request, "an all-gather");
        });
        Ok(all)
    }
}
