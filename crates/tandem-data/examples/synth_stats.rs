//! Prints attribute-conditional landmark statistics of SynthFaces, in the units used to
//! compare them with MTFL (inter-ocular distances between the eye landmarks).
//!
//! ```text
//! cargo run -p tandem-data --release --example synth_stats -- [count] [difficulty] [seed]
//! ```
use tandem_data::{SynthConfig, SynthFaces};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, d: &str| args.get(i).cloned().unwrap_or_else(|| d.to_string());
    let count: usize = arg(0, "5000").parse()?;
    let difficulty: f32 = arg(1, "1.0").parse()?;
    let seed: u64 = arg(2, "1").parse()?;
    let faces = SynthFaces::try_new(
        SynthConfig {
            len: count,
            difficulty,
            ..Default::default()
        },
        seed,
    )?;
    // Per pose: count, nose x offset, mouth x offset, mouth y offset, IOD (pixels).
    let mut pose = [[0.0f64; 5]; 5];
    // Per smile class (frontal only): count, mouth width, mouth y offset.
    let mut smile = [[0.0f64; 3]; 2];
    // Per gender (frontal only): count, mouth y offset.
    let mut gender = [[0.0f64; 2]; 2];
    for i in 0..count {
        let p = faces.params(i)?;
        let l = p.landmarks;
        let iod = f64::from(p.landmark_iod());
        let ex = f64::from(l[0][0] + l[1][0]) / 2.0;
        let ey = f64::from(l[0][1] + l[1][1]) / 2.0;
        let mx = f64::from(l[3][0] + l[4][0]) / 2.0;
        let my = f64::from(l[3][1] + l[4][1]) / 2.0;
        let a = p.attributes;
        let row = &mut pose[a.pose as usize];
        row[0] += 1.0;
        row[1] += (f64::from(l[2][0]) - ex) / iod;
        row[2] += (mx - ex) / iod;
        row[3] += (my - ey) / iod;
        row[4] += iod;
        if a.pose == 2 {
            let w = f64::from(((l[4][0] - l[3][0]).powi(2) + (l[4][1] - l[3][1]).powi(2)).sqrt());
            let s = &mut smile[a.smile as usize];
            s[0] += 1.0;
            s[1] += w / iod;
            s[2] += (my - ey) / iod;
            let g = &mut gender[a.gender as usize];
            g[0] += 1.0;
            g[1] += (my - ey) / iod;
        }
    }
    println!("pose  n      nose_dx  mouth_dx  mouth_dy  iod_px");
    for (k, r) in pose.iter().enumerate() {
        let n = r[0].max(1.0);
        println!(
            "{k}     {:<6} {:+.3}   {:+.3}    {:.3}     {:.1}",
            r[0],
            r[1] / n,
            r[2] / n,
            r[3] / n,
            r[4] / n
        );
    }
    for (k, s) in smile.iter().enumerate() {
        let n = s[0].max(1.0);
        println!(
            "smile {k}: mouth width {:.3}, mouth dy {:.3}",
            s[1] / n,
            s[2] / n
        );
    }
    for (k, g) in gender.iter().enumerate() {
        println!("gender {k}: mouth dy {:.3}", g[1] / g[0].max(1.0));
    }
    Ok(())
}
