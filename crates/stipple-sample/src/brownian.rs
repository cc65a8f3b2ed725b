//! Brownian-tree noise: the noise of a step σ → σ' is the increment of one fixed Brownian
//! path W over [σ', σ], so the SDE samplers see the same path whatever the step count.

use crate::error::BoxError;
use crate::noise::Noise;
use crate::philox::{normal_at, seed_key};

/// Bits of t = σ below the binary point that the path resolves: W is defined at the
/// multiples of 2⁻³² ≈ 2.3e-10, and a query is rounded to the nearest one.
const FRACTION_BITS: u32 = 32;
/// Queries must satisfy 0 ≤ t < 2³¹ (so that node numbers fit in 64 bits).
const T_LIMIT: f64 = 2_147_483_648.0;
/// Marks the Philox counters of the tree (word 3; the low byte is the block number), so its
/// normals never coincide with the plain draws of [`crate::Philox4x32`] (word 3 = 0).
const TAG: u32 = 0x4254_0000;
/// How many evaluated W(t) the tree keeps (a step reuses the previous step's end point).
const CACHE: usize = 4;

/// One Brownian path W(t), t ≥ 0, W(0) = 0, per latent element, fixed by a seed: the noise
/// source of k-diffusion's `BrownianTreeNoiseSampler` (Kidger et al. 2021, "Efficient and
/// Accurate Gradients for Neural SDEs", §4, the Brownian tree of torchsde), rebuilt on the
/// counter-based Philox generator, so that it is seed-exact and each image's path depends on
/// its own seed only.
///
/// Construction (Lévy's construction of Brownian motion by midpoint bridges; e.g. Glasserman
/// 2004, "Monte Carlo Methods in Financial Engineering", §3.1.2). Time is t = σ, as in
/// k-diffusion. The values at t = 1, 2, 4, … are sums of independent increments:
/// W(1) ~ N(0, 1), W(2^j) − W(2^(j−1)) ~ N(0, 2^(j−1)). Inside each block [0, 1] or
/// [2^(j−1), 2^j], W at the midpoint m of an interval [a, b] with known ends is
/// W(m) = (W(a) + W(b))/2 + √((b − a)/4)·Z, the Brownian bridge, recursively down to the
/// 2⁻³² grid. Each Z is the Philox normal of its node: counter (node number, element,
/// [`TAG`] | block), key = the seed. So W(t) is a pure function of (seed, t, element),
/// evaluated in ~32 + log₂ t bridge steps, independent of the order of queries, of the
/// schedule and of the number of elements drawn alongside.
///
/// Unlike torchsde, whose tree spans the schedule's [σ_min, σ_max] and starts at W(σ_min)
/// = 0, this path spans all t ≥ 0 from W(0) = 0, so it does not move when σ_max changes;
/// increments have the same law either way. The numbers differ from torchsde's (its own
/// PRNG); only the law and the structure are the same.
#[derive(Debug, Clone)]
pub struct BrownianTree {
    key: [u32; 2],
    /// Recently evaluated (grid index, number of elements, W).
    cache: Vec<(u64, Vec<f64>)>,
}

impl BrownianTree {
    /// The path of `seed`.
    pub fn new(seed: u64) -> Self {
        Self { key: seed_key(seed), cache: Vec::with_capacity(CACHE) }
    }

    /// W(t) of the first `len` elements' paths (t rounded to the 2⁻³² grid).
    pub fn value(&mut self, t: f64, len: usize) -> Result<Vec<f64>, BoxError> {
        let n = grid_index(t)?;
        Ok(self.value_at(n, len))
    }

