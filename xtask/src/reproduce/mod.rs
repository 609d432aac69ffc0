//! `cargo xtask reproduce`: run the experiments, write `metrics.json`, `REPORT.md`,
//! `timings.json` and the resolved configs.
mod experiment;
mod report;

use anyhow::{bail, Context, Result};
use candle_core::Device;
use experiment::{Budget, Experiment};
use std::path::{Path, PathBuf};
use std::time::Instant;
use tandem::run::RunData;

/// Arguments of `cargo xtask reproduce`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Small budgets (minutes on a laptop CPU).
    #[arg(long)]
    quick: bool,
    /// Run only these experiments (comma separated).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Output folder.
    #[arg(long, default_value = "results")]
    out: PathBuf,
    /// Seed of the runs (data, initialisation, shuffling).
    #[arg(long)]
    seed: Option<u64>,
    /// A folder with real MTFL data (training.txt, optional testing.txt, images).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Folder of experiment definitions (default: the ones shipped with xtask).
    #[arg(long)]
    experiments: Option<PathBuf>,
}

fn experiments_dir(args: &Args) -> PathBuf {
    args.experiments
        .clone()
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments"))
}

/// Runs `cargo xtask reproduce`.
pub fn run(args: Args) -> Result<()> {
    let started = Instant::now();
    let budget = match (args.data.is_some(), args.quick) {
        (false, true) => Budget::Quick,
        (false, false) => Budget::Full,
        (true, true) => Budget::RealQuick,
        (true, false) => Budget::Real,
    };
    let names: Vec<String> = if args.only.is_empty() {
        experiment::ALL.iter().map(|s| s.to_string()).collect()
    } else {
        for n in &args.only {
            if !experiment::ALL.contains(&n.as_str()) {
                bail!(
                    "unknown experiment {n:?}; known: {}",
                    experiment::ALL.join(", ")
                );
            }
        }
        args.only.clone()
    };
    // Load and validate everything before any training starts.
    let dir = experiments_dir(&args);
    let mut experiments: Vec<Experiment> = names
        .iter()
        .map(|n| experiment::load(&dir, n, budget))
        .collect::<Result<_>>()?;
    if let Some(seed) = args.seed {
        for e in &mut experiments {
            for v in &mut e.variants {
                v.config.train.seed = seed;
            }
        }
    }
    // Real data is parsed and checked (and its cache built) before any training starts, so a
    // malformed annotation line fails at once, naming its file, line and field.
    let mtfl = match &args.data {
        Some(d) => {
            let size = experiments
                .first()
                .and_then(|e| e.variants.first())
                .map(|v| v.config.model.input_size)
                .unwrap_or(40);
            if let Some(v) = experiments
                .iter()
                .flat_map(|e| &e.variants)
                .find(|v| v.config.model.input_size != size)
            {
                bail!(
                    "variant {} uses input_size {}; real data is prepared for one size ({size})",
                    v.key,
                    v.config.model.input_size
                );
            }
            let t = Instant::now();
            let m = RunData::open_mtfl(d, size)
                .map_err(|e| anyhow::anyhow!("error: {e}"))?;
            println!("loaded MTFL from {} in {:.1} s", d.display(), t.elapsed().as_secs_f64());
            Some(m)
        }
        None => None,
    };
    std::fs::create_dir_all(args.out.join("config"))
        .with_context(|| format!("creating {}", args.out.display()))?;
    let device = Device::Cpu;
    let mut results = report::Results::default();
    let mut timings = report::Timings::default();
    for e in &experiments {
        println!("== {} ({} variants): {}", e.name, e.variants.len(), e.title);
        for v in &e.variants {
            let cfg_path = args
                .out
                .join("config")
                .join(format!("{}.{}.toml", e.name, v.key));
            std::fs::write(&cfg_path, v.config.to_toml()?)
                .with_context(|| format!("writing {}", cfg_path.display()))?;
            let t0 = Instant::now();
            let data = match &mtfl {
                Some(m) => RunData::mtfl(m, &v.config, v.config.train.seed)?,
                None => RunData::synthetic(&v.config, v.config.train.seed)?,
            };
            let label = format!("{}/{}", e.name, v.key);
            let epochs = v.config.train.epochs;
            let progress_t0 = Instant::now();
            let out = tandem::run::train(&v.config, &data, &device, move |r| {
                println!(
                    "{}",
                    report::epoch_line(&label, epochs, r, progress_t0.elapsed().as_secs_f64())
                );
            })?;
            let secs = t0.elapsed().as_secs_f64();
            println!(
                "   {}/{} done in {secs:.1} s: best epoch {}, {}",
                e.name,
                v.key,
                out.report.best_epoch,
                report::summary(&out.report)
            );
            timings.add(&e.name, &v.key, secs);
            results.add(e, &v.key, out.report, out.test);
        }
    }
    let total = started.elapsed().as_secs_f64();
    timings.total_seconds = total;
    results.write(&args.out, &experiments)?;
    timings.write(&args.out)?;
    println!(
        "wrote {} and {} in {total:.1} s",
        args.out.join("metrics.json").display(),
        args.out.join("REPORT.md").display()
    );
    Ok(())
}
