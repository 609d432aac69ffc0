//! Equal weighting: `L = Σ_t L_t (+ penalty)`.
use super::{weighted_sum, StepContext, Update, Weighting};
use candle_core::Tensor;
use tandem_tensor::TaskMap;

/// Every task's loss counts once.
#[derive(Debug, Clone, Default)]
pub struct Equal;

impl Equal {
    /// Equal weights.
    pub fn new() -> Self {
        Self
    }
}

impl Weighting for Equal {
    fn name(&self) -> &str {
        "equal"
    }
    fn backward(
        &mut self,
        losses: &TaskMap<Tensor>,
        ctx: &mut StepContext,
    ) -> candle_core::Result<Update> {
        let weights = losses.map(|_, _| 1.0);
        let grads = ctx.backward(weighted_sum(losses, &weights)?)?;
        Ok(Update { grads, weights })
    }
}
