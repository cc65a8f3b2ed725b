//! [`Lanes`]: the values of one position in [`LANES`] neighbouring tiles, so that the tile
//! transforms, written once as arithmetic on whole tiles, become vector code (each operation a
//! loop over the lanes, compiled for the CPU's vector width by [`crate::ops::simd::dispatch`]).

use std::ops::{Add, Mul, Neg, Sub};

/// Tiles transformed together.
pub(super) const LANES: usize = 16;

#[derive(Clone, Copy)]
pub(super) struct Lanes(pub(super) [f32; LANES]);

impl Lanes {
    pub(super) const ZERO: Self = Self([0.0; LANES]);

    #[inline(always)]
    fn zip(self, other: Self, f: impl Fn(f32, f32) -> f32) -> Self {
        let mut r = self;
        for (r, b) in r.0.iter_mut().zip(other.0) {
            *r = f(*r, b);
        }
        r
    }
}

impl Add for Lanes {
    type Output = Self;
    #[inline(always)]
    fn add(self, other: Self) -> Self {
        self.zip(other, |a, b| a + b)
    }
}

impl Sub for Lanes {
    type Output = Self;
    #[inline(always)]
    fn sub(self, other: Self) -> Self {
        self.zip(other, |a, b| a - b)
    }
}

impl Neg for Lanes {
    type Output = Self;
    #[inline(always)]
    fn neg(self) -> Self {
        Self(self.0.map(|a| -a))
    }
}

impl Mul<Lanes> for f32 {
    type Output = Lanes;
    #[inline(always)]
    fn mul(self, v: Lanes) -> Lanes {
        Lanes(v.0.map(|a| self * a))
    }
}
