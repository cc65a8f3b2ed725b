//! The short-time Fourier transform of a clip and the multi-resolution STFT distance between
//! two clips, the spectral measure of generated sound.

use rustfft::num_complex::Complex;
use rustfft::FftPlanner;

use crate::AudioError;

/// How a centred STFT pads the signal by n_fft/2 on both sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    /// Mirrored without repeating the edge sample (numpy's and torch's `"reflect"`); needs a
    /// clip longer than n_fft/2.
    Reflect,
    /// Zeros (numpy's `"constant"`, librosa's default `pad_mode` since 0.10).
    Zeros,
}

/// Magnitudes |STFT| of `samples`, `frames × (n_fft/2 + 1)`, as `torch.stft(x, n_fft, hop,
/// window=torch.hann_window(n_fft), center=True, pad_mode="reflect", return_complex=True).abs()`
/// computes them (transposed): the signal reflect-padded by n_fft/2 on both sides, frame t
/// starting at t·hop, each frame multiplied by the periodic Hann window
/// w[n] = ½ − ½cos(2πn/N) and transformed, the non-negative frequencies kept.
pub fn stft_magnitude(samples: &[f32], n_fft: usize, hop: usize) -> Result<Vec<Vec<f32>>, AudioError> {
    stft_magnitude_padded(samples, n_fft, hop, Padding::Reflect)
}

/// [`stft_magnitude`] with the centre padding chosen: [`Padding::Zeros`] is
/// `librosa.stft(x, n_fft=n_fft, hop_length=hop)` with its defaults (`window="hann"`,
/// periodic; `center=True`; `pad_mode="constant"`), transposed and taken in absolute value.
pub fn stft_magnitude_padded(samples: &[f32], n_fft: usize, hop: usize, padding: Padding) -> Result<Vec<Vec<f32>>, AudioError> {
    let pad = n_fft / 2;
    if n_fft < 2 || hop == 0 {
        return Err(AudioError::Setting { setting: "stft", expected: format!("n_fft ≥ 2 and hop ≥ 1, got {n_fft} and {hop}") });
    }
    if padding == Padding::Reflect && samples.len() <= pad {
        return Err(AudioError::Setting { setting: "stft", expected: format!("a clip longer than n_fft/2 = {pad} samples (reflect padding), got {}", samples.len()) });
    }
    if samples.is_empty() {
        return Err(AudioError::Setting { setting: "stft", expected: "a clip of at least one sample".into() });
    }
    let n = samples.len();
    let at = |i: isize| -> f32 {
        match padding {
            Padding::Reflect => {
                let i = if i < 0 { -i } else { i } as usize;
                samples[if i < n { i } else { 2 * (n - 1) - i }]
            }
            Padding::Zeros => usize::try_from(i).ok().and_then(|i| samples.get(i)).copied().unwrap_or(0.0),
        }
    };
    let padded: Vec<f32> = (-(pad as isize)..(n + pad) as isize).map(at).collect();
    let window: Vec<f32> = (0..n_fft).map(|k| (0.5 - 0.5 * (std::f64::consts::TAU * k as f64 / n_fft as f64).cos()) as f32).collect();
    let fft = FftPlanner::<f32>::new().plan_fft_forward(n_fft);
    let frames = (padded.len() - n_fft) / hop + 1;
    let mut out = Vec::with_capacity(frames);
    let mut buf = vec![Complex::new(0.0f32, 0.0); n_fft];
    for t in 0..frames {
        for (k, b) in buf.iter_mut().enumerate() {
            *b = Complex::new(padded[t * hop + k] * window[k], 0.0);
        }
        fft.process(&mut buf);
        out.push(buf[..n_fft / 2 + 1].iter().map(|c| c.norm()).collect());
    }
    Ok(out)
}

/// The resolutions `(n_fft, hop)` of Parallel WaveGAN's multi-resolution STFT loss
/// (Yamamoto et al. 2020, §2.3 and Table 1; window length = n_fft here).
pub const RESOLUTIONS: [(usize, usize); 3] = [(512, 128), (1024, 256), (2048, 512)];

/// The multi-resolution STFT distance of `generated` from `reference` (Yamamoto et al. 2020,
/// eqs. 4–6), averaged over `resolutions`: spectral convergence ‖|S| − |Ŝ|‖_F / ‖|S|‖_F plus the
/// mean absolute difference of log magnitudes (floored at 1e-7). Clips are cut to the shorter.
pub fn multi_resolution_stft_distance(generated: &[f32], reference: &[f32], resolutions: &[(usize, usize)]) -> Result<f64, AudioError> {
    let len = generated.len().min(reference.len());
    let mut total = 0.0;
    for &(n_fft, hop) in resolutions {
        let (g, r) = (stft_magnitude(&generated[..len], n_fft, hop)?, stft_magnitude(&reference[..len], n_fft, hop)?);
        let (mut diff2, mut ref2, mut log_l1, mut count) = (0.0f64, 0.0f64, 0.0f64, 0usize);
        for (gf, rf) in g.iter().zip(&r) {
            for (a, b) in gf.iter().zip(rf) {
                let (a, b) = (f64::from(*a), f64::from(*b));
                diff2 += (b - a).powi(2);
                ref2 += b * b;
                log_l1 += (b.max(1e-7).ln() - a.max(1e-7).ln()).abs();
                count += 1;
            }
        }
        total += (diff2 / ref2.max(f64::MIN_POSITIVE)).sqrt() + log_l1 / count as f64;
    }
    Ok(total / resolutions.len() as f64)
}
