//! `metrics.json`, `timings.json`, `REPORT.md`, plots and progress lines.
//!
//! `metrics.json` holds results only — no timings, dates, host names or paths — so two runs
//! with one seed compare byte for byte:
//! `{"experiments": {E: {"variants": {V: {"tasks": {T: {metric: value}}, "best_epoch": n,
//! "gap": g, "history": {...}}}}}}` (percentages as numbers). With several seeds every metric
//! is the mean over seeds and a sibling `<metric>_std` holds the standard deviation.
use super::experiment::Experiment;
use super::plots::{self, Series};
use anyhow::{Context, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use tandem::tensor::TaskMap;
use tandem_heads::MetricValues;
use tandem_train::{EpochRecord, History, Report};

/// The outcome of one variant for one seed.
#[derive(Serialize, serde::Deserialize)]
pub struct SeedRun {
    pub report: Report,
    pub test: Option<TaskMap<MetricValues>>,
    /// Further evaluation sets of the selected model (real MTFL: `val_centred`, per folder).
    #[serde(default)]
    pub evals: BTreeMap<String, TaskMap<MetricValues>>,
    /// The network's trainable parameters (results written before the count have none).
    #[serde(default)]
    pub parameters: Option<usize>,
}

impl SeedRun {
    /// Validation minus training landmark loss at the best epoch. The training loss is the
    /// one measured in evaluation mode when the run records it (`train.eval_train`), else the
    /// running loss of the epoch's training steps.
    fn gap(&self) -> Option<f64> {
        let r = self.report.history.epochs.get(self.report.best_epoch)?;
        let train = match &r.train_eval_loss {
            Some(l) => l.get("landmarks")?,
            None => r.train_loss.get("landmarks")?,
        };
        Some(r.val_loss.get("landmarks")? - train)
    }
}

#[derive(Serialize)]
struct VariantResult {
    /// Test metrics when the data has a test split, else validation metrics.
    tasks: BTreeMap<String, MetricValues>,
    /// Validation metrics, when `tasks` holds test metrics.
    #[serde(skip_serializing_if = "Option::is_none")]
    val_tasks: Option<BTreeMap<String, MetricValues>>,
    /// Metrics on further evaluation sets, by set name (real MTFL).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    evals: BTreeMap<String, BTreeMap<String, BTreeMap<String, f64>>>,
    best_epoch: usize,
    /// Trainable parameters of the network.
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<usize>,
    /// Validation minus training landmark loss at the best epoch (mean over seeds).
    #[serde(skip_serializing_if = "Option::is_none")]
    gap: Option<f64>,
    seeds: usize,
    history: History,
}

#[derive(Serialize, Default)]
struct ExperimentResult {
    variants: BTreeMap<String, VariantResult>,
}

/// Results of every experiment run.
#[derive(Serialize, Default)]
pub struct Results {
    experiments: BTreeMap<String, ExperimentResult>,
    /// Seconds spent in optimizer steps per `experiment/variant` (for the report's step-time
    /// column; not in `metrics.json`, which must not depend on the machine's load).
    #[serde(skip)]
    step_seconds: BTreeMap<String, f64>,
}

fn to_map(m: &TaskMap<MetricValues>) -> BTreeMap<String, MetricValues> {
    m.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

/// Mean (and `_std` when more than one) of each metric over seeds.
fn aggregate(runs: &[BTreeMap<String, MetricValues>]) -> BTreeMap<String, MetricValues> {
    let mut out = BTreeMap::new();
    let Some(first) = runs.first() else {
        return out;
    };
    for (task, metrics) in first {
        let mut agg = MetricValues::new();
        for name in metrics.keys() {
            let vals: Vec<f64> = runs
                .iter()
                .filter_map(|r| r.get(task)?.get(name).copied())
                .collect();
            let n = vals.len() as f64;
            let mean = vals.iter().sum::<f64>() / n;
            agg.insert(name.clone(), mean);
            if vals.len() > 1 {
                let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
                agg.insert(format!("{name}_std"), var.sqrt());
            }
        }
        out.insert(task.clone(), agg);
    }
    out
}

impl Results {
    /// Records variant `key` of `e` over one or more seeds (the first seed's history is kept).
    /// Records the optimizer-step seconds of `experiment/variant` (0 when taken from an
    /// earlier run).
    pub fn set_step_seconds(&mut self, label: String, seconds: f64) {
        self.step_seconds.insert(label, seconds);
    }

    pub fn add(&mut self, e: &Experiment, key: &str, runs: Vec<SeedRun>) {
        let Some(first) = runs.first() else { return };
        let val: Vec<_> = runs.iter().map(|r| to_map(&r.report.best)).collect();
        let test: Option<Vec<_>> = runs.iter().map(|r| r.test.as_ref().map(to_map)).collect();
        let (tasks, val_tasks) = match test {
            Some(t) => (aggregate(&t), Some(aggregate(&val))),
            None => (aggregate(&val), None),
        };
        let mut evals = BTreeMap::new();
        for name in first.evals.keys() {
            let sets: Vec<_> = runs
                .iter()
                .filter_map(|r| r.evals.get(name).map(to_map))
                .collect();
            evals.insert(name.clone(), aggregate(&sets));
        }
        let gaps: Vec<f64> = runs.iter().filter_map(SeedRun::gap).collect();
        let gap = (!gaps.is_empty()).then(|| gaps.iter().sum::<f64>() / gaps.len() as f64);
        let result = VariantResult {
            tasks,
            val_tasks,
            evals,
            best_epoch: first.report.best_epoch,
            parameters: first.parameters,
            gap,
            seeds: runs.len(),
            history: first.report.history.clone(),
        };
        self.experiments
            .entry(e.name.clone())
            .or_default()
            .variants
            .insert(key.to_string(), result);
    }

    /// `metrics.json` as text.
    pub fn json(&self) -> Result<String> {
        Ok(serde_json::to_string_pretty(self)? + "\n")
    }

    /// Writes `metrics.json`, `REPORT.md` and the plots into `out`. `real`: the run is on real
    /// MTFL, with the majority-class error of each attribute on the evaluation split.
    pub fn write(
        &self,
        out: &Path,
        experiments: &[Experiment],
        real: Option<&[(String, f64)]>,
    ) -> Result<()> {
        let path = out.join("metrics.json");
        std::fs::write(&path, self.json()?)
            .with_context(|| format!("writing {}", path.display()))?;
        self.plots(out, experiments)?;
        let md = self.markdown(experiments, real);
        let path = out.join("REPORT.md");
        std::fs::write(&path, md).with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }

    fn plots(&self, out: &Path, experiments: &[Experiment]) -> Result<()> {
        let dir = out.join("plots");
        std::fs::create_dir_all(&dir)?;
        for e in experiments {
            let Some(r) = self.experiments.get(&e.name) else {
                continue;
            };
            let curves: Vec<Series> = e
                .variants
                .iter()
                .filter_map(|v| {
                    let h = &r.variants.get(&v.key)?.history;
                    Some(Series {
                        name: v.key.clone(),
                        points: h
                            .epochs
                            .iter()
                            .filter_map(|ep| {
                                Some((
                                    ep.epoch as f64 + 1.0,
                                    *ep.val_metrics.get("landmarks")?.get("nme")?,
                                ))
                            })
                            .collect(),
                    })
                })
                .collect();
            plots::lines(
                &dir.join(format!("{}_val_nme.svg", e.name)),
                &format!("{}: validation landmark NME", e.name),
                "epoch",
                "NME %",
                &curves,
            )?;
            for v in &e.variants {
                let Some(res) = r.variants.get(&v.key) else {
                    continue;
                };
                let tasks: Vec<String> = v.config.tasks.clone();
                if tasks.len() < 2 {
                    continue;
                }
                let series: Vec<Series> = tasks
                    .iter()
                    .map(|t| Series {
                        name: t.clone(),
                        points: res
                            .history
                            .epochs
                            .iter()
                            .filter_map(|ep| Some((ep.epoch as f64 + 1.0, *ep.weights.get(t)?)))
                            .collect(),
                    })
                    .collect();
                plots::lines(
                    &dir.join(format!("{}_{}_weights.svg", e.name, v.key)),
                    &format!("{}/{}: task weights", e.name, v.key),
                    "epoch",
                    "mean weight",
                    &series,
                )?;
            }
            if e.name == "baxter" {
                let mut nme = Vec::new();
                let mut gap = Vec::new();
                for size in ["small", "large"] {
                    let mut pn = Vec::new();
                    let mut pg = Vec::new();
                    for v in e.variants.iter().filter(|v| v.key.ends_with(size)) {
                        let Some(res) = r.variants.get(&v.key) else {
                            continue;
                        };
                        let n = v.config.tasks.len() as f64;
                        if let Some(x) = res.tasks.get("landmarks").and_then(|m| m.get("nme")) {
                            pn.push((n, *x));
                        }
                        if let Some(g) = res.gap {
                            pg.push((n, g));
                        }
                    }
                    nme.push(Series {
                        name: format!("{size} training set"),
                        points: pn,
                    });
                    gap.push(Series {
                        name: format!("{size} training set"),
                        points: pg,
                    });
                }
                plots::lines(
                    &dir.join("baxter_nme.svg"),
                    "Baxter: landmark NME vs. number of tasks",
                    "tasks",
                    "NME %",
                    &nme,
                )?;
                plots::lines(
                    &dir.join("baxter_gap.svg"),
                    "Baxter: generalisation gap vs. number of tasks",
                    "tasks",
                    "val − train landmark loss",
                    &gap,
                )?;
            }
        }
        Ok(())
    }

    fn markdown(&self, experiments: &[Experiment], majority: Option<&[(String, f64)]>) -> String {
        let real = majority.is_some();
        let mut s = String::from("# tandem reproduction report\n\n");
        s.push_str(if real {
            "Real MTFL. Metrics are on `testing.txt` when present, else on the held-out validation \
             split of `training.txt`, at the epoch with the best validation landmark NME. "
        } else {
            "SynthFaces. Metrics are on the held-out validation split at the epoch with the best \
             validation landmark NME. "
        });
        s.push_str(
            "NME: mean landmark error normalised by the inter-ocular distance (%); failure: share \
             of faces with NME > 10 % (%); attribute columns: classification error (%); Δm: mean \
             relative improvement of every task's metric over the experiment's single-task \
             baseline (positive is better), as in LibMTL; parameters: the network's trainable \
             values (shown where variants differ); best epoch: the selected epoch, counted \
             from 0 as in metrics.json (the training log counts from 1); step time ×: seconds \
             in optimizer steps relative to the `equal` variant, else `hard`, else the \
             experiment's first, measured while the suite runs other variants beside it \
             (`cargo xtask bench` gives clean figures).\n\n",
        );
        if real {
            s.push_str(
                "Validation faces are cropped *test-like*: the box around their landmarks is \
                 moved, scaled and turned by a fixed per-face draw with the spread of MTFL's \
                 test crops (centre ±4.3 % of the side, scale ±9.6 %, roll ±7°, one s.d.), so \
                 that validation predicts the test split, whose images are whole face crops. \
                 Each experiment's second table scores the selected model on every evaluation \
                 set: `val` (test-like, selects the model), `val_centred` (the same faces in \
                 the centred landmark box, the easy protocol), the validation faces of each \
                 source folder (test-like), `val_proxy` (the validation faces resampled to \
                 the test split's pose mix, 39 % non-frontal, each copy test-like and degraded \
                 by a fixed draw of blur, low light, noise and JPEG: the proxy of the test \
                 split, docs/experiments.md), and `test` (`testing.txt`, whole images) when \
                 present. A variant with test-time mirroring (`test_time.mirror`) scores every \
                 set but `val` with it; `val` selects the epoch without it.\n\n\
                 Published reference on the MTFL test split: TCDCN (Zhang et al., ECCV 2014, \
                 Section 4, comparison on AFLW with 5 landmarks) reports its mean error and \
                 failure rate in figures, not tables; compare `test` rows with that paper \
                 directly.\n\n",
            );
        }
        if let Some(m) = majority.filter(|m| !m.is_empty()) {
            let parts: Vec<String> = m.iter().map(|(t, e)| format!("{t} {e:.1} %")).collect();
            s.push_str(&format!(
                "Attribute errors to beat — always answering the majority class of the \
                 evaluation split: {}.\n\n",
                parts.join(", ")
            ));
        }
        for e in experiments {
            let Some(r) = self.experiments.get(&e.name) else {
                continue;
            };
            s.push_str(&format!("## {} — {}\n\n{}\n\n", e.name, e.title, e.claim));
            let counts: Vec<(&str, usize)> = e
                .variants
                .iter()
                .filter_map(|v| Some((v.key.as_str(), r.variants.get(&v.key)?.seeds)))
                .collect();
            s.push_str(&seeds_sentence(&counts));
            let mut task_cols: Vec<String> = Vec::new();
            for v in &e.variants {
                for t in &v.config.tasks {
                    if t != "landmarks" && !task_cols.contains(t) {
                        task_cols.push(t.clone());
                    }
                }
            }
            let baseline = self.baseline(e);
            // An experiment with a capacity control compares every variant's landmarks with it.
            let control = e
                .variants
                .iter()
                .find(|v| v.key == "control")
                .and_then(|v| r.variants.get(&v.key));
            s.push_str("| variant | tasks | NME % | failure % |");
            if control.is_some() {
                s.push_str(" NME − control | failure − control |");
            }
            for t in &task_cols {
                s.push_str(&format!(" {t} error % |"));
            }
            // A parameters column where the variants' networks differ in size.
            let mut counts: Vec<usize> = r.variants.values().filter_map(|v| v.parameters).collect();
            counts.dedup();
            let params_col = counts.len() > 1;
            s.push_str(" Δm % | gap | best epoch |");
            if params_col {
                s.push_str(" parameters |");
            }
            s.push_str(" step time × |\n|---|---|---|---|");
            s.push_str(&"---|".repeat(
                task_cols.len() + 4 + usize::from(params_col) + 2 * usize::from(control.is_some()),
            ));
            s.push('\n');
            for v in &e.variants {
                let Some(res) = r.variants.get(&v.key) else {
                    continue;
                };
                let get = |t: &str, m: &str| {
                    let mean = res.tasks.get(t).and_then(|x| x.get(m));
                    let std = res.tasks.get(t).and_then(|x| x.get(&format!("{m}_std")));
                    match (mean, std) {
                        (Some(a), Some(b)) => format!("{a:.2} ± {b:.2}"),
                        (Some(a), None) => format!("{a:.2}"),
                        _ => "–".into(),
                    }
                };
                s.push_str(&format!(
                    "| {} | {} | {} | {} |",
                    v.key,
                    v.config.tasks.len(),
                    get("landmarks", "nme"),
                    get("landmarks", "failure_rate")
                ));
                if let Some(c) = control {
                    for m in ["nme", "failure_rate"] {
                        s.push_str(&format!(
                            " {} |",
                            versus(&res.tasks, &c.tasks, "landmarks", m)
                        ));
                    }
                }
                for t in &task_cols {
                    s.push_str(&format!(" {} |", get(t, "error")));
                }
                let dm = delta_m(&res.tasks, &baseline)
                    .map(|d| format!("{d:+.2}"))
                    .unwrap_or("–".into());
                let gap = res.gap.map(|g| format!("{g:.5}")).unwrap_or("–".into());
                let step = self.relative_step_time(e, &v.key);
                s.push_str(&format!(" {dm} | {gap} | {} |", res.best_epoch));
                if params_col {
                    let p = res.parameters.map(|p| p.to_string()).unwrap_or("–".into());
                    s.push_str(&format!(" {p} |"));
                }
                s.push_str(&format!(" {step} |\n"));
            }
            if r.variants.values().any(|v| !v.evals.is_empty()) {
                s.push_str(&eval_table(e, r, &task_cols));
            }
            s.push_str(&format!(
                "\n![validation NME](plots/{}_val_nme.svg)\n\n",
                e.name
            ));
            if e.name == "baxter" {
                s.push_str(
                    "![Baxter NME](plots/baxter_nme.svg) ![Baxter gap](plots/baxter_gap.svg)\n\n",
                );
            }
        }
        s
    }

    /// The variant's optimizer-step seconds over those of `equal` (else of `hard`, else of the
    /// first variant) in the same experiment; `–` when either was not timed in this run.
    fn relative_step_time(&self, e: &Experiment, key: &str) -> String {
        let secs = |k: &str| {
            self.step_seconds
                .get(&format!("{}/{k}", e.name))
                .copied()
                .filter(|s| *s > 0.0)
        };
        let base = e
            .variants
            .iter()
            .find(|v| v.key == "equal")
            .or_else(|| e.variants.iter().find(|v| v.key == "hard"))
            .or(e.variants.first())
            .and_then(|v| secs(&v.key));
        match (secs(key), base) {
            (Some(a), Some(b)) => format!("{:.2}", a / b),
            _ => "–".into(),
        }
    }

    /// Single-task reference metrics: landmark metrics of the experiment's single-task variant
    /// (one task), else of its first variant; attribute errors of the majority class are not
    /// known here, so attributes are compared with the first variant that has them.
    fn baseline(&self, e: &Experiment) -> BTreeMap<String, MetricValues> {
        let Some(r) = self.experiments.get(&e.name) else {
            return BTreeMap::new();
        };
        let mut base = BTreeMap::new();
        let single = e
            .variants
            .iter()
            .find(|v| v.config.tasks.len() == 1)
            .or(e.variants.first());
        for v in single.into_iter().chain(e.variants.iter()) {
            if let Some(res) = r.variants.get(&v.key) {
                for (t, m) in &res.tasks {
                    base.entry(t.clone()).or_insert_with(|| m.clone());
                }
            }
        }
        base
    }
}

/// `metric` of `task` in `a` minus in `b` (means over seeds), with the spread of the
/// difference, `√(s_a² + s_b²)` from the seeds' standard deviations, when either ran with
/// more than one seed; `–` when either lacks it.
fn versus(
    a: &BTreeMap<String, MetricValues>,
    b: &BTreeMap<String, MetricValues>,
    task: &str,
    metric: &str,
) -> String {
    fn get(m: &BTreeMap<String, MetricValues>, task: &str, k: &str) -> Option<f64> {
        m.get(task).and_then(|x| x.get(k)).copied()
    }
    let (Some(x), Some(y)) = (get(a, task, metric), get(b, task, metric)) else {
        return "–".into();
    };
    let sd_key = format!("{metric}_std");
    let (sa, sb) = (get(a, task, &sd_key), get(b, task, &sd_key));
    let d = x - y;
    if sa.is_none() && sb.is_none() {
        return format!("{d:+.2}");
    }
    let s = (sa.unwrap_or(0.0).powi(2) + sb.unwrap_or(0.0).powi(2)).sqrt();
    format!("{d:+.2} ± {s:.2}")
}

/// The evaluation-set table of one experiment: for every variant, `val` (the selection set),
/// each further evaluation set, and `test` when present.
fn eval_table(e: &Experiment, r: &ExperimentResult, task_cols: &[String]) -> String {
    let mut s = String::from("\n| variant | evaluation set | NME % | failure % |");
    for t in task_cols {
        s.push_str(&format!(" {t} error % |"));
    }
    s.push_str("\n|---|---|---|---|");
    s.push_str(&"---|".repeat(task_cols.len()));
    s.push('\n');
    for v in &e.variants {
        let Some(res) = r.variants.get(&v.key) else {
            continue;
        };
        let mut sets: Vec<(&str, &BTreeMap<String, MetricValues>)> = Vec::new();
        match &res.val_tasks {
            Some(val) => sets.push(("val (test-like)", val)),
            None => sets.push(("val (test-like)", &res.tasks)),
        }
        for (name, m) in &res.evals {
            sets.push((name.as_str(), m));
        }
        if res.val_tasks.is_some() {
            sets.push(("test (testing.txt)", &res.tasks));
        }
        for (name, m) in sets {
            let get = |t: &str, k: &str| {
                let mean = m.get(t).and_then(|x| x.get(k));
                let std = m.get(t).and_then(|x| x.get(&format!("{k}_std")));
                match (mean, std) {
                    (Some(a), Some(b)) => format!("{a:.2} ± {b:.2}"),
                    (Some(a), None) => format!("{a:.2}"),
                    _ => "–".into(),
                }
            };
            s.push_str(&format!(
                "| {} | {name} | {} | {} |",
                v.key,
                get("landmarks", "nme"),
                get("landmarks", "failure_rate")
            ));
            for t in task_cols {
                s.push_str(&format!(" {} |", get(t, "error")));
            }
            s.push('\n');
        }
    }
    s
}

/// Δm = mean over tasks of `(b − m) / b · 100` for lower-is-better metrics (NME, error).
fn delta_m(
    tasks: &BTreeMap<String, MetricValues>,
    base: &BTreeMap<String, MetricValues>,
) -> Option<f64> {
    let mut terms = Vec::new();
    for (t, m) in tasks {
        let key = if m.contains_key("nme") {
            "nme"
        } else {
            "error"
        };
        let (Some(v), Some(b)) = (m.get(key), base.get(t).and_then(|x| x.get(key))) else {
            continue;
        };
        if *b > 0.0 {
            terms.push((b - v) / b * 100.0);
        }
    }
    (!terms.is_empty()).then(|| terms.iter().sum::<f64>() / terms.len() as f64)
}

/// Wall-clock times, kept apart from the metrics: the whole run, loading (decoding) the data
/// set, and per variant and in sum where training went (batches — of which augmentation, as
/// CPU time over the batch threads —, steps, evaluation, checkpoints; see
/// `tandem::train::FitTiming`).
#[derive(Serialize, Default)]
pub struct Timings {
    pub total_seconds: f64,
    /// Decoding and cropping the MTFL images (or reading their cache); 0 for SynthFaces,
    /// which renders faces as batches are drawn (counted in `batch_seconds`).
    pub decode_seconds: f64,
    /// Sums over every variant.
    pub training: VariantTiming,
    pub variants: BTreeMap<String, VariantTiming>,
}

/// Where one variant's time went (all its seeds).
#[derive(Serialize, Default, Clone, Copy)]
pub struct VariantTiming {
    pub seconds: f64,
    pub batch_seconds: f64,
    pub augment_seconds: f64,
    pub step_seconds: f64,
    pub eval_seconds: f64,
    pub checkpoint_seconds: f64,
}

impl VariantTiming {
    /// Adds one run's training timing.
    pub fn add_fit(&mut self, t: &tandem::train::FitTiming) {
        self.batch_seconds += t.batch_seconds;
        self.augment_seconds += t.augment_seconds;
        self.step_seconds += t.step_seconds;
        self.eval_seconds += t.eval_seconds;
        self.checkpoint_seconds += t.checkpoint_seconds;
    }

    /// Adds another variant's totals.
    pub fn add(&mut self, o: &VariantTiming) {
        self.seconds += o.seconds;
        self.batch_seconds += o.batch_seconds;
        self.augment_seconds += o.augment_seconds;
        self.step_seconds += o.step_seconds;
        self.eval_seconds += o.eval_seconds;
        self.checkpoint_seconds += o.checkpoint_seconds;
    }
}

impl Timings {
    /// Writes `timings.json` into `out`.
    pub fn write(&self, out: &Path) -> Result<()> {
        let path = out.join("timings.json");
        std::fs::write(&path, serde_json::to_string_pretty(self)? + "\n")
            .with_context(|| format!("writing {}", path.display()))
    }
}

/// One progress line for an epoch.
pub fn epoch_line(label: &str, epochs: usize, r: &EpochRecord, secs: f64) -> String {
    let mut s = format!("   [{label}] epoch {}/{epochs}", r.epoch + 1);
    if let Some(l) = r.train_loss.get("landmarks") {
        s.push_str(&format!(" train L2 {l:.5}"));
    }
    for (task, m) in r.val_metrics.iter() {
        if let Some(v) = m.get("nme") {
            s.push_str(&format!(
                " | val {task} NME {v:.2} fail {:.1}",
                m.get("failure_rate").copied().unwrap_or(0.0)
            ));
        } else if let Some(v) = m.get("error") {
            s.push_str(&format!(" | {task} err {v:.1}"));
        }
    }
    s.push_str(&format!(" ({secs:.1} s)"));
    s
}

/// A one-line summary of a report's best epoch.
pub fn summary(r: &Report) -> String {
    r.best
        .iter()
        .map(|(t, m)| {
            let key = if m.contains_key("nme") {
                "nme"
            } else {
                "error"
            };
            format!("{t} {key} {:.2}", m.get(key).copied().unwrap_or(f64::NAN))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The sentence under an experiment's claim saying how many seeds its figures are over
/// (the experiment's own `seeds` or `--seeds`), so that a report run with fewer seeds than
/// its claim names says so.
fn seeds_sentence(counts: &[(&str, usize)]) -> String {
    let Some(&(_, first)) = counts.first() else {
        return String::new();
    };
    let plural = |n: usize| if n == 1 { "seed" } else { "seeds" };
    if counts.iter().all(|&(_, n)| n == first) {
        let what = if first == 1 {
            "one seed: every figure is that seed's.".to_string()
        } else {
            format!("{first} seeds: every figure is their mean ± s.d.")
        };
        return format!("This run: every variant with {what}\n\n");
    }
    let parts: Vec<String> = counts
        .iter()
        .map(|&(k, n)| format!("`{k}` {n} {}", plural(n)))
        .collect();
    format!(
        "This run: {} (figures over several seeds are their mean ± s.d.).\n\n",
        parts.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(pairs: &[(&str, f64)]) -> BTreeMap<String, MetricValues> {
        let m: MetricValues = pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        BTreeMap::from([("landmarks".to_string(), m)])
    }

    #[test]
    fn differences_with_the_control_carry_the_seeds_spread() {
        let a = metrics(&[("nme", 5.5), ("nme_std", 0.3)]);
        let c = metrics(&[("nme", 6.0), ("nme_std", 0.4)]);
        assert_eq!(versus(&a, &c, "landmarks", "nme"), "-0.50 ± 0.50");
        let one = metrics(&[("nme", 6.25)]);
        assert_eq!(
            versus(&one, &metrics(&[("nme", 6.0)]), "landmarks", "nme"),
            "+0.25"
        );
        assert_eq!(versus(&one, &c, "landmarks", "failure_rate"), "–");
    }

    #[test]
    fn the_report_says_how_many_seeds_it_ran() {
        assert_eq!(
            seeds_sentence(&[("single", 1), ("aux", 1)]),
            "This run: every variant with one seed: every figure is that seed's.\n\n"
        );
        assert_eq!(
            seeds_sentence(&[("single", 3), ("aux", 3)]),
            "This run: every variant with 3 seeds: every figure is their mean ± s.d.\n\n"
        );
        assert_eq!(
            seeds_sentence(&[("control", 3), ("gcs", 1)]),
            "This run: `control` 3 seeds, `gcs` 1 seed (figures over several seeds are their \
             mean ± s.d.).\n\n"
        );
        assert_eq!(seeds_sentence(&[]), "");
    }
}
