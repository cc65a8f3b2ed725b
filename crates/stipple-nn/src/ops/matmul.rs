//! Strided matrix products on the `gemm` crate (the GEMM of candle's CPU matmul), shared by the
//! CPU kernels of [`super::conv2d`] and [`super::attention`].

use gemm::Parallelism;

/// A read-only matrix view: pointer, row stride and column stride (in elements).
#[derive(Clone, Copy)]
pub(crate) struct Mat<T> {
    pub ptr: *const T,
    pub rs: usize,
    pub cs: usize,
}

impl<T> Mat<T> {
    /// The row-major matrix `data` with row stride `rs`.
    pub fn rows(data: &[T], rs: usize) -> Self {
        Self { ptr: data.as_ptr(), rs, cs: 1 }
    }

    /// The transpose of the row-major matrix `data` with row stride `rs`.
    pub fn transposed(data: &[T], rs: usize) -> Self {
        Self { ptr: data.as_ptr(), rs: 1, cs: rs }
    }
}

/// `dst (m, n) := [dst +] scale · lhs (m, k) · rhs (k, n)`, `dst` row-major with row stride
/// `dst_rs` (the previous `dst` is read only when `accumulate`).
///
/// # Safety
/// `lhs` and `rhs` must address `m×k` and `k×n` elements inside live allocations, and `dst`
/// the `m` rows of `n` elements at stride `dst_rs`, not overlapping `lhs` or `rhs`.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn matmul<T: 'static + Copy>(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut T,
    dst_rs: usize,
    accumulate: bool,
    lhs: Mat<T>,
    rhs: Mat<T>,
    one: T,
    scale: T,
    par: Parallelism,
) {
    // gemm: dst := alpha·dst + beta·lhs·rhs (dst read only when `read_dst`).
    gemm::gemm(
        m,
        n,
        k,
        dst,
        1,
        dst_rs as isize,
        accumulate,
        lhs.ptr,
        lhs.cs as isize,
        lhs.rs as isize,
        rhs.ptr,
        rhs.cs as isize,
        rhs.rs as isize,
        one,
        scale,
        false,
        false,
        false,
        par,
    )
}
