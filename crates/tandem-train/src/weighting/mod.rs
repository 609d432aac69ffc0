//! Loss weighting: how per-task losses become one update.
//!
//! A [`Weighting`] owns the backward pass (as LibMTL's `AbsWeighting` does), so methods that
//! weight losses and methods that operate on gradients fit the same trait. It returns an
//! [`Update`]: the gradients to apply and the task weights it used (logged to the history).
//! The trainer never branches on which weighting it holds.
use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};
use rand_chacha::ChaCha8Rng;
use tandem_tensor::TaskMap;

mod equal;
mod fixed;

pub use equal::Equal;
pub use fixed::Static;

/// What a weighting may look at during one step.
pub struct StepContext<'a> {
    /// Shared parameters (sorted by name).
    pub shared: &'a [(String, Var)],
    /// The last shared layer's parameters (GradNorm's `W`).
    pub last_shared: &'a [(String, Var)],
    /// A penalty to add to the objective unweighted (soft sharing's tie), if any.
    pub penalty: Option<&'a Tensor>,
    /// A RNG seeded from the run seed and the step, for randomised methods.
    pub rng: &'a mut ChaCha8Rng,
    /// Current epoch (0-based).
    pub epoch: usize,
    /// Optimizer steps taken so far.
    pub step: u64,
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

    /// Called after each epoch with the mean training loss of every active task.
    fn end_epoch(
        &mut self,
        _epoch: usize,
        _train_losses: &TaskMap<f64>,
    ) -> candle_core::Result<()> {
        Ok(())
    }
}

/// `Σ_t w_t · L_t + penalty`, summed in task order.
pub(crate) fn weighted_sum(
    losses: &TaskMap<Tensor>,
    weights: &TaskMap<f64>,
    penalty: Option<&Tensor>,
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
    if let Some(p) = penalty {
        total = Some(match total {
            None => p.clone(),
            Some(t) => (t + p)?,
        });
    }
    match total {
        Some(t) => Ok(t),
        None => candle_core::bail!("no loss to optimise: every task is stopped"),
    }
}
