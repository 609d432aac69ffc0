//! `tandem predict`: landmarks and attributes of face images.
use crate::{draw, labels};
use anyhow::{bail, Context, Result};
use candle_core::Device;
use std::path::{Path, PathBuf};
use tandem::predict::read_image;
use tandem::{FaceBox, Prediction, Predictor};

/// Arguments of `tandem predict`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Checkpoint folder written by `tandem train` (OUT/checkpoint). Give it several times to
    /// predict with a seed ensemble: the checkpoints' predictions are averaged (same tasks and
    /// input size; the first one's configuration holds).
    #[arg(long, value_name = "DIR", required = true)]
    checkpoint: Vec<PathBuf>,
    #[command(flatten)]
    test_time: TestTimeArgs,
    /// The device to run on: cpu (default), cuda, cuda:N, metal (a GPU needs a build with
    /// `--features cuda` or `metal`).
    #[arg(long, value_name = "DEVICE", default_value = "cpu")]
    device: tandem::tensor::DeviceSpec,
    /// Face images (JPEG or PNG). Each is taken as a face crop unless --box is given.
    #[arg(required = true, value_name = "IMAGE")]
    images: Vec<PathBuf>,
    /// The face's box in every image, in pixels: left, top, width, height.
    #[arg(long = "box", value_name = "X,Y,W,H", value_parser = parse_box)]
    face_box: Option<FaceBox>,
    /// Write the image with its predicted landmarks drawn (PNG). With several images, the
    /// image's number is added to the name (OUT-1.png, OUT-2.png, ...).
    #[arg(long, value_name = "OUT.png")]
    draw: Option<PathBuf>,
    /// Print one JSON object per image instead of text.
    #[arg(long)]
    json: bool,
}

/// Test-time options of `eval` and `predict`, over the checkpoint's `[test_time]`.
#[derive(Debug, clap::Args)]
pub struct TestTimeArgs {
    /// Average each prediction with that of the mirrored face (default: the checkpoint's
    /// `test_time.mirror`).
    #[arg(long, overrides_with = "no_mirror")]
    mirror: bool,
    /// Do not mirror, whatever the checkpoint's configuration says.
    #[arg(long, overrides_with = "mirror")]
    no_mirror: bool,
}

/// Loads one checkpoint or an ensemble of several, with the test-time options of `args`.
pub fn load(dirs: &[PathBuf], args: &TestTimeArgs, device: &Device) -> Result<Predictor> {
    let predictor = Predictor::load_ensemble(dirs, device).with_context(|| {
        format!(
            "cannot load the checkpoint{} {} (a folder with model.safetensors and meta.json)",
            if dirs.len() > 1 { "s" } else { "" },
            dirs.iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    Ok(match (args.mirror, args.no_mirror) {
        (true, _) => predictor.with_mirror(true)?,
        (_, true) => predictor.with_mirror(false)?,
        _ => predictor,
    })
}

fn parse_box(s: &str) -> std::result::Result<FaceBox, String> {
    let v: Vec<f32> = s
        .split(',')
        .map(|p| p.trim().parse::<f32>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| format!("expected four numbers x,y,w,h: {e}"))?;
    match v[..] {
        [x, y, width, height] if width > 0.0 && height > 0.0 && v.iter().all(|c| c.is_finite()) => {
            Ok(FaceBox {
                x,
                y,
                width,
                height,
            })
        }
        [_, _, _, _] => Err("width and height must be positive".into()),
        _ => Err(format!("expected four numbers x,y,w,h, got {}", v.len())),
    }
}

/// Where the drawing of image `i` (0-based) of `n` goes.
fn draw_path(out: &Path, i: usize, n: usize) -> PathBuf {
    if n == 1 {
        return out.to_path_buf();
    }
    let stem = out
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "landmarks".into());
    out.with_file_name(format!("{stem}-{}.png", i + 1))
}

fn text(path: &Path, p: &Prediction) -> String {
    let mut s = format!("{}\n", path.display());
    if let Some(points) = &p.landmarks {
        for (j, (x, y)) in points.iter().enumerate() {
            let name = labels::LANDMARKS
                .get(j)
                .map(|n| n.to_string())
                .unwrap_or_else(|| format!("point {}", j + 1));
            s.push_str(&format!("  {name:<12} x {x:7.2}  y {y:7.2}\n"));
        }
    }
    for (task, c) in p.classes.iter() {
        let prob = c
            .probabilities
            .get(c.class as usize)
            .copied()
            .unwrap_or(f32::NAN);
        s.push_str(&format!(
            "  {task:<12} {} (p = {prob:.2})\n",
            labels::class_name(task, c.class)
        ));
    }
    s
}

/// Runs `tandem predict`.
pub fn run(args: Args) -> Result<()> {
    let device = args.device.open()?;
    let predictor = load(&args.checkpoint, &args.test_time, &device)?;
    let images = args
        .images
        .iter()
        .map(|p| read_image(p).map_err(anyhow::Error::from))
        .collect::<Result<Vec<_>>>()?;
    let preds = match args.face_box {
        None => predictor.predict(&images)?,
        Some(b) => {
            for (img, path) in images.iter().zip(&args.images) {
                if b.x + b.width <= 0.0
                    || b.y + b.height <= 0.0
                    || b.x >= img.width as f32
                    || b.y >= img.height as f32
                {
                    bail!(
                        "--box {},{},{},{} lies outside {} ({}x{})",
                        b.x,
                        b.y,
                        b.width,
                        b.height,
                        path.display(),
                        img.width,
                        img.height
                    );
                }
            }
            let faces: Vec<_> = images.iter().map(|i| (i, b)).collect();
            predictor.predict_boxed(&faces)?
        }
    };
    for (i, ((path, image), p)) in args.images.iter().zip(&images).zip(&preds).enumerate() {
        if args.json {
            let v = serde_json::json!({ "image": path, "prediction": p });
            crate::output::outln!("{}", serde_json::to_string(&v)?);
        } else {
            crate::output::print(&text(path, p));
        }
        if let Some(out) = &args.draw {
            let target = draw_path(out, i, images.len());
            let points = p.landmarks.clone().unwrap_or_default();
            let k = draw::scale_for(image);
            draw::draw(image, &points, k)
                .save(&target)
                .with_context(|| format!("cannot write {}", target.display()))?;
            tracing::info!(
                "drew {} ({}x enlarged) to {}",
                path.display(),
                k,
                target.display()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxes_parse_or_explain() {
        assert_eq!(
            parse_box("1,2,30,40"),
            Ok(FaceBox {
                x: 1.0,
                y: 2.0,
                width: 30.0,
                height: 40.0
            })
        );
        assert!(parse_box("1,2,3").is_err());
        assert!(parse_box("1,2,0,4").is_err());
        assert!(parse_box("a,b,c,d").is_err());
    }

    #[test]
    fn several_drawings_are_numbered() {
        assert_eq!(draw_path(Path::new("o/x.png"), 0, 1), Path::new("o/x.png"));
        assert_eq!(
            draw_path(Path::new("o/x.png"), 1, 3),
            Path::new("o/x-2.png")
        );
    }
}
