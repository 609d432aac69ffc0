//! Correctness of tandem's conv2d and max-pool kernels: against candle's own operations,
//! against an independent f64 reference with finite differences, over random shapes, and
//! for bit-identical gradients with 1 and 2 threads.
#![allow(clippy::unwrap_used)] // test helpers may unwrap
use candle_core::{DType, Device, Result, Tensor, Var};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tandem_tensor::ops::{
    bias_act, bias_act_pool2x2, conv2d, conv_bias_act_pool2x2, max_pool2x2, Activation, Backend,
};

fn random(shape: &[usize], seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..shape.iter().product::<usize>())
        .map(|_| rng.random_range(-1.0f32..1.0))
        .collect()
}

fn var(shape: &[usize], seed: u64) -> Var {
    Var::from_tensor(&Tensor::from_vec(random(shape, seed), shape, &Device::Cpu).unwrap()).unwrap()
}

fn to_vec(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

/// max |a − b| / max |b|.
fn rel_err(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0f64, |m, v| m.max(v.abs() as f64)).max(1e-6);
    a.iter()
        .zip(b)
        .fold(0f64, |m, (x, y)| m.max((*x as f64 - *y as f64).abs()))
        / scale
}

/// Output, ∂x, ∂w, ∂b of `Σ y ⊙ r` (r fixed random) for one backend.
fn conv_case(
    backend: Backend,
    x: &Var,
    w: &Var,
    b: Option<&Var>,
    pad: usize,
) -> Result<[Vec<f32>; 4]> {
    let y = conv2d(
        x.as_tensor(),
        w.as_tensor(),
        b.map(|b| b.as_tensor()),
        pad,
        backend,
    )?;
    let r = Tensor::from_vec(random(y.dims(), 99), y.shape(), &Device::Cpu)?;
    let g = (&y * &r)?.sum_all()?.backward()?;
    let grad = |v: &Var| g.get(v).map(to_vec).unwrap_or_default();
    Ok([
        to_vec(&y),
        grad(x),
        grad(w),
        b.map(grad).unwrap_or_default(),
    ])
}

fn check_conv_against_candle(
    (bn, c, h, wd): (usize, usize, usize, usize),
    (o, kh, kw): (usize, usize, usize),
    pad: usize,
    bias: bool,
    seed: u64,
) {
    let x = var(&[bn, c, h, wd], seed);
    let w = var(&[o, c, kh, kw], seed + 1);
    let b = bias.then(|| var(&[o], seed + 2));
    let ours = conv_case(Backend::Tandem, &x, &w, b.as_ref(), pad).unwrap();
    let theirs = conv_case(Backend::Candle, &x, &w, b.as_ref(), pad).unwrap();
    for (name, (a, t)) in ["y", "dx", "dw", "db"].iter().zip(ours.iter().zip(&theirs)) {
        let e = rel_err(a, t);
        assert!(
            e < 1e-4,
            "{name}: rel err {e} for x {:?} w {:?} pad {pad}",
            x.dims(),
            w.dims()
        );
    }
}

#[test]
fn conv_matches_candle_on_tcdcn_layers() {
    check_conv_against_candle((4, 1, 40, 40), (16, 5, 5), 0, true, 1);
    check_conv_against_candle((4, 16, 18, 18), (48, 3, 3), 0, true, 2);
    check_conv_against_candle((4, 48, 8, 8), (64, 3, 3), 0, true, 3);
    check_conv_against_candle((4, 64, 3, 3), (64, 2, 2), 0, true, 4);
    // same padding, odd sizes, no bias, batch not a multiple of the chunk
    check_conv_against_candle((9, 3, 7, 5), (4, 3, 3), 1, false, 5);
    check_conv_against_candle((17, 2, 5, 6), (3, 5, 3), 2, true, 6);
}

