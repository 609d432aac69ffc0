//! [`Columns`]: one column (a backbone) and one head per task, what [`Independent`],
//! [`SoftSharing`] and [`CrossStitch`] are made of; they differ only in what links the columns.
//!
//! Names: task `t`'s column under `<prefix>.columns.<t>`, its head under `<prefix>.heads.<t>`,
//! so the three start from the same weights under one seed.
//!
//! [`Independent`]: crate::Independent
//! [`SoftSharing`]: crate::SoftSharing
//! [`CrossStitch`]: crate::CrossStitch
use crate::{Result, ShareError};
use candle_core::Tensor;
use candle_nn::VarBuilder;
use tandem_heads::{Head, TaskSet};
use tandem_layers::Backbone;
use tandem_tensor::TaskMap;

/// A column and a head per task, in task order.
pub(crate) struct Columns<B: Backbone> {
    /// Per task: its column and its head.
    nets: TaskMap<(B, Head)>,
    /// Per task: the column's and the head's variable prefixes.
    prefixes: TaskMap<(String, String)>,
}

impl<B: Backbone> Columns<B> {
    /// Builds one column per task with `build(vb.pp("columns").pp(task))` and its head under
    /// `vb.pp("heads").pp(task)`.
    pub(crate) fn new<E>(
        tasks: &TaskSet,
        vb: VarBuilder,
        mut build: impl FnMut(VarBuilder) -> std::result::Result<B, E>,
    ) -> Result<Self>
    where
        ShareError: From<E>,
    {
        let mut nets = TaskMap::new();
        let mut prefixes = TaskMap::new();
        for task in tasks.iter() {
            let cvb = vb.pp("columns").pp(task.name());
            let hvb = vb.pp("heads").pp(task.name());
            prefixes.insert(task.name(), (cvb.prefix(), hvb.prefix()));
            let column = build(cvb)?;
            let head = task.build_head(column.out_dim(), hvb)?;
            nets.insert(task.name(), (column, head));
        }
        Ok(Self { nets, prefixes })
    }

    /// The number of columns (tasks).
    pub(crate) fn len(&self) -> usize {
        self.nets.len()
    }

    /// The column of `task`.
    pub(crate) fn column(&self, task: &str) -> Option<&B> {
        self.nets.get(task).map(|(c, _)| c)
    }

    /// The columns, in task order.
    pub(crate) fn backbones(&self) -> impl Iterator<Item = &B> {
        self.nets.values().map(|(c, _)| c)
    }

    /// The first column, or an error saying that `what` needs at least one task.
    pub(crate) fn first(&self, what: &str) -> Result<&B> {
        self.backbones()
            .next()
            .ok_or_else(|| ShareError::Config(format!("{what} needs at least one task")))
    }

    /// Per task, in task order: its name, its column and its head's prefix.
    pub(crate) fn entries(&self) -> impl Iterator<Item = (&str, &B, &str)> {
        self.nets
            .iter()
            .zip(self.prefixes.values())
            .map(|((name, (c, _)), (_, head))| (name, c, head.as_str()))
    }

    /// `tasks[t] = [columns.<t>, heads.<t>]`: each task owns its whole column and its head.
    pub(crate) fn task_groups(&self) -> TaskMap<Vec<String>> {
        self.prefixes.map(|_, (c, h)| vec![c.clone(), h.clone()])
    }

    /// Every column whole on `input`, then its head: the predictions of independent columns.
    pub(crate) fn forward_t(
        &self,
        input: &Tensor,
        train: bool,
    ) -> candle_core::Result<TaskMap<Tensor>> {
        self.nets
            .try_map(|_, (c, h)| h.forward(&c.forward_t(input, train)?))
    }

    /// Stage `k` of every column on that column's input `xs[i]`, in place.
    pub(crate) fn forward_stage(
        &self,
        k: usize,
        xs: &mut [Tensor],
        train: bool,
    ) -> candle_core::Result<()> {
        for (c, x) in self.backbones().zip(xs.iter_mut()) {
            *x = c.forward_stage(k, x, train)?;
        }
        Ok(())
    }

    /// Each head on its column's features `xs[i]`: the predictions.
    pub(crate) fn predict(&self, xs: &[Tensor]) -> candle_core::Result<TaskMap<Tensor>> {
        let mut predictions = TaskMap::new();
        for ((name, (_, head)), x) in self.nets.iter().zip(xs) {
            predictions.insert(name, head.forward(x)?);
        }
        Ok(predictions)
    }
}
