//! Patience-based stopping on a task's validation metric.
//!
//! With `v(t)` the task's primary validation metric (lower is better; its validation loss when
//! the metric is missing) and `best = min_{j<t} v(j)`, an epoch improves when
//! `v(t) < best − min_delta`; the task stops after `patience` consecutive epochs without
//! improvement.
use super::{Observation, TaskStopper};
use crate::state;
use serde::{Deserialize, Serialize};

/// The name of this state in errors.
const STATE: &str = "stopper state (patience)";

/// Stops a task whose validation metric has not improved for `patience` epochs.
#[derive(Debug, Clone, PartialEq)]
pub struct PatienceStopper {
    patience: usize,
    min_delta: f64,
    memory: Memory,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Memory {
    best: Option<f64>,
    since: usize,
}

impl Default for PatienceStopper {
    /// `patience = 5`, `min_delta = 0`.
    fn default() -> Self {
        Self::new(5, 0.0)
    }
}

impl PatienceStopper {
    /// A stopper with `patience` epochs (≥ 1) and improvement threshold `min_delta`.
    pub fn new(patience: usize, min_delta: f64) -> Self {
        Self {
            patience: patience.max(1),
            min_delta,
            memory: Memory::default(),
        }
    }
}

impl TaskStopper for PatienceStopper {
    fn name(&self) -> &str {
        "patience"
    }

    fn update(&mut self, obs: &Observation) -> bool {
        let v = obs.val_metric.unwrap_or(obs.val_loss);
        match self.memory.best {
            Some(b) if v.is_nan() || v >= b - self.min_delta => self.memory.since += 1,
            _ => {
                self.memory.best = Some(v);
                self.memory.since = 0;
            }
        }
        self.memory.since >= self.patience
    }

    fn state(&self) -> crate::Result<serde_json::Value> {
        state::to_json(STATE, &self.memory)
    }

    fn load_state(&mut self, state: &serde_json::Value) -> crate::Result<()> {
        self.memory = state::from_json(STATE, state)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_after_patience_epochs_without_improvement() {
        let mut s = PatienceStopper::new(2, 0.5);
        let metrics = [10.0, 8.0, 7.8, 7.6, 7.0, 9.0, 8.0];
        let stops: Vec<bool> = metrics
            .iter()
            .enumerate()
            .map(|(epoch, m)| {
                s.update(&Observation {
                    epoch,
                    train_loss: 1.0,
                    val_loss: 1.0,
                    val_metric: Some(*m),
                    weight: 1.0,
                })
            })
            .collect();
        // 8.0 improves; 7.8 and 7.6 are within min_delta of 8.0 → second one stops.
        assert_eq!(stops, [false, false, false, true, false, false, true]);
    }
}
