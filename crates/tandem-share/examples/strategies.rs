//! Trains every sharing strategy for a few epochs through the same `Trainer` and prints each
//! task's validation metrics.
//!
//! The data are procedural 40×40 "faces": an ellipse with two eyes, a nose and two mouth
//! corners (the five landmarks), a mouth that curves up or down (`smile`, 2 classes) and a
//! nose shifted left, centre or right (`pose`, 3 classes).
//!
//! ```text
//! cargo run --release -p tandem-share --example strategies [epochs] [samples]
//! ```
use candle_core::{DType, Device};
use candle_nn::VarMap;
use std::sync::Arc;
use tandem_data::{Dataset, GrayImage, Label, Sample, Subset};
use tandem_heads::{ClassTask, LandmarkTask, TaskSet};
use tandem_layers::TcdcnConfig;
use tandem_share::{CrossStitchConfig, Sharing, SoftConfig};
use tandem_tensor::{hash_seed, TaskMap};
use tandem_train::{Report, Static, TrainConfig, Trainer};

const SIDE: usize = 40;

/// Procedural faces; sample `i` depends only on `(seed, i)`.
pub struct ToyFaces {
    /// Number of samples.
    pub len: usize,
    /// Seed of the faces' geometry and noise.
    pub seed: u64,
}

impl ToyFaces {
    fn uniform(&self, i: usize, what: &str) -> f32 {
        (hash_seed(self.seed, &format!("{i}.{what}")) >> 40) as f32 / (1u64 << 24) as f32
    }
}

fn splat(img: &mut GrayImage, x: f32, y: f32, value: f32) {
    for dy in -1i32..=1 {
        for dx in -1i32..=1 {
            let (px, py) = (x.round() as i32 + dx, y.round() as i32 + dy);
            if (0..SIDE as i32).contains(&px) && (0..SIDE as i32).contains(&py) {
                img.pixels[py as usize * SIDE + px as usize] = value;
            }
        }
    }
}

impl Dataset for ToyFaces {
    fn len(&self) -> usize {
        self.len
    }

    fn get(&self, i: usize) -> tandem_data::Result<Sample> {
        let u = |what: &str| self.uniform(i, what);
        let (cx, cy) = (20.0 + 6.0 * (u("cx") - 0.5), 20.0 + 6.0 * (u("cy") - 0.5));
        let eyes = 10.0 + 4.0 * u("eyes");
        let smile = u("smile") < 0.5;
        let pose = ((u("pose") * 3.0) as u32).min(2);
        let mut img = GrayImage::new(SIDE, SIDE);
        for y in 0..SIDE {
            for x in 0..SIDE {
                let (dx, dy) = (
                    (x as f32 - cx) / (0.9 * eyes),
                    (y as f32 - cy) / (1.2 * eyes),
                );
                let face = if dx * dx + dy * dy < 1.0 { 0.35 } else { 0.05 };
                let noise = 0.1
                    * (hash_seed(self.seed ^ i as u64, &format!("{x},{y}")) % 1000) as f32
                    / 1000.0;
                img.pixels[y * SIDE + x] = face + noise;
            }
        }
        let mouth_y = cy + 7.0;
        let corner_y = if smile { mouth_y - 2.0 } else { mouth_y + 1.0 };
        let points = [
            (cx - eyes / 2.0, cy - 4.0),
            (cx + eyes / 2.0, cy - 4.0),
            (cx + (pose as f32 - 1.0) * 3.0, cy + 1.0),
            (cx - eyes / 3.0, corner_y),
            (cx + eyes / 3.0, corner_y),
        ];
        for k in 0..=8 {
            let t = k as f32 / 8.0;
            let x = points[3].0 + t * (points[4].0 - points[3].0);
            splat(
                &mut img,
                x,
                mouth_y + (corner_y - mouth_y) * (2.0 * t - 1.0).powi(2),
                0.7,
            );
        }
        for &(x, y) in &points {
            splat(&mut img, x, y, 1.0);
        }
        let mut coords: Vec<f32> = points.iter().map(|p| (p.0 + 0.5) / SIDE as f32).collect();
        coords.extend(points.iter().map(|p| (p.1 + 0.5) / SIDE as f32));
        Ok(Sample {
            image: img,
            labels: TaskMap::new()
                .with("landmarks", Label::Points(coords))
                .with("smile", Label::Class(u32::from(smile)))
                .with("pose", Label::Class(pose)),
        })
    }
}

/// The landmark task and two auxiliary attributes.
pub fn tasks() -> TaskSet {
    TaskSet::new()
        .with(LandmarkTask::new("landmarks", 5))
        .with(ClassTask::new("smile", 2).auxiliary())
        .with(ClassTask::new("pose", 3).auxiliary())
}

/// Every strategy, with its default configuration.
pub fn strategies() -> Vec<Sharing> {
    vec![
        Sharing::Independent,
        Sharing::Hard,
        Sharing::Soft(SoftConfig::parameters()),
        Sharing::Soft(SoftConfig::activations()),
        Sharing::CrossStitch(CrossStitchConfig::default()),
    ]
}

/// Trains `sharing` on `samples` toy faces (¾ train, ¼ validation) for `epochs` epochs.
pub fn train(
    sharing: &Sharing,
    trunk: &TcdcnConfig,
    epochs: usize,
    samples: usize,
    seed: u64,
) -> Result<Report, Box<dyn std::error::Error>> {
    let data: Arc<dyn Dataset> = Arc::new(ToyFaces { len: samples, seed });
    let (train, val) = Subset::split(data, 0.75, seed)?;
    let tasks = tasks();
    let vars = VarMap::new();
    let vb = tandem_tensor::seeded_var_builder(&vars, seed, DType::F32, &Device::Cpu);
    let net = sharing.build(trunk, &tasks, vb)?;
    let mut config = TrainConfig {
        epochs,
        batch_size: 32,
        seed,
        ..Default::default()
    };
    config.optimizer.lr = 3e-3;
    let report = Trainer::new(config)
        .weighting(Static::new([("smile", 0.1), ("pose", 0.1)]))
        .fit(net.as_ref(), &tasks, &vars, &train, &val)?;
    Ok(report)
}

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let epochs = args.next().map(|a| a.parse()).transpose()?.unwrap_or(5);
    let samples = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1024);
    println!("{samples} toy faces, {epochs} epochs, TCDCN columns; validation metrics at the best epoch\n");
    println!("| strategy | task | metric | value |\n|---|---|---|---|");
    for sharing in strategies() {
        let report = train(&sharing, &TcdcnConfig::default(), epochs, samples, 7)?;
        for (task, metrics) in report.best.iter() {
            for (name, value) in metrics {
                println!("| {} | {task} | {name} | {value:.4} |", sharing.key());
            }
        }
    }
    Ok(())
}
