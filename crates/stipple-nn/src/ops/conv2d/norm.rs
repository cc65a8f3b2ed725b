//! [`Norm`]: a GroupNorm (+ SiLU) that a convolution kernel applies to its input as it reads it
//! (`super::conv2d_normalized`), so that the normalised tensor is never written out.

/// A normalisation applied to every input value as a kernel copies it (before the zero
/// padding): `z = a·(x − m) + b`, or `SiLU(z)` when `silu`, with the `[a, m, b]` of each
/// (sample, channel) of the call, sample-major (`ops::group_norm::coefficients`).
#[derive(Clone, Copy)]
pub(super) struct Norm<'a> {
    pub coefficients: &'a [[f32; 3]],
    pub silu: bool,
}

impl<'a> Norm<'a> {
    /// The coefficients of the samples `first..first + count` of `c` channels each.
    pub(super) fn samples(&self, c: usize, first: usize, count: usize) -> Norm<'a> {
        Norm { coefficients: &self.coefficients[first * c..(first + count) * c], silu: self.silu }
    }
}
