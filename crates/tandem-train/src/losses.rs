//! The losses of one batch: the one place that turns a network's output and a batch's targets
//! into per-task losses. The training step, evaluation and the refit phase all call
//! [`batch_losses`].
//!
//! For each task named (in the order given) that has a head in the network's output and a
//! target in the batch, the loss is `L_t = Task::loss(ŷ_t, y_t)`, a scalar averaged over the
//! task's labelled samples. A task with no labelled sample in the batch (partial labels) is
//! left out: it contributes no loss, no weight and no gradient.
use crate::Result;
use candle_core::Tensor;
use tandem_data::Batch;
use tandem_heads::TaskSet;
use tandem_share::NetOutput;
use tandem_tensor::TaskMap;

/// One task's loss on one batch.
#[derive(Debug, Clone)]
pub struct BatchLoss {
    /// The scalar loss `[]`, averaged over the labelled samples (differentiable).
    pub loss: Tensor,
    /// The number of labelled samples it averages over (≥ 1).
    pub labelled: f32,
}

/// The loss of every task of `names`, in that order, that has a prediction in `out`, a
/// target in `batch` and at least one labelled sample there.
///
/// ```
/// # use candle_core::{Device, Tensor};
/// # use tandem_data::Batch;
/// # use tandem_heads::{ClassTask, TaskSet};
/// # use tandem_share::NetOutput;
/// # use tandem_tensor::{Target, TaskMap};
/// use tandem_train::batch_losses;
/// let dev = Device::Cpu;
/// let tasks = TaskSet::new().with(ClassTask::new("smile", 2));
/// let out = NetOutput {
///     predictions: TaskMap::new().with("smile", Tensor::new(&[[0f32, 0.0]], &dev)?),
///     penalty: None,
/// };
/// let batch = Batch {
///     input: Tensor::zeros((1, 1, 1, 1), candle_core::DType::F32, &dev)?,
///     targets: TaskMap::new().with("smile", Target::new(Tensor::new(&[1u32], &dev)?)),
///     indices: vec![0],
/// };
/// let losses = batch_losses(&tasks, ["smile"], &out, &batch)?;
/// let l = losses["smile"].loss.to_scalar::<f32>()?;
/// assert!((l - 2f32.ln()).abs() < 1e-6); // −log ½
/// # Ok::<(), tandem_train::TrainError>(())
/// ```
pub fn batch_losses<'a>(
    tasks: &TaskSet,
    names: impl IntoIterator<Item = &'a str>,
    out: &NetOutput,
    batch: &Batch,
) -> Result<TaskMap<BatchLoss>> {
    let mut losses = TaskMap::new();
    for name in names {
        let (Some(task), Some(pred), Some(target)) = (
            tasks.get(name),
            out.predictions.get(name),
            batch.targets.get(name),
        ) else {
            continue;
        };
        let labelled = target.labelled()?;
        if labelled <= 0.0 {
            continue;
        }
        let loss = task.loss(pred, target)?;
        losses.insert(name, BatchLoss { loss, labelled });
    }
    Ok(losses)
}
