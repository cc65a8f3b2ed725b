//! Per-token cross-attention maps: which pixels each text token steered.
//!
//! DAAM (Tang et al. 2022, "What the DAAM: Interpreting Stable Diffusion Using Cross
//! Attention", §3.1): the cross-attention probabilities of every text token, over the
//! pixels of each cross-attention layer, upsampled to one common size and aggregated over
//! heads, layers and sampling steps. DAAM sums and upsamples bicubically; here the maps are
//! upsampled bilinearly (which keeps them non-negative) and averaged, so at every pixel the
//! maps of all tokens still sum to 1, as each softmax row does.

use std::sync::Mutex;

use candle_core::{DType, Result, Tensor};

use crate::ops::attention_probabilities;

/// Collects the cross-attention probabilities of the first `rows` images of each network
/// call (the conditional branch of a guided batch comes first), upsampled to
/// `height × width`, and averages them over every recorded layer call.
///
/// Handed down the U-Net's forward pass by reference ([`crate::UNet2D::forward_recorded`]);
/// without one, nothing extra is computed. Recording never changes the network's output: it
/// reads the queries and keys and computes its own probabilities.
#[derive(Debug)]
pub struct CrossAttentionRecorder {
    rows: usize,
    height: usize,
    width: usize,
    /// The running sum `(rows, M, height, width)` f32 and the number of calls in it.
    sum: Mutex<Option<(Tensor, usize)>>,
}

impl CrossAttentionRecorder {
    /// A recorder of the first `rows` images of each call, with maps of `height × width`.
    pub fn new(rows: usize, height: usize, width: usize) -> Self {
        Self { rows, height, width, sum: Mutex::new(None) }
    }

    /// Adds one cross-attention layer call.
    ///
    /// # Shapes
    /// - `q`: `(B, h·w, C)` queries of the pixels of an `h × w` feature map, `B ≥ rows`
    /// - `k`: `(B, M, C)` keys of the `M` text tokens
    pub fn record(&self, q: &Tensor, k: &Tensor, heads: usize, (h, w): (usize, usize)) -> Result<()> {
        let (b, n, _) = q.dims3()?;
        let m = k.dim(1)?;
        if b < self.rows || n != h * w {
            candle_core::bail!("attention recorder: queries {:?} do not hold {} images of {h}×{w} pixels", q.dims(), self.rows);
        }
        let (q, k) = (q.narrow(0, 0, self.rows)?.to_dtype(DType::F32)?, k.narrow(0, 0, self.rows)?.to_dtype(DType::F32)?);
        let probs = attention_probabilities(&q, &k, heads, None)?.mean(1)?; // (rows, N, M), DAAM's head aggregate
        let per_token = probs.transpose(1, 2)?.contiguous()?.reshape((self.rows * m, h, w))?;
        let device = q.device();
        let rows_up = Tensor::from_vec(bilinear_weights(h, self.height), (self.height, h), device)?;
        let cols_up = Tensor::from_vec(bilinear_weights(w, self.width), (self.width, w), device)?.t()?.contiguous()?;
        let up = rows_up.broadcast_matmul(&per_token)?.broadcast_matmul(&cols_up)?.reshape((self.rows, m, self.height, self.width))?;
        let mut sum = self.sum.lock().unwrap_or_else(|e| e.into_inner());
        *sum = Some(match sum.take() {
            None => (up, 1),
            Some((s, count)) if s.dims() == up.dims() => ((s + up)?, count + 1),
            Some((s, _)) => candle_core::bail!("attention recorder: a call with maps {:?} after {:?}", up.dims(), s.dims()),
        });
        Ok(())
    }

    /// The mean map of every token, `(rows, M, height, width)` f32, or `None` before any call.
    pub fn maps(&self) -> Result<Option<Tensor>> {
        let sum = self.sum.lock().unwrap_or_else(|e| e.into_inner());
        sum.as_ref().map(|(s, count)| s / *count as f64).transpose()
    }

    /// How many layer calls were recorded.
    pub fn calls(&self) -> usize {
        self.sum.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map_or(0, |(_, c)| *c)
    }
}

/// The `(to, from)` matrix of bilinear interpolation along one axis with half-pixel centres
/// (PyTorch `F.interpolate(mode="bilinear", align_corners=False)`): output `i` samples the
/// input at `(i + ½)·from/to − ½`, clamped to the edge. Every row sums to 1.
fn bilinear_weights(from: usize, to: usize) -> Vec<f32> {
    let mut m = vec![0f32; to * from];
    let scale = from as f64 / to as f64;
    for i in 0..to {
        let src = ((i as f64 + 0.5) * scale - 0.5).max(0.0);
        let i0 = (src.floor() as usize).min(from - 1);
        let i1 = (i0 + 1).min(from - 1);
        let t = (src - i0 as f64) as f32;
        m[i * from + i0] += 1.0 - t;
        m[i * from + i1] += t;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::bilinear_weights;

    #[test]
    fn bilinear_rows_sum_to_one_and_identity_at_same_size() {
        for (from, to) in [(2, 8), (4, 4), (3, 7), (8, 2)] {
            let m = bilinear_weights(from, to);
            for row in m.chunks(from) {
                assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6, "{from}->{to}: {row:?}");
                assert!(row.iter().all(|&x| x >= 0.0));
            }
        }
        let id = bilinear_weights(4, 4);
        for i in 0..4 {
            for j in 0..4 {
                assert_eq!(id[i * 4 + j], if i == j { 1.0 } else { 0.0 });
            }
        }
        // 2 → 4 (PyTorch): outputs sample 0 (clamped), 0.25, 0.75, 1 (clamped at 1.25).
        assert_eq!(bilinear_weights(2, 4), vec![1.0, 0.0, 0.75, 0.25, 0.25, 0.75, 0.0, 1.0]);
    }
}
