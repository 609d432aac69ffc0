//! `tandem synth`: SynthFaces written as an MTFL data folder.
//!
//! `OUT/training.txt` holds one face per line in MTFL's own 15-field format,
//! `path x1..x5 y1..y5 gender smile glasses pose`, with landmarks in pixels and 1-based
//! attribute codes (gender 1 male 2 female; smile 1 yes 2 no; glasses 1 yes 2 no; pose 1 left
//! profile .. 5 right profile); the images are PNG files under `OUT/synth/`. No other `.txt`
//! file is written, so any tool that reads MTFL reads this folder.
use crate::progress;
use anyhow::{bail, Context, Result};
use std::fmt::Write as _;
use std::path::PathBuf;
use tandem::data::{Label, Sample, SynthConfig, SynthFaces};

/// Arguments of `tandem synth`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Number of faces.
    #[arg(long, short, value_name = "N")]
    n: usize,
    /// Output folder (created).
    #[arg(long, short, value_name = "DIR")]
    out: PathBuf,
    /// Seed of the generator (face i is a pure function of seed and i).
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Side of the square images in pixels.
    #[arg(long, default_value_t = 40)]
    size: usize,
    /// Nuisance level: 0 clean, centred faces; 1 the default mix of clutter, occluders,
    /// lighting and noise.
    #[arg(long, default_value_t = 1.0)]
    difficulty: f32,
}

/// Folder of the images inside the output folder.
pub const IMAGE_DIR: &str = "synth";

/// One annotation line of `sample` stored at `path`.
pub fn line(path: &str, sample: &Sample) -> Result<String> {
    let (w, h) = (sample.image.width as f32, sample.image.height as f32);
    let Some(Label::Points(p)) = sample.labels.get("landmarks") else {
        bail!("a synthetic face has no landmarks");
    };
    if p.len() != 10 {
        bail!("a synthetic face has {} landmark values, not 10", p.len());
    }
    let mut s = path.to_string();
    for (i, v) in p.iter().enumerate() {
        let px = if i < 5 { v * w } else { v * h };
        write!(s, " {px:.3}")?;
    }
    for task in ["gender", "smile", "glasses", "pose"] {
        let Some(Label::Class(c)) = sample.labels.get(task) else {
            bail!("a synthetic face has no {task} label");
        };
        write!(s, " {}", c + 1)?;
    }
    Ok(s)
}

fn to_png(sample: &Sample) -> Result<image::GrayImage> {
    let img = &sample.image;
    let pixels = img
        .pixels
        .iter()
        .map(|&v| (v * 255.0).round().clamp(0.0, 255.0) as u8)
        .collect();
    image::GrayImage::from_raw(img.width as u32, img.height as u32, pixels)
        .context("image buffer of the wrong size")
}

/// Runs `tandem synth`.
pub fn run(args: Args) -> Result<()> {
    if args.n == 0 {
        bail!("--n must be at least 1");
    }
    let cfg = SynthConfig {
        len: args.n,
        size: args.size,
        difficulty: args.difficulty,
        ..SynthConfig::default()
    };
    let faces = SynthFaces::try_new(cfg, args.seed).context("invalid synthetic face settings")?;
    let images = args.out.join(IMAGE_DIR);
    std::fs::create_dir_all(&images)
        .with_context(|| format!("cannot create {}", images.display()))?;
    let width = args.n.to_string().len().max(5);
    let bar = progress::bar(args.n as u64, "faces");
    let mut text = String::new();
    for i in 0..args.n {
        let (sample, _) = faces.face(i)?;
        let rel = format!("{IMAGE_DIR}/{i:0width$}.png");
        let path = args.out.join(&rel);
        to_png(&sample)?
            .save(&path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        text.push_str(&line(&rel, &sample)?);
        text.push('\n');
        bar.inc(1);
    }
    bar.finish_and_clear();
    let ann = args.out.join("training.txt");
    std::fs::write(&ann, text).with_context(|| format!("cannot write {}", ann.display()))?;
    crate::output::outln!(
        "wrote {} faces ({}x{} PNG, seed {}) to {} and {}/",
        args.n,
        args.size,
        args.size,
        args.seed,
        ann.display(),
        images.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem::data::mtfl::parse::parse_line;
    use tandem::data::Dataset;

    #[test]
    fn lines_parse_back_as_mtfl() {
        let faces = SynthFaces::new(
            SynthConfig {
                len: 20,
                ..Default::default()
            },
            3,
        );
        for i in 0..20 {
            let s = faces.get(i).unwrap();
            let l = line("synth/00001.png", &s).unwrap();
            assert_eq!(l.split_whitespace().count(), 15);
            let r = parse_line(std::path::Path::new("training.txt"), 1, &l).unwrap();
            let Label::Points(p) = &s.labels["landmarks"] else {
                panic!()
            };
            for (a, b) in r.landmarks.iter().zip(p) {
                assert!((a - b * 40.0).abs() < 1e-3);
            }
            let classes: Vec<u32> = ["gender", "smile", "glasses", "pose"]
                .iter()
                .map(|t| match &s.labels[*t] {
                    Label::Class(c) => *c,
                    _ => panic!(),
                })
                .collect();
            assert_eq!(r.attributes.to_vec(), classes);
        }
    }
}
