//! Three tasks on a table of numeric features, with an MLP trunk: the example writes its own
//! CSV (2,000 rows, 8 features, a regression target, a binary flag with missing cells and a
//! 3-way class), declares the tasks in a run configuration and trains.
//!
//! ```sh
//! cargo run --release -p tandem --example tabular
//! ```
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::fmt::Write as _;
use tandem::run::{train, RunData};
use tandem::RunConfig;

const CONFIG: &str = r#"
sharing = { kind = "hard" }
[[task]]
name = "price"
kind = "regression"
columns = ["price"]
main = true
[[task]]
name = "flag"
kind = "binary"
[[task]]
name = "band"
kind = "class"
classes = 3
[model]
kind = "mlp"
hidden = [64, 64]
[train]
epochs = 15
batch_size = 64
seed = 7
[data]
kind = "table"
features = ["x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7"]
val_fraction = 0.2
"#;

/// Rows whose targets share two latent directions of the features.
fn write_csv(path: &std::path::Path) -> std::io::Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut text = String::from("x0,x1,x2,x3,x4,x5,x6,x7,price,flag,band\n");
    for _ in 0..2000 {
        let x: Vec<f64> = (0..8).map(|_| rng.random_range(-2.0..2.0)).collect();
        let a = 0.6 * x[0] - 0.4 * x[3] + 0.3 * x[5];
        let b = 0.5 * x[1] + 0.5 * x[6];
        let price = a.tanh() + 0.5 * b + rng.random_range(-0.05..0.05);
        let flag = if rng.random_bool(0.2) {
            String::new() // a missing label
        } else {
            u8::from(a + 0.3 * b > 0.0).to_string()
        };
        let band = if b < -0.4 {
            0
        } else if b < 0.4 {
            1
        } else {
            2
        };
        for v in &x {
            let _ = write!(text, "{v:.4},");
        }
        let _ = writeln!(text, "{price:.4},{flag},{band}");
    }
    std::fs::write(path, text)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tandem::run::init_cpu_threads();
    let dir = std::env::temp_dir().join("tandem-example-tabular");
    std::fs::create_dir_all(&dir)?;
    let csv = dir.join("table.csv");
    write_csv(&csv)?;
    let cfg = RunConfig::from_toml(CONFIG, "tabular example")?;
    let data = RunData::table(&cfg, &csv, cfg.train.seed)?;
    let out = train(&cfg, &data, &candle_core::Device::Cpu, |_| {})?;
    println!("{}", out.report.table());
    Ok(())
}
