//! F(2×2, 3×3) (Lavin and Gray, *Fast Algorithms for Convolutional Neural Networks*, CVPR 2016):
//! 4×4 input tiles, 2×2 outputs, interpolation points 0, 1, −1 and ∞:
//!
//! - `Bᵀ = [[1, 0, −1, 0], [0, 1, 1, 0], [0, −1, 1, 0], [0, 1, 0, −1]]`,
//! - `G = [[1, 0, 0], [½, ½, ½], [½, −½, ½], [0, 0, 1]]`,
//! - `Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]]`.
//!
//! `G` halves sums of taps: its products are exact in f32, so the weight is transformed in f32.

use super::lanes::Lanes;
use super::Tiling;

/// Winograd's F(2×2, 3×3).
pub(crate) struct F2x2;

impl Tiling<4, 2> for F2x2 {
    type Weight = f32;

    #[inline(always)]
    fn kernel([g0, g1, g2]: [Lanes<f32>; 3]) -> [Lanes<f32>; 4] {
        [g0, 0.5 * (g0 + g1 + g2), 0.5 * (g0 - g1 + g2), g2]
    }

    #[inline(always)]
    fn input([d0, d1, d2, d3]: [Lanes; 4]) -> [Lanes; 4] {
        [d0 - d2, d1 + d2, d2 - d1, d1 - d3]
    }

    #[inline(always)]
    fn output([m0, m1, m2, m3]: [Lanes; 4]) -> [Lanes; 2] {
        [m0 + m1 + m2, m1 - m2 - m3]
    }
}
