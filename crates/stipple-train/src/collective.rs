//! The communication of data-parallel training behind one small trait, so the trainer has a
//! single code path: [`SingleProcess`] (the identity, the default) or, with the `mpi`
//! feature, [`MpiWorld`](crate::MpiWorld) over the processes `mpirun` started.
//!
//! The recipe is Horovod's (Sergeev & Del Balso 2018, "Horovod: fast and easy distributed
//! deep learning in TensorFlow", §4): every rank starts from rank 0's state (a broadcast),
//! computes the gradient of its shard of the global batch, and the gradients are averaged
//! over the ranks (an all-reduce) between backward and the optimizer step.

use crate::TrainError;

/// The collective operations a data-parallel trainer needs. Every rank must call the same
/// operations in the same order with buffers of the same length; an implementation that
/// cannot complete one (a rank died) returns an error or ends the job, never hangs forever.
pub trait Collective: Send {
    /// This process's index, `0..size()`; rank 0 writes the run's files.
    fn rank(&self) -> usize;

    /// Number of ranks.
    fn size(&self) -> usize;

    /// In place: `buf` becomes the element-wise mean of every rank's `buf`.
    fn all_reduce_mean(&self, buf: &mut [f32]) -> Result<(), TrainError>;

    /// In place: `buf` becomes rank 0's `buf` on every rank.
    fn broadcast(&self, buf: &mut [u8]) -> Result<(), TrainError>;

    /// Every rank's `value`, indexed by rank.
    fn all_gather(&self, value: u64) -> Result<Vec<u64>, TrainError>;
}

/// One process alone: every operation is the identity.
#[derive(Clone, Copy, Debug, Default)]
pub struct SingleProcess;

impl Collective for SingleProcess {
    fn rank(&self) -> usize {
        0
    }

    fn size(&self) -> usize {
        1
    }

    fn all_reduce_mean(&self, _buf: &mut [f32]) -> Result<(), TrainError> {
        Ok(())
    }

    fn broadcast(&self, _buf: &mut [u8]) -> Result<(), TrainError> {
        Ok(())
    }

    fn all_gather(&self, value: u64) -> Result<Vec<u64>, TrainError> {
        Ok(vec![value])
    }
}
