//! The Brownian tree: a fixed path per seed, with the law of Brownian motion, whose
//! normalised increments are k-diffusion's SDE noise; and what it is for: an SDE sampler's
//! result changes little when the step count changes.
//!
//! The statistical checks use many elements (= independent paths) and allow 5 standard
//! errors, so a wrong variance, a missing bridge term or correlated paths fail them.

mod common;
use common::*;
use stipple_sample::*;

const N: usize = 20_000;

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

fn cov(a: &[f64], b: &[f64]) -> f64 {
    let (ma, mb) = (mean(a), mean(b));
    a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum::<f64>() / (a.len() - 1) as f64
}

fn corr(a: &[f64], b: &[f64]) -> f64 {
    cov(a, b) / (cov(a, a) * cov(b, b)).sqrt()
}

#[test]
fn the_path_is_a_function_of_seed_time_and_element() {
    let ts = [0.03, 0.7, 1.0, 5.3, 14.6];
    let mut forward = BrownianTree::new(11);
    let a: Vec<Vec<f64>> = ts.iter().map(|&t| forward.value(t, 8).unwrap()).collect();
    // Other query order, other element counts, a fresh tree: the same numbers.
    let mut backward = BrownianTree::new(11);
    for (i, &t) in ts.iter().enumerate().rev() {
        assert_eq!(backward.value(t, 3).unwrap(), a[i][..3], "t = {t}");
        assert_eq!(backward.value(t, 8).unwrap(), a[i], "t = {t}");
    }
    // Another seed: another path.
    let other = BrownianTree::new(12).value(5.3, 8).unwrap();
    assert!(other.iter().zip(&a[3]).all(|(x, y)| x != y));
    assert_eq!(BrownianTree::new(11).value(0.0, 4).unwrap(), vec![0.0; 4]);
}

#[test]
fn values_have_the_law_of_brownian_motion() {
    let ts = [0.03, 0.3, 0.9, 1.0, 5.3, 14.6, 3000.0];
    let mut tree = BrownianTree::new(5);
    let w: Vec<Vec<f64>> = ts.iter().map(|&t| tree.value(t, N).unwrap()).collect();
    let n = N as f64;
    for (t, w) in ts.iter().zip(&w) {
        // W(t) ~ N(0, t).
        assert!(mean(w).abs() < 5.0 * (t / n).sqrt(), "t = {t}: mean {}", mean(w));
        let var = cov(w, w);
        assert!((var / t - 1.0).abs() < 5.0 * (2.0 / n).sqrt(), "t = {t}: variance {var}");
    }
    // Cov(W(s), W(t)) = min(s, t): corr = √(s/t) inside a block and across blocks.
    for (i, j) in [(1, 2), (2, 3), (0, 4), (3, 5), (4, 6)] {
        let want = (ts[i] / ts[j]).sqrt();
        let got = corr(&w[i], &w[j]);
        assert!((got - want).abs() < 5.0 * (1.0 - want * want) / n.sqrt() + 1e-3, "{} {}: {got} vs {want}", ts[i], ts[j]);
    }
}

#[test]
fn increments_are_standard_normal_independent_and_additive() {
    let (a, b, c) = (14.6, 3.2, 0.4);
    let mut tree = BrownianTree::new(9);
    let ab = tree.increment(a, b, N).unwrap();
    let bc = tree.increment(b, c, N).unwrap();
    let ac = tree.increment(a, c, N).unwrap();
    let n = N as f64;
    for z in [&ab, &bc, &ac] {
        assert!(mean(z).abs() < 5.0 / n.sqrt(), "mean {}", mean(z));
        assert!((cov(z, z) - 1.0).abs() < 5.0 * (2.0 / n).sqrt(), "variance {}", cov(z, z));
    }
    // Adjacent intervals: independent.
    assert!(corr(&ab, &bc).abs() < 5.0 / n.sqrt(), "{}", corr(&ab, &bc));
    // Before normalisation W(a → c) = W(a → b) + W(b → c) (the ends lie on the 2^-32 grid,
    // so the lengths differ from a − c etc. by < 1e-9 relative).
    for i in 0..N {
        let sum = ab[i] * (a - b).sqrt() + bc[i] * (b - c).sqrt();
        assert!((ac[i] * (a - c).sqrt() - sum).abs() < 1e-8, "{i}");
    }
    // Nested intervals: corr = √(|b − a| / |c − a|), k-diffusion's dpmpp_sde relies on it.
    let want = ((a - b) / (a - c)).sqrt();
    assert!((corr(&ab, &ac) - want).abs() < 5.0 / n.sqrt(), "{} vs {want}", corr(&ab, &ac));
    // The sign convention of k-diffusion: (W(σ') − W(σ))/√|σ' − σ|.
    let (wa, wb) = (tree.value(a, 3).unwrap(), tree.value(b, 3).unwrap());
    for i in 0..3 {
        assert!((ab[i] - (wb[i] - wa[i]) / (a - b).sqrt()).abs() < 1e-9);
    }
}

#[test]
fn bad_times_are_errors() {
    let mut tree = BrownianTree::new(1);
    for t in [-0.1, f64::NAN, f64::INFINITY, 3e9] {
        assert!(tree.value(t, 2).is_err(), "{t}");
    }
    assert!(tree.increment(1.0, 1.0 + 1e-12, 2).is_err());
    assert!(tree.noise_like(&vec![0.0; 2]).is_err());
}

/// Final samples of an SDE sampler for `steps` and `2·steps` Karras steps over the same
/// σ range: the RMS distance between the two.
fn rms_change(kind: SamplerKind, steps: usize, noise: impl Fn() -> Box<dyn Noise<Vec<f64>>>) -> f64 {
    let sched = DiscreteSchedule::new(BetaSchedule::ScaledLinear, 1000, 0.00085, 0.012);
    let x_unit: Vec<f64> = Philox4x32::new(3).normals(2000).into_iter().map(f64::from).collect();
    let run = |n: usize| {
        let sigmas = SigmaSchedule::Karras.build(&sched, n, 0).unwrap();
        let x: Vec<f64> = x_unit.iter().map(|v| v * sigmas.first()).collect();
        let mut boxed = noise();
        let mut z: &mut dyn Noise<Vec<f64>> = &mut *boxed;
        sample(kind, &mut Gaussian::default(), x, &sigmas, &SamplerOptions::default(), &mut z, &mut ()).unwrap()
    };
    let (a, b) = (run(steps), run(2 * steps));
    (a.iter().zip(&b).map(|(x, y)| (x - y) * (x - y)).sum::<f64>() / a.len() as f64).sqrt()
}

#[test]
fn sde_samples_change_little_with_the_step_count() {
    for kind in [SamplerKind::Dpmpp2mSde, SamplerKind::Dpmpp2mSdeHeun, SamplerKind::Dpmpp3mSde, SamplerKind::DpmppSde] {
        let brownian = rms_change(kind, 25, || Box::new(BrownianTree::new(42)));
        let independent = rms_change(kind, 25, || Box::new(Philox4x32::new(42)));
        eprintln!("{kind}: RMS change 25 → 50 steps, Brownian {brownian:.4}, independent {independent:.4}");
        // Independent noise gives unrelated samples: RMS ≈ √2·S (the data's spread). On one
        // path the 2M/3M SDE samples move 6% of that, DPM++ SDE's (ancestral sub-steps) 15%.
        assert!(independent > S, "{kind}: {independent}");
        assert!(brownian < 0.2 * independent, "{kind}: {brownian} vs {independent}");
    }
}
