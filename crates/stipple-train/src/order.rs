//! The data order and per-step random generators, as pure functions of (seed, step), so
//! a resumed run draws exactly what an uninterrupted one would.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// SplitMix64 finaliser (Steele et al. 2014): decorrelates nearby integers.
fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Generator for the draws of one `step` (noise levels, noise, flips, dropout).
pub fn step_rng(seed: u64, step: usize) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(splitmix64(seed ^ splitmix64(step as u64)))
}

/// The dropout seed of `rank` when several ranks share a step: the masks are drawn over
/// each rank's own tensors, so ranks must not reuse one seed (their masks would repeat).
pub fn rank_seed(seed: u64, rank: usize) -> u64 {
    splitmix64(seed ^ splitmix64(!(rank as u64)))
}

/// Indices of the `batch` images of `step`: epochs are independent random permutations of
/// the `n` images, read in order; a batch may straddle two epochs.
pub fn batch_indices(seed: u64, step: usize, batch: usize, n: usize) -> Vec<usize> {
    let epoch_perm = |epoch: usize| {
        let mut p: Vec<usize> = (0..n).collect();
        p.shuffle(&mut ChaCha8Rng::seed_from_u64(splitmix64(!seed ^ splitmix64(epoch as u64))));
        p
    };
    let first = step * batch;
    let mut epoch = first / n;
    let mut perm = epoch_perm(epoch);
    (first..first + batch)
        .map(|pos| {
            if pos / n != epoch {
                epoch = pos / n;
                perm = epoch_perm(epoch);
            }
            perm[pos % n]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_epoch_visits_every_image_once() {
        let n = 10;
        let mut seen: Vec<usize> = (0..5).flat_map(|s| batch_indices(1, s, 4, n)).collect();
        // Steps 0..5 with batch 4 cover positions 0..20: two whole epochs.
        let (a, b) = seen.split_at_mut(10);
        a.sort();
        b.sort();
        assert_eq!(a, (0..10).collect::<Vec<_>>().as_slice());
        assert_eq!(b, (0..10).collect::<Vec<_>>().as_slice());
        assert_ne!(batch_indices(1, 0, 10, n), batch_indices(1, 1, 10, n));
        assert_ne!(batch_indices(1, 0, 10, n), batch_indices(2, 0, 10, n));
    }
}