/// Naive f64 convolution: the independent reference.
fn conv_f64(
    x: &[f64],
    w: &[f64],
    (bn, c, h, wd): (usize, usize, usize, usize),
    (o, kh, kw): (usize, usize, usize),
    pad: usize,
) -> Vec<f64> {
    let (ho, wo) = (h + 2 * pad - kh + 1, wd + 2 * pad - kw + 1);
    let mut y = vec![0f64; bn * o * ho * wo];
    for n in 0..bn {
        for oc in 0..o {
            for i in 0..ho {
                for j in 0..wo {
                    let mut s = 0f64;
                    for ci in 0..c {
                        for u in 0..kh {
                            for v in 0..kw {
                                let (r, q) = (i + u, j + v);
                                if r < pad || q < pad || r - pad >= h || q - pad >= wd {
                                    continue;
                                }
                                s += w[((oc * c + ci) * kh + u) * kw + v]
                                    * x[((n * c + ci) * h + r - pad) * wd + q - pad];
                            }
                        }
                    }
                    y[((n * o + oc) * ho + i) * wo + j] = s;
                }
            }
        }
    }
    y
}

/// Finite differences in f64 on the naive reference give the gradients our f32 kernel must
/// reproduce; the forward pass is compared to the reference too.
#[test]
fn conv_gradients_match_finite_differences() {
    for (xs, ws, pad) in [
        ((2, 2, 5, 4), (3, 3, 3), 1),
        ((3, 1, 6, 6), (2, 2, 3), 0),
        ((1, 3, 4, 5), (2, 1, 1), 2),
    ] {
        let (bn, c, h, wd) = xs;
        let (o, kh, kw) = ws;
        let x = var(&[bn, c, h, wd], 11);
        let w = var(&[o, c, kh, kw], 12);
        let [y, dx, dw, _] = conv_case(Backend::Tandem, &x, &w, None, pad).unwrap();
        let r: Vec<f64> = random(&[y.len()], 99).iter().map(|&v| v as f64).collect();
        let x64: Vec<f64> = to_vec(x.as_tensor()).iter().map(|&v| v as f64).collect();
        let w64: Vec<f64> = to_vec(w.as_tensor()).iter().map(|&v| v as f64).collect();
        let loss = |x: &[f64], w: &[f64]| -> f64 {
            conv_f64(x, w, xs, ws, pad)
                .iter()
                .zip(&r)
                .map(|(a, b)| a * b)
                .sum()
        };
        let y64 = conv_f64(&x64, &w64, xs, ws, pad);
        let y64: Vec<f32> = y64.iter().map(|&v| v as f32).collect();
        assert!(rel_err(&y, &y64) < 1e-5);
        let eps = 1e-3;
        let fd = |params: &[f64], which: usize| -> Vec<f32> {
            (0..params.len())
                .map(|i| {
                    let mut p = params.to_vec();
                    p[i] += eps;
                    let up = if which == 0 {
                        loss(&p, &w64)
                    } else {
                        loss(&x64, &p)
                    };
                    p[i] -= 2.0 * eps;
                    let down = if which == 0 {
                        loss(&p, &w64)
                    } else {
                        loss(&x64, &p)
                    };
                    ((up - down) / (2.0 * eps)) as f32
                })
                .collect()
        };
        assert!(rel_err(&dx, &fd(&x64, 0)) < 1e-4, "dx {xs:?} {ws:?}");
        assert!(rel_err(&dw, &fd(&w64, 1)) < 1e-4, "dw {xs:?} {ws:?}");
    }
}

/// Finite differences in f64 arithmetic on the f32 pooling kernel (piecewise linear: the
/// step is far smaller than the gap between window values, so the difference is exact).
#[test]
fn pool_gradient_matches_finite_differences() {
    let shape = [2, 3, 5, 7];
    let n: usize = shape.iter().product();
    // distinct values on a grid of 1/n, shuffled deterministically
    let mut vals: Vec<f32> = (0..n).map(|i| i as f32 / n as f32).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for i in (1..n).rev() {
        vals.swap(i, rng.random_range(0..=i));
    }
    let x =
        Var::from_tensor(&Tensor::from_vec(vals.clone(), &shape, &Device::Cpu).unwrap()).unwrap();
    let y = max_pool2x2(x.as_tensor(), Backend::Tandem).unwrap();
    let r = random(y.dims(), 5);
    let rt = Tensor::from_vec(r.clone(), y.shape(), &Device::Cpu).unwrap();
    let g = (&y * &rt).unwrap().sum_all().unwrap().backward().unwrap();
    let dx = to_vec(g.get(&x).unwrap());
    let loss = |v: &[f32]| -> f64 {
        let t = Tensor::from_vec(v.to_vec(), &shape, &Device::Cpu).unwrap();
        let y = max_pool2x2(&t, Backend::Tandem).unwrap();
        to_vec(&y)
            .iter()
            .zip(&r)
            .map(|(a, b)| *a as f64 * *b as f64)
            .sum()
    };
    let eps = 0.25 / n as f32;
    let fd: Vec<f32> = (0..n)
        .map(|i| {
            let mut p = vals.clone();
            p[i] += eps;
            let up = loss(&p);
            p[i] -= 2.0 * eps;
            ((up - loss(&p)) / (2.0 * eps as f64)) as f32
        })
        .collect();
    assert!(rel_err(&dx, &fd) < 1e-4);
}

