//! Inception-v3 as pytorch-fid runs it for FID: the `FIDInceptionA/C/E` blocks of the
//! TensorFlow FID graph (`pt_inception-2015-12-05`), bilinear resizing to 299×299,
//! inputs scaled from [0, 1] to [−1, 1], and the 2048-d output of the final average pool
//! (pytorch-fid `InceptionV3([3])`, `inception.py`).
//!
//! The weights are read from a local safetensors file in the key layout of pytorch-fid's
//! weight file (torchvision names: `Conv2d_1a_3x3.conv.weight`, `Mixed_5b.branch1x1.bn.running_mean`,
//! …); `scripts/convert_fid_inception.py` converts the `.pth` file the user has. Nothing is
//! downloaded.

use std::path::Path;

use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::VarBuilder;

use crate::EvalError;

/// Side of the square input the network was trained at.
pub const INPUT_SIZE: usize = 299;
/// Dimension of the pool features.
pub const FEATURE_DIM: usize = 2048;

/// torchvision's `BasicConv2d`: convolution without bias, batch norm (ε = 0.001, running
/// statistics), ReLU. The batch norm is folded into a per-channel scale and shift.
struct BasicConv2d {
    weight: Tensor,
    scale: Tensor,
    shift: Tensor,
    padding: (usize, usize),
    stride: usize,
}

impl BasicConv2d {
    /// `kernel` and `padding` as (height, width).
    fn new(vb: VarBuilder, c_in: usize, c_out: usize, kernel: (usize, usize), padding: (usize, usize), stride: usize) -> candle_core::Result<Self> {
        let weight = vb.get((c_out, c_in, kernel.0, kernel.1), "conv.weight")?;
        let bn = vb.pp("bn");
        let gamma = bn.get(c_out, "weight")?;
        let beta = bn.get(c_out, "bias")?;
        let mean = bn.get(c_out, "running_mean")?;
        let var = bn.get(c_out, "running_var")?;
        let scale = (gamma / (var + 1e-3)?.sqrt()?)?;
        let shift = (beta - (mean * &scale)?)?;
        let shape = (1, c_out, 1, 1);
        Ok(Self { weight, scale: scale.reshape(shape)?, shift: shift.reshape(shape)?, padding, stride })
    }

    fn square(vb: VarBuilder, c_in: usize, c_out: usize, k: usize, pad: usize, stride: usize) -> candle_core::Result<Self> {
        Self::new(vb, c_in, c_out, (k, k), (pad, pad), stride)
    }
}

impl Module for BasicConv2d {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (ph, pw) = self.padding;
        let y = if ph == pw {
            x.conv2d(&self.weight, ph, self.stride, 1, 1)?
        } else {
            x.pad_with_zeros(2, ph, ph)?.pad_with_zeros(3, pw, pw)?.conv2d(&self.weight, 0, self.stride, 1, 1)?
        };
        y.broadcast_mul(&self.scale)?.broadcast_add(&self.shift)?.relu()
    }
}

/// `F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)`: the mean over the
/// window's pixels inside the image.
fn avg_pool_3x3_same(x: &Tensor) -> candle_core::Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    let sums = x.pad_with_zeros(2, 1, 1)?.pad_with_zeros(3, 1, 1)?.avg_pool2d_with_stride(3, 1)?;
    let ones = Tensor::ones((1, 1, h, w), x.dtype(), x.device())?;
    let counts = ones.pad_with_zeros(2, 1, 1)?.pad_with_zeros(3, 1, 1)?.avg_pool2d_with_stride(3, 1)?;
    sums.broadcast_div(&counts)
}

/// `F.max_pool2d(x, 3, stride=1, padding=1)` for `x ≥ 0`: zero padding then equals PyTorch's
/// −∞ padding, since every window holds an input pixel. Its one use (the last block) takes
/// the concatenated ReLU outputs of the block before.
fn max_pool_3x3_same_nonnegative(x: &Tensor) -> candle_core::Result<Tensor> {
    x.pad_with_zeros(2, 1, 1)?.pad_with_zeros(3, 1, 1)?.max_pool2d_with_stride(3, 1)
}

/// A chain of convolutions (one branch of a block).
fn chain(x: &Tensor, convs: &[BasicConv2d]) -> candle_core::Result<Tensor> {
    convs.iter().try_fold(x.clone(), |h, c| c.forward(&h))
}

