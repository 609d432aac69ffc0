//! Real data from a folder: train on an MTFL data folder (training.txt, optional
//! testing.txt, image folders), save a checkpoint and score the test faces with a
//! [`Predictor`] rebuilt from it.
//!
//! ```text
//! cargo run --release -p tandem --example mtfl -- /path/to/MTFL [epochs]
//! ```
//!
//! Without a folder the example writes a small MTFL-format folder of SynthFaces to a temporary
//! directory first (`tandem synth` writes the same format), so it runs anywhere.
use tandem::data::Label;
use tandem::prelude::*;
use tandem::run::{train, RunData};
use tandem::tensor::checkpoint::{self, CheckpointMeta};

/// Writes `n` SynthFaces as `dir/training.txt` (MTFL's 15 fields) plus PNG images.
fn write_synthetic_mtfl(dir: &std::path::Path, n: usize) -> Result<(), Box<dyn std::error::Error>> {
    let faces = SynthFaces::try_new(
        SynthConfig {
            len: n,
            ..Default::default()
        },
        7,
    )?;
    std::fs::create_dir_all(dir.join("img"))?;
    let mut lines = String::new();
    for i in 0..n {
        let s = faces.get(i)?;
        let (w, h) = (s.image.width as u32, s.image.height as u32);
        let px = s
            .image
            .pixels
            .iter()
            .map(|v| (v * 255.0).round() as u8)
            .collect();
        let img = image::GrayImage::from_raw(w, h, px).ok_or("bad image size")?;
        img.save(dir.join(format!("img/{i}.png")))?;
        let mut line = format!("img/{i}.png");
        if let Some(Label::Points(p)) = s.labels.get("landmarks") {
            for (k, v) in p.iter().enumerate() {
                line += &format!(" {:.3}", v * if k < 5 { w as f32 } else { h as f32 });
            }
        }
        for task in ["gender", "smile", "glasses", "pose"] {
            if let Some(Label::Class(c)) = s.labels.get(task) {
                line += &format!(" {}", c + 1); // MTFL codes are 1-based
            }
        }
        lines += &line;
        lines.push('\n');
    }
    std::fs::write(dir.join("training.txt"), lines)?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let tmp = tempfile::tempdir()?;
    let dir = match args.next() {
        Some(d) => std::path::PathBuf::from(d),
        None => {
            write_synthetic_mtfl(tmp.path(), 600)?;
            tmp.path().to_path_buf()
        }
    };
    let epochs = args.next().map(|e| e.parse()).transpose()?.unwrap_or(3);

    let mut cfg = RunConfig::default();
    cfg.train.epochs = epochs;
    cfg.train.batch_size = 32;
    // Images are decoded once, cropped around their landmarks and cached. A seeded split of
    // training.txt trains and validates (training faces go through the MTFL crop with jitter
    // and mirroring); testing.txt, when present, is scored once with the best epoch.
    let mtfl = RunData::open_mtfl(&dir, cfg.input_size().unwrap_or(40))?;
    let data = RunData::mtfl(&mtfl, &cfg, cfg.train.seed)?;
    let out = train(&cfg, &data, &Device::Cpu, |r| {
        println!("epoch {} done", r.epoch)
    })?;
    println!("{}", out.report.table());
    if let Some(test) = &out.test {
        println!("test: {test:?}");
    }

    // The checkpoint carries the configuration, so a Predictor needs nothing else.
    let ckpt = tmp.path().join("checkpoint");
    let meta = CheckpointMeta::new(0, epochs, cfg.train.seed, serde_json::to_value(&cfg)?);
    checkpoint::save(&ckpt, &out.vars, &meta)?;
    let predictor = Predictor::load(&ckpt, &Device::Cpu)?;
    // Test faces are already at the model size: score them without any transform.
    if let Some(test) = mtfl.test() {
        let eval = predictor.evaluate(test.as_ref(), None)?;
        println!("test, from the saved checkpoint: {:?}", eval.metrics);
    }
    Ok(())
}
