//! One AdamW training step of the TCDCN network (trunk + five heads) at batch 64 and 256, and
//! inference at batch 256, with tandem's kernels and with candle's own ops.
//! `cargo bench -p tandem-tensor --bench train_step`; `cargo xtask bench` compares with PyTorch.
#![allow(missing_docs, clippy::unwrap_used)]
use candle_core::{DType, Device};
use candle_nn::{Optimizer, VarBuilder, VarMap};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tandem_tensor::ops::Backend;

mod tcdcn;

fn steps(c: &mut Criterion) {
    let dev = Device::Cpu;
    for (bname, backend) in [("tandem", Backend::Tandem), ("candle", Backend::Candle)] {
        let vars = VarMap::new();
        let vb = VarBuilder::from_varmap(&vars, DType::F32, &dev);
        let net = tcdcn::Net::new(vb, backend, true).unwrap();
        let mut opt = candle_nn::AdamW::new_lr(vars.all_vars(), 1e-3).unwrap();
        let mut g = c.benchmark_group(format!("tcdcn_{bname}"));
        for b in [64, 256] {
            let batch = tcdcn::Batch::random(b, &dev).unwrap();
            g.throughput(Throughput::Elements(b as u64));
            g.bench_function(format!("train_b{b}"), |bench| {
                bench.iter(|| {
                    let loss = tcdcn::loss(&net.forward(&batch.x).unwrap(), &batch).unwrap();
                    opt.backward_step(&loss).unwrap();
                })
            });
        }
        let batch = tcdcn::Batch::random(256, &dev).unwrap();
        g.throughput(Throughput::Elements(256));
        g.bench_function("infer_b256", |bench| {
            bench.iter(|| net.forward(&batch.x).unwrap())
        });
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
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3))
}

criterion_group! { name = benches; config = config(); targets = steps }
criterion_main!(benches);