/// `FIDInceptionA` (Mixed_5b/c/d): 1×1; 1×1→5×5; 1×1→3×3→3×3; avg-pool→1×1.
struct InceptionA {
    b1: BasicConv2d,
    b5: [BasicConv2d; 2],
    b3: [BasicConv2d; 3],
    pool: BasicConv2d,
}

impl InceptionA {
    fn new(vb: VarBuilder, c_in: usize, pool_features: usize) -> candle_core::Result<Self> {
        Ok(Self {
            b1: BasicConv2d::square(vb.pp("branch1x1"), c_in, 64, 1, 0, 1)?,
            b5: [BasicConv2d::square(vb.pp("branch5x5_1"), c_in, 48, 1, 0, 1)?, BasicConv2d::square(vb.pp("branch5x5_2"), 48, 64, 5, 2, 1)?],
            b3: [
                BasicConv2d::square(vb.pp("branch3x3dbl_1"), c_in, 64, 1, 0, 1)?,
                BasicConv2d::square(vb.pp("branch3x3dbl_2"), 64, 96, 3, 1, 1)?,
                BasicConv2d::square(vb.pp("branch3x3dbl_3"), 96, 96, 3, 1, 1)?,
            ],
            pool: BasicConv2d::square(vb.pp("branch_pool"), c_in, pool_features, 1, 0, 1)?,
        })
    }
}

impl Module for InceptionA {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let pool = self.pool.forward(&avg_pool_3x3_same(x)?)?;
        Tensor::cat(&[self.b1.forward(x)?, chain(x, &self.b5)?, chain(x, &self.b3)?, pool], 1)
    }
}

/// torchvision's `InceptionB` (Mixed_6a, the 35→17 reduction): 3×3/2; 1×1→3×3→3×3/2; max-pool/2.
struct InceptionB {
    b3: BasicConv2d,
    dbl: [BasicConv2d; 3],
}

impl InceptionB {
    fn new(vb: VarBuilder, c_in: usize) -> candle_core::Result<Self> {
        Ok(Self {
            b3: BasicConv2d::square(vb.pp("branch3x3"), c_in, 384, 3, 0, 2)?,
            dbl: [
                BasicConv2d::square(vb.pp("branch3x3dbl_1"), c_in, 64, 1, 0, 1)?,
                BasicConv2d::square(vb.pp("branch3x3dbl_2"), 64, 96, 3, 1, 1)?,
                BasicConv2d::square(vb.pp("branch3x3dbl_3"), 96, 96, 3, 0, 2)?,
            ],
        })
    }
}

impl Module for InceptionB {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        Tensor::cat(&[self.b3.forward(x)?, chain(x, &self.dbl)?, x.max_pool2d_with_stride(3, 2)?], 1)
    }
}

/// `FIDInceptionC` (Mixed_6b–e): factorised 7×7 convolutions as 1×7 and 7×1.
struct InceptionC {
    b1: BasicConv2d,
    b7: [BasicConv2d; 3],
    dbl: [BasicConv2d; 5],
    pool: BasicConv2d,
}

impl InceptionC {
    fn new(vb: VarBuilder, c_in: usize, c7: usize) -> candle_core::Result<Self> {
        let row = |name: &str, i: usize, o: usize| BasicConv2d::new(vb.pp(name), i, o, (1, 7), (0, 3), 1);
        let col = |name: &str, i: usize, o: usize| BasicConv2d::new(vb.pp(name), i, o, (7, 1), (3, 0), 1);
        Ok(Self {
            b1: BasicConv2d::square(vb.pp("branch1x1"), c_in, 192, 1, 0, 1)?,
            b7: [BasicConv2d::square(vb.pp("branch7x7_1"), c_in, c7, 1, 0, 1)?, row("branch7x7_2", c7, c7)?, col("branch7x7_3", c7, 192)?],
            dbl: [
                BasicConv2d::square(vb.pp("branch7x7dbl_1"), c_in, c7, 1, 0, 1)?,
                col("branch7x7dbl_2", c7, c7)?,
                row("branch7x7dbl_3", c7, c7)?,
                col("branch7x7dbl_4", c7, c7)?,
                row("branch7x7dbl_5", c7, 192)?,
            ],
            pool: BasicConv2d::square(vb.pp("branch_pool"), c_in, 192, 1, 0, 1)?,
        })
    }
}

