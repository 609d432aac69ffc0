//! Loss weighting: how per-task losses become one update.
//!
//! A [`Weighting`] owns the backward pass (as LibMTL's `AbsWeighting` does), so methods that
//! weight losses and methods that operate on gradients fit the same trait. It returns an
//! [`Update`]: the gradients to apply and the task weights it used (logged to the history).
//! The trainer never branches on which weighting it holds.
//!
//! | weighting | objective / update | backward passes per step |
//! |---|---|---|
//! | [`Equal`] | `Σ_t L_t` | 1 |
//! | [`Static`] | `Σ_t λ_t L_t` | 1 |
//! | [`Uncertainty`] | `Σ_t c_t e^{−s_t} L_t + ½ s_t`, `c_t = ½` (regression) or 1 | 1 |
//! | [`Dwa`] | `Σ_t λ_t(e) L_t`, `λ = K·softmax(w/T)`, `w_k = L_k(e−1)/L_k(e−2)` | 1 |
//! | [`GradNorm`] | `Σ_t w_t L_t`, `w` moved to balance `‖∇_W w_t L_t‖` | T |
//! | [`PcGrad`] | `Σ_t g_t` after projecting conflicting shared gradients | T |
//!
//! Weightings with state beyond the model's variables expose it as plain JSON through
//! [`Weighting::state`] / [`Weighting::load_state`], so a resumed run continues exactly.
//!
//! ## Data parallelism
//! Under data parallelism ([`StepContext::collective`] with `R > 1` ranks) each rank holds a
//! contiguous shard of the global batch. The trainer hands every weighting losses whose
//! **value is the global loss** `L_t = Σ_r (n_{r,t}/N_t) L_{r,t}` (the same bits on every rank)
//! and whose **gradient is the rank's share** `(n_{r,t}/N_t) ∇L_{r,t}`; the shares of the ranks
//! add up to the global gradient. So a loss-level method, whatever function of the loss values
//! it forms, computes the same weights on every rank and returns its rank's share of the global
//! update, which the trainer sums over the ranks. A gradient method needs the global per-task
//! gradients before it aggregates (the Gramian of a sum is not the sum of the Gramians): it
//! calls [`StepContext::reduce_rows`] on its per-task stores, which sums the rows of the shared
//! variables over the ranks and records them in [`StepContext::reduced`], so the trainer does
//! not sum them again. In representation mode the rows of different ranks are disjoint
//! coordinates of one Jacobian, so the `T × T` Gramian is the sum of the ranks' Gramians.
//! Under data parallelism the trainer applies the penalty ([`StepContext::penalty`] is `None`).
use candle_core::backprop::GradStore;
use candle_core::{Tensor, TensorId, Var};
use rand_chacha::ChaCha8Rng;
use tandem_tensor::{Collective, TaskMap};

mod aggregator;
mod config;
mod dwa;
mod equal;
mod fixed;
mod gradnorm;
pub mod linalg;
pub mod mean;
pub mod mgda;
pub mod rows;
// TorchJD family modules
pub mod aligned_mtl;
pub mod cagrad;
pub mod con_fig;
pub mod dualproj;
pub mod fairgrad;
pub mod imtl;
pub mod imtl_g;
pub mod nash_mtl;
pub mod upgrad;
// LibMTL gradient family modules
pub mod db_mtl;
pub mod excess_mtl;
pub mod graddrop;
pub mod gradvac;
pub mod moco;
pub mod modo;
pub mod sdmgrad;
// loss-level family modules
pub mod aux_project;
pub mod gcs;
pub mod main_aux;
pub mod ol_aux;

pub mod famo;
pub mod gls;
pub mod imtl_l;
mod pcgrad;
mod per_task;
pub mod rlw;
pub mod scale_invariant;
pub mod stch;

pub use per_task::{combine, flat, per_task_grads, unflatten_into};
mod uncertainty;

