//! Per-thread scratch buffers for the working memory of the kernels' parallel tasks, kept at
//! their largest size and reused from call to call.
//!
//! All threads allocate from one heap (`process::configure` sets glibc's `M_ARENA_MAX` to 1,
//! so that every tensor buffer is under its 1 GiB mmap threshold): a task that allocated its
//! own buffers made the threads queue on that heap's lock.

use std::cell::RefCell;

thread_local! {
    /// Buffers not in use on this thread (a task may hold several at once).
    static FREE: RefCell<Vec<Vec<u64>>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on `n` values from one of this thread's scratch buffers. The values are whatever
/// an earlier user left (or zero): `f` writes before it reads.
pub(crate) fn with<T: bytemuck::Pod, R>(n: usize, f: impl FnOnce(&mut [T]) -> R) -> R {
    let words = (n * size_of::<T>()).div_ceil(size_of::<u64>());
    let mut buf = FREE.with_borrow_mut(Vec::pop).unwrap_or_default();
    if buf.len() < words {
        buf.resize(words, 0);
    }
    let values: &mut [T] = bytemuck::cast_slice_mut(&mut buf[..words]);
    let r = f(&mut values[..n]);
    FREE.with_borrow_mut(|free| free.push(buf));
    r
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
}
