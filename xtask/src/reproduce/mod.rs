//! `cargo xtask reproduce`: run the experiments, write `metrics.json`, `REPORT.md`, plots,
//! `timings.json` and the resolved configs.
mod experiment;
mod plots;
mod report;

use crate::ranks::say;
use anyhow::{bail, Context, Result};
use experiment::{Budget, Experiment};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tandem::run::RunData;
use tandem_data::mtfl::Mtfl;
use tandem_train::CheckpointConfig;

/// Arguments of `cargo xtask reproduce`.
#[derive(clap::Args, Debug, Clone)]
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
    /// Seed of the runs (data, initialisation, shuffling); default: each experiment's own.
    #[arg(long)]
    seed: Option<u64>,
    /// Train every run on this device: cpu (default: each variant's `train.device`), cuda,
    /// cuda:N, metal. A GPU needs `--features cuda` (or `metal`) on xtask.
    #[arg(long, value_name = "DEVICE")]
    device: Option<tandem::tensor::DeviceSpec>,
    /// Repeat every variant over K seeds (seed, seed+1, ...) and report mean ± std; default:
    /// each experiment's own `seeds` (1 unless its file says otherwise).
    #[arg(long)]
    seeds: Option<u64>,
    /// A folder with real MTFL data (training.txt, optional testing.txt, images).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Run everything twice and fail if any metric differs by a single bit.
    #[arg(long)]
    check_determinism: bool,
    /// Continue an interrupted run whose output folder is DIR: finished variants are taken
    /// from DIR, unfinished ones continue from their latest valid checkpoint.
    #[arg(long, value_name = "DIR")]
    resume: Option<PathBuf>,
    /// Folder of experiment definitions (default: the ones shipped with xtask).
    #[arg(long)]
    experiments: Option<PathBuf>,
    /// Train up to N runs (variants and seeds) at once, each on one share of the cores;
    /// default: one per core. The metrics do not depend on N: every kernel sums in a fixed
    /// order whatever the thread count.
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
    /// Under `mpirun -np R` (feature `mpi`): the ranks every run is spread over. Every rank
    /// runs the suite's runs one after the other, data-parallel; rank 0 alone prints and
    /// writes.
    #[arg(skip)]
    comm: Option<std::sync::Arc<dyn tandem::tensor::Collective>>,
}

fn experiments_dir(args: &Args) -> PathBuf {
    args.experiments
        .clone()
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments"))
}

fn budget(args: &Args) -> Budget {
    match (args.data.is_some(), args.quick) {
        (false, true) => Budget::Quick,
        (false, false) => Budget::Full,
        (true, true) => Budget::RealQuick,
        (true, false) => Budget::Real,
    }
}

/// Loads and checks every experiment to run, before any training starts.
fn load_experiments(args: &Args) -> Result<Vec<Experiment>> {
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
    if args.seeds == Some(0) {
        bail!("--seeds must be at least 1");
    }
    let dir = experiments_dir(args);
    let mut experiments: Vec<Experiment> = names
        .iter()
        .map(|n| experiment::load(&dir, n, budget(args)))
        .collect::<Result<_>>()?;
    if let Some(seed) = args.seed {
        for v in experiments.iter_mut().flat_map(|e| e.variants.iter_mut()) {
            v.config.train.seed = seed;
        }
    }
    if let Some(device) = args.device {
        for v in experiments.iter_mut().flat_map(|e| e.variants.iter_mut()) {
            v.config.train.device = device;
        }
    }
    Ok(experiments)
}

/// Parses and checks the MTFL folder (building its cache) for a model of the experiments'
/// input size, so a malformed annotation line fails at once, naming its file, line and field.
fn open_data(dir: &Path, experiments: &[Experiment]) -> Result<Mtfl> {
    let mut sizes = experiments
        .iter()
        .flat_map(|e| &e.variants)
        .map(|v| v.config.input_size().unwrap_or(40));
    let size = sizes.next().unwrap_or(40);
    if sizes.any(|s| s != size) {
        bail!("every variant must use one model.input_size with real data");
    }
    RunData::open_mtfl(dir, size).map_err(|e| anyhow::anyhow!("error: {e}"))
}

