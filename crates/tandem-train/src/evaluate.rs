//! Evaluation of a network on a data set: per-task mean loss and metrics.
use crate::Result;
use candle_core::Device;
use tandem_data::{Batcher, Dataset};
use tandem_heads::{MetricValues, TaskSet};
use tandem_share::MultiTaskNet;
use tandem_tensor::TaskMap;

/// Per-task results of one evaluation pass.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Evaluation {
    /// Mean loss per labelled sample, per task.
    pub losses: TaskMap<f64>,
    /// Metrics per task.
    pub metrics: TaskMap<MetricValues>,
}

/// Runs `net` in evaluation mode over every sample of `data` (in order, batches from `batcher`)
/// and scores every task of `tasks`.
pub fn evaluate(
    net: &dyn MultiTaskNet,
    tasks: &TaskSet,
    data: &dyn Dataset,
    batcher: &Batcher,
    device: &Device,
) -> Result<Evaluation> {
    let mut metrics = tasks.as_map().map(|_, t| t.metrics());
    let mut loss_sum = tasks.as_map().map(|_, _| 0.0f64);
    let mut labelled = tasks.as_map().map(|_, _| 0.0f64);
    for batch in batcher.iter(data, 0, device) {
        let batch = batch?;
        let out = net.forward_t(&batch.input, false)?;
        let losses = crate::batch_losses(tasks, tasks.names(), &out, &batch)?;
        for (name, l) in losses.iter() {
            let n = f64::from(l.labelled);
            let value = f64::from(l.loss.to_scalar::<f32>()?);
            if let (Some(s), Some(c)) = (loss_sum.get_mut(name), labelled.get_mut(name)) {
                *s += value * n;
                *c += n;
            }
            if let (Some(m), Some(pred), Some(target)) = (
                metrics.get_mut(name),
                out.predictions.get(name),
                batch.targets.get(name),
            ) {
                m.update(pred, target)?;
            }
        }
    }
    Ok(Evaluation {
        losses: loss_sum.map(|n, s| s / labelled.get(n).copied().unwrap_or(1.0).max(1.0)),
        metrics: metrics.map(|_, m| m.compute()),
    })
}
