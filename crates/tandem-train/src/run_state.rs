//! [`RunState`]: where a run stands — the loop's position, the sums of the epoch in progress,
//! the tasks still trained and the finished epochs. It is all a checkpoint needs of the loop
//! ([`TrainerState`](crate::TrainerState) embeds it), since every random choice derives from
//! the seed and the position.
use crate::History;
use serde::{Deserialize, Serialize};
use tandem_heads::TaskSet;
use tandem_tensor::TaskMap;

/// The loop's position and everything of the epoch in progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    /// The epoch in progress (`epochs` when the run has finished).
    pub epoch: usize,
    /// The next batch of `epoch` to train on (0 at an epoch boundary).
    pub batch: usize,
    /// Optimizer steps taken.
    pub step: u64,
    /// Learning rate of the last step of the epoch in progress.
    pub lr: f64,
    /// Partial epoch: per-task sums of training losses and their counts.
    pub loss_sum: TaskMap<(f64, f64)>,
    /// Partial epoch: per-task sums of loss weights and their counts.
    pub weight_sum: TaskMap<(f64, f64)>,
    /// Partial epoch: batches skipped for non-finite values.
    pub skipped: u64,
    /// Tasks still trained.
    pub active: Vec<String>,
    /// Every finished epoch.
    pub history: History,
}

impl RunState {
    /// The start of a run: every task of `tasks` active, learning rate `lr`.
    pub fn fresh(tasks: &TaskSet, lr: f64) -> Self {
        Self {
            epoch: 0,
            batch: 0,
            step: 0,
            lr,
            loss_sum: TaskMap::new(),
            weight_sum: TaskMap::new(),
            skipped: 0,
            active: tasks.names().into_iter().map(String::from).collect(),
            history: History::default(),
        }
    }

    /// Whether `task` is still trained.
    pub fn is_active(&self, task: &str) -> bool {
        self.active.iter().any(|a| a == task)
    }

    /// Adds one step's training loss `value` of `task` to the epoch's sums.
    pub(crate) fn add_loss(&mut self, task: &str, value: f64) {
        add(&mut self.loss_sum, task, value);
    }

    /// Adds one step's weight `w` of `task` to the epoch's sums.
    pub(crate) fn add_weight(&mut self, task: &str, w: f64) {
        add(&mut self.weight_sum, task, w);
    }

    /// Moves to the start of the next epoch, at learning rate `lr`.
    pub(crate) fn next_epoch(&mut self, lr: f64) {
        self.epoch += 1;
        self.batch = 0;
        self.lr = lr;
        self.loss_sum = TaskMap::new();
        self.weight_sum = TaskMap::new();
        self.skipped = 0;
    }
}

/// Adds `(v, 1)` to the sum and count of `name`.
fn add(map: &mut TaskMap<(f64, f64)>, name: &str, v: f64) {
    match map.get_mut(name) {
        Some(s) => {
            s.0 += v;
            s.1 += 1.0;
        }
        None => {
            map.insert(name, (v, 1.0));
        }
    }
}
