//! `process::configure` sets the thread variables it owns and leaves the ones the user set,
//! and builds rayon's pool, on whose workers `process::on_workers` runs a computation (one
//! test in its own binary: the environment and the pool are the process's).

use stipple_nn::process::{configure, on_workers};

#[test]
fn configure_fills_unset_variables_and_keeps_set_ones() {
    let candle_threads = std::env::var_os("CANDLE_NUM_THREADS");
    std::env::set_var("CANDLE_BARRIER_POOL_SPIN_LIMIT", "7");
    std::env::set_var("RAYON_NUM_THREADS", "3");
    configure();
    assert_eq!(std::env::var("CANDLE_BARRIER_POOL_SPIN_LIMIT").as_deref(), Ok("7"));
    assert_eq!(std::env::var("RAYON_NUM_THREADS").as_deref(), Ok("3"));
    std::env::remove_var("CANDLE_BARRIER_POOL_SPIN_LIMIT");
    std::env::remove_var("RAYON_NUM_THREADS");
    configure();
    assert_eq!(std::env::var("CANDLE_BARRIER_POOL_SPIN_LIMIT").as_deref(), Ok("2000"));
    let threads: usize = std::env::var("RAYON_NUM_THREADS").expect("set").parse().expect("a number");
    assert!(threads >= 1);
    // candle's own pool is left to follow the rayon count (or what the user set).
    assert_eq!(std::env::var_os("CANDLE_NUM_THREADS"), candle_threads);
    // The pool was built by the first call, with its workers' 8 MiB stacks: a computation
    // moved onto a worker runs there and may use more stack than a default 2 MiB thread has.
    assert_eq!(rayon::current_num_threads(), 3);
    assert_eq!(rayon::current_thread_index(), None);
    let (index, sum) = on_workers(|| (rayon::current_thread_index(), deep_stack(5 << 20)));
    assert!(index.is_some(), "ran on a worker");
    assert_eq!(sum, 5 << 20);
    let caught = std::panic::catch_unwind(|| on_workers(|| panic!("inside")));
    assert!(caught.is_err(), "a panic on the worker resumes in the caller");
}

/// Fills `bytes` of stack (in 64 KiB frames) and sums them, so nothing is optimised away.
fn deep_stack(bytes: usize) -> usize {
    let frame = [1u8; 64 << 10];
    let here: usize = std::hint::black_box(&frame).iter().map(|&b| b as usize).sum();
    if bytes <= frame.len() {
        here.min(bytes)
    } else {
        here + deep_stack(bytes - frame.len())
    }
}