    /// The noise of a step from `sigma` to `sigma_next`, normalised to N(0, 1) as
    /// k-diffusion's `BrownianTreeNoiseSampler` does: (W(σ') − W(σ))/√|σ' − σ| (with both
    /// ends on the grid). Increments over disjoint intervals are independent; over adjacent
    /// ones they add up before normalisation.
    pub fn increment(&mut self, sigma: f64, sigma_next: f64, len: usize) -> Result<Vec<f64>, BoxError> {
        let (a, b) = (grid_index(sigma)?, grid_index(sigma_next)?);
        if a == b {
            return Err(format!("σ = {sigma} and {sigma_next} are closer than the Brownian tree resolves (2^-32)").into());
        }
        let scale = 1.0 / ((a.abs_diff(b) as f64) * grid_step()).sqrt();
        let (wa, wb) = (self.value_at(a, len), self.value_at(b, len));
        Ok(wa.iter().zip(&wb).map(|(wa, wb)| (wb - wa) * scale).collect())
    }

    fn value_at(&mut self, n: u64, len: usize) -> Vec<f64> {
        if let Some((_, w)) = self.cache.iter().find(|(m, w)| *m == n && w.len() == len) {
            return w.clone();
        }
        let w = self.evaluate(n, len);
        if self.cache.len() == CACHE {
            self.cache.remove(0);
        }
        self.cache.push((n, w.clone()));
        w
    }

    /// The bridge walk described on the type, for grid index n = t·2³².
    fn evaluate(&self, n: u64, len: usize) -> Vec<f64> {
        if n == 0 {
            return vec![0.0; len];
        }
        // Block 0 is [0, 1]; block j ≥ 1 is [2^(j−1), 2^j], in grid units [2^(31+j), 2^(32+j)].
        let block = if n < 1 << FRACTION_BITS { 0 } else { 64 - n.leading_zeros() - FRACTION_BITS };
        let (lo, hi) = if block == 0 { (0, 1 << FRACTION_BITS) } else { (1 << (31 + block), 1 << (32 + block)) };
        (0..len)
            .map(|i| {
                let z = |block: u32, node: u64| normal_at(self.key, [node as u32, (node >> 32) as u32, i as u32, TAG | block]);
                // W at t = 2^j for j = 0 … block (node 0 of block j).
                let mut w_hi = z(0, 0);
                let mut w_lo = 0.0;
                for j in 1..=block {
                    w_lo = w_hi;
                    w_hi += f64::from(1u32 << (j - 1)).sqrt() * z(j, 0);
                }
                let (mut a, mut b, mut node) = (lo, hi, 1u64);
                loop {
                    if n == a {
                        return w_lo;
                    }
                    let m = a + (b - a) / 2;
                    let w_m = 0.5 * (w_lo + w_hi) + ((b - a) as f64 * grid_step() / 4.0).sqrt() * z(block, node);
                    if n < m {
                        (b, w_hi, node) = (m, w_m, 2 * node);
                    } else {
                        (a, w_lo, node) = (m, w_m, 2 * node + 1);
                    }
                }
            })
            .collect()
    }
}

/// 2⁻³², the grid of t.
fn grid_step() -> f64 {
    (-(FRACTION_BITS as f64)).exp2()
}

/// The grid index of t (nearest multiple of 2⁻³²).
fn grid_index(t: f64) -> Result<u64, BoxError> {
    if !(t.is_finite() && (0.0..T_LIMIT).contains(&t)) {
        return Err(format!("the Brownian tree covers 0 ≤ σ < 2^31, got {t}").into());
    }
    Ok((t / grid_step()).round() as u64)
}

/// Noise for flat f64 latents: each element its own path.
impl Noise<Vec<f64>> for BrownianTree {
    fn noise_like(&mut self, _x: &Vec<f64>) -> Result<Vec<f64>, BoxError> {
        Err("Brownian-tree noise belongs to an interval; samplers draw it with noise_between".into())
    }
    fn noise_between(&mut self, x: &Vec<f64>, sigma: f64, sigma_next: f64) -> Result<Vec<f64>, BoxError> {
        self.increment(sigma, sigma_next, x.len())
    }
}
