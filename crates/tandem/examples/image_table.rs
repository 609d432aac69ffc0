//! Tasks on a table of image paths: the example draws 300 small colour pictures (a bright
//! square on a dark background, at a random place and in a random colour), writes a CSV of
//! their paths with two labels — which half the square is in (class) and whether it is red
//! (binary) — and trains the TCDCN trunk on 3-channel 40×40 inputs.
//!
//! ```sh
//! cargo run --release -p tandem --example image_table
//! ```
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::fmt::Write as _;
use tandem::run::{train, RunData};
use tandem::RunConfig;

const CONFIG: &str = r#"
[[task]]
name = "half"
kind = "class"
classes = 2
[[task]]
name = "red"
kind = "binary"
[model]
kind = "tcdcn"
input_size = 40
in_channels = 3
[train]
epochs = 4
batch_size = 32
seed = 7
[data]
kind = "table"
image = "path"
val_fraction = 0.2
"#;

fn write_table(dir: &std::path::Path) -> Result<std::path::PathBuf, Box<dyn std::error::Error>> {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut csv = String::from("path,half,red\n");
    for i in 0..300 {
        // pictures of any size: the table resizes them to the trunk's input
        let (w, h) = (rng.random_range(48..80u32), rng.random_range(48..80u32));
        let (sx, sy) = (rng.random_range(0..w - 16), rng.random_range(0..h - 16));
        let red = rng.random_bool(0.5);
        let colour = if red { [230, 40, 40] } else { [40, 200, 230] };
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            if (sx..sx + 16).contains(&x) && (sy..sy + 16).contains(&y) {
                image::Rgb(colour)
            } else {
                image::Rgb([20, 20, 20])
            }
        });
        let name = format!("{i:04}.png");
        img.save(dir.join(&name))?;
        let half = u8::from(sx + 8 >= w / 2);
        let _ = writeln!(csv, "{name},{half},{}", u8::from(red));
    }
    let path = dir.join("images.csv");
    std::fs::write(&path, csv)?;
    Ok(path)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tandem::run::init_cpu_threads();
    let dir = std::env::temp_dir().join("tandem-example-image-table");
    std::fs::create_dir_all(&dir)?;
    let csv = write_table(&dir)?;
    let cfg = RunConfig::from_toml(CONFIG, "image table example")?;
    let data = RunData::table(&cfg, &csv, cfg.train.seed)?;
    let out = train(&cfg, &data, &candle_core::Device::Cpu, |_| {})?;
    println!("{}", out.report.table());
    Ok(())
}
