//! `process::configure` sets the thread variables it owns and leaves the ones the user set
//! (one test in its own binary: the environment is the process's).

use stipple_nn::process::configure;

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
}
