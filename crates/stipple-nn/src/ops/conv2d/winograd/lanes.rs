//! [`Lanes`]: the values of one position in [`LANES`] neighbouring tiles (f32), or of one tap in
//! [`LANES`] input channels of the weight (f64), so that the transforms, written once as
//! arithmetic on whole tiles, become vector code (each operation a loop over the lanes,
//! compiled for the CPU's vector width by [`crate::ops::simd::dispatch`]). Plain loops, not
//! `array::map` or `array::from_fn`: their closures were compiled as functions of their own,
//! called once per lane, without the vector instructions.

use std::ops::{Add, Mul, Neg, Sub};

/// Tiles (or weight channels) transformed together.
pub(super) const LANES: usize = 16;

#[derive(Clone, Copy)]
pub(super) struct Lanes<T = f32>(pub(super) [T; LANES]);

impl<T: Copy + Default> Lanes<T> {
    #[inline(always)]
    pub(super) fn zero() -> Self {
        Self([T::default(); LANES])
    }

    #[inline(always)]
    fn zip(self, other: Self, f: impl Fn(T, T) -> T) -> Self {
        let mut r = self;
        for (r, b) in r.0.iter_mut().zip(other.0) {
            *r = f(*r, b);
        }
        r
    }
}

impl<T: Copy + Default + Add<Output = T>> Add for Lanes<T> {
    type Output = Self;
    #[inline(always)]
    fn add(self, other: Self) -> Self {
        self.zip(other, |a, b| a + b)
    }
}

impl<T: Copy + Default + Sub<Output = T>> Sub for Lanes<T> {
    type Output = Self;
    #[inline(always)]
    fn sub(self, other: Self) -> Self {
        self.zip(other, |a, b| a - b)
    }
}

impl<T: Copy + Neg<Output = T>> Neg for Lanes<T> {
    type Output = Self;
    #[inline(always)]
    fn neg(mut self) -> Self {
        for a in &mut self.0 {
            *a = -*a;
        }
        self
    }
}

/// `c · v` for a scalar `c` of the lanes' type.
macro_rules! scale {
    ($t:ty) => {
        impl Mul<Lanes<$t>> for $t {
            type Output = Lanes<$t>;
            #[inline(always)]
            fn mul(self, mut v: Lanes<$t>) -> Lanes<$t> {
                for a in &mut v.0 {
                    *a *= self;
                }
                v
            }
        }
    };
}
scale!(f32);
scale!(f64);
