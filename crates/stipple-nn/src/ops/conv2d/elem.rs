//! The element types of the CPU kernels: their constants, per-thread buffers, and their view
//! as f32 for the direct kernels (the identity for f32, none for f64: no casts).

use std::mem::MaybeUninit;

use crate::ops::scratch::Scratch;

/// An element type with CPU kernels (f32 and f64).
pub(crate) trait Elem: Scratch + Send + Sync + std::ops::AddAssign {
    const ZERO: Self;
    const ONE: Self;
    /// The values as f32 when `Self` is f32 (the direct kernels' type), else `None`.
    fn f32s(s: &[Self]) -> Option<&[f32]>;
    /// [`Elem::f32s`] for a mutable slice.
    fn f32s_mut(s: &mut [Self]) -> Option<&mut [f32]>;
    /// [`Elem::f32s`] for an uninitialised output.
    fn f32s_uninit(s: &mut [MaybeUninit<Self>]) -> Option<&mut [MaybeUninit<f32>]>;
    /// [`Elem::f32s`] for a scratch vector.
    fn f32_vec(v: &mut Vec<Self>) -> Option<&mut Vec<f32>>;
}

macro_rules! elem {
    ($t:ty, |$s:ident| $as_f32:expr) => {
        impl Elem for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            fn f32s($s: &[Self]) -> Option<&[f32]> {
                $as_f32
            }
            fn f32s_mut($s: &mut [Self]) -> Option<&mut [f32]> {
                $as_f32
            }
            fn f32s_uninit($s: &mut [MaybeUninit<Self>]) -> Option<&mut [MaybeUninit<f32>]> {
                $as_f32
            }
            fn f32_vec($s: &mut Vec<Self>) -> Option<&mut Vec<f32>> {
                $as_f32
            }
        }
    };
}
elem!(f32, |s| Some(s));
elem!(f64, |_s| None);

thread_local! {
    /// The buffer of the last prepared weight (packed or transformed) given back on this thread.
    static WEIGHTS: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
}

/// A vector of `n` values of unspecified content for a prepared weight, every value of which the
/// caller writes: this thread's last one, reused as it is (a fresh one of tens of megabytes spent
/// more time in page faults than the packing itself on a virtual machine). Give it back with
/// [`return_weight_buffer`]; it is kept, at its largest size so far, until the thread ends.
pub(super) fn weight_buffer(n: usize) -> Vec<f32> {
    let mut v = WEIGHTS.take();
    v.resize(n, 0.0);
    v
}

/// Keeps `v` for the next [`weight_buffer`] on this thread.
pub(super) fn return_weight_buffer(v: Vec<f32>) {
    WEIGHTS.set(v);
}

/// `chunk` zeroed, as initialised values.
pub(super) fn zeroed<T: Elem>(chunk: &mut [MaybeUninit<T>]) -> &mut [T] {
    chunk.fill(MaybeUninit::new(T::ZERO));
    // SAFETY: every value of `chunk` was just written, and `MaybeUninit<T>` has `T`'s layout.
    unsafe { &mut *(chunk as *mut [MaybeUninit<T>] as *mut [T]) }
}

/// A vector of `n` uninitialised values, for a kernel that writes every one (a `vec![0; n]`
/// would zero them serially on the calling thread first).
pub(crate) fn uninit<T>(n: usize) -> Vec<MaybeUninit<T>> {
    let mut v = Vec::with_capacity(n);
    // SAFETY: `MaybeUninit` values need no initialisation.
    unsafe { v.set_len(n) };
    v
}

/// The vector as `T` values.
///
/// # Safety
/// Every value must have been initialised.
pub(crate) unsafe fn assume_init<T>(v: Vec<MaybeUninit<T>>) -> Vec<T> {
    let mut v = std::mem::ManuallyDrop::new(v);
    // SAFETY: the pointer, length and capacity come from a `Vec` of a type with `T`'s layout.
    unsafe { Vec::from_raw_parts(v.as_mut_ptr() as *mut T, v.len(), v.capacity()) }
}