fn check_pool_against_candle(shape: [usize; 4], seed: u64) {
    let x = var(&shape, seed);
    let mut out = Vec::new();
    for backend in [Backend::Tandem, Backend::Candle] {
        let y = max_pool2x2(x.as_tensor(), backend).unwrap();
        let r = Tensor::from_vec(random(y.dims(), 7), y.shape(), &Device::Cpu).unwrap();
        let g = (&y * &r).unwrap().sum_all().unwrap().backward().unwrap();
        out.push((y.dims().to_vec(), to_vec(&y), to_vec(g.get(&x).unwrap())));
    }
    assert_eq!(out[0].0, out[1].0);
    assert!(rel_err(&out[0].1, &out[1].1) < 1e-6);
    assert!(rel_err(&out[0].2, &out[1].2) < 1e-6);
}

#[test]
fn pool_matches_reshape_and_max() {
    check_pool_against_candle([4, 16, 36, 36], 1);
    check_pool_against_candle([3, 5, 7, 9], 2);
    // a single row pools to nothing (candle's reduce refuses the empty window)
    let x = var(&[2, 3, 1, 4], 3);
    let y = max_pool2x2(x.as_tensor(), Backend::Tandem).unwrap();
    assert_eq!(y.dims(), [2, 3, 0, 2]);
}

/// The first layer's input needs no gradient: none is computed (candle's own op would insert
/// one into the store).
#[test]
fn conv_skips_gradient_of_a_constant_input() {
    let x = Tensor::from_vec(random(&[2, 1, 6, 6], 1), (2, 1, 6, 6), &Device::Cpu).unwrap();
    let w = var(&[3, 1, 3, 3], 2);
    let b = var(&[3], 3);
    let y = conv2d(&x, w.as_tensor(), Some(b.as_tensor()), 0, Backend::Tandem).unwrap();
    let g = y.sum_all().unwrap().backward().unwrap();
    assert!(g.get(&x).is_none());
    assert!(g.get(w.as_tensor()).is_some());
    assert_eq!(to_vec(g.get(b.as_tensor()).unwrap()), vec![32.0; 3]);
}

/// A two-layer net's gradients, computed on a pool with `threads` threads.
fn grads_with_threads(threads: usize) -> Vec<Vec<f32>> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let x = var(&[37, 3, 20, 20], 1);
        let w1 = var(&[8, 3, 5, 5], 2);
        let b1 = var(&[8], 3);
        let w2 = var(&[6, 8, 3, 3], 4);
        let b2 = var(&[6], 5);
        let w3 = var(&[6, 6, 3, 3], 6);
        let h = conv2d(
            x.as_tensor(),
            w1.as_tensor(),
            Some(b1.as_tensor()),
            1,
            Backend::Tandem,
        )
        .unwrap()
        .tanh()
        .unwrap();
        let h = max_pool2x2(&h, Backend::Tandem).unwrap();
        let z = conv2d(&h, w2.as_tensor(), None, 1, Backend::Tandem).unwrap();
        let h = bias_act_pool2x2(
            &z,
            Some(b2.as_tensor()),
            Activation::AbsTanh,
            Backend::Tandem,
        )
        .unwrap();
        let y = conv2d(&h, w3.as_tensor(), None, 0, Backend::Tandem).unwrap();
        let y = bias_act(
            &y,
            Some(b2.as_tensor()),
            Activation::AbsTanh,
            Backend::Tandem,
        )
        .unwrap();
        // a whole stage as one op, beside the composed one
        let w4 = var(&[5, 8, 3, 3], 7);
        let b4 = var(&[5], 8);
        let h_in = max_pool2x2(
            &conv2d(x.as_tensor(), w1.as_tensor(), None, 1, Backend::Tandem).unwrap(),
            Backend::Tandem,
        )
        .unwrap();
        let s = conv_bias_act_pool2x2(
            &h_in,
            w4.as_tensor(),
            Some(b4.as_tensor()),
            1,
            Activation::Tanh,
            Backend::Tandem,
        )
        .unwrap();
        let loss =
            (y.sqr().unwrap().sum_all().unwrap() + s.sqr().unwrap().sum_all().unwrap()).unwrap();
        let g = loss.backward().unwrap();
        [&x, &w1, &b1, &w2, &b2, &w3, &w4, &b4]
            .iter()
            .map(|v| to_vec(g.get(v).unwrap()))
            .collect()
    })
}

