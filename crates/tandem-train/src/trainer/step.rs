//! One optimizer step: forward, per-task losses, the weighting's backward pass, the numeric
//! guards ([`NonFinitePolicy`](crate::NonFinitePolicy)), gradient-norm clipping and the
//! optimizer's update.
use super::{Fit, Trainer};
use crate::{Result, RunState, TrainError};
use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor, Var};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tandem_data::Batch;
use tandem_heads::TaskSet;
use tandem_optim::weighting::Representation;
use tandem_optim::StepContext;
use tandem_share::NetOutput;
use tandem_tensor::{hash_seed, is_finite, TaskMap};

/// The losses of one batch: tensors for the weighting, values for the history.
pub(super) struct Losses {
    pub(super) tensors: TaskMap<Tensor>,
    pub(super) values: Vec<(String, f64)>,
    /// Labelled samples behind each loss (same order as `values`).
    pub(super) labelled: Vec<f64>,
}

impl Trainer {
    /// One step on `batch`; `false` when no step was taken (nothing to train on, or a
    /// non-finite value skipped under [`NonFinitePolicy::SkipBatch`](crate::NonFinitePolicy)).
    ///
    /// Under data parallelism `batch` is this rank's shard of a global batch of `batch_len`
    /// samples; otherwise `batch_len` is `batch`'s own length.
    pub(super) fn train_step(
        &mut self,
        fit: &mut Fit,
        run: &mut RunState,
        batch: &Batch,
        batch_len: usize,
    ) -> Result<bool> {
        let (epoch, step) = (run.epoch, run.step);
        // Representation mode: the heads read a leaf cut from the trunk's output.
        let split = if self.weighting.wants_representation() {
            Some(fit.net.forward_split(&batch.input, true)?.ok_or_else(|| {
                TrainError::config(
                    "weighting.on",
                    "\"representation\" needs a network with one shared representation (hard sharing)",
                )
            })?)
        } else {
            None
        };
        let owned;
        let out = match &split {
            Some(s) => &s.output,
            None => {
                owned = fit.net.forward_t(&batch.input, true)?;
                &owned
            }
        };
        let parallel = Some(self.collective.as_ref()).filter(|c| c.ranks() > 1);
        let checked = match parallel {
            None => task_losses(fit.tasks, &run.active, out, batch, epoch, step)?
                .map(|l| (l, out.penalty.clone())),
            // Data parallelism: the global loss values, with this rank's share of the gradient.
            Some(c) => {
                let local = local_losses(fit.tasks, &run.active, out, batch)?;
                let global_len = batch_len.max(batch.indices.len());
                super::parallel::share_losses(
                    c,
                    &run.active,
                    local,
                    out.penalty.as_ref(),
                    batch.indices.len(),
                    global_len,
                    epoch,
                    step,
                )?
            }
        };
        let (losses, penalty) = match checked {
            Ok(lp) => lp,
            Err(e) => {
                self.config.on_non_finite.handle(e, &mut run.skipped)?;
                return Ok(false);
            }
        };
        if losses.tensors.is_empty() && penalty.is_none() {
            return Ok(false);
        }
        let mut rng = ChaCha8Rng::seed_from_u64(hash_seed(self.config.seed ^ step, "weighting"));
        let mut ctx = StepContext {
            trainable: &fit.params.trainable,
            shared: &fit.params.shared,
            last_shared: &fit.params.last_shared,
            // Under data parallelism the trainer applies the penalty's share itself.
            penalty: if parallel.is_some() {
                None
            } else {
                penalty.as_ref()
            },
            representation: split.as_ref().map(|s| Representation {
                leaf: &s.leaf,
                features: &s.features,
            }),
            rng: &mut rng,
            epoch,
            step,
            collective: parallel,
            reduced: Vec::new(),
        };
        let mut update = match parallel {
            Some(c) if losses.tensors.is_empty() => {
                // Only the penalty: no weighting to run.
                let grads = super::parallel::reduce_grads(
                    c,
                    &fit.params.trainable,
                    None,
                    &[],
                    penalty.as_ref(),
                )?;
                tandem_optim::Update {
                    grads,
                    weights: TaskMap::new(),
                }
            }
            Some(c) => {
                let update = self.weighting.backward(&losses.tensors, &mut ctx)?;
                let reduced = std::mem::take(&mut ctx.reduced);
                let grads = super::parallel::reduce_grads(
                    c,
                    &fit.params.trainable,
                    Some(update.grads),
                    &reduced,
                    penalty.as_ref(),
                )?;
                tandem_optim::Update {
                    grads,
                    weights: update.weights,
                }
            }
            None => self.weighting.backward(&losses.tensors, &mut ctx)?,
        };
        match grad_norm(&fit.params.trainable, &update.grads)? {
            Err(var) => {
                let task = match fit.params.owner(&var) {
                    Some(t) => t.to_string(),
                    None => format!(
                        "shared by {}",
                        losses.tensors.keys().collect::<Vec<_>>().join(", ")
                    ),
                };
                let e = non_finite(&format!("gradient of {var}"), &task, epoch, step);
                self.config.on_non_finite.handle(e, &mut run.skipped)?;
                return Ok(false);
            }
            Ok(norm) => {
                if let Some(max) = self.config.grad_clip_norm {
                    clip(&fit.params.trainable, &mut update.grads, norm, max)?;
                }
            }
        }
        for (name, value) in losses.values {
            run.add_loss(&name, value);
        }
        for (name, w) in update.weights.iter() {
            run.add_weight(name, *w);
        }
        run.lr = self.config.schedule.rate(
            fit.base_lr,
            step,
            fit.total_steps,
            fit.batches_per_epoch as u64,
        );
        fit.opt.step(&fit.params.trainable, &update.grads, run.lr)?;
        if let Some(c) = parallel {
            super::parallel::average_buffers(c, fit.vars)?;
        }
        Ok(true)
    }
}

