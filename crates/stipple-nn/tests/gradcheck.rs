//! Backward correctness: analytic gradients of the tiny U-Net (f64) agree with central finite
//! differences for parameters in every kind of layer. This guards against candle ops whose
//! backward is missing or wrong, not only absent gradients.

mod common;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use common::values;
use stipple_nn::{UNet2D, UNetConfig};

#[test]
fn gradients_match_finite_differences() {
    let cfg = UNetConfig { num_class_embeds: Some(3), dropout: 0.25, ..UNetConfig::tiny() };
    let vm = VarMap::new();
    let net = UNet2D::new(VarBuilder::from_varmap(&vm, DType::F64, &Device::Cpu), &cfg).unwrap();
    let dev = Device::Cpu;
    let f64s = |n: usize, seed: u64| values(n, seed).into_iter().map(f64::from).collect::<Vec<_>>();
    let x = Tensor::from_vec(f64s(2 * 3 * 64, 1), (2, 3, 8, 8), &dev).unwrap();
    let t = Tensor::new(&[3.0f64, 420.0], &dev).unwrap();
    let labels = Tensor::new(&[2u32, 0], &dev).unwrap();
    let probe = Tensor::from_vec(f64s(2 * 3 * 64, 2), (2, 3, 8, 8), &dev).unwrap();
    // loss = Σ out · probe, with dropout on (fixed seed) so its masks are checked too.
    let loss = || -> f64 {
        let y = net.forward_train(&x, &t, Some(&labels), 5).unwrap();
        (y * &probe).unwrap().sum_all().unwrap().to_scalar::<f64>().unwrap()
    };
    let y = net.forward_train(&x, &t, Some(&labels), 5).unwrap();
    let grads = (y * &probe).unwrap().sum_all().unwrap().backward().unwrap();

    let names = [
        "conv_in.weight",
        "time_embedding.linear_1.weight",
        "class_embedding.weight",
        "down_blocks.0.resnets.0.norm1.weight",
        "down_blocks.0.downsamplers.0.conv.weight",
        "down_blocks.1.resnets.0.conv_shortcut.weight",
        "down_blocks.1.attentions.0.to_q.weight",
        "down_blocks.1.attentions.0.to_k.weight",
        "mid_block.attentions.0.to_v.weight",
        "mid_block.attentions.0.group_norm.weight",
        "up_blocks.0.attentions.1.to_out.0.weight",
        "up_blocks.0.upsamplers.0.conv.weight",
        "up_blocks.1.resnets.1.time_emb_proj.weight",
        "conv_out.bias",
    ];
    let data = vm.data().lock().unwrap();
    for name in names {
        let var = &data[name];
        let n = var.elem_count();
        let grad = grads.get(var.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
        let orig = var.as_tensor().flatten_all().unwrap().to_vec1::<f64>().unwrap();
        // The element with the largest gradient (always non-trivial) and one more.
        let imax = (0..n).max_by(|&a, &b| grad[a].abs().total_cmp(&grad[b].abs())).unwrap();
        for i in [imax, n / 3] {
            let h = 1e-5;
            let set = |v: f64| {
                let mut w = orig.clone();
                w[i] = v;
                var.set(&Tensor::from_vec(w, var.shape(), &dev).unwrap()).unwrap();
            };
            set(orig[i] + h);
            let lp = loss();
            set(orig[i] - h);
            let lm = loss();
            set(orig[i]);
            let fd = (lp - lm) / (2.0 * h);
            let tol = 1e-4 * fd.abs().max(grad[i].abs()) + 1e-8;
            assert!((fd - grad[i]).abs() < tol, "{name}[{i}]: analytic {} vs finite difference {fd}", grad[i]);
        }
    }
}