impl Module for InceptionC {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let pool = self.pool.forward(&avg_pool_3x3_same(x)?)?;
        Tensor::cat(&[self.b1.forward(x)?, chain(x, &self.b7)?, chain(x, &self.dbl)?, pool], 1)
    }
}

/// torchvision's `InceptionD` (Mixed_7a, the 17→8 reduction).
struct InceptionD {
    b3: [BasicConv2d; 2],
    b7: [BasicConv2d; 4],
}

impl InceptionD {
    fn new(vb: VarBuilder, c_in: usize) -> candle_core::Result<Self> {
        Ok(Self {
            b3: [BasicConv2d::square(vb.pp("branch3x3_1"), c_in, 192, 1, 0, 1)?, BasicConv2d::square(vb.pp("branch3x3_2"), 192, 320, 3, 0, 2)?],
            b7: [
                BasicConv2d::square(vb.pp("branch7x7x3_1"), c_in, 192, 1, 0, 1)?,
                BasicConv2d::new(vb.pp("branch7x7x3_2"), 192, 192, (1, 7), (0, 3), 1)?,
                BasicConv2d::new(vb.pp("branch7x7x3_3"), 192, 192, (7, 1), (3, 0), 1)?,
                BasicConv2d::square(vb.pp("branch7x7x3_4"), 192, 192, 3, 0, 2)?,
            ],
        })
    }
}

impl Module for InceptionD {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        Tensor::cat(&[chain(x, &self.b3)?, chain(x, &self.b7)?, x.max_pool2d_with_stride(3, 2)?], 1)
    }
}

/// The pooling branch of an E block: `FIDInceptionE_1` averages (without the padding),
/// `FIDInceptionE_2` takes the maximum (the TensorFlow graph's quirk that pytorch-fid keeps).
#[derive(Clone, Copy)]
enum EPool {
    Average,
    Max,
}

/// `FIDInceptionE_1/2` (Mixed_7b/c): expanded 3×3 branches split into 1×3 and 3×1.
struct InceptionE {
    b1: BasicConv2d,
    b3: BasicConv2d,
    b3_split: [BasicConv2d; 2],
    dbl: [BasicConv2d; 2],
    dbl_split: [BasicConv2d; 2],
    pool: BasicConv2d,
    pool_kind: EPool,
}

impl InceptionE {
    fn new(vb: VarBuilder, c_in: usize, pool_kind: EPool) -> candle_core::Result<Self> {
        let split = |a: &str, b: &str, c: usize| -> candle_core::Result<[BasicConv2d; 2]> {
            Ok([BasicConv2d::new(vb.pp(a), c, 384, (1, 3), (0, 1), 1)?, BasicConv2d::new(vb.pp(b), c, 384, (3, 1), (1, 0), 1)?])
        };
        Ok(Self {
            b1: BasicConv2d::square(vb.pp("branch1x1"), c_in, 320, 1, 0, 1)?,
            b3: BasicConv2d::square(vb.pp("branch3x3_1"), c_in, 384, 1, 0, 1)?,
            b3_split: split("branch3x3_2a", "branch3x3_2b", 384)?,
            dbl: [BasicConv2d::square(vb.pp("branch3x3dbl_1"), c_in, 448, 1, 0, 1)?, BasicConv2d::square(vb.pp("branch3x3dbl_2"), 448, 384, 3, 1, 1)?],
            dbl_split: split("branch3x3dbl_3a", "branch3x3dbl_3b", 384)?,
            pool: BasicConv2d::square(vb.pp("branch_pool"), c_in, 192, 1, 0, 1)?,
            pool_kind,
        })
    }
}

impl Module for InceptionE {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let b3 = self.b3.forward(x)?;
        let b3 = Tensor::cat(&[self.b3_split[0].forward(&b3)?, self.b3_split[1].forward(&b3)?], 1)?;
        let dbl = chain(x, &self.dbl)?;
        let dbl = Tensor::cat(&[self.dbl_split[0].forward(&dbl)?, self.dbl_split[1].forward(&dbl)?], 1)?;
        let pooled = match self.pool_kind {
            EPool::Average => avg_pool_3x3_same(x)?,
            EPool::Max => max_pool_3x3_same_nonnegative(x)?,
        };
        Tensor::cat(&[self.b1.forward(x)?, b3, dbl, self.pool.forward(&pooled)?], 1)
    }
}