/// Runs `cargo xtask reproduce`.
pub fn run(mut args: Args) -> Result<()> {
    let started = Instant::now();
    args.comm = crate::ranks::collective()?;
    let writer = args.comm.as_ref().is_none_or(|c| c.rank() == 0);
    if let Some(c) = &args.comm {
        say!(
            "data-parallel over {} MPI ranks: the runs go one at a time",
            c.ranks()
        );
    }
    let experiments = load_experiments(&args)?;
    let mut timings = report::Timings::default();
    let mtfl = match &args.data {
        Some(d) => {
            let t = Instant::now();
            let m = open_data(d, &experiments)?;
            timings.decode_seconds = t.elapsed().as_secs_f64();
            say!(
                "loaded MTFL from {} in {:.1} s",
                d.display(),
                timings.decode_seconds
            );
            Some(m)
        }
        None => None,
    };
    if let (Some(from), true) = (&args.resume, writer) {
        copy_runs(from, &args.out)?;
    }
    if let Some(c) = &args.comm {
        // Every rank reads the copied results only once rank 0 has copied them.
        c.gather(&[])?;
    }
    let results = run_all(&args, &experiments, mtfl.as_ref(), &args.out, &mut timings)?;
    if args.check_determinism {
        say!("== determinism check: running everything again");
        let again_dir = args.out.join("determinism-check");
        let mut t2 = report::Timings::default();
        let fresh = Args {
            resume: None,
            ..args.clone()
        };
        let again = run_all(&fresh, &experiments, mtfl.as_ref(), &again_dir, &mut t2)?;
        if again.json()? != results.json()? {
            bail!(
                "determinism check failed: {} and {} differ",
                args.out.join("metrics.json").display(),
                again_dir.join("metrics.json").display()
            );
        }
        say!("determinism check passed: both runs gave byte-identical metrics.json");
    }
    timings.total_seconds = started.elapsed().as_secs_f64();
    if !writer {
        return Ok(());
    }
    timings.write(&args.out)?;
    say!(
        "wrote {} and {} in {:.1} s",
        args.out.join("metrics.json").display(),
        args.out.join("REPORT.md").display(),
        timings.total_seconds
    );
    Ok(())
}

/// One training run of the suite: a variant of an experiment with one seed.
struct Job {
    /// Index of the experiment and of its variant.
    at: (usize, usize),
    cfg: tandem::config::RunConfig,
    label: String,
    run_dir: PathBuf,
}

/// What a finished job hands back: its result and where its time went.
struct Done {
    run: report::SeedRun,
    timing: report::VariantTiming,
}

