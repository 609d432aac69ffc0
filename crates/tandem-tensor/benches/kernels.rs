//! Forward and backward time of each kernel on the TCDCN layer shapes (batch 64), tandem's
//! kernels vs candle's own ops. `cargo bench -p tandem-tensor --bench kernels`.
#![allow(missing_docs, clippy::unwrap_used)]
use candle_core::{Device, Tensor, Var};
use criterion::{criterion_group, criterion_main, Criterion};
use tandem_tensor::ops::{
    bias_act, bias_act_pool2x2, conv2d, conv_bias_act_pool2x2, max_pool2x2, Activation, Backend,
};

const B: usize = 64;
/// (name, C_in, H, C_out, K) of the four TCDCN convolutions (40×40 input).
const CONVS: [(&str, usize, usize, usize, usize); 4] = [
    ("conv1", 1, 40, 16, 5),
    ("conv2", 16, 18, 48, 3),
    ("conv3", 48, 8, 64, 3),
    ("conv4", 64, 3, 64, 2),
];
const BACKENDS: [(&str, Backend); 2] = [("tandem", Backend::Tandem), ("candle", Backend::Candle)];

/// A fixed tensor shaped like `y`: `Σ y ⊙ probe` gives `y` a full (not broadcast) gradient,
/// as inside a network.
fn probe(y: &Tensor) -> Tensor {
    Tensor::ones(y.shape(), y.dtype(), y.device()).unwrap()
}

fn var(shape: &[usize]) -> Var {
    Var::from_tensor(&Tensor::randn(0f32, 1f32, shape, &Device::Cpu).unwrap()).unwrap()
}

fn convs(c: &mut Criterion) {
    for (name, cin, h, cout, k) in CONVS {
        // the first layer's input is data: no input gradient
        let x = var(&[B, cin, h, h]);
        let x_in = if cin == 1 {
            x.as_tensor().detach()
        } else {
            x.as_tensor().clone()
        };
        let w = var(&[cout, cin, k, k]);
        let bias = var(&[cout]);
        let mut g = c.benchmark_group(format!("{name}_b{B}"));
        for (bname, backend) in BACKENDS {
            g.bench_function(format!("{bname}/forward"), |bench| {
                bench.iter(|| {
                    conv2d(&x_in, w.as_tensor(), Some(bias.as_tensor()), 0, backend).unwrap()
                })
            });
            g.bench_function(format!("{bname}/forward+backward"), |bench| {
                bench.iter(|| {
                    let y =
                        conv2d(&x_in, w.as_tensor(), Some(bias.as_tensor()), 0, backend).unwrap();
                    y.mul(&probe(&y))
                        .unwrap()
                        .sum_all()
                        .unwrap()
                        .backward()
                        .unwrap()
                })
            });
        }
        g.finish();
    }
}

fn pools(c: &mut Criterion) {
    let x = var(&[B, 16, 36, 36]);
    let mut g = c.benchmark_group(format!("pool_16x36x36_b{B}"));
    for (bname, backend) in BACKENDS {
        g.bench_function(format!("{bname}/forward"), |bench| {
            bench.iter(|| max_pool2x2(x.as_tensor(), backend).unwrap())
        });
        g.bench_function(format!("{bname}/forward+backward"), |bench| {
            bench.iter(|| {
                let y = max_pool2x2(x.as_tensor(), backend).unwrap();
                y.mul(&probe(&y))
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .backward()
                    .unwrap()
            })
        });
    }
    g.finish();
}

fn acts(c: &mut Criterion) {
    let x = var(&[B, 16, 36, 36]);
    let bias = var(&[16]);
    let mut g = c.benchmark_group(format!("bias_abs_tanh_16x36x36_b{B}"));
    for (bname, backend) in BACKENDS {
        g.bench_function(format!("{bname}/forward"), |bench| {
            bench.iter(|| {
                bias_act(
                    x.as_tensor(),
                    Some(bias.as_tensor()),
                    Activation::AbsTanh,
                    backend,
                )
                .unwrap()
            })
        });
        g.bench_function(format!("{bname}/forward+backward"), |bench| {
            bench.iter(|| {
                let y = bias_act(
                    x.as_tensor(),
                    Some(bias.as_tensor()),
                    Activation::AbsTanh,
                    backend,
                )
                .unwrap();
                y.mul(&probe(&y))
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .backward()
                    .unwrap()
            })
        });
    }
    g.finish();
}