/// pytorch-fid's `InceptionV3([3])` up to the 2048-d pool features.
pub struct FidInception {
    stem: [BasicConv2d; 5],
    mixed: Vec<Box<dyn Module + Send + Sync>>,
    device: Device,
}

impl FidInception {
    /// Builds the network from `vb` (torchvision key names, see the module documentation).
    pub fn new(vb: VarBuilder) -> candle_core::Result<Self> {
        let device = vb.device().clone();
        let stem = [
            BasicConv2d::square(vb.pp("Conv2d_1a_3x3"), 3, 32, 3, 0, 2)?,
            BasicConv2d::square(vb.pp("Conv2d_2a_3x3"), 32, 32, 3, 0, 1)?,
            BasicConv2d::square(vb.pp("Conv2d_2b_3x3"), 32, 64, 3, 1, 1)?,
            BasicConv2d::square(vb.pp("Conv2d_3b_1x1"), 64, 80, 1, 0, 1)?,
            BasicConv2d::square(vb.pp("Conv2d_4a_3x3"), 80, 192, 3, 0, 1)?,
        ];
        let mixed: Vec<Box<dyn Module + Send + Sync>> = vec![
            Box::new(InceptionA::new(vb.pp("Mixed_5b"), 192, 32)?),
            Box::new(InceptionA::new(vb.pp("Mixed_5c"), 256, 64)?),
            Box::new(InceptionA::new(vb.pp("Mixed_5d"), 288, 64)?),
            Box::new(InceptionB::new(vb.pp("Mixed_6a"), 288)?),
            Box::new(InceptionC::new(vb.pp("Mixed_6b"), 768, 128)?),
            Box::new(InceptionC::new(vb.pp("Mixed_6c"), 768, 160)?),
            Box::new(InceptionC::new(vb.pp("Mixed_6d"), 768, 160)?),
            Box::new(InceptionC::new(vb.pp("Mixed_6e"), 768, 192)?),
            Box::new(InceptionD::new(vb.pp("Mixed_7a"), 768)?),
            Box::new(InceptionE::new(vb.pp("Mixed_7b"), 1280, EPool::Average)?),
            Box::new(InceptionE::new(vb.pp("Mixed_7c"), 2048, EPool::Max)?),
        ];
        Ok(Self { stem, mixed, device })
    }

    /// Loads the weights file at `path` (safetensors) onto `device`. A file that lacks a
    /// tensor or holds one of another shape is a [`EvalError::WrongArchitecture`] naming it.
    pub fn load(path: &Path, device: &Device) -> Result<Self, EvalError> {
        let wrong = |reason: String| EvalError::WrongArchitecture { path: path.to_path_buf(), architecture: "pytorch-fid Inception-v3", reason };
        let tensors = candle_core::safetensors::load(path, device).map_err(|e| match e {
            candle_core::Error::Io(io) => EvalError::io("read", path, io),
            other => wrong(format!("not a safetensors file ({other})")),
        })?;
        let vb = VarBuilder::from_tensors(tensors, DType::F32, device);
        Self::new(vb).map_err(|e| wrong(e.to_string()))
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Pool features of a batch of RGB images in [0, 1].
    ///
    /// # Shapes
    /// `images`: `(B, 3, H, W)` of any size → `(B, 2048)`.
    pub fn features(&self, images: &Tensor) -> candle_core::Result<Tensor> {
        // resize_input then normalize_input, in pytorch-fid's order.
        let x = images.upsample_bilinear2d(INPUT_SIZE, INPUT_SIZE, false)?;
        let x = x.affine(2.0, -1.0)?;
        let x = chain(&x, &self.stem[..3])?.max_pool2d_with_stride(3, 2)?;
        let x = chain(&x, &self.stem[3..])?.max_pool2d_with_stride(3, 2)?;
        let x = self.mixed.iter().try_fold(x, |h, m| m.forward(&h))?;
        x.mean(D::Minus1)?.mean(D::Minus1)
    }
}
