//! Custom candle operations with hand-written CPU kernels and backward passes.
//!
//! candle's CPU `conv2d` is a direct loop and its gradient goes through `conv_transpose2d` and a
//! convolution with image-sized kernels (both direct loops): in a training step of the U-Net
//! that backward pass dominated the profile. [`conv2d`] is an im2col + GEMM convolution whose
//! backward pass is built from two more GEMM-based ops, so model code stays ordinary candle code.

pub mod conv2d;

pub use conv2d::{conv2d, Conv2d};
