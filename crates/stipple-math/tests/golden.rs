//! Golden values from diffusers 0.42.1 and k-diffusion 0.1.1.post1 (torch 2.15.0, numpy
//! 1.26.4), made by tests/reference/make_math_golden.py; each test quotes its snippet.
//!
//! diffusers keeps its schedules in float32, so those comparisons allow f32-sized relative
//! errors; the k-diffusion snippets run with `torch.set_default_dtype(torch.float64)` on a
//! float64 schedule and are compared tightly.

// The golden numbers are pasted verbatim from the Python output.
#![allow(clippy::approx_constant, clippy::excessive_precision)]

use stipple_math::*;

/// The indices `pick` takes in the Python script.
const IDX: [usize; 8] = [0, 1, 2, 499, 500, 997, 998, 999];

#[track_caller]
fn assert_close(actual: &[f64], expected: &[f64], rel: f64) {
    assert_eq!(actual.len(), expected.len(), "{actual:?} vs {expected:?}");
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        let tol = rel * e.abs().max(1e-300);
        assert!(
            (a - e).abs() <= tol,
            "index {i}: got {a}, expected {e} (rel err {:e})\n got {actual:?}\n exp {expected:?}",
            (a - e).abs() / e.abs()
        );
    }
}

fn pick(v: &[f64]) -> Vec<f64> {
    IDX.iter().map(|&i| v[i]).collect()
}

/// The SD 1.x schedule as in the k-diffusion snippets (in f64):
/// betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
/// ac = torch.cumprod(1 - betas, 0)
/// eps = K.external.DiscreteEpsDDPMDenoiser(torch.nn.Identity(), ac, quantize=False)
fn sd_schedule() -> DiscreteSchedule {
    DiscreteSchedule::new(BetaSchedule::ScaledLinear, 1000, 0.00085, 0.012)
}

// pick(DDPMScheduler(beta_schedule="linear", beta_start=0.0001, beta_end=0.02).betas)
#[test]
fn betas_linear() {
    let b = BetaSchedule::Linear.betas(1000, 0.0001, 0.02);
    let expected = [9.999999747378752e-05, 0.00011991991777904332, 0.0001398398308083415, 0.010040040127933025, 0.010059959255158901, 0.019960159435868263, 0.01998008042573929, 0.019999999552965164];
    assert_close(&pick(&b), &expected, 1e-7);
}

// pick(DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012).betas)
#[test]
fn betas_scaled_linear() {
    let b = BetaSchedule::ScaledLinear.betas(1000, 0.00085, 0.012);
    let expected = [0.0008499999530613422, 0.0008546985918655992, 0.0008594102109782398, 0.0048037925735116005, 0.004814953543245792, 0.011964765377342701, 0.01198237482458353, 0.011999999172985554];
    // √β rounded to f32, then squared in f32: a few f32 ulps.
    assert_close(&pick(&b), &expected, 3e-7);
}

// pick(DDPMScheduler(beta_schedule="squaredcos_cap_v2").betas)
// Integer division of i/T (candle's port) would make every β but the last 0: β₀ ≈ 4.1e-5.
#[test]
fn betas_squaredcos_cap_v2() {
    let b = BetaSchedule::SquaredcosCapV2.betas(1000, 0.0001, 0.02);
    let expected = [4.128422369831242e-05, 4.614175122696906e-05, 5.099948248243891e-05, 0.003145886119455099, 0.003155691549181938, 0.5555537343025208, 0.7499994039535522, 0.9990000128746033];
    assert!(b[0] > 4e-5 && b[0] < 4.2e-5, "beta_0 = {}", b[0]);
    assert!(b[..999].iter().all(|&x| x > 0.0 && x < 0.999));
    assert_eq!(b[999], 0.999, "the cap");
    assert_close(&pick(&b), &expected, 1e-6);
}

// pick(DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012).alphas_cumprod)
// pick(DDPMScheduler(beta_schedule="squaredcos_cap_v2").alphas_cumprod)
// (float32 cumulative products: relative error grows along t; 2.4e-9 at the end.)
#[test]
fn alphas_cumprod_golden() {
    let ac = alphas_cumprod(&BetaSchedule::ScaledLinear.betas(1000, 0.00085, 0.012));
    let expected = [0.9991499781608582, 0.9982960224151611, 0.9974380731582642, 0.27766942977905273, 0.27633246779441833, 0.0047738985158503056, 0.004716695751994848, 0.00466009508818388];
    assert_close(&pick(&ac), &expected, 2e-5);
    let ac = alphas_cumprod(&BetaSchedule::SquaredcosCapV2.betas(1000, 0.0001, 0.02));
    let expected = [0.9999586939811707, 0.9999125599861145, 0.9998615384101868, 0.4938434660434723, 0.4922850430011749, 9.715042324387468e-06, 2.428766265438753e-06, 2.4287349909002387e-09];
    assert_close(&pick(&ac), &expected, 1e-4);
}

