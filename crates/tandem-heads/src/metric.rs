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

/// The per-sample label mask of `target` as a `Vec<bool>` of length `b`: `true` where the mask
/// is above 0.5 (labelled), all `true` without a mask.
///
/// For a [`Metric`] of one's own, to skip unlabelled samples in [`Metric::update`]. It reads
/// the mask back to the host (a device sync on a GPU).
///
/// ```
/// use candle_core::{Device, Tensor};
/// use tandem_heads::{mask_vec, Target};
/// let dev = Device::Cpu;
/// let t = Target::masked(Tensor::zeros(3, candle_core::DType::F32, &dev)?,
///                        Tensor::new(&[1f32, 0., 1.], &dev)?);
/// assert_eq!(mask_vec(&t, 3)?, [true, false, true]);
/// assert_eq!(mask_vec(&Target::new(t.values.clone()), 2)?, [true, true]);
/// # Ok::<(), candle_core::Error>(())
/// ```
pub fn mask_vec(target: &Target, b: usize) -> Result<Vec<bool>> {
    match &target.mask {
        None => Ok(vec![true; b]),
        Some(m) => Ok(m.to_vec1::<f32>()?.into_iter().map(|v| v > 0.5).collect()),
    }
}

/// Masked mean of per-sample losses `[B]`: `Σ m_i l_i / max(Σ m_i, 1)` with the `[B]` mask `m`
/// of `target`; the plain mean `(1/B) Σ l_i` without a mask. With an all-zero mask the result
/// is 0 and its gradient is zero.
///
/// The last step of every loss in this crate, and of a [`Task::loss`](crate::Task::loss) of
/// one's own: compute one loss per sample, then reduce with this so that unlabelled samples
/// count for nothing. Per-sample losses of unlabelled samples must be finite (`0 · NaN` is
/// NaN). It reads `Σ m_i` back to the host (a device sync on a GPU).
///
/// ```
/// use candle_core::{Device, Tensor};
/// use tandem_heads::{masked_mean, Target};
/// let dev = Device::Cpu;
/// let per_sample = Tensor::new(&[1f32, 100., 3.], &dev)?;
/// let t = Target::masked(per_sample.clone(), Tensor::new(&[1f32, 0., 1.], &dev)?);
/// assert_eq!(masked_mean(&per_sample, &t)?.to_scalar::<f32>()?, 2.0);
/// # Ok::<(), candle_core::Error>(())
/// ```
pub fn masked_mean(per_sample: &Tensor, target: &Target) -> Result<Tensor> {
    match &target.mask {
        None => per_sample.mean_all(),
        Some(m) => {
            let n = m.sum_all()?.to_scalar::<f32>()?.max(1.0);
            (per_sample * m)?.sum_all()?.affine(1.0 / f64::from(n), 0.0)
        }
    }
}

/// Errors, naming `task`, unless the mask of `target` is absent or `[b]`.
pub(crate) fn check_mask(task: &str, target: &Target, b: usize) -> Result<()> {
    match &target.mask {
        Some(m) if m.dims() != [b] => candle_core::bail!(
            "task {task}: mask {:?} must be [{b}], one entry per sample",
            m.dims()
        ),
        _ => Ok(()),
    }
}
