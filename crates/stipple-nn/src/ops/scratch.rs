//! Per-thread scratch buffers for the kernels' working memory, kept at their largest size and
//! reused from call to call.
//!
//! Fresh multi-megabyte buffers cost page faults that can match the arithmetic on a virtual
//! machine, and all threads allocate from one heap (`process::configure` sets glibc's
//! `M_ARENA_MAX` to 1), so a parallel task that allocated its own buffers made the threads
//! queue on that heap's lock. A thread keeps a stack of free buffers per element type, so a
//! task may hold several at once (a kernel's buffer while a nested one is in use).

use std::cell::RefCell;

/// An element type with per-thread scratch buffers (f32 and f64).
pub(crate) trait Scratch: Copy + Default + 'static {
    /// Runs `f` on this thread's free buffers of this type.
    fn free<R>(f: impl FnOnce(&mut Vec<Vec<Self>>) -> R) -> R;
}

macro_rules! scratch {
    ($t:ty, $slot:ident) => {
        thread_local! {
            static $slot: RefCell<Vec<Vec<$t>>> = const { RefCell::new(Vec::new()) };
        }
        impl Scratch for $t {
            fn free<R>(f: impl FnOnce(&mut Vec<Vec<Self>>) -> R) -> R {
                $slot.with_borrow_mut(f)
            }
        }
    };
}
scratch!(f32, FREE_F32);
scratch!(f64, FREE_F64);

/// Runs `f` with one of this thread's scratch vectors, of whatever length and content an
/// earlier user left it (`f` resizes it and writes before it reads).
pub(crate) fn with_vec<T: Scratch, R>(f: impl FnOnce(&mut Vec<T>) -> R) -> R {
    let mut buf = T::free(Vec::pop).unwrap_or_default();
    let r = f(&mut buf);
    T::free(|free| free.push(buf));
    r
}

/// Runs `f` on `n` values of one of this thread's scratch buffers: whatever an earlier user
/// left (or zero), so `f` writes before it reads.
pub(crate) fn with<T: Scratch, R>(n: usize, f: impl FnOnce(&mut [T]) -> R) -> R {
    with_vec(|buf: &mut Vec<T>| {
        if buf.len() < n {
            buf.resize(n, T::default());
        }
        f(&mut buf[..n])
    })
}

#[cfg(test)]
mod tests {
    use super::with;

    #[test]
    fn buffers_are_reused_and_nested_uses_get_their_own() {
        let first = with::<f32, _>(1000, |a| {
            a.fill(1.5);
            with::<f64, _>(10, |b| {
                b.fill(2.0);
                assert!(a.iter().all(|&x| x == 1.5), "a nested buffer is another buffer");
            });
            a.as_ptr() as usize
        });
        let (again, value) = with::<f32, _>(1000, |a| (a.as_ptr() as usize, a[999]));
        assert_eq!(again, first, "the larger buffer is reused");
        assert_eq!(value, 1.5, "and keeps what was left in it");
        assert_eq!(with::<f64, _>(3, |b| b.len()), 3);
        assert_eq!(with::<f32, _>(0, |b| b.len()), 0);
    }

    #[test]
    fn a_nested_use_of_the_same_type_gets_another_buffer() {
        with::<f32, _>(100, |a| {
            a.fill(1.5);
            with::<f32, _>(100, |b| {
                b.fill(2.0);
                assert!(a.iter().all(|&x| x == 1.5), "the outer buffer is untouched");
            });
        });
    }
}