// for spacing in ["leading", "trailing", "linspace"]: for steps in [5, 7]:
//     s = DDIMScheduler(timestep_spacing=spacing, steps_offset=1); s.set_timesteps(steps); s.timesteps
//     e = EulerDiscreteScheduler(timestep_spacing=spacing, steps_offset=1); e.set_timesteps(steps); e.timesteps
#[test]
fn timesteps_golden() {
    use TimestepSpacing::*;
    let cases: [(TimestepSpacing, usize, &[f64], &[f64]); 6] = [
        (Leading, 5, &[801.0, 601.0, 401.0, 201.0, 1.0], &[801.0, 601.0, 401.0, 201.0, 1.0]),
        (Leading, 7, &[853.0, 711.0, 569.0, 427.0, 285.0, 143.0, 1.0], &[853.0, 711.0, 569.0, 427.0, 285.0, 143.0, 1.0]),
        (Trailing, 5, &[999.0, 799.0, 599.0, 399.0, 199.0], &[999.0, 799.0, 599.0, 399.0, 199.0]),
        (Trailing, 7, &[999.0, 856.0, 713.0, 570.0, 428.0, 285.0, 142.0], &[999.0, 856.0, 713.0, 570.0, 428.0, 285.0, 142.0]),
        (Linspace, 5, &[999.0, 749.0, 500.0, 250.0, 0.0], &[999.0, 749.25, 499.5, 249.75, 0.0]),
        (Linspace, 7, &[999.0, 832.0, 666.0, 500.0, 333.0, 166.0, 0.0], &[999.0, 832.5, 666.0, 499.5, 333.0, 166.5, 0.0]),
    ];
    for (spacing, steps, ddim, euler) in cases {
        assert_eq!(timesteps_rounded(spacing, 1000, steps, 1), ddim, "DDIM {spacing} {steps}");
        assert_eq!(timesteps(spacing, 1000, steps, 1), euler, "Euler {spacing} {steps}");
    }
}

// for spacing in ["leading", "trailing", "linspace"]:
//     e = EulerDiscreteScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
//                                timestep_spacing=spacing, steps_offset=1)
//     e.set_timesteps(7); e.sigmas
#[test]
fn euler_discrete_sigmas_golden() {
    let sched = sd_schedule();
    let cases: [(SigmaSchedule, [f64; 8]); 3] = [
        (SigmaSchedule::Leading, [6.570651531219482, 3.4854564666748047, 2.0473127365112305, 1.2720634937286377, 0.7900615334510803, 0.4403095841407776, 0.04131447896361351, 0.0]),
        (SigmaSchedule::Trailing, [14.614646911621094, 6.668572902679443, 3.5138795375823975, 2.054476737976074, 1.276235818862915, 0.7900615334510803, 0.43806231021881104, 0.0]),
        (SigmaSchedule::Linspace, [14.614646911621094, 5.948918342590332, 2.9183084964752197, 1.6155834197998047, 0.9323583841323853, 0.49355348944664, 0.02916753478348255, 0.0]),
    ];
    for (kind, expected) in cases {
        let s = kind.build(&sched, 7, 1).unwrap();
        assert_eq!(s.steps(), 7);
        assert_eq!(s.as_slice()[7], 0.0);
        // diffusers forms 1 − ᾱ in f32: near t = 0 (ᾱ ≈ 0.999) that cancellation alone costs
        // ~1e-5 relative (our f64 σ_0 = 0.029167158 vs its 0.029167535); elsewhere its f32
        // cumulative product drifts by ~1e-6.
        assert_close(&s.as_slice()[..6], &expected[..6], 3e-6);
        assert_close(&s.as_slice()[6..7], &expected[6..7], 2e-5);
    }
}

