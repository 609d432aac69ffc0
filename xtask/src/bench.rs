//! `cargo xtask bench`: training and inference speed of the TCDCN network, tandem vs PyTorch.
//!
//! The orchestrator runs `xtask bench-step` (tandem, a child process so that its peak RSS is
//! its own) and `benches/pytorch/tcdcn_bench.py` alternately, A B A B, for `--rounds` rounds,
//! both on `--threads` threads, and reports the median samples/s of each for a training step at
//! batch 64 and 256 and for inference at batch 256, the ratio tandem / PyTorch, and the peak
//! RSS. Without Python or torch it reports tandem's figures alone.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device};
use candle_nn::{Optimizer, VarBuilder, VarMap};
use serde_json::{json, Map, Value};
use tandem_tensor::ops::Backend;

#[path = "../../crates/tandem-tensor/benches/tcdcn/mod.rs"]
mod net;

/// The configurations timed, in order: `{train,infer}_b{batch}`.
const CONFIGS: [&str; 3] = ["train_b64", "train_b256", "infer_b256"];

/// Arguments of `cargo xtask bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Rounds of (tandem, PyTorch) runs; medians are reported.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Seconds each configuration is timed for, per run.
    #[arg(long, default_value_t = 3.0)]
    pub seconds: f64,
    /// Threads for both sides.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// The Python interpreter that has torch.
    #[arg(long, default_value = "python3")]
    pub python: String,
    /// Time candle's own ops instead of tandem's kernels.
    #[arg(long)]
    pub candle_ops: bool,
    /// Also write the medians as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Run tandem without its malloc tuning (`TANDEM_MALLOC_TUNING=0`).
    #[arg(long)]
    pub no_malloc_tuning: bool,
    /// Time the training step of every weighting method instead (5 tasks, batch 64; JSON keys
    /// `weighting_<method>_step_ms` and `weighting_<method>_ratio`, relative to `equal`).
    #[arg(long)]
    pub weightings: bool,
    /// Time the training step with every regulariser option of the trunk instead (5 tasks,
    /// hard sharing, batch 64; JSON keys `regulariser_<option>_step_ms` and
    /// `regulariser_<option>_ratio`, relative to the trunk without one).
    #[arg(long, conflicts_with = "weightings")]
    pub regularisers: bool,
    /// Time the training step of every sharing architecture instead (5 tasks, `equal`
    /// weighting, batch 64; JSON keys `sharing_<kind>_step_ms`, `sharing_<kind>_ratio`,
    /// relative to `hard`, and `sharing_<kind>_parameters`).
    #[arg(long, conflicts_with_all = ["weightings", "regularisers"])]
    pub sharing: bool,
    /// Time the training step data-parallel over this many MPI ranks of one thread against one
    /// process of one thread, at batch 64 and 256 (needs an xtask built with the `mpi`
    /// feature and `mpirun`; see docs/performance.md).
    #[arg(long, value_name = "R", conflicts_with_all = ["weightings", "regularisers", "sharing"])]
    pub mpi: Option<usize>,
    /// Optimizer steps per timed run with `--weightings`, `--regularisers`, `--sharing` or
    /// `--mpi`.
    #[arg(long, default_value_t = 8)]
    pub steps: usize,
    /// Give PyTorch the same glibc malloc settings tandem applies to itself (mmap threshold
    /// 32 MiB, trim threshold 256 MiB, through `GLIBC_TUNABLES`).
    #[arg(long)]
    pub pytorch_malloc_tuning: bool,
}

/// Arguments of the hidden `cargo xtask bench-step` (one tandem run, JSON on stdout).
#[derive(Debug, clap::Args)]
pub struct StepArgs {
    /// Seconds each configuration is timed for.
    #[arg(long, default_value_t = 3.0)]
    pub seconds: f64,
    /// Comma-separated configurations, e.g. `train_b64,infer_b256`.
    #[arg(long, default_value = "train_b64,train_b256,infer_b256")]
    pub configs: String,
    /// Time candle's own ops instead of tandem's kernels.
    #[arg(long)]
    pub candle_ops: bool,
    /// Run bias, activation and pooling as separate ops instead of the fused one.
    #[arg(long)]
    pub no_fuse: bool,
}

/// Peak resident set size of this process in MB (`VmHWM`), 0 where unknown.
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Runs `step` 3 times to warm up, then for at least `seconds` (and 3 steps): samples/s.
fn measure(samples: usize, seconds: f64, mut step: impl FnMut() -> Result<()>) -> Result<f64> {
    for _ in 0..3 {
        step()?;
    }
    let (mut n, start) = (0usize, Instant::now());
    loop {
        step()?;
        n += 1;
        let el = start.elapsed().as_secs_f64();
        if el >= seconds && n >= 3 {
            return Ok((samples * n) as f64 / el);
        }
    }
}

/// `cargo xtask bench-step`: times tandem's configurations in this process.
pub fn step(args: &StepArgs) -> Result<()> {
    let dev = Device::Cpu;
    let backend = if args.candle_ops {
        Backend::Candle
    } else {
        Backend::Tandem
    };
    let vars = VarMap::new();
    let vb = VarBuilder::from_varmap(&vars, DType::F32, &dev);
    let model = net::Net::new(vb, backend, !args.no_fuse)?;
    let mut opt = candle_nn::AdamW::new_lr(vars.all_vars(), 1e-3)?;
    let mut out = Map::new();
    for cfg in args.configs.split(',') {
        let (mode, b) = cfg
            .split_once("_b")
            .with_context(|| format!("bad configuration {cfg}"))?;
        let b: usize = b.parse()?;
        let batch = net::Batch::random(b, &dev)?;
        let rate = match mode {
            "train" => measure(b, args.seconds, || {
                let loss = net::loss(&model.forward(&batch.x)?, &batch)?;
                opt.backward_step(&loss)?;
                Ok(())
            })?,
            "infer" => measure(b, args.seconds, || {
                model.forward(&batch.x)?;
                Ok(())
            })?,
            _ => bail!("bad configuration {cfg}"),
        };
        out.insert(cfg.to_string(), json!(rate));
    }
    out.insert("peak_rss_mb".into(), json!(peak_rss_mb()));
    println!("{}", Value::Object(out));
    Ok(())
}

