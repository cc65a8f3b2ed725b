//! A seeded counter-based normal generator: Philox 4×32-10 (Salmon et al. 2011, "Parallel
//! Random Numbers: As Easy as 1, 2, 3") with a Box–Muller transform, laid out like the
//! "NV" generator of AUTOMATIC1111's web UI (`modules/rng_philox.py`), which imitates
//! `torch.randn` on CUDA. The same seed gives the same numbers on every machine.

use crate::error::BoxError;
use crate::noise::Noise;

const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

/// The Philox 4×32 block function with 10 rounds (Salmon et al. 2011, §3.3 / Random123
/// `philox4x32_R(10, …)`): a bijection of the 128-bit counter keyed by a 64-bit key.
pub fn philox4x32_10(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let mut c = counter;
    let mut k = key;
    for round in 0..10 {
        if round > 0 {
            k[0] = k[0].wrapping_add(W0);
            k[1] = k[1].wrapping_add(W1);
        }
        let p0 = u64::from(M0) * u64::from(c[0]);
        let p1 = u64::from(M1) * u64::from(c[2]);
        let (hi0, lo0) = ((p0 >> 32) as u32, p0 as u32);
        let (hi1, lo1) = ((p1 >> 32) as u32, p1 as u32);
        c = [hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0];
    }
    c
}

/// Seeded standard normal generator.
///
/// Each call of [`Philox4x32::normals`]`(n)` is one draw of A1111's
/// `Generator(seed).randn((n,))`: element i comes from the block at counter
/// `[offset, 0, i, 0]` with key `[seed_lo, seed_hi]`; the first two output words feed one
/// Box–Muller normal; then `offset` advances by one. So `normals` reproduces A1111's "NV"
/// noise (and thus CUDA `torch.randn`) for the same seed and call sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Philox4x32 {
    seed: u64,
    offset: u32,
}

impl Philox4x32 {
    pub fn new(seed: u64) -> Self {
        Self { seed, offset: 0 }
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// How many draws (`normals` calls) were made: with the seed, the whole state.
    pub fn offset(&self) -> u32 {
        self.offset
    }

    /// Restores a state saved with [`Philox4x32::seed`] and [`Philox4x32::offset`].
    pub fn with_offset(seed: u64, offset: u32) -> Self {
        Self { seed, offset }
    }

    /// One standard normal: the same as `normals(1)[0]` (one draw, one offset).
    pub fn next_normal(&mut self) -> f32 {
        self.normals(1)[0]
    }

    /// `n` independent standard normals in one draw (A1111 `Generator.randn((n,))`).
    /// At most 2³² values per draw (the element index is one 32-bit counter word).
    pub fn normals(&mut self, n: usize) -> Vec<f32> {
        assert!(n as u64 <= u64::from(u32::MAX) + 1, "at most 2^32 normals per draw");
        let key = seed_key(self.seed);
        let offset = self.offset;
        self.offset = self.offset.wrapping_add(1);
        (0..n).map(|i| normal_at(key, [offset, 0, i as u32, 0]) as f32).collect()
    }
}

/// The Philox key of a seed: its low and high 32-bit words.
pub(crate) fn seed_key(seed: u64) -> [u32; 2] {
    [seed as u32, (seed >> 32) as u32]
}

/// The standard normal of one Philox block: [`box_muller`] of the first two output words
/// (f32-exact, widened to f64).
pub(crate) fn normal_at(key: [u32; 2], counter: [u32; 4]) -> f64 {
    let g = philox4x32_10(counter, key);
    f64::from(box_muller(g[0], g[1]))
}

/// The first normal of the Box–Muller transform (Box & Muller 1958) of two uniform words,
/// u, v ∈ (0, 1) at the centres of 2⁻³² bins. The constants are rounded to f32 and the
/// arithmetic done in f64, then rounded to f32, as numpy evaluates A1111's `box_muller`.
fn box_muller(x: u32, y: u32) -> f32 {
    let inv = f64::from(2.328_306_4e-10_f32);
    let inv_2pi = f64::from((2.328_306_4e-10_f64 * 6.283_185_5_f64) as f32);
    let u = f64::from(x) * inv + inv / 2.0;
    let v = f64::from(y) * inv_2pi + inv_2pi / 2.0;
    ((-2.0 * u.ln()).sqrt() * v.sin()) as f32
}

/// Noise for flat f64 latents: one draw of `x.len()` normals.
impl Noise<Vec<f64>> for Philox4x32 {
    fn noise_like(&mut self, x: &Vec<f64>) -> Result<Vec<f64>, BoxError> {
        Ok(self.normals(x.len()).into_iter().map(f64::from).collect())
    }
}
