//! Measures how long SynthFaces takes to render a face on one thread.
//!
//! ```text
//! cargo run -p tandem-data --release --example synth_speed -- [size] [count] [difficulty]
//! ```
use std::time::Instant;
use tandem_data::{Dataset, SynthConfig, SynthFaces};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, d: &str| args.get(i).cloned().unwrap_or_else(|| d.to_string());
    let size: usize = arg(0, "40").parse()?;
    let count: usize = arg(1, "20000").parse()?;
    let difficulty: f32 = arg(2, "1.0").parse()?;
    let faces = SynthFaces::try_new(
        SynthConfig {
            size,
            len: count,
            difficulty,
            ..Default::default()
        },
        1,
    )?;
    let start = Instant::now();
    let mut checksum = 0.0f64;
    for i in 0..count {
        checksum += f64::from(faces.get(i)?.image.pixels[size * size / 2]);
    }
    let per = start.elapsed().as_secs_f64() / count as f64;
    println!(
        "{size}x{size}, difficulty {difficulty}: {:.1} µs per face ({count} faces, checksum {checksum:.3})",
        per * 1e6
    );
    Ok(())
}
