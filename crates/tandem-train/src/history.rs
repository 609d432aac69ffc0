//! Training history and the final report.
//!
//! The history holds results only (no timings, dates or paths), so two runs with one seed
//! serialise to identical bytes.
use crate::{Result, TrainError};
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
    /// Mean loss per task on the training set in evaluation mode, when
    /// [`TrainConfig::eval_train`](crate::TrainConfig::eval_train) is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_eval_loss: Option<TaskMap<f64>>,
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

impl EpochRecord {
    /// The validation `metric` of `task` this epoch, if it was measured.
    pub fn val_metric(&self, task: &str, metric: &str) -> Option<f64> {
        self.val_metrics
            .get(task)
            .and_then(|m| m.get(metric))
            .copied()
    }
}

/// Whether a validation metric `value` beats the best so far (lower is better, so the first of
/// equal epochs stays the best): the one rule that picks the best epoch, for
/// [`History::best_epoch`] and for the trainer's keep-the-best policy
/// ([`crate::Trainer::keep_best`]).
pub fn improves(value: f64, best: Option<f64>) -> bool {
    best.is_none_or(|b| value < b)
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
            let Some(v) = r.val_metric(task, metric) else {
                continue;
            };
            if improves(v, best.map(|(_, b)| b)) {
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
    /// The report of `history`: every task's validation metrics at the epoch with the best
    /// validation `metric` of the main task `main_task`.
    pub fn from_history(main_task: &str, metric: &str, history: History) -> Result<Self> {
        let best_epoch = history.best_epoch(main_task, metric).ok_or_else(|| {
            TrainError::config("data", "validation split gave no main-task metric")
        })?;
        let best = history
            .epochs
            .iter()
            .find(|r| r.epoch == best_epoch)
            .map(|r| r.val_metrics.clone())
            .unwrap_or_default();
        Ok(Self {
            main_task: main_task.to_string(),
            main_metric: metric.to_string(),
            best_epoch,
            best,
            history,
        })
    }

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
