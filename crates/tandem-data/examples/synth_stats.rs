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
    // Baselines that do not look at the image: the mean landmarks of the first half
    // predicted for the second half, overall and per (pose, smile, gender) cell.
    let half = count / 2;
    let mut all = vec![0.0f64; 10];
    let mut cells = vec![(0.0f64, vec![0.0f64; 10]); 20];
    let cell = |a: tandem_data::Attributes| (a.pose * 4 + a.smile * 2 + a.gender) as usize;
    let mut params = Vec::with_capacity(count);
    for i in 0..count {
        params.push(faces.params(i)?);
    }
    for p in &params[..half] {
        let v = p.normalized_landmarks(faces.config().size);
        let c = &mut cells[cell(p.attributes)];
        c.0 += 1.0;
        for k in 0..10 {
            all[k] += f64::from(v[k]) / half.max(1) as f64;
            c.1[k] += f64::from(v[k]);
        }
    }
    let nme = |pred: &dyn Fn(&tandem_data::FaceParams) -> Vec<f64>| -> f64 {
        let mut total = 0.0;
        for p in &params[half..] {
            let v = p.normalized_landmarks(faces.config().size);
            let q = pred(p);
            let n = f64::from(faces.config().size as u32);
            let iod = f64::from(p.landmark_iod()) / n;
            let mut e = 0.0;
            for k in 0..5 {
                e += ((f64::from(v[k]) - q[k]).powi(2) + (f64::from(v[5 + k]) - q[5 + k]).powi(2))
                    .sqrt();
            }
            total += e / 5.0 / iod;
        }
        100.0 * total / (count - half).max(1) as f64
    };
    let mean_nme = nme(&|_| all.clone());
    let cell_nme = nme(&|p| {
        let c = &cells[cell(p.attributes)];
        if c.0 > 0.0 {
            c.1.iter().map(|x| x / c.0).collect()
        } else {
            all.clone()
        }
    });
    println!(
        "NME of the mean shape: {mean_nme:.1}%; of the mean shape per (pose, smile, gender): {cell_nme:.1}%"
    );
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