#[test]
fn gradients_are_bit_identical_for_1_and_2_threads() {
    let one = grads_with_threads(1);
    let two = grads_with_threads(2);
    for (a, b) in one.iter().zip(&two) {
        let a: Vec<u32> = a.iter().map(|v| v.to_bits()).collect();
        let b: Vec<u32> = b.iter().map(|v| v.to_bits()).collect();
        assert_eq!(a, b);
    }
}

#[test]
fn other_dtypes_fall_back_to_candle() {
    let x = Tensor::ones((1, 1, 4, 4), DType::F64, &Device::Cpu).unwrap();
    let w = Tensor::ones((1, 1, 3, 3), DType::F64, &Device::Cpu).unwrap();
    let y = conv2d(&x, &w, None, 1, Backend::Tandem).unwrap();
    assert_eq!(y.dims(), [1, 1, 4, 4]);
    let p = max_pool2x2(&x, Backend::Tandem).unwrap();
    assert_eq!(p.dims(), [1, 1, 2, 2]);
}

#[test]
fn non_contiguous_inputs_are_handled() {
    let x = var(&[2, 3, 6, 5], 1);
    let xt = x.as_tensor().transpose(2, 3).unwrap(); // [2, 3, 5, 6], strided
    let w = var(&[4, 3, 3, 3], 2);
    let a = conv2d(&xt, w.as_tensor(), None, 1, Backend::Tandem).unwrap();
    let b = conv2d(&xt, w.as_tensor(), None, 1, Backend::Candle).unwrap();
    assert!(rel_err(&to_vec(&a), &to_vec(&b)) < 1e-5);
    let a = max_pool2x2(&xt, Backend::Tandem).unwrap();
    let b = max_pool2x2(&xt, Backend::Candle).unwrap();
    assert_eq!(to_vec(&a), to_vec(&b));
}

/// Output, ∂x, ∂b of `Σ act(x + b) ⊙ r` for one backend.
fn bias_act_case(backend: Backend, x: &Var, b: Option<&Var>, act: Activation) -> [Vec<f32>; 3] {
    let y = bias_act(x.as_tensor(), b.map(|b| b.as_tensor()), act, backend).unwrap();
    let r = Tensor::from_vec(random(y.dims(), 98), y.shape(), &Device::Cpu).unwrap();
    let g = (&y * &r).unwrap().sum_all().unwrap().backward().unwrap();
    let grad = |v: &Var| g.get(v).map(to_vec).unwrap_or_default();
    [to_vec(&y), grad(x), b.map(grad).unwrap_or_default()]
}

fn check_bias_act_against_candle(shape: &[usize], bias: bool, act: Activation, seed: u64) {
    // scale to [-3, 3] so tanh saturates somewhere
    let x = Var::from_tensor(&(var(shape, seed).as_tensor() * 3.0).unwrap()).unwrap();
    let b = bias.then(|| var(&[shape[1]], seed + 1));
    let ours = bias_act_case(Backend::Tandem, &x, b.as_ref(), act);
    let theirs = bias_act_case(Backend::Candle, &x, b.as_ref(), act);
    for (name, (a, t)) in ["y", "dx", "db"].iter().zip(ours.iter().zip(&theirs)) {
        let e = rel_err(a, t);
        assert!(
            e < 1e-4,
            "{name}: rel err {e} for {shape:?} {act:?} bias {bias}"
        );
    }
}

