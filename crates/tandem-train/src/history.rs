//! Training history and the final report.
//!
//! The history holds results only (no timings, dates or paths), so two runs with one seed
//! serialise to identical bytes.
use serde::{Deserialize, Serialize};
use tandem_heads::MetricValues;
use tandem_tensor::TaskMap;

/// What happened in one epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// Epoch number, 0-based.
    pub epoch: usize,
    /// Learning rate at the epoch's last step.
    pub lr: f64,
    /// Mean training loss per active task.
    pub train_loss: TaskMap<f64>,
    /// Mean validation loss per task.
    pub val_loss: TaskMap<f64>,
    /// Validation metrics per task.
    pub val_metrics: TaskMap<MetricValues>,
    /// Mean weight each active task's loss received over the epoch.
    pub weights: TaskMap<f64>,
    /// Tasks still trained during this epoch.
    pub active: Vec<String>,
    /// Batches skipped because a loss or gradient was not finite
    /// ([`crate::NonFinitePolicy::SkipBatch`]); omitted from JSON when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub skipped_batches: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Per-epoch records and task stops.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// One record per epoch.
    pub epochs: Vec<EpochRecord>,
    /// The epoch after which each stopped task stopped training.
    pub stops: TaskMap<usize>,
}

impl History {
    /// The epoch whose validation `metric` of `task` is lowest (the first on ties).
    pub fn best_epoch(&self, task: &str, metric: &str) -> Option<usize> {
        let mut best: Option<(usize, f64)> = None;
        for r in &self.epochs {
            let Some(v) = r.val_metrics.get(task).and_then(|m| m.get(metric)).copied() else {
                continue;
            };
            if best.is_none_or(|(_, b)| v < b) {
                best = Some((r.epoch, v));
            }
        }
        best.map(|(e, _)| e)
    }
}

/// The outcome of [`crate::Trainer::fit`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The main task, whose validation metric picks the best epoch.
    pub main_task: String,
    /// The metric that picks the best epoch.
    pub main_metric: String,
    /// The best epoch.
    pub best_epoch: usize,
    /// Every task's validation metrics at the best epoch.
    pub best: TaskMap<MetricValues>,
    /// The full history.
    pub history: History,
}

impl Report {
    /// A Markdown table of the best epoch's metrics, one row per task.
    pub fn table(&self) -> String {
        let mut s = format!(
            "best epoch {} (by validation {} {})\n\n| task | metric | value |\n|---|---|---|\n",
            self.best_epoch, self.main_task, self.main_metric
        );
        for (task, m) in self.best.iter() {
            for (k, v) in m {
                s.push_str(&format!("| {task} | {k} | {v:.2} |\n"));
            }
        }
        s
    }
}