// torch.set_default_dtype(torch.float64)
// K.sampling.get_sigmas_karras(7, 0.0292, 14.6146, rho=7.0)[:-1]
// K.sampling.get_sigmas_karras(1, 0.0292, 14.6146, rho=7.0)[:-1]
// K.sampling.get_sigmas_exponential(7, 0.0292, 14.6146)[:-1]
#[test]
fn karras_and_exponential_golden() {
    let expected = [14.614599999999992, 7.094999276307555, 3.1692041472211496, 1.274515712136457, 0.4471446199209856, 0.13040618169364626, 0.029200000000000004];
    assert_close(&karras(7, 0.0292, 14.6146, 7.0), &expected, 1e-13);
    assert_close(&karras(1, 0.0292, 14.6146, 7.0), &[14.614599999999992], 1e-13);
    let expected = [14.614599999999996, 5.186641766435469, 1.840710851705339, 0.6532582337789549, 0.23183778136834357, 0.0822779631247373, 0.0292];
    assert_close(&exponential(7, 0.0292, 14.6146), &expected, 1e-13);
}

// [eps.sigma_min, eps.sigma_max]
// K.sampling.get_sigmas_karras(7, eps.sigma_min, eps.sigma_max, rho=7.0)[:-1]
// K.sampling.get_sigmas_exponential(7, eps.sigma_min, eps.sigma_max)[:-1]
#[test]
fn discrete_schedule_karras_exponential_golden() {
    let sched = sd_schedule();
    assert_close(&[sched.sigma_min(), sched.sigma_max()], &[0.029167158151720367, 14.614641229333639], 1e-12);
    let k = SigmaSchedule::Karras.build(&sched, 7, 0).unwrap();
    let expected = [14.614641229333643, 7.094410691754973, 3.168603072959619, 1.274100208978096, 0.44691820937343935, 0.13030758649055035, 0.02916715815172038];
    assert_close(&k.as_slice()[..7], &expected, 1e-12);
    assert_eq!(k.as_slice()[7], 0.0);
    let e = SigmaSchedule::Exponential.build(&sched, 7, 0).unwrap();
    let expected = [14.614641229333637, 5.185681247582629, 1.8400239581355944, 0.6528916847890062, 0.23166413142714898, 0.08220087809395096, 0.029167158151720367];
    assert_close(&e.as_slice()[..7], &expected, 1e-12);
}

// query = torch.tensor([0.01, 0.0292, 0.05, 0.1, 1.0, 3.3, 14.0, 14.6146, 20.0]); eps.sigma_to_t(query)
// ts = torch.tensor([0.0, 0.5, 1.0, 10.25, 499.9, 998.5, 999.0]); eps.t_to_sigma(ts)
// (t_to_sigma casts t to float32 first, so 499.9 is fed as 499.9_f32.)
#[test]
fn sigma_to_t_and_back_golden() {
    let sched = sd_schedule();
    let query = [0.01, 0.0292, 0.05, 0.1, 1.0, 3.3, 14.0, 14.6146, 20.0];
    let expected = [0.0, 0.0032322145275464147, 1.9338543555603032, 10.38219681104385, 353.89041059493974, 697.4045234976975, 991.8844178888767, 998.999534834261, 999.0];
    let got: Vec<f64> = query.iter().map(|&s| sched.timestep_for(s)).collect();
    for (g, e) in got.iter().zip(expected) {
        assert!((g - e).abs() < 1e-9, "sigma_to_t: got {got:?}, expected {expected:?}");
    }
    let ts = [0.0, 0.5, 1.0, 10.25, f64::from(499.9_f32), 998.5, 999.0];
    let expected = [0.029167158151720367, 0.03471345544101747, 0.041314411996783096, 0.09940557007322762, 1.6177387195282282, 14.570391470315318, 14.614641229333637];
    let got: Vec<f64> = ts.iter().map(|&t| sched.sigma_at(t)).collect();
    assert_close(&got, &expected, 1e-12);
    // And the two are inverse inside the range.
    for t in [0.0, 0.3, 17.5, 500.0, 998.9] {
        assert!((sched.timestep_for(sched.sigma_at(t)) - t).abs() < 1e-9);
    }
}

