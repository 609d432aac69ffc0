//! Soft sharing: one TCDCN column per task, tied by an L2 penalty `λ Σ ‖θ_t − θ̄‖²`, against
//! hard sharing on the same faces, seed and budget.
//!
//! ```text
//! cargo run --release -p tandem --example soft_sharing
//! ```
use tandem::prelude::*;
use tandem::share::SoftConfig;

fn train(
    sharing: &SharingConfig,
    train: &Subset,
    val: &Subset,
) -> Result<f64, Box<dyn std::error::Error>> {
    let tasks = TaskSet::new()
        .with(LandmarkTask::new("landmarks", 5))
        .with(ClassTask::new("smile", 2).auxiliary());
    let vars = VarMap::new();
    let vb = seeded_var_builder(&vars, 7, DType::F32, &Device::Cpu);
    // `SharingConfig` builds any strategy from configuration (`sharing = { kind = "soft" }` in TOML).
    let net = sharing.build(&TcdcnConfig::default().into(), &tasks, vb)?;
    let config = TrainConfig {
        epochs: 3,
        batch_size: 32,
        seed: 7,
        ..Default::default()
    };
    let report = Trainer::new(config)
        .weighting(Static::new([("smile", 0.01)]))
        .fit(net.as_ref(), &tasks, &vars, train, val)?;
    Ok(report.best["landmarks"]["nme"])
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let faces = SynthConfig {
        len: 800,
        ..Default::default()
    };
    let data: Arc<dyn Dataset> = Arc::new(SynthFaces::try_new(faces, 7)?);
    let (train_set, val_set) = Subset::split(data, 0.8, 7)?;
    // Tie every stage's parameters with λ = 1e-3 (the default); `SoftConfig::activations()`
    // ties the columns' features instead.
    let soft = SharingConfig::Soft(SoftConfig {
        lambda: 1e-3,
        ..SoftConfig::parameters()
    });
    for sharing in [SharingConfig::Hard, soft] {
        let nme = train(&sharing, &train_set, &val_set)?;
        println!("{:>16}: validation landmark NME {nme:.2} %", sharing.key());
    }
    Ok(())
}
