//! Metric accumulators.
use candle_core::{Result, Tensor};
use std::collections::BTreeMap;
use tandem_tensor::Target;

/// Metric values by name (e.g. `nme`, `failure_rate`), percentages as numbers.
pub type MetricValues = BTreeMap<String, f64>;

/// Accumulates a task's metrics over batches.
pub trait Metric: Send {
    /// Adds one batch of predictions and targets.
    fn update(&mut self, prediction: &Tensor, target: &Target) -> Result<()>;
    /// The metrics over every sample seen so far. Empty when no labelled sample was seen.
    fn compute(&self) -> MetricValues;
}

/// The per-sample label mask as a `Vec<bool>` (all true without a mask).
pub(crate) fn mask_vec(target: &Target, b: usize) -> Result<Vec<bool>> {
    match &target.mask {
        None => Ok(vec![true; b]),
        Some(m) => Ok(m.to_vec1::<f32>()?.into_iter().map(|v| v > 0.5).collect()),
    }
}

/// Masked mean of per-sample losses `[B]`: `Σ m_i l_i / max(Σ m_i, 1)`; the plain mean without
/// a mask. With an all-zero mask the result is 0 and its gradient is zero.
pub(crate) fn masked_mean(per_sample: &Tensor, target: &Target) -> Result<Tensor> {
    match &target.mask {
        None => per_sample.mean_all(),
        Some(m) => {
            let n = m.sum_all()?.to_scalar::<f32>()?.max(1.0);
            (per_sample * m)?.sum_all()?.affine(1.0 / f64::from(n), 0.0)
        }
    }
}
