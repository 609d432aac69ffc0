//! `cargo xtask bench --mpi R`: samples/s of tandem's training step data-parallel over R MPI
//! ranks of one thread each, against one process of one thread, at batch 64 and 256.
//!
//! The orchestrator (any build) alternates, for `--rounds` rounds, one process
//! (`xtask bench-parallel`) and `mpirun -np R xtask bench-parallel` (an xtask built with the
//! `mpi` feature: `cargo run --release -p xtask --features mpi -- bench --mpi 2`), every
//! process with `RAYON_NUM_THREADS=1` and `CANDLE_NUM_THREADS=1`, and reports the median of
//! each and their ratio. Each run trains the 5-task hard-sharing TCDCN on SynthFaces through
//! [`tandem::run::train_with`] — the trainer's own step, the ranks' exchanges included — once
//! to warm up and once timed; samples/s is the global batch times the steps over rank 0's
//! step time ([`tandem::train::FitTiming::step_seconds`]: forward, backward, exchanges,
//! update).
use anyhow::{bail, Context, Result};
use serde_json::{json, Map, Value};
use std::process::Command;
use std::sync::Arc;

/// Arguments of the hidden `cargo xtask bench-parallel` (one run, JSON on stdout of rank 0).
#[derive(Debug, clap::Args)]
pub struct ParallelArgs {
    /// Comma-separated global batch sizes.
    #[arg(long, default_value = "64,256")]
    pub batches: String,
    /// Timed optimizer steps per batch size.
    #[arg(long, default_value_t = 12)]
    pub steps: usize,
}

/// Rank 0's samples/s of `steps` steps at global batch `batch`.
fn timed(
    batch: usize,
    steps: usize,
    collective: &Option<Arc<dyn tandem::tensor::Collective>>,
) -> Result<f64> {
    let text = format!(
        "tasks = [\"landmarks\", \"gender\", \"smile\", \"glasses\", \"pose\"]\n\
         sharing = {{ kind = \"hard\" }}\nweighting = {{ kind = \"equal\" }}\n\
         [train]\nepochs = 1\nbatch_size = {batch}\neval_batch_size = 256\nseed = 7\n\
         [data]\ntrain_size = {}\nval_size = 16\n",
        batch * steps
    );
    let cfg = tandem::RunConfig::from_toml(&text, "bench-parallel")?;
    let data = tandem::run::RunData::synthetic(&cfg, cfg.train.seed)?;
    let options = tandem::run::RunOptions {
        collective: collective.clone(),
        ..Default::default()
    };
    let out = tandem::run::train_with(&cfg, &data, &candle_core::Device::Cpu, &options, |_| {})?;
    Ok((batch * steps) as f64 / out.timing.step_seconds.max(1e-9))
}

/// `cargo xtask bench-parallel`: one run (see the module docs).
pub fn run_one(args: &ParallelArgs) -> Result<()> {
    let c = crate::ranks::collective()?;
    let rank = c.as_ref().map_or(0, |c| c.rank());
    let ranks = c.as_ref().map_or(1, |c| c.ranks());
    let mut out = Map::new();
    out.insert("ranks".into(), json!(ranks));
    for b in args.batches.split(',') {
        let b: usize = b.trim().parse().with_context(|| format!("batch {b}"))?;
        timed(b, 3, &c)?; // warm-up
        out.insert(format!("train_b{b}"), json!(timed(b, args.steps, &c)?));
    }
    if rank == 0 {
        println!("{}", Value::Object(out));
    }
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Runs one child and parses its JSON line.
fn child(mut cmd: Command) -> Result<Map<String, Value>> {
    cmd.env("RAYON_NUM_THREADS", "1")
        .env("CANDLE_NUM_THREADS", "1");
    let out = cmd
        .output()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .rev()
                .take(8)
                .collect::<Vec<_>>()
                .join(" | ")
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .with_context(|| format!("{cmd:?} printed no result"))?;
    match serde_json::from_str(line)? {
        Value::Object(m) => Ok(m),
        _ => bail!("{cmd:?}: not a JSON object"),
    }
}

/// `cargo xtask bench --mpi R`.
pub fn bench(
    ranks: usize,
    rounds: usize,
    steps: usize,
    json_out: Option<&std::path::Path>,
) -> Result<()> {
    if !cfg!(feature = "mpi") {
        bail!(
            "`bench --mpi` needs an xtask built with the mpi feature: \
             cargo run --release -p xtask --features mpi -- bench --mpi {ranks}"
        );
    }
    if ranks < 2 {
        bail!("--mpi {ranks}: give at least 2 ranks");
    }
    let exe = std::env::current_exe()?;
    let steps = steps.to_string();
    let mut one: Map<String, Value> = Map::new();
    let mut many: Map<String, Value> = Map::new();
    let mut samples: [Vec<Vec<f64>>; 2] = [vec![Vec::new(); 2], vec![Vec::new(); 2]];
    for round in 0..rounds.max(1) {
        let mut single = Command::new(&exe);
        single.args(["bench-parallel", "--steps", &steps]);
        let mut mpi = Command::new("mpirun");
        mpi.args([
            "--allow-run-as-root",
            "--oversubscribe",
            "-np",
            &ranks.to_string(),
        ])
        .arg(&exe)
        .args(["bench-parallel", "--steps", &steps]);
        for (side, cmd) in [(0, single), (1, mpi)] {
            let m = child(cmd)?;
            for (i, key) in ["train_b64", "train_b256"].iter().enumerate() {
                let v = m.get(*key).and_then(Value::as_f64).unwrap_or(f64::NAN);
                samples[side][i].push(v);
            }
        }
        eprintln!(
            "round {}: one rank {:.0} / {:.0} samples/s, {ranks} ranks {:.0} / {:.0} (batch 64 / 256)",
            round + 1,
            samples[0][0][round],
            samples[0][1][round],
            samples[1][0][round],
            samples[1][1][round]
        );
    }
    println!("| batch | 1 rank (samples/s) | {ranks} ranks (samples/s) | speed-up |");
    println!("|---:|---:|---:|---:|");
    let mut out = Map::new();
    for (i, b) in [64, 256].iter().enumerate() {
        let (a, m) = (median(samples[0][i].clone()), median(samples[1][i].clone()));
        println!("| {b} | {a:.0} | {m:.0} | {:.2}× |", m / a);
        one.insert(format!("train_b{b}"), json!(a));
        many.insert(format!("train_b{b}"), json!(m));
        out.insert(format!("mpi{ranks}_b{b}_speedup"), json!(m / a));
    }
    out.insert("one_rank".into(), Value::Object(one));
    out.insert(format!("ranks_{ranks}"), Value::Object(many));
    if let Some(p) = json_out {
        std::fs::write(p, serde_json::to_string_pretty(&Value::Object(out))?)?;
    }
    Ok(())
}
