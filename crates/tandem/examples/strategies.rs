//! Trains every sharing strategy for a few epochs through the same `Trainer` and prints each
//! task's validation metrics.
//!
//! The data are SynthFaces: seeded procedural 40×40 faces with five landmarks and the MTFL
//! attributes; here the landmarks are the main task and smile and pose are auxiliary.
//!
//! ```text
//! cargo run --release -p tandem --example strategies [epochs] [samples] [difficulty]
//! ```
use candle_core::{DType, Device};
use candle_nn::VarMap;
use std::sync::Arc;
use tandem_data::{Dataset, Subset, SynthConfig, SynthFaces};
use tandem_heads::{ClassTask, LandmarkTask, TaskSet};
use tandem_layers::TcdcnConfig;
use tandem_optim::Static;
use tandem_share::{CrossStitchConfig, SharingConfig, SoftConfig};
use tandem_train::{Report, TrainConfig, Trainer};

/// The landmark task and two auxiliary attributes.
pub fn tasks() -> TaskSet {
    TaskSet::new()
        .with(LandmarkTask::new("landmarks", 5))
        .with(ClassTask::new("smile", 2).auxiliary())
        .with(ClassTask::new("pose", 5).auxiliary())
}

/// Every strategy, with its default configuration.
pub fn strategies() -> Vec<SharingConfig> {
    vec![
        SharingConfig::Independent,
        SharingConfig::Hard,
        SharingConfig::Soft(SoftConfig::parameters()),
        SharingConfig::Soft(SoftConfig::activations()),
        SharingConfig::CrossStitch(CrossStitchConfig::default()),
    ]
}

/// Trains `sharing` on `samples` SynthFaces of nuisance level `difficulty` (¾ train,
/// ¼ validation) for `epochs` epochs.
pub fn train(
    sharing: &SharingConfig,
    trunk: &TcdcnConfig,
    epochs: usize,
    samples: usize,
    difficulty: f32,
    seed: u64,
) -> Result<Report, Box<dyn std::error::Error>> {
    let faces = SynthConfig {
        len: samples,
        difficulty,
        ..Default::default()
    };
    let data: Arc<dyn Dataset> = Arc::new(SynthFaces::try_new(faces, seed)?);
    let (train, val) = Subset::split(data, 0.75, seed)?;
    let tasks = tasks();
    let vars = VarMap::new();
    let vb = tandem_tensor::seeded_var_builder(&vars, seed, DType::F32, &Device::Cpu);
    let net = sharing.build(&trunk.clone().into(), &tasks, vb)?;
    let mut config = TrainConfig {
        epochs,
        batch_size: 32,
        seed,
        ..Default::default()
    };
    config.optimizer.set_lr(3e-3);
    let report = Trainer::new(config)
        .weighting(Static::new([("smile", 0.1), ("pose", 0.1)]))
        .fit(net.as_ref(), &tasks, &vars, &train, &val)?;
    Ok(report)
}

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let epochs = args.next().map(|a| a.parse()).transpose()?.unwrap_or(8);
    let samples = args.next().map(|a| a.parse()).transpose()?.unwrap_or(2048);
    let difficulty = args.next().map(|a| a.parse()).transpose()?.unwrap_or(0.3);
    println!("{samples} SynthFaces (difficulty {difficulty}), {epochs} epochs, TCDCN columns; validation metrics at the best epoch\n");
    println!("| strategy | task | metric | value |\n|---|---|---|---|");
    for sharing in strategies() {
        let report = train(
            &sharing,
            &TcdcnConfig::default(),
            epochs,
            samples,
            difficulty,
            7,
        )?;
        for (task, metrics) in report.best.iter() {
            for (name, value) in metrics {
                println!("| {} | {task} | {name} | {value:.4} |", sharing.key());
            }
        }
    }
    Ok(())
}