/// Runs a child that prints one JSON object on its last stdout line.
fn run_child(cmd: &mut Command) -> Result<Value> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).with_context(|| format!("parsing {last:?}"))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => 0.5 * (v[n / 2 - 1] + v[n / 2]),
    }
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../benches/pytorch/tcdcn_bench.py")
}

/// Whether `python` can import torch; the reason when not.
fn torch_available(python: &str) -> std::result::Result<(), String> {
    match Command::new(python).args(["-c", "import torch"]).output() {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(format!(
            "{python} cannot import torch: {}",
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .last()
                .unwrap_or("")
        )),
        Err(e) => Err(format!("{python} not found: {e}")),
    }
}

/// `cargo xtask bench`.
pub fn bench(args: &BenchArgs) -> Result<()> {
    if let Some(r) = args.mpi {
        return crate::bench_parallel::bench(
            r,
            args.rounds,
            args.steps.max(4),
            args.json.as_deref(),
        );
    }
    if args.weightings || args.regularisers || args.sharing {
        let (steps, rounds) = (args.steps.max(1), args.rounds.max(1));
        let report = if args.weightings {
            crate::bench_weighting::run(steps, rounds)?
        } else if args.sharing {
            crate::bench_weighting::run_sharing(steps, rounds)?
        } else {
            crate::bench_weighting::run_regularisers(steps, rounds)?
        };
        if let Some(path) = &args.json {
            std::fs::write(path, serde_json::to_string_pretty(&Value::Object(report))?)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        return Ok(());
    }
    let exe = std::env::current_exe()?;
    let torch = torch_available(&args.python);
    if let Err(why) = &torch {
        println!("PyTorch reference skipped: {why}");
    }
    let threads = args.threads.to_string();
    let seconds = args.seconds.to_string();
    let mut runs: [Vec<Value>; 2] = [Vec::new(), Vec::new()];
    for round in 0..args.rounds {
        let mut cmd = Command::new(&exe);
        // candle's element-wise ops use a spin-waiting barrier pool; on two shared cores it
        // costs more than it saves, so they run on the calling thread. tandem's kernels and
        // candle's GEMMs use the rayon pool of `threads` threads.
        cmd.args(["bench-step", "--seconds", &seconds])
            .env("RAYON_NUM_THREADS", &threads)
            .env("CANDLE_NUM_THREADS", "1");
        if args.candle_ops {
            cmd.arg("--candle-ops");
        }
        if args.no_malloc_tuning {
            cmd.env("TANDEM_MALLOC_TUNING", "0");
        }
        let t = run_child(&mut cmd)?;
        println!("round {} tandem  {t}", round + 1);
        runs[0].push(t);
        if torch.is_ok() {
            let mut py = Command::new(&args.python);
            py.arg(script())
                .args(["--threads", &threads, "--seconds", &seconds])
                .env("OMP_NUM_THREADS", &threads)
                .env("MKL_NUM_THREADS", &threads);
            if args.pytorch_malloc_tuning {
                use tandem_tensor::runtime::{MMAP_THRESHOLD, TRIM_THRESHOLD};
                py.env(
                    "GLIBC_TUNABLES",
                    format!(
                        "glibc.malloc.mmap_threshold={MMAP_THRESHOLD}:\
                         glibc.malloc.trim_threshold={TRIM_THRESHOLD}"
                    ),
                );
            }
            let p = run_child(&mut py)?;
            println!("round {} pytorch {p}", round + 1);
            runs[1].push(p);
        }
    }
    let med = |side: usize, key: &str| -> Option<f64> {
        let v: Vec<f64> = runs[side].iter().filter_map(|r| r[key].as_f64()).collect();
        (!v.is_empty()).then(|| median(v))
    };
    let mut report = Map::new();
    println!(
        "\n{:<12} {:>14} {:>14} {:>8}",
        "samples/s", "tandem", "pytorch", "ratio"
    );
    for cfg in CONFIGS {
        let t = med(0, cfg).unwrap_or(0.0);
        let p = med(1, cfg);
        let ratio = p.map(|p| t / p);
        let show = |v: Option<f64>, prec: usize| v.map_or("-".into(), |v| format!("{v:.prec$}"));
        println!(
            "{cfg:<12} {t:>14.0} {:>14} {:>8}",
            show(p, 0),
            show(ratio, 2)
        );
        report.insert(
            cfg.into(),
            json!({"tandem": t, "pytorch": p.unwrap_or(0.0), "ratio": ratio.unwrap_or(0.0)}),
        );
    }
    let (rt, rp) = (med(0, "peak_rss_mb"), med(1, "peak_rss_mb"));
    println!(
        "{:<12} {:>14.0} {:>14}",
        "peak RSS MB",
        rt.unwrap_or(0.0),
        rp.map_or("-".into(), |v| format!("{v:.0}"))
    );
    report.insert(
        "peak_rss_mb".into(),
        json!({"tandem": rt.unwrap_or(0.0).round(), "pytorch": rp.unwrap_or(0.0).round()}),
    );
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&Value::Object(report))?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
