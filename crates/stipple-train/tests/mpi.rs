//! Data-parallel training under `mpirun` gives the single-process result: a tiny model
//! trained 2 steps on 2 ranks matches 2 steps in one process, a run resumed on a different
//! number of ranks matches the uninterrupted single-process run, a world of one rank is
//! bit-identical to one process, and bad starts and dead ranks end the job with a clear error.
//!
//! Needs the `mpi` feature and OpenMPI's `mpirun` on the PATH (the tests say they were skipped
//! without it). Each job is this test binary itself, run by `mpirun` with the ignored test
//! `mpi_worker` selected and its orders in environment variables.
//!
//! Tolerances: see `support/equivalence.rs`.
#![cfg(feature = "mpi")]

#[path = "support/equivalence.rs"]
mod equivalence;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use equivalence::{assert_close, compare, log, opts, tiny_config, train_alone};
use stipple_train::{Collective, Dashboard, MpiWorld, Trainer};

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
