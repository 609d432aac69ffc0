//! One training step through tandem's ops on a CUDA device, when there is one.
//!
//! Built only with `--features cuda`; the ops fall back to candle's own CUDA kernels there.
//! Without a usable device the test prints why and passes.
#![cfg(feature = "cuda")]
#![allow(clippy::unwrap_used)]
use candle_core::{DType, Device, Tensor};
use candle_nn::{Optimizer, VarBuilder, VarMap};
use tandem_tensor::ops::{bias_act, conv2d, max_pool2x2, Activation, Backend};

#[test]
fn a_training_step_runs_on_cuda() {
    let dev = match Device::new_cuda(0) {
        Ok(d) => d,
        Err(e) => {
            println!("skipping: no CUDA device ({e})");
            return;
        }
    };
    let vars = VarMap::new();
    let vb = VarBuilder::from_varmap(&vars, DType::F32, &dev);
    let w = vb.get((8, 1, 5, 5), "conv.weight").unwrap();
    let b = vb.get(8, "conv.bias").unwrap();
    let fc = candle_nn::linear(8 * 18 * 18, 3, vb.pp("fc")).unwrap();
    let x = Tensor::rand(0f32, 1f32, (4, 1, 40, 40), &dev).unwrap();
    let target = Tensor::new(&[0u32, 1, 2, 1], &dev).unwrap();
    let mut opt = candle_nn::SGD::new(vars.all_vars(), 0.1).unwrap();
    let before = w.to_device(&Device::Cpu).unwrap();
    let z = conv2d(&x, &w, None, 0, Backend::Tandem).unwrap();
    let h = max_pool2x2(
        &bias_act(&z, Some(&b), Activation::AbsTanh, Backend::Tandem).unwrap(),
        Backend::Tandem,
    )
    .unwrap();
    let logits = candle_nn::Module::forward(&fc, &h.flatten_from(1).unwrap()).unwrap();
    let loss = candle_nn::loss::cross_entropy(&logits, &target).unwrap();
    opt.backward_step(&loss).unwrap();
    let after = w.to_device(&Device::Cpu).unwrap();
    let moved = (after - before).unwrap().abs().unwrap().sum_all().unwrap();
    assert!(moved.to_scalar::<f32>().unwrap() > 0.0);
}