/// The losses of the `active` tasks that have at least one labelled sample in `batch`, or the
/// error naming the first non-finite loss (or penalty).
fn task_losses(
    tasks: &TaskSet,
    active: &[String],
    out: &NetOutput,
    batch: &Batch,
    epoch: usize,
    step: u64,
) -> Result<std::result::Result<Losses, TrainError>> {
    let losses = local_losses(tasks, active, out, batch)?;
    if let Some((name, _)) = losses.values.iter().find(|(_, v)| !v.is_finite()) {
        return Ok(Err(non_finite("loss", name, epoch, step)));
    }
    if let Some(p) = &out.penalty {
        if !is_finite(p)? {
            return Ok(Err(non_finite("penalty", &active.join(", "), epoch, step)));
        }
    }
    Ok(Ok(losses))
}

/// The losses of the `active` tasks that have at least one labelled sample in `batch`, with
/// their values and labelled counts (finite or not).
fn local_losses(
    tasks: &TaskSet,
    active: &[String],
    out: &NetOutput,
    batch: &Batch,
) -> Result<Losses> {
    let mut losses = Losses {
        tensors: TaskMap::new(),
        values: Vec::new(),
        labelled: Vec::new(),
    };
    let batch_losses = crate::batch_losses(tasks, active.iter().map(String::as_str), out, batch)?;
    for (name, l) in batch_losses {
        let value = f64::from(l.loss.to_scalar::<f32>()?);
        losses.values.push((name.clone(), value));
        losses.labelled.push(f64::from(l.labelled));
        losses.tensors.insert(name, l.loss);
    }
    Ok(losses)
}

pub(super) fn non_finite(what: &str, task: &str, epoch: usize, step: u64) -> TrainError {
    TrainError::NonFinite {
        what: what.into(),
        task: task.into(),
        epoch,
        step,
    }
}

/// The global L2 norm of the gradients of `vars`, or the name of the first variable whose
/// gradient holds a NaN or an infinity.
fn grad_norm(
    vars: &[(String, Var)],
    grads: &GradStore,
) -> Result<std::result::Result<f64, String>> {
    let mut total = 0.0f64;
    for (name, var) in vars {
        let Some(g) = grads.get(var.as_tensor()) else {
            continue;
        };
        let sq = f64::from(
            g.sqr()?
                .sum_all()?
                .to_dtype(DType::F32)?
                .to_scalar::<f32>()?,
        );
        if !sq.is_finite() {
            // Squares of large finite values can overflow f32: decide on the values themselves.
            if !is_finite(g)? {
                return Ok(Err(name.clone()));
            }
            let g64 = g.to_dtype(DType::F64)?;
            total += g64.sqr()?.sum_all()?.to_scalar::<f64>()?;
        } else {
            total += sq;
        }
    }
    Ok(Ok(total.sqrt()))
}

/// Scales every gradient by `max / (norm + 1e-6)` when `norm > max` (PyTorch's
/// `clip_grad_norm_`).
fn clip(vars: &[(String, Var)], grads: &mut GradStore, norm: f64, max: f64) -> Result<()> {
    let coef = max / (norm + 1e-6);
    if coef >= 1.0 {
        return Ok(());
    }
    for (_, var) in vars {
        if let Some(g) = grads.get(var.as_tensor()) {
            let scaled = (g * coef)?;
            grads.insert(var.as_tensor(), scaled);
        }
    }
    Ok(())
}
