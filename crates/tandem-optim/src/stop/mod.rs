//! Task-wise early stopping: a [`TaskStopper`] per auxiliary task decides, after each epoch,
//! whether that task stops training.
//!
//! A stopped task leaves the objective (its loss is no longer computed into the update) and
//! its own parameters leave the optimizer (no gradient, no momentum, no weight decay moves them
//! again); the trainer records the epoch of the stop in its history. The main task is
//! never given a stopper. Two stoppers ship: [`TcdcnStopper`] (Zhang et al. 2014) and
//! [`PatienceStopper`]; [`StopperConfig`] picks one as serde data.
mod config;
mod patience;
mod tcdcn;

pub use config::StopperConfig;
pub use patience::PatienceStopper;
pub use tcdcn::TcdcnStopper;

/// What a stopper sees of one task after one epoch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    /// The epoch just finished (0-based).
    pub epoch: usize,
    /// The task's mean (unweighted) training loss over the epoch, `E_tr(t)`.
    pub train_loss: f64,
    /// The task's mean validation loss, `E_val(t)`.
    pub val_loss: f64,
    /// The task's primary validation metric (lower is better), if it has one this epoch.
    pub val_metric: Option<f64>,
    /// The task's mean loss weight over the epoch, `λ_a`.
    pub weight: f64,
}

/// Decides when one auxiliary task stops training.
pub trait TaskStopper: Send {
    /// A short name (`tcdcn`, `patience`).
    fn name(&self) -> &str;

    /// Records the epoch's observation; `true` stops the task now (it does not train in the
    /// next epoch).
    fn update(&mut self, obs: &Observation) -> bool;

    /// The stopper's memory as plain JSON (for resume; `null` for a stopper without memory;
    /// see [`crate::state`]).
    fn state(&self) -> crate::Result<serde_json::Value> {
        Ok(serde_json::Value::Null)
    }

    /// Restores a state returned by [`TaskStopper::state`].
    fn load_state(&mut self, _state: &serde_json::Value) -> crate::Result<()> {
        Ok(())
    }
}
