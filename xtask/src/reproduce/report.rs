//! `metrics.json`, `timings.json`, `REPORT.md` and progress lines.
//!
//! `metrics.json` holds results only — no timings, dates, host names or paths — so two runs
//! with one seed compare byte for byte:
//! `{"experiments": {E: {"variants": {V: {"tasks": {T: {metric: value}}, "best_epoch": n,
//! "history": [...]}}}}}` (percentages as numbers).
use super::experiment::Experiment;
use anyhow::{Context, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use tandem::tensor::TaskMap;
use tandem_heads::MetricValues;
use tandem_train::{EpochRecord, History, Report};

#[derive(Serialize)]
struct VariantResult {
    /// Test metrics when the data has a test split, else validation metrics.
    tasks: BTreeMap<String, MetricValues>,
    /// Validation metrics, when `tasks` holds test metrics.
    #[serde(skip_serializing_if = "Option::is_none")]
    val_tasks: Option<BTreeMap<String, MetricValues>>,
    best_epoch: usize,
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
}

impl Results {
    /// Records variant `key` of `e`: test metrics when there is a test split, else validation.
    pub fn add(&mut self, e: &Experiment, key: &str, report: Report, test: Option<TaskMap<MetricValues>>) {
        let to_map = |m: &TaskMap<MetricValues>| -> BTreeMap<String, MetricValues> {
            m.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
        };
        let val = to_map(&report.best);
        let (tasks, val_tasks) = match &test {
            Some(t) => (to_map(t), Some(val)),
            None => (val, None),
        };
        self.experiments.entry(e.name.clone()).or_default().variants.insert(
            key.to_string(),
            VariantResult {
                tasks,
                val_tasks,
                best_epoch: report.best_epoch,
                history: report.history,
            },
        );
    }

    /// Writes `metrics.json` and `REPORT.md` into `out`.
    pub fn write(&self, out: &Path, experiments: &[Experiment]) -> Result<()> {
        let json = serde_json::to_string_pretty(self)? + "\n";
        let path = out.join("metrics.json");
        std::fs::write(&path, json).with_context(|| format!("writing {}", path.display()))?;
        let md = self.markdown(experiments);
        let path = out.join("REPORT.md");
        std::fs::write(&path, md).with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }

    fn markdown(&self, experiments: &[Experiment]) -> String {
        let mut s = String::from("# tandem reproduction report\n\n");
        s.push_str(
            "Metrics are on the validation split at the epoch with the best validation landmark \
             NME. NME: mean landmark error normalised by the inter-ocular distance (%); failure: \
             share of faces with NME > 10 % (%); attribute columns: classification error (%).\n\n",
        );
        for e in experiments {
            let Some(r) = self.experiments.get(&e.name) else {
                continue;
            };
            s.push_str(&format!("## {} — {}\n\n{}\n\n", e.name, e.title, e.claim));
            let mut task_cols: Vec<String> = Vec::new();
            for v in &e.variants {
                for t in &v.config.tasks {
                    if t != "landmarks" && !task_cols.contains(t) {
                        task_cols.push(t.clone());
                    }
                }
            }
            s.push_str("| variant | tasks | NME % | failure % |");
            for t in &task_cols {
                s.push_str(&format!(" {t} error % |"));
            }
            s.push_str(" best epoch |\n|---|---|---|---|");
            s.push_str(&"---|".repeat(task_cols.len() + 1));
            s.push('\n');
            for v in &e.variants {
                let Some(res) = r.variants.get(&v.key) else {
                    continue;
                };
                let get = |t: &str, m: &str| {
                    res.tasks
                        .get(t)
                        .and_then(|x| x.get(m))
                        .map(|x| format!("{x:.2}"))
                        .unwrap_or_else(|| "–".into())
                };
                s.push_str(&format!(
                    "| {} | {} | {} | {} |",
                    v.key,
                    v.config.tasks.len(),
                    get("landmarks", "nme"),
                    get("landmarks", "failure_rate")
                ));
                for t in &task_cols {
                    s.push_str(&format!(" {} |", get(t, "error")));
                }
                s.push_str(&format!(" {} |\n", res.best_epoch));
            }
            s.push('\n');
        }
        s
    }
}

/// Wall-clock times, kept apart from the metrics.
#[derive(Serialize, Default)]
pub struct Timings {
    variants: BTreeMap<String, f64>,
    /// The whole run.
    pub total_seconds: f64,
}

impl Timings {
    /// Records a variant's time.
    pub fn add(&mut self, experiment: &str, variant: &str, seconds: f64) {
        self.variants
            .insert(format!("{experiment}/{variant}"), seconds);
    }

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