#[test]
fn bias_act_matches_candle() {
    for act in [
        Activation::Identity,
        Activation::Relu,
        Activation::Tanh,
        Activation::AbsTanh,
        Activation::Selu,
    ] {
        check_bias_act_against_candle(&[5, 16, 9, 7], true, act, 1);
        check_bias_act_against_candle(&[33, 100], true, act, 2);
        check_bias_act_against_candle(&[3, 4, 5], false, act, 3);
    }
}

/// Output, ∂x, ∂b of `Σ pool(act(x + b)) ⊙ r`: fused (`true`) or composed, for one backend.
fn act_pool_case(
    fused: bool,
    backend: Backend,
    x: &Var,
    b: Option<&Var>,
    act: Activation,
) -> [Vec<f32>; 3] {
    let (xt, bt) = (x.as_tensor(), b.map(|b| b.as_tensor()));
    let y = if fused {
        bias_act_pool2x2(xt, bt, act, backend).unwrap()
    } else {
        max_pool2x2(&bias_act(xt, bt, act, backend).unwrap(), backend).unwrap()
    };
    let r = Tensor::from_vec(random(y.dims(), 97), y.shape(), &Device::Cpu).unwrap();
    let g = (&y * &r).unwrap().sum_all().unwrap().backward().unwrap();
    let grad = |v: &Var| g.get(v).map(to_vec).unwrap_or_default();
    [to_vec(&y), grad(x), b.map(grad).unwrap_or_default()]
}

fn check_act_pool(shape: [usize; 4], bias: bool, act: Activation, seed: u64) {
    let x = Var::from_tensor(&(var(&shape, seed).as_tensor() * 3.0).unwrap()).unwrap();
    let b = bias.then(|| var(&[shape[1]], seed + 1));
    let fused = act_pool_case(true, Backend::Tandem, &x, b.as_ref(), act);
    let composed = act_pool_case(false, Backend::Tandem, &x, b.as_ref(), act);
    let candle = act_pool_case(false, Backend::Candle, &x, b.as_ref(), act);
    for (name, ((f, c), k)) in ["y", "dx", "db"]
        .iter()
        .zip(fused.iter().zip(&composed).zip(&candle))
    {
        assert!(
            rel_err(f, c) < 1e-6,
            "{name} vs composition: {shape:?} {act:?}"
        );
        assert!(rel_err(f, k) < 1e-4, "{name} vs candle: {shape:?} {act:?}");
    }
}

#[test]
fn bias_act_pool_matches_the_composition() {
    for act in [
        Activation::Identity,
        Activation::Relu,
        Activation::Tanh,
        Activation::AbsTanh,
        Activation::Selu,
    ] {
        check_act_pool([4, 16, 36, 36], true, act, 1);
        check_act_pool([3, 5, 7, 9], true, act, 2);
        check_act_pool([2, 3, 6, 5], false, act, 3);
    }
}

/// Output, ∂x, ∂w, ∂b of `Σ stage(x) ⊙ r` for a whole conv stage, fused (`true`) or composed.
fn stage_case(
    fused: bool,
    backend: Backend,
    (x, w, b): (&Var, &Var, Option<&Var>),
    pad: usize,
    act: Activation,
) -> [Vec<f32>; 4] {
    let (xt, wt, bt) = (x.as_tensor(), w.as_tensor(), b.map(|b| b.as_tensor()));
    let y = if fused {
        conv_bias_act_pool2x2(xt, wt, bt, pad, act, backend).unwrap()
    } else {
        let z = conv2d(xt, wt, None, pad, backend).unwrap();
        max_pool2x2(&bias_act(&z, bt, act, backend).unwrap(), backend).unwrap()
    };
    let r = Tensor::from_vec(random(y.dims(), 95), y.shape(), &Device::Cpu).unwrap();
    let g = (&y * &r).unwrap().sum_all().unwrap().backward().unwrap();
    let grad = |v: &Var| g.get(v).map(to_vec).unwrap_or_default();
    [
        to_vec(&y),
        grad(x),
        grad(w),
        b.map(grad).unwrap_or_default(),
    ]
}