// sig = torch.tensor([0.0292, 0.5, 1.0, 2.5, 14.6146])
// c_out, c_in = eps.get_scalings(sig)
// v = K.external.DiscreteVDDPMDenoiser(torch.nn.Identity(), ac, quantize=False); v.get_scalings(sig)
// edm = K.layers.Denoiser(torch.nn.Identity(), sigma_data=0.5); edm.get_scalings(sig)
#[test]
fn scalings_golden() {
    let sig = [0.0292, 0.5, 1.0, 2.5, 14.6146];
    let col = |p: Prediction, f: fn(Scalings) -> f64| -> Vec<f64> {
        sig.iter().map(|&s| f(p.scalings(s))).collect()
    };
    let eps = Prediction::Epsilon;
    assert_close(&col(eps, |s| s.c_out), &[-0.0292, -0.5, -1.0, -2.5, -14.6146], 1e-15);
    assert_close(&col(eps, |s| s.c_in), &[0.9995739524295502, 0.8944271909999159, 0.7071067811865475, 0.3713906763541037, 0.06826510590225932], 1e-14);
    assert!(col(eps, |s| s.c_skip).iter().all(|&c| c == 1.0));
    let v = Prediction::VPrediction;
    assert_close(&col(v, |s| s.c_skip), &[0.9991480863756327, 0.8, 0.5, 0.13793103448275862, 0.00466012468384668], 1e-14);
    assert_close(&col(v, |s| s.c_out), &[-0.029187559410942865, -0.4472135954999579, -0.7071067811865475, -0.9284766908852594, -0.9976672167191589], 1e-14);
    assert_close(&col(v, |s| s.c_in), &[0.9995739524295502, 0.8944271909999159, 0.7071067811865475, 0.3713906763541037, 0.06826510590225932], 1e-14);
    let edm = Prediction::Edm { sigma_data: 0.5 };
    assert_close(&col(edm, |s| s.c_skip), &[0.9966010323829958, 0.5, 0.2, 0.038461538461538464, 0.0011691173454114188], 1e-14);
    assert_close(&col(edm, |s| s.c_out), &[0.02915033283259451, 0.35355339059327373, 0.4472135954999579, 0.4902903378454601, 0.49970763518646294], 1e-14);
    assert_close(&col(edm, |s| s.c_in), &[1.9965981392188021, 1.414213562373095, 0.8944271909999159, 0.3922322702763681, 0.0683847159944799], 1e-14);
    let x0 = Prediction::Sample;
    assert!(sig.iter().all(|&s| { let c = x0.scalings(s); c.c_skip == 0.0 && c.c_out == 1.0 }));
    assert_close(&col(x0, |s| s.c_in), &col(eps, |s| s.c_in), 0.0);
}

// for name, den in [("v", v), ("edm", edm)]:
//     c_skip, c_out, _ = den.get_scalings(sig)
//     (1 - c_skip * 1) / c_out          # a: x0 = 1, noise = 0
//     (0 - c_skip * sig) / c_out        # b: x0 = 0, noise = 1
#[test]
fn target_coefficients_golden() {
    let sig = [0.0292, 0.5, 1.0, 2.5, 14.6146];
    let ab = |p: Prediction| -> (Vec<f64>, Vec<f64>) {
        sig.iter().map(|&s| p.target_coefficients(s)).unzip()
    };
    let (a, b) = ab(Prediction::VPrediction);
    assert_close(&a, &[-0.029187559410942802, -0.44721359549995787, -0.7071067811865476, -0.9284766908852592, -0.997667216719159], 1e-13);
    assert_close(&b, &[0.9995739524295502, 0.894427190999916, 0.7071067811865476, 0.3713906763541037, 0.06826510590225932], 1e-13);
    let (a, b) = ab(Prediction::Edm { sigma_data: 0.5 });
    assert_close(&a, &[0.11660133133037977, 1.4142135623730951, 1.788854381999832, 1.9611613513818402, 1.998830540745852], 1e-13);
    assert_close(&b, &[-0.9982990696094011, -0.7071067811865476, -0.447213595499958, -0.19611613513818402, -0.03419235799723995], 1e-13);
    for s in sig {
        assert_eq!(Prediction::Epsilon.target_coefficients(s), (0.0, 1.0));
        assert_eq!(Prediction::Sample.target_coefficients(s), (1.0, 0.0));
    }
}

// for (a, b, e) in [(14.6146, 10.0, 1.0), (1.0, 0.5, 1.0), (1.0, 0.5, 0.5), (0.1, 0.05, 1.0)]:
//     K.sampling.get_ancestral_step(torch.tensor(a), torch.tensor(b), eta=e)
#[test]
fn ancestral_step_golden() {
    let cases = [
        ((14.6146, 10.0, 1.0), [6.842472595897253, 7.292500858717474]),
        ((1.0, 0.5, 1.0), [0.25000000000000006, 0.4330127018922193]),
        ((1.0, 0.5, 0.5), [0.45069390943299864, 0.21650635094610965]),
        ((0.1, 0.05, 1.0), [0.024999999999999998, 0.04330127018922194]),
    ];
    for ((from, to, eta), expected) in cases {
        let (d, u) = ancestral_step(from, to, eta);
        assert_close(&[d, u], &expected, 1e-14);
    }
}
