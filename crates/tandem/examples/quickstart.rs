//! Hard sharing in a few lines: one TCDCN trunk, a landmark head and two auxiliary attribute
//! heads, trained on SynthFaces.
//!
//! ```text
//! cargo run --release -p tandem --example quickstart
//! ```
use tandem::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let device = Device::Cpu;
    // 1,200 seeded synthetic 40×40 faces: 1,000 to train on, 200 to validate.
    let faces = SynthConfig {
        len: 1200,
        ..Default::default()
    };
    let data: Arc<dyn Dataset> = Arc::new(SynthFaces::try_new(faces, 7)?);
    let (train, val) = Subset::split(data, 1000.0 / 1200.0, 7)?;

    // Landmarks are the main task; smile and pose only help.
    let tasks = TaskSet::new()
        .with(LandmarkTask::new("landmarks", 5))
        .with(ClassTask::new("smile", 2).auxiliary())
        .with(ClassTask::new("pose", 5).auxiliary());

    // One shared trunk, one head per task; every variable starts from the seed.
    let vars = VarMap::new();
    let vb = seeded_var_builder(&vars, 7, DType::F32, &device);
    let trunk = Tcdcn::new(TcdcnConfig::default(), vb.pp("trunk"))?;
    let net = HardSharing::new(trunk, &tasks, vb.pp("heads"))?;

    // A landmark L2 loss is ~100× smaller than a cross-entropy: weigh the helpers down.
    let config = TrainConfig {
        epochs: 5,
        batch_size: 32,
        seed: 7,
        ..Default::default()
    };
    let report = Trainer::new(config)
        .weighting(Static::new([("smile", 0.01), ("pose", 0.01)]))
        .on_epoch(|r| {
            println!(
                "epoch {}: landmarks loss {:.4}",
                r.epoch, r.train_loss["landmarks"]
            )
        })
        .fit(&net, &tasks, &vars, &train, &val)?;
    println!("{}", report.table());
    Ok(())
}