fn run_all(
    args: &Args,
    experiments: &[Experiment],
    mtfl: Option<&Mtfl>,
    out: &Path,
    timings: &mut report::Timings,
) -> Result<report::Results> {
    let writer = !crate::ranks::quiet();
    if writer {
        std::fs::create_dir_all(out.join("config"))
            .with_context(|| format!("creating {}", out.display()))?;
    }
    // Every run of the suite, in report order; finished ones (with --resume) are read back.
    let mut jobs = Vec::new();
    let mut done: Vec<Option<Done>> = Vec::new();
    for (ei, e) in experiments.iter().enumerate() {
        say!("== {} ({} variants): {}", e.name, e.variants.len(), e.title);
        for (vi, v) in e.variants.iter().enumerate() {
            let cfg_path = out
                .join("config")
                .join(format!("{}.{}.toml", e.name, v.key));
            if writer {
                std::fs::write(&cfg_path, v.config.to_toml()?)
                    .with_context(|| format!("writing {}", cfg_path.display()))?;
            }
            let seeds = args.seeds.or(v.seeds).unwrap_or(e.seeds);
            for k in 0..seeds {
                let mut cfg = v.config.clone();
                cfg.train.seed = cfg.train.seed.wrapping_add(k);
                let label = if seeds > 1 {
                    format!("{}/{} seed {}", e.name, v.key, cfg.train.seed)
                } else {
                    format!("{}/{}", e.name, v.key)
                };
                let run_dir = out
                    .join("runs")
                    .join(&e.name)
                    .join(&v.key)
                    .join(format!("seed-{}", cfg.train.seed));
                let earlier = match args.resume {
                    Some(_) => read_result(&run_dir.join("result.json"))?,
                    None => None,
                };
                if earlier.is_some() {
                    say!(
                        "   {label}: finished earlier, taken from {}",
                        run_dir.join("result.json").display()
                    );
                }
                done.push(earlier.map(|run| Done {
                    run,
                    timing: report::VariantTiming::default(),
                }));
                jobs.push(Job {
                    at: (ei, vi),
                    cfg,
                    label,
                    run_dir,
                });
            }
        }
    }
    let pending: Vec<usize> = (0..jobs.len()).filter(|&i| done[i].is_none()).collect();
    let fresh = run_jobs(args, &jobs, &pending, mtfl)?;
    for (i, d) in pending.into_iter().zip(fresh) {
        done[i] = Some(d);
    }
    let mut results = report::Results::default();
    let mut finished = jobs.iter().zip(done).peekable();
    for (ei, e) in experiments.iter().enumerate() {
        for (vi, v) in e.variants.iter().enumerate() {
            let mut vt = report::VariantTiming::default();
            let mut runs = Vec::new();
            while let Some((_, d)) = finished.next_if(|(j, _)| j.at == (ei, vi)) {
                let d = d.context("a run of the suite did not finish")?;
                vt.add(&d.timing);
                runs.push(d.run);
            }
            timings.training.add(&vt);
            results.set_step_seconds(format!("{}/{}", e.name, v.key), vt.step_seconds);
            timings.variants.insert(format!("{}/{}", e.name, v.key), vt);
            results.add(e, &v.key, runs);
        }
    }
    let majority = match (mtfl, experiments.first().and_then(|e| e.variants.first())) {
        (Some(m), Some(v)) => {
            let data = RunData::mtfl(m, &v.config, v.config.train.seed)?;
            Some(majority_errors(
                data.test.as_ref().unwrap_or(&data.val).as_ref(),
            )?)
        }
        _ => None,
    };
    if writer {
        results.write(out, experiments, majority.as_deref())?;
    }
    Ok(results)
}

/// Trains `jobs[i]` for every `i` in `pending`, up to `args.jobs` at once, and returns their
/// results in the order of `pending`. With more than one job at a time each run gets its own
/// rayon pool with an equal share of the cores; the first error stops the taking of new jobs
/// and is returned once the running ones end.
fn run_jobs(
    args: &Args,
    jobs: &[Job],
    pending: &[usize],
    mtfl: Option<&Mtfl>,
) -> Result<Vec<Done>> {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Mutex;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let workers = match args.comm {
        // Every rank takes part in every run: one run at a time.
        Some(_) => 1,
        None => args.jobs.unwrap_or(cores).max(1).min(pending.len().max(1)),
    };
    if workers == 1 {
        return pending
            .iter()
            .map(|&i| run_job(args, &jobs[i], mtfl))
            .collect();
    }
    let threads = (cores / workers).max(1);
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let slots: Vec<Mutex<Option<Result<Done>>>> =
        pending.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| -> Result<()> {
        let mut handles = Vec::new();
        for _ in 0..workers {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .context("building a thread pool for a run")?;
            let (next, failed, slots) = (&next, &failed, &slots);
            handles.push(scope.spawn(move || {
                pool.install(|| loop {
                    let n = next.fetch_add(1, Ordering::SeqCst);
                    if n >= pending.len() || failed.load(Ordering::SeqCst) {
                        break;
                    }
                    let r = run_job(args, &jobs[pending[n]], mtfl);
                    if r.is_err() {
                        failed.store(true, Ordering::SeqCst);
                    }
                    if let Ok(mut slot) = slots[n].lock() {
                        *slot = Some(r);
                    }
                })
            }));
        }
        for h in handles {
            if h.join().is_err() {
                bail!("a training run panicked");
            }
        }
        Ok(())
    })?;
    let mut out = Vec::with_capacity(pending.len());
    for slot in slots {
        let r = slot
            .into_inner()
            .map_err(|_| anyhow::anyhow!("a training run panicked"))?;
        match r {
            Some(r) => out.push(r?),
            None => bail!("a run of the suite did not start because an earlier one failed"),
        }
    }
    Ok(out)
}

