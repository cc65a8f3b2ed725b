//! The pieces of data-parallel training around a [`Collective`]: which images of a step a
//! rank takes, the check that every rank runs the same thing, the start from rank 0's state,
//! and the gradient average. With one rank each is the identity.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::ops::Range;

use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor, Var};

use crate::{Collective, TrainConfig, TrainError};

/// Floats per all-reduce: gradients are flattened into one buffer and reduced in buckets of
/// this size (16 MiB), so no single message holds a large model's whole gradient.
pub const BUCKET_FLOATS: usize = 1 << 22;

/// The positions of the global batch that `rank` of `size` takes: consecutive equal shards,
/// so the union over ranks is exactly the batch a single process takes at that step.
pub fn shard(batch: usize, rank: usize, size: usize) -> Result<Range<usize>, TrainError> {
    if size == 0 || !batch.is_multiple_of(size) {
        return Err(TrainError::Parallel(format!(
            "the batch size {batch} must be a multiple of the number of ranks {size} \
             (each rank takes an equal share of every batch); choose --batch-size or -np so that it divides"
        )));
    }
    let per_rank = batch / size;
    Ok(rank * per_rank..(rank + 1) * per_rank)
}

/// A fingerprint of what a rank is about to run: the configuration, the step it starts at,
/// and the program (the bytes of its executable).
pub fn run_fingerprint(cfg: &TrainConfig, step: usize) -> Result<u64, TrainError> {
    let mut h = DefaultHasher::new();
    serde_json::to_string(cfg).map_err(|e| TrainError::Config(e.to_string()))?.hash(&mut h);
    step.hash(&mut h);
    let exe = std::env::current_exe().and_then(std::fs::read).map_err(|e| TrainError::Io {
        path: std::env::current_exe().unwrap_or_default(),
        reason: format!("reading the program to compare it across ranks: {e}"),
    })?;
    exe.hash(&mut h);
    Ok(h.finish())
}

/// Fails on every rank, naming the first that differs, unless all ranks have `fingerprint`.
pub fn check_same_run(comm: &dyn Collective, fingerprint: u64) -> Result<(), TrainError> {
    let all = comm.all_gather(fingerprint)?;
    match all.iter().position(|&f| f != all[0]) {
        None => Ok(()),
        Some(r) => Err(TrainError::Parallel(format!(
            "rank {r} runs a different configuration, starting step or program than rank 0 \
             (fingerprints {:016x} and {:016x}); start every rank with the same binary, arguments and run folder",
            all[r], all[0]
        ))),
    }
}

/// Rank 0's `tensors` on every rank (same shapes, dtypes and devices as given).
pub fn broadcast_tensors(comm: &dyn Collective, tensors: &[Tensor]) -> Result<Vec<Tensor>, TrainError> {
    if comm.size() == 1 {
        return Ok(tensors.to_vec());
    }
    tensors
        .iter()
        .map(|t| {
            let values = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
            let mut bytes: Vec<u8> = values.iter().flat_map(|x| x.to_le_bytes()).collect();
            comm.broadcast(&mut bytes)?;
            let values: Vec<f32> = bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            Ok(Tensor::from_vec(values, t.shape(), t.device())?.to_dtype(t.dtype())?)
        })
        .collect()
}

/// Replaces the gradients of `vars` in `grads` by their mean over the ranks. With equal
/// shards, the mean of the ranks' mean losses is the global batch's mean loss, so the result
/// is that loss's gradient (up to the order of the sums). A variable without a gradient on
/// some rank counts as zero there; one without a gradient on every rank is left without.
pub fn all_reduce_gradients(comm: &dyn Collective, vars: &[&Var], grads: &mut GradStore) -> Result<(), TrainError> {
    if comm.size() == 1 {
        return Ok(());
    }
    let mut present: Vec<f32> = vars.iter().map(|v| if grads.get(v).is_some() { 1.0 } else { 0.0 }).collect();
    comm.all_reduce_mean(&mut present)?;
    let live: Vec<&Var> = vars.iter().zip(&present).filter(|(_, &p)| p > 0.0).map(|(v, _)| *v).collect();
    let mut flat = Vec::with_capacity(live.iter().map(|v| v.elem_count()).sum());
    for var in &live {
        match grads.get(var) {
            Some(g) => flat.extend(g.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?),
            None => flat.resize(flat.len() + var.elem_count(), 0.0),
        }
    }
    for bucket in flat.chunks_mut(BUCKET_FLOATS) {
        comm.all_reduce_mean(bucket)?;
    }
    let mut offset = 0;
    for var in live {
        let n = var.elem_count();
        let g = Tensor::from_slice(&flat[offset..offset + n], var.shape(), var.device())?.to_dtype(var.dtype())?;
        grads.insert(var.as_tensor(), g);
        offset += n;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn shards_tile_the_batch() {
        let parts: Vec<_> = (0..4).map(|r| shard(8, r, 4).unwrap()).collect();
        assert_eq!(parts, vec![0..2, 2..4, 4..6, 6..8]);
        assert_eq!(shard(8, 0, 1).unwrap(), 0..8);
        let err = shard(6, 0, 4).unwrap_err().to_string();
        assert!(err.contains("batch size 6") && err.contains("ranks 4"), "{err}");
    }

    /// Two ranks simulated in one process: each "all-reduce" averages with the other rank's
    /// buffer, which is known in advance.
    struct Pair {
        rank: usize,
        other: Vec<f32>,
    }

    impl Collective for Pair {
        fn rank(&self) -> usize {
            self.rank
        }
        fn size(&self) -> usize {
            2
        }
        fn all_reduce_mean(&self, buf: &mut [f32]) -> Result<(), TrainError> {
            // The presence mask (every variable present on the other rank), then the gradients.
            let other = if buf.len() == self.other.len() { self.other.clone() } else { vec![1.0; buf.len()] };
            buf.iter_mut().zip(other).for_each(|(x, y)| *x = (*x + y) / 2.0);
            Ok(())
        }
        fn broadcast(&self, _buf: &mut [u8]) -> Result<(), TrainError> {
            Ok(())
        }
        fn all_gather(&self, value: u64) -> Result<Vec<u64>, TrainError> {
            Ok(vec![value, value])
        }
    }

    #[test]
    fn gradients_become_the_mean_and_missing_ones_count_as_zero() -> Result<(), TrainError> {
        let dev = Device::Cpu;
        let (a, b) = (Var::new(&[1f32, 2.0], &dev)?, Var::new(&[[3f32]], &dev)?);
        // Only `a` takes part in this rank's loss: `b` has no gradient here.
        let mut grads = (a.as_tensor() * 4.0)?.sum_all()?.backward()?;
        assert!(grads.get(&b).is_none());
        let comm = Pair { rank: 1, other: vec![2.0, 6.0, 10.0] };
        all_reduce_gradients(&comm, &[&a, &b], &mut grads)?;
        assert_eq!(grads.get(&a).unwrap().to_vec1::<f32>()?, vec![3.0, 5.0]);
        assert_eq!(grads.get(&b).unwrap().to_vec2::<f32>()?, vec![vec![5.0]]);
        Ok(())
    }
}
