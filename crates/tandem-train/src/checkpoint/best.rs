//! [`BestEpoch`]: the variables of the epoch with the best validation main-task metric, kept by
//! the trainer ([`crate::Trainer::keep_best`]) and, with checkpoints, in `DIR/best/`.
use crate::{Result, TrainError};
use candle_core::{Tensor, Var};
use candle_nn::VarMap;
use serde_json::{json, Value};
use std::path::Path;
use tandem_tensor::checkpoint::{self as tc, CheckpointMeta};
use tandem_tensor::sorted_vars;

/// The variables of the epoch with the best validation main-task metric (the epoch a
/// [`Report`](crate::Report)'s metrics come from).
#[derive(Debug, Clone)]
pub struct BestEpoch {
    /// The epoch (0-based).
    pub epoch: usize,
    /// Its validation main-task metric.
    pub metric: f64,
    /// A copy of every variable at the end of that epoch, by name, in sorted-name order.
    pub vars: Vec<(String, Tensor)>,
}

impl BestEpoch {
    /// Copies the current values of `vars` as those of `epoch`, whose metric is `metric`.
    pub(crate) fn snapshot(epoch: usize, metric: f64, vars: &VarMap) -> Result<Self> {
        let vars = sorted_vars(vars)
            .into_iter()
            .map(|(n, v)| Ok((n, v.as_tensor().copy()?)))
            .collect::<Result<_>>()?;
        Ok(Self {
            epoch,
            metric,
            vars,
        })
    }

    /// Sets every variable of `vars` that this epoch has a copy of to that copy.
    pub fn restore(&self, vars: &VarMap) -> Result<()> {
        for (name, var) in sorted_vars(vars) {
            if let Some((_, t)) = self.vars.iter().find(|(n, _)| *n == name) {
                var.set(t)?;
            }
        }
        Ok(())
    }

    /// Writes `vars` (holding this epoch's values) to the folder `dir`; `run` identifies the run
    /// (the checkpoints' model configuration).
    pub(crate) fn save(&self, dir: &Path, vars: &VarMap, run: &Value) -> Result<()> {
        let config = json!({ "metric": self.metric, "run": run });
        let meta = CheckpointMeta::new(0, self.epoch + 1, 0, config);
        tc::save(dir, vars, &meta)?;
        Ok(())
    }

    /// The best epoch saved in `dir` by an earlier call for the same `run`, if there is one.
    /// It is read into a scratch copy of `vars`, which keep their values.
    pub(crate) fn read(dir: &Path, vars: &VarMap, run: &Value) -> Result<Option<Self>> {
        let Ok(meta) = tc::read_meta(dir) else {
            return Ok(None);
        };
        let Some(metric) = meta.config.get("metric").and_then(Value::as_f64) else {
            return Ok(None);
        };
        if meta.config.get("run") != Some(run) {
            return Ok(None);
        }
        let scratch = VarMap::new();
        {
            let mut data = scratch
                .data()
                .lock()
                .map_err(|_| TrainError::config("vars", "variable map lock poisoned"))?;
            for (name, var) in sorted_vars(vars) {
                data.insert(name, Var::from_tensor(&var.as_tensor().copy()?)?);
            }
        }
        tc::load(dir, &scratch)?;
        let vars = sorted_vars(&scratch)
            .into_iter()
            .map(|(n, v)| (n, v.as_tensor().clone()))
            .collect();
        Ok(Some(Self {
            epoch: meta.epoch.saturating_sub(1),
            metric,
            vars,
        }))
    }
}