/// Trains one run of the suite (resuming from its checkpoints with --resume), writes its
/// `result.json` and drops its checkpoints.
fn run_job(args: &Args, job: &Job, mtfl: Option<&Mtfl>) -> Result<Done> {
    let (cfg, label, run_dir) = (&job.cfg, &job.label, &job.run_dir);
    let data = match mtfl {
        Some(m) => RunData::mtfl(m, cfg, cfg.train.seed)?,
        None => RunData::synthetic(cfg, cfg.train.seed)?,
    };
    let epochs = cfg.train.epochs;
    let t = Instant::now();
    let options = tandem::run::RunOptions {
        checkpoints: Some(
            CheckpointConfig::new(run_dir.join("checkpoints"))
                .keep_last(2)
                .fallback_to_previous(true),
        ),
        resume: args.resume.is_some(),
        collective: args.comm.clone(),
        ..Default::default()
    };
    let progress_label = label.clone();
    let device = cfg.train.device.open()?;
    let out = tandem::run::train_with(cfg, &data, &device, &options, move |r| {
        say!(
            "{}",
            report::epoch_line(&progress_label, epochs, r, t.elapsed().as_secs_f64())
        );
    })
    .with_context(|| format!("training {label}"))?;
    say!(
        "   {label} done: best epoch {}, {}",
        out.report.best_epoch,
        report::summary(&out.report)
    );
    let mut timing = report::VariantTiming::default();
    timing.add_fit(&out.timing);
    timing.seconds = t.elapsed().as_secs_f64();
    let run = report::SeedRun {
        report: out.report,
        test: out.test,
        evals: out.evals.into_iter().collect(),
        parameters: Some(out.parameters),
    };
    if crate::ranks::quiet() {
        return Ok(Done { run, timing });
    }
    let result_file = run_dir.join("result.json");
    write_result(&result_file, &run)?;
    // The result is all a later --resume needs: drop the bulky checkpoints.
    let _ = std::fs::remove_dir_all(run_dir.join("checkpoints"));
    Ok(Done { run, timing })
}

/// A finished variant's result, if `path` holds one.
fn read_result(path: &Path) -> Result<Option<report::SeedRun>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(
            serde_json::from_slice(&bytes)
                .with_context(|| format!("reading {}", path.display()))?,
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Writes a finished variant's result atomically.
fn write_result(path: &Path, run: &report::SeedRun) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    tandem::tensor::checkpoint::write_atomic(path, &serde_json::to_vec(run)?)
        .with_context(|| format!("writing {}", path.display()))
}

