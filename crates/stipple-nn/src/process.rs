//! Process-wide settings for Stipple's CPU kernels, made once at the start of a program before
//! any other thread exists: the `stipple` binary and the benchmark examples call [`configure`],
//! so that what the benchmarks time is what users run.

/// glibc's threshold above which `malloc` maps fresh pages instead of reusing the heap.
///
/// Tensor buffers are allocated and freed by the hundreds per training step or U-Net call, many
/// of them tens of megabytes (a Stable Diffusion 1.5 U-Net's activations at 512×512 and its
/// Winograd-transformed weights). Above glibc's default (dynamic, at most 32 MiB) each one is a
/// fresh `mmap`: its pages are faulted in and zeroed by the kernel on first touch, and unmapped
/// with TLB shoot-downs on free. 1 GiB keeps all of them in the heap. Measured on an Intel Xeon
/// (2 threads): the SD 1.5 U-Net call at 512×512, batch 2, 4.38 s with glibc's default, 4.26 s
/// at 32 MiB, 4.15 s at 1 GiB, peak resident memory within 0.4% of each other; bench-unet64's
/// training step (activations of 32 MiB) 4.79 s at 32 MiB, 3.94 s at 1 GiB, peak 2942 → 3022
/// MiB; the smaller presets' figures unchanged.
const MMAP_THRESHOLD: i32 = 1 << 30;

/// Rounds a worker of candle's pool spins for its next job before it sleeps (`spin_loop`, a
/// `pause` each: some tens of microseconds). Training steps were fastest from 100 to 2,000
/// (bench-unet16 0.258 s at 100, 0.246 s at 2,000; bench-unet32 0.907 and 0.904 s; 20,000
/// 0.927 s).
const CANDLE_SPIN_LIMIT: u32 = 2_000;

/// Stack of each of rayon's worker threads: the main thread's usual 8 MiB, since
/// [`on_workers`] moves a command's whole computation (candle's recursive walk of the autograd
/// graph included) from the main thread onto a worker. Address space only: pages are touched
/// as used.
const WORKER_STACK: usize = 8 << 20;

/// Makes the process settings (idempotent; call it first thing in `main`):
///
/// - **Allocator**: [`MMAP_THRESHOLD`], no trimming of the heap's top on free (a freed
///   buffer at the top would otherwise be returned to the kernel and faulted in again by the
///   next allocation of the same size), and one heap for all threads (`M_ARENA_MAX` 1). glibc
///   gives other threads heaps of their own of at most 64 MiB, and maps every larger buffer
///   they allocate afresh, whatever the threshold; since [`on_workers`] the tensors are
///   allocated on rayon's threads. With one heap: bench-unet64's inference forward 0.504 →
///   0.475 s and peak 408 → 267 MiB, bench-unet32's training step 0.965 → 0.923 s (Intel
///   Xeon, 2 threads). The kernels' parallel tasks take their working memory from per-thread
///   scratch buffers (`ops::scratch`) rather than queue on the heap's lock.
/// - **Threads**: `RAYON_NUM_THREADS` is fixed to candle's default count (the physical cores).
///   Unset, candle 0.11's `utils::get_num_threads`, which every candle matmul calls, counts the
///   cores by parsing /proc/cpuinfo on each call: 17% of the CPU time of a default `stipple
///   train` run (measured when the convolutions called it too; they now read rayon's pool
///   size). candle's own pool (its element-wise ops on 64 Ki values and more, such as the
///   additions of its backward pass; `utils::barrier_pool`) follows that count unless
///   `CANDLE_NUM_THREADS` says otherwise, and its workers spin for at most
///   [`CANDLE_SPIN_LIMIT`] rounds before they sleep (candle's default, 25,000, kept them
///   spinning while rayon's threads needed the same cores). A variable the user set is left
///   alone. rayon's global pool is built here with that count and [`WORKER_STACK`] (if
///   nothing built it before).
///
/// Measured (`stipple bench`, Intel Xeon, 2 threads, training steps), with candle's pool at
/// the rayon count and a spin limit of 2,000 against one thread for candle's ops (as before):
/// quiet, bench-unet32 0.999 → 0.904 s, bench-unet64 3.88 → 3.66 s, bench-unet16 0.262 → 0.246
/// s, emoji16 0.070 → 0.065 s, inference unchanged; with two other busy processes on the two
/// cores, emoji16 0.242 → 0.296 s (with candle's default spin, 0.40 → 1.3 s once). On a
/// shared machine, `CANDLE_NUM_THREADS=1` gives the one-pool behaviour back.
pub fn configure() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only adjusts allocator parameters; the caller runs it before any other
    // thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let n = candle_core::utils::get_num_threads();
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    }
    if std::env::var_os("CANDLE_BARRIER_POOL_SPIN_LIMIT").is_none() {
        std::env::set_var("CANDLE_BARRIER_POOL_SPIN_LIMIT", CANDLE_SPIN_LIMIT.to_string());
    }
    // An error means the pool exists already (an earlier call, or rayon used before): keep it.
    let _ = rayon::ThreadPoolBuilder::new().stack_size(WORKER_STACK).build_global();
}

/// Runs `f` on one of rayon's worker threads (at once if the caller is one) and returns what
/// it returns; a panic in `f` resumes in the caller.
///
/// Every parallel kernel called from a thread outside rayon's pool is handed to the pool as a
/// job while the caller sleeps on a lock until the job ends (rayon's `in_worker_cold`): two
/// thread wake-ups through the kernel per call, each some microseconds, for ops that take tens
/// of microseconds on small networks. Called from a worker, the same kernel splits its work on
/// that worker's own deque, where the other workers, still spinning after the previous op,
/// steal it. Front ends run each command's computation (a training run, a generation job)
/// inside this. Measured (`stipple bench`, Intel Xeon, 2 threads, emoji16): inference forward
/// 0.0088 → 0.0080 s, 20-step sample 0.176 → 0.162 s, training step 0.067 → 0.064 s.
///
/// Code inside `f` must not block waiting for work that needs a free worker of the same pool
/// (with one thread there would be none); Stipple's kernels only use rayon's fork-join calls.
pub fn on_workers<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    rayon::scope(|_| f())
}
