//! Data-parallel training under `mpirun` gives the single-process result: a tiny model
//! trained 2 steps on 2 ranks matches 2 steps in one process, a run resumed on a different
//! number of ranks matches the uninterrupted single-process run, a world of one rank is
//! bit-identical to one process, and bad starts and dead ranks end the job with a clear error.
//!
//! Needs the `mpi` feature and OpenMPI's `mpirun` on the PATH (the tests say they were skipped
//! without it). Each job is this test binary itself, run by `mpirun` with the ignored test
//! `mpi_worker` selected and its orders in environment variables.
//!
//! Tolerance: averaging the ranks' gradients sums in another order than one process's
//! backward pass, so results are not bit-identical. The loss and the gradient norm of every
//! step (logged by rank 0; the norm is that of the averaged gradient, which clipping uses)
//! must agree to a relative [`LOG_RTOL`] (worst seen: 2.3e-7, f32 rounding). The weights,
//! EMA and AdamW moments are compared by [`compare`]: tightly where an element's gradient is
//! above AdamW's ε (worst seen: 0.045 of the tolerance, weights within 1.0e-6); elsewhere
//! AdamW divides rounding noise (~1e-9, e.g. the exactly-zero gradient of a bias that a
//! GroupNorm of one channel per group cancels) by its own magnitude and steps by up to the
//! learning rate whatever the noise, so only that bound is checked (worst seen: 0.14 of it).
#![cfg(feature = "mpi")]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use candle_core::Device;
use stipple_nn::UNetConfig;
use stipple_train::{load_checkpoint, Collective, Dashboard, DataSource, MpiWorld, TrainConfig, TrainOptions, Trainer, LOG_FILE};

/// Learning rate of the test runs.
const LR: f64 = 1e-3;
/// Absolute and relative tolerance of a data-parallel run's weights against one process's.
const ATOL: f32 = 1e-5;
const RTOL: f32 = 1e-4;
/// Relative tolerance of AdamW's moments.
const RTOL_MOMENTS: f32 = 1e-2;
/// Relative tolerance of each step's loss and gradient norm.
const LOG_RTOL: f64 = 1e-5;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/emoji16")
}

/// A tiny model without dropout: each rank draws the dropout masks of its own tensors, so
/// with dropout the ranks' masks differ from one process's (see docs/SCALING.md).
fn tiny_config(batch_size: usize, seed: u64) -> TrainConfig {
    let unet = UNetConfig::with_attention_at(8, 3, &[8, 16], 1, &[4]).unwrap();
    let mut cfg = TrainConfig::for_data(DataSource::Folder(fixture()), unet);
    cfg.steps = 2;
    cfg.batch_size = batch_size;
    cfg.checkpoint_every = 1000;
    cfg.sample_every = 0;
    cfg.sample_count = 2;
    cfg.sample_steps = 2;
    cfg.warmup_steps = 2;
    cfg.optimizer.lr = LR;
    cfg.random_flip = true; // each image's flip must follow it to its rank
    cfg.seed = seed;
    cfg
}