pub use aggregator::{
    aggregate_rows, row_names, Aggregation, Aggregator, AggregatorInput, GradientWeighting, On,
    Representation,
};
pub use config::{MethodConfig, WeightingConfig};
pub use dwa::Dwa;
pub use equal::Equal;
pub use fixed::Static;
pub use gradnorm::{GradNorm, GradNormState, GradNormUpdate};
pub use pcgrad::{project_conflicting, PcGrad};
pub use uncertainty::Uncertainty;

/// What a weighting may look at during one step.
pub struct StepContext<'a> {
    /// Every variable the optimizer updates this step (sorted by name; stopped tasks' variables
    /// excluded). Methods that assemble gradients from per-task backward passes fill these.
    pub trainable: &'a [(String, Var)],
    /// Shared parameters (sorted by name).
    pub shared: &'a [(String, Var)],
    /// The last shared layer's parameters (GradNorm's `W`).
    pub last_shared: &'a [(String, Var)],
    /// A penalty the trainer adds to the objective unweighted (soft sharing's tie), if any.
    /// A weighting never adds it itself: it gets gradients through [`StepContext::backward`]
    /// (loss-level methods) or [`StepContext::combine`] (gradient methods), which add it.
    pub penalty: Option<&'a Tensor>,
    /// The shared representation, cut from the trunk's graph, when the weighting asked for it
    /// ([`Weighting::wants_representation`]) and the network has one.
    pub representation: Option<Representation<'a>>,
    /// A RNG seeded from the run seed and the step, for randomised methods.
    pub rng: &'a mut ChaCha8Rng,
    /// Current epoch (0-based).
    pub epoch: usize,
    /// Optimizer steps taken so far.
    pub step: u64,
    /// The ranks of a data-parallel run; `None` for one process (see the module docs).
    pub collective: Option<&'a dyn Collective>,
    /// Variables whose gradients in the returned [`Update`] already are sums over the ranks
    /// (filled by [`StepContext::reduce_rows`]); the trainer sums every other gradient.
    pub reduced: Vec<TensorId>,
}

impl<'a> StepContext<'a> {
    /// The collective of a data-parallel run with more than one rank (`None` otherwise).
    pub fn parallel(&self) -> Option<&'a dyn Collective> {
        self.collective.filter(|c| c.ranks() > 1)
    }

    /// Under data parallelism: replaces the gradients of `vars` in every per-task store by
    /// their sums over the ranks (one collective sum of `T · |vars|` values and a presence
    /// flag each) and records `vars` in [`StepContext::reduced`]. A variable no rank's store
    /// has a gradient for keeps none. Nothing happens in a run of one process.
    pub fn reduce_rows(
        &mut self,
        stores: &mut [(String, GradStore)],
        vars: &[(String, Var)],
    ) -> candle_core::Result<()> {
        let Some(c) = self.parallel() else {
            return Ok(());
        };
        let mut buf = Vec::new();
        for (_, store) in stores.iter() {
            for (_, var) in vars {
                match store.get(var.as_tensor()) {
                    Some(g) => {
                        buf.push(1.0);
                        buf.extend(
                            g.flatten_all()?
                                .to_dtype(candle_core::DType::F64)?
                                .to_vec1::<f64>()?,
                        );
                    }
                    None => {
                        buf.push(0.0);
                        buf.resize(buf.len() + var.elem_count(), 0.0);
                    }
                }
            }
        }
        c.sum(&mut buf)
            .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        let mut offset = 0;
        for (_, store) in stores.iter_mut() {
            for (_, var) in vars {
                let n = var.elem_count();
                let present = buf[offset] > 0.0;
                let chunk = &buf[offset + 1..offset + 1 + n];
                offset += n + 1;
                if present {
                    let g = Tensor::from_slice(chunk, var.shape(), var.device())?
                        .to_dtype(var.dtype())?;
                    store.insert(var.as_tensor(), g);
                } else {
                    store.remove(var.as_tensor());
                }
            }
        }
        for (_, var) in vars {
            if !self.reduced.contains(&var.id()) {
                self.reduced.push(var.id());
            }
        }
        Ok(())
    }

    /// The gradients of a loss-level method's `objective` with the trainer's penalty added:
    /// one backward pass of `objective + penalty` (of `objective` alone without a penalty).
    pub fn backward(&self, objective: Tensor) -> candle_core::Result<GradStore> {
        match self.penalty {
            Some(p) => (objective + p)?.backward(),
            None => objective.backward(),
        }
    }

    /// The penalty's own gradients (`None` without a penalty), for a gradient method that
    /// assembles its update from per-task gradients and needs the penalty's share of the
    /// shared parameters (PCGrad); pass them on to [`combine`].
    pub fn penalty_grads(&self) -> candle_core::Result<Option<GradStore>> {
        self.penalty.map(Tensor::backward).transpose()
    }

    /// `Σ_t w_t ∇L_t + ∇penalty` for every trainable variable, from per-task gradient stores
    /// (see [`per_task_grads`]): the update of a gradient method, penalty included.
    pub fn combine(
        &self,
        stores: Vec<(String, GradStore)>,
        weights: &TaskMap<f64>,
    ) -> candle_core::Result<GradStore> {
        combine(stores, weights, self.trainable, self.penalty_grads()?)
    }
}

