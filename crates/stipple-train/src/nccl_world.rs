//! [`Collective`] over NCCL (through candle's cudarc) for one process per GPU: MPI starts the
//! processes and hands rank 0's NCCL unique id to the others, NCCL does the reductions over
//! NVLink, PCIe or the network between the GPUs.
//!
//! The trait works on host buffers, so each reduction is staged: host → GPU, NCCL all-reduce
//! (average), GPU → host. Reducing the gradients where they live, on the GPU, is left to do
//! (docs/SCALING.md). NCCL's calls have no deadline here: a dead rank is noticed by `mpirun`.

use std::sync::Arc;

use candle_core::cuda_backend::cudarc::driver::CudaStream;
use candle_core::cuda_backend::cudarc::nccl::safe::{Comm, Id, ReduceOp};
use candle_core::Device;

use crate::{Collective, MpiWorld, TrainError};

/// The ranks `mpirun` started, each on its own GPU, joined in one NCCL communicator.
pub struct NcclWorld {
    mpi: MpiWorld,
    comm: Comm,
    stream: Arc<CudaStream>,
}

// SAFETY: a NCCL communicator may be used from any thread as long as no two threads use it at
// once; `Collective` needs only `Send` (not `Sync`), so one thread at a time owns this world.
unsafe impl Send for NcclWorld {}

fn nccl_error(what: &str, e: impl std::fmt::Debug) -> TrainError {
    TrainError::Parallel(format!("NCCL {what} failed: {e:?}"))
}

impl NcclWorld {
    /// Joins the ranks of `mpi` in a NCCL communicator on `device` (this rank's GPU).
    pub fn init(mpi: MpiWorld, device: &Device) -> Result<NcclWorld, TrainError> {
        let Device::Cuda(gpu) = device else {
            return Err(TrainError::Parallel(format!("NCCL needs a CUDA device (--device cuda:N), got {device:?}")));
        };
        let stream = gpu.cuda_stream();
        let mut id = [0u8; 128];
        if mpi.rank() == 0 {
            let fresh = Id::new().map_err(|e| nccl_error("creating the unique id", e))?;
            id.iter_mut().zip(fresh.internal()).for_each(|(b, &c)| *b = c as u8);
        }
        mpi.broadcast(&mut id)?;
        let id = Id::uninit(id.map(|b| b as core::ffi::c_char));
        let comm = Comm::from_rank(stream.clone(), mpi.rank(), mpi.size(), id).map_err(|e| nccl_error("joining the communicator", e))?;
        Ok(NcclWorld { mpi, comm, stream })
    }
}

impl Collective for NcclWorld {
    fn rank(&self) -> usize {
        self.mpi.rank()
    }

    fn size(&self) -> usize {
        self.mpi.size()
    }

    fn all_reduce_mean(&self, buf: &mut [f32]) -> Result<(), TrainError> {
        let mut on_gpu = self.stream.clone_htod(buf).map_err(|e| nccl_error("copying to the GPU", e))?;
        self.comm.all_reduce_in_place(&mut on_gpu, &ReduceOp::Avg).map_err(|e| nccl_error("all-reduce", e))?;
        self.stream.memcpy_dtoh(&on_gpu, buf).map_err(|e| nccl_error("copying from the GPU", e))?;
        self.stream.synchronize().map_err(|e| nccl_error("synchronising", e))
    }

    fn broadcast(&self, buf: &mut [u8]) -> Result<(), TrainError> {
        let mut on_gpu = self.stream.clone_htod(buf).map_err(|e| nccl_error("copying to the GPU", e))?;
        self.comm.broadcast_in_place(&mut on_gpu, 0).map_err(|e| nccl_error("broadcast", e))?;
        self.stream.memcpy_dtoh(&on_gpu, buf).map_err(|e| nccl_error("copying from the GPU", e))?;
        self.stream.synchronize().map_err(|e| nccl_error("synchronising", e))
    }

    fn all_gather(&self, value: u64) -> Result<Vec<u64>, TrainError> {
        self.mpi.all_gather(value)
    }
}