fn opts(run: &Path, resume: bool, steps: usize) -> TrainOptions {
    TrainOptions { run: run.to_path_buf(), resume, steps: Some(steps), device: Device::Cpu, progress: false }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// One rank of a job started by [`mpirun`]; does nothing unless started that way.
#[test]
#[ignore = "a rank of the jobs the other tests start with mpirun"]
fn mpi_worker() {
    let Some(run) = env("STIPPLE_MPI_RUN") else { return };
    let steps: usize = env("STIPPLE_MPI_STEPS").unwrap().parse().unwrap();
    let batch: usize = env("STIPPLE_MPI_BATCH").unwrap().parse().unwrap();
    let resume = env("STIPPLE_MPI_RESUME").is_some();
    let fault = env("STIPPLE_MPI_FAULT").unwrap_or_default();
    let timeout: f64 = env("STIPPLE_MPI_TIMEOUT").map_or(120.0, |t| t.parse().unwrap());
    let comm = MpiWorld::init(Duration::from_secs_f64(timeout)).unwrap();
    let rank = comm.rank();
    // A rank started with another seed: the start must be refused on every rank.
    let seed = if fault == "seed" && rank == 1 { 7 } else { 0 };
    let result = Trainer::with_collective(tiny_config(batch, seed), &opts(Path::new(&run), resume, steps), Box::new(comm))
        .and_then(|mut trainer| {
            if fault.is_empty() {
                return trainer.run(&mut [&mut Dashboard::default()]).map(|_| ());
            }
            trainer.step()?;
            if rank == 1 && fault == "kill" {
                Command::new("kill").args(["-KILL", &std::process::id().to_string()]).status().unwrap();
            }
            if rank == 1 && fault == "hang" {
                std::thread::sleep(Duration::from_secs(3600));
            }
            trainer.step().map(|_| ())
        });
    if let Err(e) = result {
        eprintln!("rank {rank}: error: {e}");
        std::process::exit(1);
    }
}

/// What a job printed and how it ended.
struct Job {
    success: bool,
    output: String,
}

/// Runs `np` ranks of [`mpi_worker`] with `vars`, failing the test past `limit`.
fn mpirun(np: usize, vars: &[(&str, String)], limit: Duration) -> Job {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new("mpirun");
    cmd.args(["--allow-run-as-root", "--oversubscribe", "-np", &np.to_string()])
        .args(["--mca", "btl", "tcp,self", "--mca", "btl_tcp_if_include", "lo", "--mca", "oob_tcp_if_include", "lo"])
        .arg(&exe)
        .args(["mpi_worker", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("starting mpirun");
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            child.kill().unwrap();
            panic!("mpirun -np {np} did not end within {limit:?}: a rank hangs");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    let output = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    Job { success: out.status.success(), output }
}

fn have_mpirun() -> bool {
    let found = Command::new("mpirun").arg("--version").output().is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("skipped: no mpirun on the PATH (install OpenMPI: openmpi-bin)");
    }
    found
}

/// Trains `steps` steps on `np` ranks in `run` (resuming its checkpoint if asked).
fn train_on(np: usize, run: &Path, resume: bool, steps: usize) {
    let mut vars = vec![("STIPPLE_MPI_RUN", run.display().to_string()), ("STIPPLE_MPI_STEPS", steps.to_string())];
    vars.push(("STIPPLE_MPI_BATCH", "4".into()));
    if resume {
        vars.push(("STIPPLE_MPI_RESUME", "1".into()));
    }
    let job = mpirun(np, &vars, Duration::from_secs(300));
    assert!(job.success, "mpirun -np {np} failed:\n{}", job.output);
}

/// Trains `steps` steps in this process alone.
fn train_alone(run: &Path, steps: usize) {
    Trainer::new(tiny_config(4, 0), &opts(run, false, steps)).unwrap().run(&mut [&mut Dashboard::default()]).unwrap();
}

/// How far a state is from the reference, as the largest ratio of error to tolerance (≤ 1
/// passes) over the elements whose gradient is above AdamW's ε (`live`) and the others
/// (`noise`), and the largest absolute difference of a live weight.
struct Errors {
    live: f32,
    noise: f32,
    live_abs: f32,
}

/// Compares the checkpoint in `a` with the reference in `b` after `steps` steps: weights and
/// EMA within [`ATOL`] + [`RTOL`]·|b|, AdamW's moments within [`RTOL_MOMENTS`]·|b| (m:
/// [`RTOL_MOMENTS`]·(|b| + √v)) where the
/// reference's bias-corrected √v̂ ≥ ε; elsewhere the update follows rounding noise and each
/// step moves a weight by at most about the learning rate, so weights and EMA within LR·steps
/// and the moments within ε (m) and ε² (v).
fn compare(a: &Path, b: &Path, steps: usize) -> Errors {
    let (ca, cb) = (load_checkpoint(a, &Device::Cpu).unwrap(), load_checkpoint(b, &Device::Cpu).unwrap());
    assert_eq!((ca.state.step, ca.state.adam_t), (steps, steps));
    assert_eq!((cb.state.step, cb.state.adam_t), (steps, steps));
    let values = |t: &candle_core::Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let eps = cb.config.optimizer.eps as f32;
    let bias2 = 1.0 - (cb.config.optimizer.beta2 as f32).powi(steps as i32);
    let mut e = Errors { live: 0.0, noise: 0.0, live_abs: 0.0 };
    for name in cb.weights.keys() {
        let (m, v) = (format!("m.{name}"), format!("v.{name}"));
        let rms: Vec<f32> = values(&cb.optimizer[&v]).iter().map(|v| v.sqrt()).collect();
        let kinds = [
            (&ca.weights[name], &cb.weights[name], false, ATOL, RTOL, LR as f32 * steps as f32),
            (&ca.ema[name], &cb.ema[name], false, ATOL, RTOL, LR as f32 * steps as f32),
            (&ca.optimizer[&m], &cb.optimizer[&m], true, 0.0, RTOL_MOMENTS, eps),
            (&ca.optimizer[&v], &cb.optimizer[&v], false, 0.0, RTOL_MOMENTS, eps * eps),
        ];
        for (i, (x, y, signed_mean, atol, rtol, noise_tol)) in kinds.into_iter().enumerate() {
            for ((p, q), &rms) in values(x).iter().zip(values(y)).zip(&rms) {
                let d = (p - q).abs();
                if rms / bias2.sqrt() >= eps {
                    // m averages gradients of either sign: it may cancel to near 0, so its
                    // error is measured against the gradient's scale √v as well.
                    let scale = if signed_mean { q.abs() + rms } else { q.abs() };
                    e.live = e.live.max(d / (atol + rtol * scale));
                    if i == 0 {
                        e.live_abs = e.live_abs.max(d);
                    }
                } else {
                    e.noise = e.noise.max(d / noise_tol);
                }
            }
        }
    }
    e
}

/// Each logged step's (loss, gradient norm).
fn log(run: &Path) -> Vec<(f64, f64)> {
    let text = std::fs::read_to_string(run.join(LOG_FILE)).unwrap();
    let line = |l: &str| -> (f64, f64) {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        (v["loss"].as_f64().unwrap(), v["grad_norm"].as_f64().unwrap())
    };
    text.lines().map(line).collect()
}

fn assert_close(a: &Path, b: &Path, steps: usize, what: &str) {
    let (la, lb) = (log(a), log(b));
    assert_eq!((la.len(), lb.len()), (steps, steps), "{what}: logged steps");
    let rel = |x: f64, y: f64| (x - y).abs() / y.abs();
    let log_worst = la.iter().zip(&lb).map(|(x, y)| rel(x.0, y.0).max(rel(x.1, y.1))).fold(0.0, f64::max);
    let e = compare(a, b, steps);
    eprintln!(
        "{what}: loss and gradient norm within {log_worst:.2e} (relative); state within {:.3} of the tolerance where the \
         gradient is above AdamW's eps (largest weight difference {:.2e}), {:.3} elsewhere",
        e.live, e.live_abs, e.noise
    );
    assert!(log_worst <= LOG_RTOL, "{what}: loss or gradient norm differ by {log_worst:e} (relative)");
    assert!(e.live <= 1.0 && e.noise <= 1.0, "{what}: {} and {} times the tolerances", e.live, e.noise);
    // Not the same computation: 2 ranks sum the gradients in another order.
    assert!(e.live_abs > 0.0, "{what}: bit-identical results are unexpected with 2 ranks");
}

#[test]
fn two_ranks_train_like_one_process_and_resume_on_any_number() {
    if !have_mpirun() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name);
    train_alone(&p("alone2"), 2);
    train_alone(&p("alone4"), 4);

    // A world of one rank is one process, bit for bit.
    train_on(1, &p("one"), false, 2);
    let e = compare(&p("one"), &p("alone2"), 2);
    assert_eq!((e.live, e.noise), (0.0, 0.0), "one rank under mpirun differs from one process");
    assert_eq!(log(&p("one")), log(&p("alone2")));

    // Two ranks, each with half of every batch.
    train_on(2, &p("two"), false, 2);
    assert_close(&p("two"), &p("alone2"), 2, "2 steps on 2 ranks vs 1 process");

    // Resumed on one rank from the 2-rank checkpoint, and on two ranks from one process's.
    train_on(1, &p("two"), true, 4);
    assert_close(&p("two"), &p("alone4"), 4, "2 steps on 2 ranks + 2 on one rank vs 4 steps in 1 process");
    train_on(2, &p("alone2"), true, 4);
    assert_close(&p("alone2"), &p("alone4"), 4, "2 steps in 1 process + 2 on 2 ranks vs 4 steps in 1 process");
}

#[test]
fn bad_starts_fail_on_every_rank_with_the_reason() {
    if !have_mpirun() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str| ("STIPPLE_MPI_RUN", dir.path().join(name).display().to_string());
    let base = |name: &str, batch: &str| vec![run(name), ("STIPPLE_MPI_STEPS", "2".into()), ("STIPPLE_MPI_BATCH", batch.into())];

    let job = mpirun(2, &base("odd", "3"), Duration::from_secs(120));
    assert!(!job.success && job.output.contains("batch size 3 must be a multiple of the number of ranks 2"), "{}", job.output);

    let mut vars = base("seed", "4");
    vars.push(("STIPPLE_MPI_FAULT", "seed".into()));
    let job = mpirun(2, &vars, Duration::from_secs(120));
    assert!(!job.success, "{}", job.output);
    // Every rank finds the mismatch (rank 0 too, not only the one that differs); mpirun ends
    // the job as soon as the first of them exits with the error, so one report is certain.
    let said = "error: data-parallel training: rank 1 runs a different configuration";
    assert!(job.output.contains(said), "the mismatch was not reported:\n{}", job.output);
    assert!(!dir.path().join("seed").join("checkpoint").exists(), "a refused run wrote a checkpoint");
}

#[test]
fn a_dead_or_hung_rank_ends_the_job() {
    if !have_mpirun() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let vars = |fault: &str| {
        vec![
            ("STIPPLE_MPI_RUN", dir.path().join(fault).display().to_string()),
            ("STIPPLE_MPI_STEPS", "3".into()),
            ("STIPPLE_MPI_BATCH", "4".into()),
            ("STIPPLE_MPI_FAULT", fault.into()),
            ("STIPPLE_MPI_TIMEOUT", "5".into()),
        ]
    };
    // Killed (kill -9) after its first step: mpirun notices and ends the job.
    let job = mpirun(2, &vars("kill"), Duration::from_secs(120));
    assert!(!job.success, "{}", job.output);
    assert!(job.output.contains("exited on signal 9 (Killed)"), "{}", job.output);
    // Alive but stuck: rank 0's all-reduce of the second step times out and aborts the job.
    let job = mpirun(2, &vars("hang"), Duration::from_secs(120));
    assert!(!job.success, "{}", job.output);
    assert!(job.output.contains("rank 0 of 2 waited more than 5 s for the other ranks in an all-reduce"), "{}", job.output);
}