/// Copies `from/runs` into `to/runs` (results and checkpoints of an earlier run) unless the two
/// folders are the same.
fn copy_runs(from: &Path, to: &Path) -> Result<()> {
    let src = from.join("runs");
    if !src.exists() {
        bail!(
            "--resume {}: no earlier run there (no runs/ folder)",
            from.display()
        );
    }
    let same = match (from.canonicalize(), to.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same {
        return Ok(());
    }
    fn copy_dir(a: &Path, b: &Path) -> Result<()> {
        std::fs::create_dir_all(b)?;
        for entry in std::fs::read_dir(a)? {
            let entry = entry?;
            let target = b.join(entry.file_name());
            if entry.file_type()?.is_dir() {
                copy_dir(&entry.path(), &target)?;
            } else {
                std::fs::copy(entry.path(), &target)?;
            }
        }
        Ok(())
    }
    copy_dir(&src, &to.join("runs")).with_context(|| format!("copying {}", src.display()))
}

/// The error (%) of always answering the most frequent class, per classification task of
/// `data` (labelled samples only), in task order.
fn majority_errors(data: &dyn tandem::data::Dataset) -> Result<Vec<(String, f64)>> {
    let mut counts: Vec<(String, BTreeMap<u32, usize>)> = Vec::new();
    for i in 0..data.len() {
        for (task, label) in data.get(i)?.labels.iter() {
            if let tandem::data::Label::Class(c) = label {
                let k = match counts.iter().position(|(t, _)| t == task) {
                    Some(k) => k,
                    None => {
                        counts.push((task.to_string(), BTreeMap::new()));
                        counts.len() - 1
                    }
                };
                *counts[k].1.entry(*c).or_default() += 1;
            }
        }
    }
    Ok(counts
        .into_iter()
        .map(|(t, c)| {
            let total: usize = c.values().sum();
            let top = c.values().copied().max().unwrap_or(0);
            (t, 100.0 * (1.0 - top as f64 / total.max(1) as f64))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Samples whose `smile` labels are given, one per sample (`None`: missing).
    struct Labels(Vec<Option<u32>>);

    impl tandem::data::Dataset for Labels {
        fn len(&self) -> usize {
            self.0.len()
        }
        fn get(&self, i: usize) -> tandem::data::Result<tandem::data::Sample> {
            use tandem::data::{GrayImage, Label, Sample};
            let mut labels = tandem::tensor::TaskMap::new();
            labels.insert("landmarks", Label::Points(vec![0.5; 10]));
            labels.insert("smile", self.0[i].map_or(Label::Missing, Label::Class));
            Ok(Sample {
                image: GrayImage::new(4, 4),
                labels,
            })
        }
    }

    #[test]
    fn majority_error_counts_labelled_samples_only() {
        let data = Labels(vec![Some(1), Some(1), Some(0), None, Some(1)]);
        let m = majority_errors(&data).unwrap();
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].0, "smile");
        assert!((m[0].1 - 25.0).abs() < 1e-9, "{m:?}");
    }

    /// Training runs side by side (`--jobs`) gives byte-identical metrics to one at a time.
    #[test]
    fn parallel_jobs_give_the_serial_metrics() {
        let text = r#"
name = "aux_vs_single"
title = "t"
claim = "c"
seeds = 2
[base]
tasks = ["landmarks", "smile"]
sharing = { kind = "hard" }
weighting = { kind = "static", aux = 0.1 }
[base.model]
channels = [4, 4, 4, 4]
feature_dim = 8
[base.train]
epochs = 2
batch_size = 16
seed = 3
[base.data]
train_size = 48
val_size = 16
[[variant]]
key = "a"
[[variant]]
key = "b"
tasks = ["landmarks"]
sharing = { kind = "independent" }
weighting = { kind = "equal" }
"#;
        let e = experiment::parse(text, "test", Budget::Quick).unwrap();
        let root = std::env::temp_dir().join(format!("tandem-xtask-jobs-{}", std::process::id()));
        let metrics = |jobs: usize| {
            let out = root.join(format!("jobs-{jobs}"));
            let args = Args {
                quick: true,
                only: vec![],
                out: out.clone(),
                seed: None,
                device: None,
                seeds: None,
                data: None,
                check_determinism: false,
                resume: None,
                experiments: None,
                jobs: Some(jobs),
                comm: None,
            };
            let mut t = report::Timings::default();
            let r = run_all(&args, std::slice::from_ref(&e), None, &out, &mut t).unwrap();
            assert_eq!(t.variants.len(), 2);
            r.json().unwrap()
        };
        let serial = metrics(1);
        let parallel = metrics(3);
        let _ = std::fs::remove_dir_all(&root);
        assert!(serial.contains("\"b\""), "{serial}");
        assert_eq!(serial, parallel);
    }

    /// Every shipped experiment resolves to valid configurations in every budget.
    #[test]
    fn shipped_experiments_are_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
        for name in experiment::ALL {
            for b in [Budget::Quick, Budget::Full, Budget::RealQuick, Budget::Real] {
                let e =
                    experiment::load(&dir, name, b).unwrap_or_else(|e| panic!("{name} {b:?}: {e}"));
                assert!(!e.variants.is_empty());
            }
        }
    }
}
