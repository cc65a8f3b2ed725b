//! Philox 4×32-10 known answers and the A1111 "NV" generator's published values.

use stipple_sample::{philox4x32_10, Philox4x32};

/// Known-answer vectors of Random123 (kat_vectors, "philox4x32 10" lines).
#[test]
fn random123_known_answers() {
    assert_eq!(philox4x32_10([0; 4], [0; 2]), [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]);
    assert_eq!(
        philox4x32_10([u32::MAX; 4], [u32::MAX; 2]),
        [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]
    );
    assert_eq!(
        philox4x32_10([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0]),
        [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]
    );
}

/// The docstring of AUTOMATIC1111's modules/rng_philox.py:
/// `Generator(seed=0).randn(shape=(3, 4))` prints these (numpy's 8-digit repr). They agree
/// with the module's own numpy code only to ~3e-7 (they look like CUDA `torch.randn`'s f32
/// Box–Muller, which the module imitates), so this check is at f32 precision.
#[test]
fn a1111_nv_generator_seed_0_docstring() {
    let expected = [
        -0.92466259, -0.42534415, -2.6438457, 0.14518388, -0.12086647, -0.57972564, -0.62285122,
        -0.32838709, -1.07454231, -0.36314407, -1.67105067, 2.26550497,
    ];
    let got = Philox4x32::new(0).normals(12);
    for (g, e) in got.iter().zip(expected) {
        assert!((f64::from(*g) - e).abs() < 5e-7, "{got:?}");
    }
}

/// Bit-exact against the module itself: rng_philox.py (AUTOMATIC1111/stable-diffusion-webui
/// at 255da37d) run under numpy 1.26.4,
/// `[repr(float(v)) for v in Generator(seed=0).randn((12,))]`.
#[test]
fn a1111_nv_generator_seed_0_bit_exact() {
    let expected: [f64; 12] = [
        -0.9246624112129211, -0.42534396052360535, -2.643845796585083, 0.14518387615680695,
        -0.12086650729179382, -0.5797256827354431, -0.6228513121604919, -0.32838714122772217,
        -1.0745420455932617, -0.3631440997123718, -1.6710504293441772, 2.265505075454712,
    ];
    let got: Vec<f64> = Philox4x32::new(0).normals(12).into_iter().map(f64::from).collect();
    assert_eq!(got, expected);
}

#[test]
fn draws_are_reproducible_and_advance() {
    let mut a = Philox4x32::new(42);
    let first = a.normals(5);
    let second = a.normals(5);
    assert_ne!(first, second);
    assert_eq!(a.offset(), 2);
    assert_eq!(Philox4x32::new(42).normals(5), first);
    assert_eq!(Philox4x32::with_offset(42, 1).normals(5), second);
    // A longer draw extends a shorter one (element i depends on i, not on n).
    assert_eq!(Philox4x32::new(42).normals(9)[..5], first[..]);
    assert_eq!(Philox4x32::new(42).next_normal(), first[0]);
    assert_ne!(Philox4x32::new(43).normals(5), first);
}

#[test]
fn normals_look_standard() {
    let v = Philox4x32::new(7).normals(200_000);
    let n = v.len() as f64;
    let m = v.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
    let var = v.iter().map(|&x| (f64::from(x) - m).powi(2)).sum::<f64>() / n;
    assert!(m.abs() < 0.01 && (var - 1.0).abs() < 0.01, "mean {m}, var {var}");
    assert!(v.iter().all(|x| x.is_finite()));
}
