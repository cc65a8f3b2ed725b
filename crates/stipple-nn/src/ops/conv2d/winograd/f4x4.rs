//! F(4×4, 3×3): 6×6 input tiles, 4×4 outputs, with the interpolation points 0, −1, 1, ½, −2
//! and ∞ instead of Lavin and Gray's 0, ±1, ±2, ∞ (CVPR 2016). Barabasz, Anderson, Soodhalter
//! and Gregg (*Error analysis and improving the accuracy of Winograd convolution for deep
//! neural networks*, ACM Transactions on Mathematical Software 46(4), 2020) show that the
//! choice of points (small integers, their reciprocals and negatives) sets the floating-point
//! error; among the sets 0, ±1 plus two of ±½, ±2, ±¼, ±3, ±⅓, ±3/2, ±2/3, this one gave the
//! smallest error in a NumPy model of this computation in f32 (256 input channels, uniform
//! data; `tests/reference/winograd_points.py`): 0.39 times that of 0, ±1, ±2. The matrices are Toom-Cook's for these points (as in
//! Lavin's `wincnn`):
//! `Aᵀ[i][j] = p_jⁱ`, `G[j][k] = p_jᵏ / Π_{l≠j} (p_j − p_l)`, row `j` of `Bᵀ` the coefficients
//! of `Π_{l≠j} (x − p_l)` (lowest power first), and for `∞` the last unit row or column:
//!
//! - `Bᵀ = [[1, −3/2, −2, 3/2, 1, 0], [0, 1, −5/2, ½, 1, 0], [0, −1, ½, 5/2, 1, 0],
//!   [0, −2, −1, 2, 1, 0], [0, ½, −1, −½, 1, 0], [0, 1, −3/2, −2, 3/2, 1]]`,
//! - `G = [[1, 0, 0], [−⅓, ⅓, −⅓], [⅓, ⅓, ⅓], [−16/15, −8/15, −4/15], [1/15, −2/15, 4/15],
//!   [0, 0, 1]]`,
//! - `Aᵀ = [[1, 1, 1, 1, 1, 0], [0, −1, 1, ½, −2, 0], [0, 1, 1, ¼, 4, 0], [0, −1, 1, ⅛, −8, 1]]`.
//!
//! `Bᵀ` and `Aᵀ` hold only powers of two and their multiples by 3 and 5, exact in f32; `G`'s
//! thirds and fifteenths are applied in f64 and rounded once.

use super::lanes::Lanes;
use super::Tiling;

/// Winograd's F(4×4, 3×3).
pub(crate) struct F4x4;

impl Tiling<6, 4> for F4x4 {
    type Weight = f64;

    #[inline(always)]
    fn kernel([g0, g1, g2]: [Lanes<f64>; 3]) -> [Lanes<f64>; 6] {
        const THIRD: f64 = 1.0 / 3.0;
        const FIFTEENTH: f64 = 1.0 / 15.0;
        [
            g0,
            THIRD * (-g0 + g1 - g2),
            THIRD * (g0 + g1 + g2),
            -FIFTEENTH * (16.0 * g0 + 8.0 * g1 + 4.0 * g2),
            FIFTEENTH * (g0 - 2.0 * g1 + 4.0 * g2),
            g2,
        ]
    }

    #[inline(always)]
    fn input([d0, d1, d2, d3, d4, d5]: [Lanes; 6]) -> [Lanes; 6] {
        [
            d0 - 1.5 * d1 - 2.0 * d2 + 1.5 * d3 + d4,
            d1 - 2.5 * d2 + 0.5 * d3 + d4,
            -d1 + 0.5 * d2 + 2.5 * d3 + d4,
            -2.0 * d1 - d2 + 2.0 * d3 + d4,
            0.5 * d1 - d2 - 0.5 * d3 + d4,
            d1 - 1.5 * d2 - 2.0 * d3 + 1.5 * d4 + d5,
        ]
    }

    #[inline(always)]
    fn output([m0, m1, m2, m3, m4, m5]: [Lanes; 6]) -> [Lanes; 4] {
        [
            m0 + m1 + m2 + m3 + m4,
            -m1 + m2 + 0.5 * m3 - 2.0 * m4,
            m1 + m2 + 0.25 * m3 + 4.0 * m4,
            -m1 + m2 + 0.125 * m3 - 8.0 * m4 + m5,
        ]
    }
}