/// The result of a weighting's backward pass.
pub struct Update {
    /// Gradients of every trainable variable.
    pub grads: GradStore,
    /// The weight each task's loss received.
    pub weights: TaskMap<f64>,
}

/// How per-task losses become one update.
pub trait Weighting: Send {
    /// A short name (`equal`, `static`, ...).
    fn name(&self) -> &str;

    /// Combines `losses` (the active tasks' scalar losses, in task order) into gradients.
    fn backward(
        &mut self,
        losses: &TaskMap<Tensor>,
        ctx: &mut StepContext,
    ) -> candle_core::Result<Update>;

    /// `true` when the method takes its gradients on the shared representation: the trainer
    /// then runs the network with its graph cut after the trunk and fills
    /// [`StepContext::representation`].
    fn wants_representation(&self) -> bool {
        false
    }

    /// Called after each epoch with the mean (unweighted) training loss of every active task;
    /// a task absent from `train_losses` has been stopped or had no labels.
    fn end_epoch(
        &mut self,
        _epoch: usize,
        _train_losses: &TaskMap<f64>,
    ) -> candle_core::Result<()> {
        Ok(())
    }

    /// State beyond the model's variables, as plain JSON (`null` for stateless methods; see
    /// [`crate::state`]).
    fn state(&self) -> crate::Result<serde_json::Value> {
        Ok(serde_json::Value::Null)
    }

    /// Restores a state returned by [`Weighting::state`].
    fn load_state(&mut self, _state: &serde_json::Value) -> crate::Result<()> {
        Ok(())
    }
}

/// `Σ_t w_t · L_t`, summed in task order (a task without a weight counts once); the objective
/// of a loss-level method, to pass to [`StepContext::backward`].
///
/// ```
/// use candle_core::{Device, Tensor};
/// use tandem_optim::weighting::weighted_sum;
/// use tandem_tensor::TaskMap;
/// let dev = Device::Cpu;
/// let losses = TaskMap::new()
///     .with("a", Tensor::new(2f32, &dev)?)
///     .with("b", Tensor::new(4f32, &dev)?);
/// let weights = TaskMap::new().with("a", 0.5).with("b", 0.25);
/// assert_eq!(weighted_sum(&losses, &weights)?.to_scalar::<f32>()?, 2.0);
/// # Ok::<(), candle_core::Error>(())
/// ```
pub fn weighted_sum(
    losses: &TaskMap<Tensor>,
    weights: &TaskMap<f64>,
) -> candle_core::Result<Tensor> {
    let mut total: Option<Tensor> = None;
    for (name, loss) in losses.iter() {
        let w = weights.get(name).copied().unwrap_or(1.0);
        let term = (loss * w)?;
        total = Some(match total {
            None => term,
            Some(t) => (t + term)?,
        });
    }
    match total {
        Some(t) => Ok(t),
        None => candle_core::bail!("no loss to optimise: every task is stopped"),
    }
}