fn check_stage(
    x_shape: [usize; 4],
    (o, kh, kw): (usize, usize, usize),
    pad: usize,
    bias: bool,
    act: Activation,
    seed: u64,
) {
    let x = var(&x_shape, seed);
    let w = var(&[o, x_shape[1], kh, kw], seed + 1);
    let b = bias.then(|| var(&[o], seed + 2));
    let args = (&x, &w, b.as_ref());
    let fused = stage_case(true, Backend::Tandem, args, pad, act);
    let composed = stage_case(false, Backend::Tandem, args, pad, act);
    let candle = stage_case(false, Backend::Candle, args, pad, act);
    for (name, ((f, c), k)) in ["y", "dx", "dw", "db"]
        .iter()
        .zip(fused.iter().zip(&composed).zip(&candle))
    {
        let (e1, e2) = (rel_err(f, c), rel_err(f, k));
        assert!(e1 < 1e-4, "{name} vs composition: {e1} {x_shape:?} {act:?}");
        assert!(e2 < 1e-4, "{name} vs candle: {e2} {x_shape:?} {act:?}");
    }
}

#[test]
fn conv_stage_matches_the_composition() {
    for act in [
        Activation::Identity,
        Activation::Relu,
        Activation::Tanh,
        Activation::AbsTanh,
        Activation::Selu,
    ] {
        check_stage([4, 1, 40, 40], (16, 5, 5), 0, true, act, 1);
        check_stage([4, 16, 18, 18], (48, 3, 3), 0, true, act, 2);
        check_stage([5, 48, 8, 8], (64, 3, 3), 0, true, act, 3);
        // padding, odd sizes, no bias, batch not a multiple of the chunk
        check_stage([9, 3, 7, 5], (4, 3, 3), 1, false, act, 4);
        check_stage([17, 2, 5, 6], (3, 2, 3), 1, true, act, 5);
    }
}

#[test]
fn conv_stage_gradient_is_whole_at_the_window_maximum() {
    // 1x1 kernel of weight 1, no bias, identity: the stage is a plain 2x2 max-pool
    let x = Var::new(&[[[[1f32, -5.], [3., 2.]]]], &Device::Cpu).unwrap();
    let w = Var::new(&[[[[1f32]]]], &Device::Cpu).unwrap();
    for (act, want) in [
        (Activation::Identity, [0.0, 0.0, 1.0, 0.0]),
        // |tanh| picks the largest |z|: -5, with derivative sign(z)·(1 − tanh²)
        (
            Activation::AbsTanh,
            [0.0, -(1.0 - 5f32.tanh().powi(2)), 0.0, 0.0],
        ),
    ] {
        let y = conv_bias_act_pool2x2(x.as_tensor(), w.as_tensor(), None, 0, act, Backend::Tandem)
            .unwrap();
        let g = y.sum_all().unwrap().backward().unwrap();
        let gx = to_vec(g.get(&x).unwrap());
        for (a, b) in gx.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{act:?}: {gx:?} vs {want:?}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn conv_random_shapes_match_candle(
        bn in 1usize..6, c in 1usize..5, o in 1usize..6,
        kh in 1usize..5, kw in 1usize..5, pad in 0usize..3,
        h in 1usize..11, wd in 1usize..11, bias: bool, seed in 0u64..1000,
    ) {
        prop_assume!(kh <= h + 2 * pad && kw <= wd + 2 * pad);
        check_conv_against_candle((bn, c, h, wd), (o, kh, kw), pad, bias, seed);
    }

    #[test]
    fn pool_random_shapes_match_reshape_and_max(
        bn in 1usize..4, c in 1usize..5, h in 2usize..13, wd in 2usize..13, seed in 0u64..1000,
    ) {
        check_pool_against_candle([bn, c, h, wd], seed);
    }

    #[test]
    fn conv_stage_random_shapes_match_the_composition(
        bn in 1usize..6, c in 1usize..4, o in 1usize..5,
        kh in 1usize..4, kw in 1usize..4, pad in 0usize..2,
        h in 2usize..12, wd in 2usize..12, bias: bool, act in 0usize..5, seed in 0u64..1000,
    ) {
        // an output whose window lies wholly in the padding equals the bias: its pooling
        // window holds ties, where candle's max shares the gradient and ours picks the first
        prop_assume!(kh < h + 2 * pad && kw < wd + 2 * pad && pad < kh && pad < kw);
        let act = [Activation::Identity, Activation::Relu, Activation::Tanh, Activation::AbsTanh, Activation::Selu][act];
        check_stage([bn, c, h, wd], (o, kh, kw), pad, bias, act, seed);
    }
}
