//! The two halves of an epoch: training on every batch (`train_epoch`), then evaluation, the
//! epoch's record, the keep-the-best policy, the stoppers' verdicts and the epoch-end
//! checkpoint (`end_epoch`).
use super::{Fit, StepInfo, Trainer};
use crate::history::improves;
use crate::timing::add_since;
use crate::{evaluate_sharded, BestEpoch, EpochRecord, Evaluation, Result, RunState};
use std::time::Instant;
use tandem_optim::Observation;
use tandem_tensor::TaskMap;

impl Trainer {
    /// Trains on the batches of `run.epoch` from `run.batch` on, writing the checkpoints that
    /// fall due (every `every_steps` steps, except after the last batch: the epoch-end
    /// checkpoint follows it immediately).
    pub(super) fn train_epoch(&mut self, fit: &mut Fit, run: &mut RunState) -> Result<()> {
        let (rank, ranks) = (self.collective.rank(), self.collective.ranks());
        while run.batch < fit.batches_per_epoch {
            let k = run.batch;
            let t_batch = Instant::now();
            let indices = fit
                .train_batcher
                .batch_indices(fit.train.len(), run.epoch, k)?;
            let batch_len = indices.len();
            if batch_len < ranks {
                // A batch smaller than the number of ranks leaves a rank without samples: every
                // rank skips it.
                run.batch += 1;
                continue;
            }
            // This rank's contiguous shard (the whole batch with one rank).
            let shard = indices[rank * batch_len / ranks..(rank + 1) * batch_len / ranks].to_vec();
            let batch = fit
                .train_batcher
                .batch_of(fit.train, shard, run.epoch, &self.device)?;
            add_since(&mut self.timing.batch_seconds, t_batch);
            let t_step = Instant::now();
            run.batch += 1;
            if !self.train_step(fit, run, &batch, batch_len)? {
                continue;
            }
            add_since(&mut self.timing.step_seconds, t_step);
            run.step += 1;
            if self.checkpointer.due(run.step) && run.batch < fit.batches_per_epoch {
                self.save(fit, run)?;
            }
            if let Some(f) = self.on_step.as_mut() {
                f(&StepInfo {
                    epoch: run.epoch,
                    batch: k,
                    step: run.step,
                    lr: run.lr,
                });
            }
        }
        Ok(())
    }

    /// Ends `run.epoch`: evaluates on the validation split, records the epoch, keeps the best
    /// epoch's variables, stops the auxiliary tasks whose stoppers say so, tells the weighting,
    /// moves to the next epoch and writes the epoch-end checkpoint.
    pub(super) fn end_epoch(&mut self, fit: &mut Fit, run: &mut RunState) -> Result<()> {
        let epoch = run.epoch;
        let train_loss = run.loss_sum.map(|_, (s, n)| s / n);
        let weights = run.weight_sum.map(|_, (s, n)| s / n);
        let t_eval = Instant::now();
        let comm = self.collective.as_ref();
        let eval = evaluate_sharded(
            fit.net,
            fit.tasks,
            fit.val,
            &fit.eval_batcher,
            &self.device,
            comm,
        )?;
        let train_eval_loss = if self.config.eval_train {
            Some(
                evaluate_sharded(
                    fit.net,
                    fit.tasks,
                    fit.train,
                    &fit.eval_batcher,
                    &self.device,
                    comm,
                )?
                .losses,
            )
        } else {
            None
        };
        add_since(&mut self.timing.eval_seconds, t_eval);
        let stopped = verdicts(fit, run, &train_loss, &weights, &eval);

        let record = EpochRecord {
            epoch,
            lr: run.lr,
            train_loss: train_loss.clone(),
            val_loss: eval.losses,
            train_eval_loss,
            val_metrics: eval.metrics,
            weights,
            active: run.active.clone(),
            skipped_batches: run.skipped,
        };
        if let Some(f) = self.on_epoch.as_mut() {
            f(&record);
        }
        self.keep_if_best(fit, &record)?;
        run.history.epochs.push(record);

        for name in &stopped {
            run.active.retain(|a| a != name);
            run.history.stops.insert(name.clone(), epoch);
            let frozen = fit.params.freeze(fit.vars, name);
            fit.opt.forget(&frozen);
        }
        let still_active: TaskMap<f64> = train_loss
            .iter()
            .filter(|(n, _)| run.is_active(n))
            .map(|(n, v)| (n, *v))
            .collect();
        self.weighting.end_epoch(epoch, &still_active)?;
        run.next_epoch(fit.base_lr);
        self.save(fit, run)
    }

    /// With [`Trainer::keep_best`]: copies the variables when this epoch's validation
    /// main-task metric beats the best so far (and writes them to `DIR/best` with checkpoints).
    fn keep_if_best(&mut self, fit: &Fit, record: &EpochRecord) -> Result<()> {
        if !self.keep_best {
            return Ok(());
        }
        let Some(v) = record.val_metric(fit.main.name(), fit.main.primary_metric()) else {
            return Ok(());
        };
        if improves(v, self.best.as_ref().map(|b| b.metric)) {
            let t = Instant::now();
            let best = BestEpoch::snapshot(record.epoch, v, fit.vars)?;
            self.checkpointer.save_best(fit.vars, &best)?;
            self.best = Some(best);
            add_since(&mut self.timing.checkpoint_seconds, t);
        }
        Ok(())
    }
}

/// The auxiliary tasks whose stoppers stop them after this epoch, in task order.
fn verdicts(
    fit: &mut Fit,
    run: &RunState,
    train_loss: &TaskMap<f64>,
    weights: &TaskMap<f64>,
    eval: &Evaluation,
) -> Vec<String> {
    let mut stopped = Vec::new();
    for (name, stopper) in fit.stoppers.iter_mut() {
        let (Some(tr), Some(vl), Some(task)) = (
            train_loss.get(name),
            eval.losses.get(name),
            fit.tasks.get(name),
        ) else {
            continue;
        };
        if !run.is_active(name) {
            continue;
        }
        let obs = Observation {
            epoch: run.epoch,
            train_loss: *tr,
            val_loss: *vl,
            val_metric: eval
                .metrics
                .get(name)
                .and_then(|m| m.get(task.primary_metric()))
                .copied(),
            weight: weights.get(name).copied().unwrap_or(1.0),
        };
        if stopper.update(&obs) {
            stopped.push(name.to_string());
        }
    }
    stopped
}
