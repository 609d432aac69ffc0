//! Uncertainty weighting (Kendall et al. 2018): each task's loss is scaled by a learned
//! `e^{−s_t}` (with a `½ s_t` regulariser), so no hand-set weights are needed. The example
//! prints the weights the model learned, epoch by epoch.
//!
//! ```text
//! cargo run --release -p tandem --example uncertainty_weighting
//! ```
use tandem::optim::Uncertainty;
use tandem::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let device = Device::Cpu;
    let faces = SynthConfig {
        len: 1000,
        ..Default::default()
    };
    let data: Arc<dyn Dataset> = Arc::new(SynthFaces::try_new(faces, 7)?);
    let (train, val) = Subset::split(data, 0.8, 7)?;
    let tasks = TaskSet::new()
        .with(LandmarkTask::new("landmarks", 5))
        .with(ClassTask::new("gender", 2).auxiliary())
        .with(ClassTask::new("pose", 5).auxiliary());
    let vars = VarMap::new();
    let vb = seeded_var_builder(&vars, 7, DType::F32, &device);
    let net = HardSharing::new(
        Tcdcn::new(TcdcnConfig::default(), vb.pp("trunk"))?,
        &tasks,
        vb.pp("heads"),
    )?;
    // The log-variances s_t are variables like any other (`weighting.s.<task>`): they are
    // trained by the same optimizer and saved in checkpoints.
    let weighting = Uncertainty::new(&tasks, vb.pp("weighting"))?;
    let config = TrainConfig {
        epochs: 5,
        batch_size: 32,
        seed: 7,
        ..Default::default()
    };
    let report = Trainer::new(config)
        .weighting(weighting)
        .fit(&net, &tasks, &vars, &train, &val)?;
    for r in &report.history.epochs {
        let w: Vec<String> = r
            .weights
            .iter()
            .map(|(t, w)| format!("{t} {w:.3}"))
            .collect();
        println!("epoch {}: weights {}", r.epoch, w.join(", "));
    }
    println!("{}", report.table());
    Ok(())
}
