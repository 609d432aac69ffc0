//! The refit phase: after the training loop, the heads of auxiliary tasks that a stopper took
//! out of training are trained again on the selected trunk.
//!
//! A stopped task leaves the objective and its own variables freeze, but the shared trunk
//! goes on learning for the main task, so the frozen head drifts away from the features it
//! reads (its error climbs back towards the majority class). [`Trainer::refit`] trains the own
//! variables (`ParamGroups::tasks`) of each stopped task for [`RefitConfig::epochs`] epochs on
//! the training data with everything else frozen: AdamW at [`RefitConfig::lr`] without weight
//! decay, the objective `Σ_t L_t` over the refit tasks (in the order given) that have labels
//! in the batch, the trainer's seeded batch order and transform, its non-finite policy, and
//! the step time counted in [`FitTiming::step_seconds`](crate::FitTiming). The main task's
//! predictions do not change.
use super::Trainer;
use crate::timing::add_since;
use crate::{evaluate, Evaluation, Result, TrainError};
use candle_core::Var;
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};
use std::time::Instant;
use tandem_data::Dataset;
use tandem_heads::TaskSet;
use tandem_optim::{AdamW, AdamWConfig, Optimizer};
use tandem_share::MultiTaskNet;
use tandem_tensor::{is_finite, select_vars};

/// The refit phase's settings (`[refit]` in a run configuration).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RefitConfig {
    /// Epochs of refitting (0: keep the frozen heads). Default 3.
    pub epochs: usize,
    /// Learning rate. Default 0.01.
    pub lr: f64,
}

impl Default for RefitConfig {
    fn default() -> Self {
        Self {
            epochs: 3,
            lr: 0.01,
        }
    }
}

impl RefitConfig {
    /// Checks the learning rate.
    pub fn validate(&self) -> Result<()> {
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(TrainError::config("refit.lr", "must be positive"));
        }
        Ok(())
    }
}

impl Trainer {
    /// Trains the own variables of every task of `refit` (in that order) on `train` as
    /// [`RefitConfig`] says, then evaluates `net` on `val`. Returns `None` (and changes
    /// nothing) when there are no epochs or no such variable.
    #[allow(clippy::too_many_arguments)]
    pub fn refit(
        &mut self,
        net: &dyn MultiTaskNet,
        tasks: &TaskSet,
        vars: &VarMap,
        train: &dyn Dataset,
        val: &dyn Dataset,
        refit: &[String],
        config: &RefitConfig,
    ) -> Result<Option<Evaluation>> {
        config.validate()?;
        let groups = net.param_groups();
        let mut heads: Vec<(String, Var)> = Vec::new();
        for name in refit {
            if let Some(prefixes) = groups.tasks.get(name) {
                heads.extend(select_vars(vars, prefixes));
            }
        }
        heads.sort_by(|a, b| a.0.cmp(&b.0));
        heads.dedup_by(|a, b| a.0 == b.0);
        if config.epochs == 0 || heads.is_empty() {
            return Ok(None);
        }
        let t_refit = Instant::now();
        let mut opt = AdamW::new(AdamWConfig {
            lr: config.lr,
            weight_decay: 0.0,
            ..AdamWConfig::default()
        });
        let (batcher, eval_batcher) = self.batchers();
        let mut skipped = 0u64;
        let mut step = 0u64;
        for epoch in 0..config.epochs {
            for batch in batcher.iter(train, epoch, &self.device) {
                let batch = batch?;
                let out = net.forward_t(&batch.input, true)?;
                let losses =
                    crate::batch_losses(tasks, refit.iter().map(String::as_str), &out, &batch)?;
                let mut total: Option<candle_core::Tensor> = None;
                let mut bad: Option<String> = None;
                for (name, l) in losses {
                    if bad.is_none() && !is_finite(&l.loss)? {
                        bad = Some(name);
                    }
                    total = Some(match total {
                        Some(t) => (t + l.loss)?,
                        None => l.loss,
                    });
                }
                step += 1;
                if let Some(task) = bad {
                    let e = TrainError::NonFinite {
                        what: "refit loss".into(),
                        task,
                        epoch,
                        step,
                    };
                    self.config.on_non_finite.handle(e, &mut skipped)?;
                    continue;
                }
                if let Some(loss) = total {
                    let grads = loss.backward()?;
                    opt.step(&heads, &grads, config.lr)?;
                }
            }
        }
        add_since(&mut self.timing.step_seconds, t_refit);
        let t_eval = Instant::now();
        let eval = evaluate(net, tasks, val, &eval_batcher, &self.device)?;
        add_since(&mut self.timing.eval_seconds, t_eval);
        Ok(Some(eval))
    }
}
