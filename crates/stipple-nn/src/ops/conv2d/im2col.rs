//! The im2col matrix of one sample (each kernel tap's view of the input, one row per channel
//! and tap) and col2im, its adjoint, which adds the rows back onto the input gradient.

use super::elem::Elem;
use super::geometry::Geom;

/// The im2col matrix `(K, N)` of one sample `x_b`, built in `scratch` (a 1×1 convolution's is
/// `x_b` itself).
pub(super) fn columns<'a, T: Elem>(g: &Geom, x_b: &'a [T], scratch: &'a mut Vec<T>) -> &'a [T] {
    if g.pointwise() {
        return x_b;
    }
    scratch.resize(g.k() * g.n(), T::ZERO);
    im2col(g, x_b, scratch);
    scratch
}

/// `cols (K, N)` from one sample `x (C, H, W)`.
pub(super) fn im2col<T: Elem>(g: &Geom, x: &[T], cols: &mut [T]) {
    if g.same_stride1() {
        return im2col_same_stride1(g, x, cols);
    }
    let (n, wo, s) = (g.n(), g.wo, g.s);
    for c in 0..g.c {
        let xc = &x[c * g.h * g.w..][..g.h * g.w];
        for i in 0..g.kh {
            for j in 0..g.kw {
                let row = &mut cols[((c * g.kh + i) * g.kw + j) * n..][..n];
                let (ow0, ow1) = g.valid_cols(j);
                for oh in 0..g.ho {
                    let dst = &mut row[oh * wo..][..wo];
                    let Some(ih) = g.input_row(i, oh) else {
                        dst.fill(T::ZERO);
                        continue;
                    };
                    let xrow = &xc[ih * g.w..][..g.w];
                    dst[..ow0].fill(T::ZERO);
                    dst[ow1..].fill(T::ZERO);
                    if s == 1 {
                        let iw0 = ow0 + j - g.p;
                        dst[ow0..ow1].copy_from_slice(&xrow[iw0..iw0 + (ow1 - ow0)]);
                    } else {
                        for (ow, d) in dst.iter_mut().enumerate().take(ow1).skip(ow0) {
                            *d = xrow[ow * s + j - g.p];
                        }
                    }
                }
            }
        }
    }
}

/// [`im2col`] for a [`Geom::same_stride1`] geometry: one contiguous copy per tap and channel,
/// then zeros where the tap reads outside the image.
fn im2col_same_stride1<T: Elem>(g: &Geom, x: &[T], cols: &mut [T]) {
    let hw = g.h * g.w;
    for i in 0..g.kh {
        for j in 0..g.kw {
            let tap = g.tap(i, j);
            for c in 0..g.c {
                let xc = &x[c * hw..][..hw];
                let row = &mut cols[((c * g.kh + i) * g.kw + j) * hw..][..hw];
                if tap.hi > tap.lo {
                    let src = (tap.lo as isize + tap.shift) as usize;
                    row[tap.lo..tap.hi].copy_from_slice(&xc[src..][..tap.hi - tap.lo]);
                }
                row[tap.rows.start * g.w..tap.lo].fill(T::ZERO);
                row[tap.hi..tap.rows.end * g.w].fill(T::ZERO);
                tap.zero_outside(g, row);
            }
        }
    }
}

/// `dx (C, H, W) += col2im(cols (K, N))` for one sample (`dx` arrives zeroed; `cols` is scratch
/// and may be modified).
pub(super) fn col2im<T: Elem>(g: &Geom, cols: &mut [T], dx: &mut [T]) {
    if g.same_stride1() {
        return col2im_same_stride1(g, cols, dx);
    }
    let (n, wo, s) = (g.n(), g.wo, g.s);
    for c in 0..g.c {
        let dxc = &mut dx[c * g.h * g.w..][..g.h * g.w];
        for i in 0..g.kh {
            for j in 0..g.kw {
                let row = &cols[((c * g.kh + i) * g.kw + j) * n..][..n];
                let (ow0, ow1) = g.valid_cols(j);
                for oh in 0..g.ho {
                    let Some(ih) = g.input_row(i, oh) else { continue };
                    let src = &row[oh * wo..][..wo];
                    let dxrow = &mut dxc[ih * g.w..][..g.w];
                    if s == 1 {
                        let iw0 = ow0 + j - g.p;
                        for (d, v) in dxrow[iw0..iw0 + (ow1 - ow0)].iter_mut().zip(&src[ow0..ow1]) {
                            *d += *v;
                        }
                    } else {
                        for (ow, v) in src.iter().enumerate().take(ow1).skip(ow0) {
                            dxrow[ow * s + j - g.p] += *v;
                        }
                    }
                }
            }
        }
    }
}

/// [`col2im`] for a [`Geom::same_stride1`] geometry: the entries that read outside the image
/// are zeroed in `cols`, then each tap's row is added to the channel plane in one pass.
fn col2im_same_stride1<T: Elem>(g: &Geom, cols: &mut [T], dx: &mut [T]) {
    let hw = g.h * g.w;
    for i in 0..g.kh {
        for j in 0..g.kw {
            let tap = g.tap(i, j);
            for c in 0..g.c {
                let row = &mut cols[((c * g.kh + i) * g.kw + j) * hw..][..hw];
                tap.zero_outside(g, row);
                if tap.hi == tap.lo {
                    continue;
                }
                let dst = (tap.lo as isize + tap.shift) as usize;
                for (d, v) in dx[c * hw + dst..][..tap.hi - tap.lo].iter_mut().zip(&row[tap.lo..tap.hi]) {
                    *d += *v;
                }
            }
        }
    }
}