fn act_pools(c: &mut Criterion) {
    let x = var(&[B, 16, 36, 36]);
    let bias = var(&[16]);
    let mut g = c.benchmark_group(format!("bias_abs_tanh_pool_16x36x36_b{B}"));
    let act = Activation::AbsTanh;
    let fused = |backend| bias_act_pool2x2(x.as_tensor(), Some(bias.as_tensor()), act, backend);
    let composed = |backend| {
        max_pool2x2(
            &bias_act(x.as_tensor(), Some(bias.as_tensor()), act, backend)?,
            backend,
        )
    };
    for (bname, backend) in BACKENDS {
        for (kind, fwd) in [
            (
                "fused",
                &fused as &dyn Fn(Backend) -> candle_core::Result<Tensor>,
            ),
            ("composed", &composed),
        ] {
            if backend == Backend::Candle && kind == "fused" {
                continue;
            }
            g.bench_function(format!("{bname}/{kind}/forward"), |bench| {
                bench.iter(|| fwd(backend).unwrap())
            });
            g.bench_function(format!("{bname}/{kind}/forward+backward"), |bench| {
                bench.iter(|| {
                    let y = fwd(backend).unwrap();
                    y.mul(&probe(&y))
                        .unwrap()
                        .sum_all()
                        .unwrap()
                        .backward()
                        .unwrap()
                })
            });
        }
    }
    g.finish();
}

/// The three pooled TCDCN stages, each as one op (`conv_bias_act_pool2x2`) and composed.
fn stages(c: &mut Criterion) {
    for (name, cin, h, cout, k) in &CONVS[..3] {
        let x = if *cin == 1 {
            Var::from_tensor(&var(&[B, 1, *h, *h]).as_tensor().detach()).unwrap()
        } else {
            var(&[B, *cin, *h, *h])
        };
        let (w, b) = (var(&[*cout, *cin, *k, *k]), var(&[*cout]));
        let act = Activation::AbsTanh;
        let mut g = c.benchmark_group(format!("stage_{name}_b{B}"));
        for (bname, backend) in BACKENDS {
            let stage = || {
                if backend == Backend::Tandem {
                    conv_bias_act_pool2x2(
                        x.as_tensor(),
                        w.as_tensor(),
                        Some(b.as_tensor()),
                        0,
                        act,
                        backend,
                    )
                } else {
                    let z = conv2d(x.as_tensor(), w.as_tensor(), None, 0, backend)?;
                    max_pool2x2(&bias_act(&z, Some(b.as_tensor()), act, backend)?, backend)
                }
            };
            g.bench_function(format!("{bname}/forward"), |bench| {
                bench.iter(|| stage().unwrap())
            });
            g.bench_function(format!("{bname}/forward+backward"), |bench| {
                bench.iter(|| {
                    let y = stage().unwrap();
                    y.mul(&probe(&y))
                        .unwrap()
                        .sum_all()
                        .unwrap()
                        .backward()
                        .unwrap()
                })
            });
        }
        g.finish();
    }
}

fn config() -> Criterion {
    // As `cargo xtask bench`: candle's element-wise ops on the calling thread (its barrier
    // pool spin-waits), glibc's malloc tuned for large tensors, 2 rayon threads for tandem's
    // kernels and GEMMs unless set otherwise.
    tandem_tensor::runtime::tune_cpu_runtime();
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        std::env::set_var("RAYON_NUM_THREADS", "2");
    }
    Criterion::default()
        .sample_size(10)
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2))
}

criterion_group! { name = benches; config = config(); targets = convs, pools, acts, act_pools, stages }
criterion_main!(benches);
