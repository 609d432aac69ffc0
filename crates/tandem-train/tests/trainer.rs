//! End-to-end training on a tiny procedural data set: the loss falls, the run repeats bit for
//! bit, and 1 and 2 threads give identical results.
#![allow(clippy::unwrap_used)]
use candle_core::{DType, Device};
use candle_nn::VarMap;
use std::sync::Arc;
use tandem_data::{Dataset, GrayImage, Label, Sample, Subset};
use tandem_heads::{ClassTask, LandmarkTask, TaskSet};
use tandem_layers::{Tcdcn, TcdcnConfig};
use tandem_optim::Static;
use tandem_share::HardSharing;
use tandem_tensor::TaskMap;
use tandem_train::{Report, TrainConfig, Trainer};

/// 32×32 images with five bright dots at the landmarks; the class says whether the dots sit
/// in the upper or lower half.
struct Dots(usize);

impl Dataset for Dots {
    fn len(&self) -> usize {
        self.0
    }
    fn get(&self, i: usize) -> tandem_data::Result<Sample> {
        let h = tandem_tensor::hash_seed(11, &i.to_string());
        let lower = h % 2 == 1;
        let mut img = GrayImage::new(32, 32);
        let mut xs = Vec::new();
        let mut ys = Vec::new();
        for k in 0..5u64 {
            let x = 4 + ((h >> (8 * k)) % 24) as usize;
            let y = if lower { 17 } else { 3 } + ((h >> (8 * k + 4)) % 12) as usize;
            img.pixels[y * 32 + x] = 1.0;
            xs.push((x as f32 + 0.5) / 32.0);
            ys.push((y as f32 + 0.5) / 32.0);
        }
        xs.extend(ys);
        Ok(Sample {
            image: img,
            labels: TaskMap::new()
                .with("landmarks", Label::Points(xs))
                .with("half", Label::Class(u32::from(lower))),
        })
    }
}

fn run(seed: u64) -> Report {
    let data: Arc<dyn Dataset> = Arc::new(Dots(192));
    let (train, val) = Subset::split(data, 0.75, seed).unwrap();
    let tasks = TaskSet::new()
        .with(LandmarkTask::new("landmarks", 5))
        .with(ClassTask::new("half", 2).auxiliary());
    let vars = VarMap::new();
    let vb = tandem_tensor::seeded_var_builder(&vars, seed, DType::F32, &Device::Cpu);
    let cfg = TcdcnConfig {
        input_size: 32,
        channels: [4, 8, 8, 8],
        feature_dim: 16,
        ..Default::default()
    };
    let net = HardSharing::new(
        Tcdcn::new(cfg, vb.pp("trunk")).unwrap(),
        &tasks,
        vb.pp("heads"),
    )
    .unwrap();
    let mut cfg = TrainConfig {
        epochs: 4,
        batch_size: 16,
        seed,
        ..Default::default()
    };
    cfg.optimizer.set_lr(3e-3);
    Trainer::new(cfg)
        .weighting(Static::new([("half", 0.1)]))
        .fit(&net, &tasks, &vars, &train, &val)
        .unwrap()
}

#[test]
fn loss_falls_and_report_is_consistent() {
    let r = run(3);
    let h = &r.history.epochs;
    assert_eq!(h.len(), 4);
    assert!(
        h[3].train_loss["landmarks"] < h[0].train_loss["landmarks"],
        "{h:?}"
    );
    assert!((h[0].weights["half"] - 0.1).abs() < 1e-12);
    let best = r.history.best_epoch("landmarks", "nme").unwrap();
    assert_eq!(best, r.best_epoch);
    assert_eq!(r.best["landmarks"], h[best].val_metrics["landmarks"]);
    assert!(r.table().contains("| landmarks | nme |"));
}

#[test]
fn same_seed_same_bits_on_one_and_two_threads() {
    let in_pool = |n: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .unwrap()
            .install(|| run(5))
    };
    let one = serde_json::to_string(&in_pool(1)).unwrap();
    let two = serde_json::to_string(&in_pool(2)).unwrap();
    assert_eq!(one, two);
    assert_ne!(one, serde_json::to_string(&run(6)).unwrap());
}
