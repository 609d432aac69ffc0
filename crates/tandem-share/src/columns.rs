//! [`Columns`]: columns (backbones) and one head per task, what [`Independent`],
//! [`SoftSharing`] and [`CrossStitch`] are made of; they differ only in what links the columns.
//!
//! By default every task has a column of its own. A cross-stitch network may instead give a
//! group of tasks one column, shared by their heads (hard sharing inside the group).
//!
//! Names: the column of task `t` under `<prefix>.columns.<t>` (of a group `a, b, …` under
//! `<prefix>.columns.<a>+<b>+…`), the head of task `t` under `<prefix>.heads.<t>`, so the
//! strategies start from the same weights under one seed.
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

/// One column of [`Columns`]: its backbone, its variable prefix and the tasks it serves.
pub(crate) struct Column<B> {
    pub(crate) net: B,
    pub(crate) prefix: String,
    pub(crate) tasks: Vec<String>,
}

/// Columns in order of their first task, and a head per task, in task order.
pub(crate) struct Columns<B: Backbone> {
    columns: Vec<Column<B>>,
    /// Per task: the index of its column, its head and the head's variable prefix.
    heads: TaskMap<(usize, Head, String)>,
}

/// For each of `names` (in order), the index of the group of `groups` it belongs to, if any;
/// an error names a group with no task, an unknown task, or a task in two groups.
pub(crate) fn group_of_tasks(groups: &[Vec<String>], names: &[&str]) -> Result<Vec<Option<usize>>> {
    let mut group_of: Vec<Option<usize>> = vec![None; names.len()];
    for (g, group) in groups.iter().enumerate() {
        if group.is_empty() {
            return Err(ShareError::Config(format!("column group {g} has no task")));
        }
        for name in group {
            let i = names.iter().position(|n| n == name).ok_or_else(|| {
                ShareError::Config(format!(
                    "column group {g} names task {name:?}, which the model does not have"
                ))
            })?;
            if group_of[i].replace(g).is_some() {
                return Err(ShareError::Config(format!(
                    "task {name:?} is in two column groups"
                )));
            }
        }
    }
    Ok(group_of)
}

impl<B: Backbone> Columns<B> {
    /// Builds one column per task with `build(vb.pp("columns").pp(task))` and its head under
    /// `vb.pp("heads").pp(task)`.
    pub(crate) fn new<E>(
        tasks: &TaskSet,
        vb: VarBuilder,
        build: impl FnMut(VarBuilder) -> std::result::Result<B, E>,
    ) -> Result<Self>
    where
        ShareError: From<E>,
    {
        Self::grouped(tasks, &[], vb, build)
    }

    /// Like [`Columns::new`], but each group of `groups` (task names) shares one column, named
    /// by its tasks joined with `+`. Tasks in no group get a column of their own. Fails on an
    /// unknown task, a task in two groups, or an empty group.
    pub(crate) fn grouped<E>(
        tasks: &TaskSet,
        groups: &[Vec<String>],
        vb: VarBuilder,
        mut build: impl FnMut(VarBuilder) -> std::result::Result<B, E>,
    ) -> Result<Self>
    where
        ShareError: From<E>,
    {
        let names: Vec<&str> = tasks.iter().map(|t| t.name()).collect();
        let group_of = group_of_tasks(groups, &names)?;
        let mut columns: Vec<Column<B>> = Vec::new();
        let mut column_of_group: Vec<Option<usize>> = vec![None; groups.len()];
        let mut heads = TaskMap::new();
        for (i, task) in tasks.iter().enumerate() {
            let existing = group_of[i].and_then(|g| column_of_group[g]);
            let c = match existing {
                Some(c) => c,
                None => {
                    let members: Vec<String> = match group_of[i] {
                        Some(g) => names
                            .iter()
                            .enumerate()
                            .filter(|&(j, _)| group_of[j] == Some(g))
                            .map(|(_, n)| n.to_string())
                            .collect(),
                        None => vec![task.name().to_string()],
                    };
                    let cvb = vb.pp("columns").pp(members.join("+"));
                    columns.push(Column {
                        prefix: cvb.prefix(),
                        net: build(cvb)?,
                        tasks: members,
                    });
                    if let Some(g) = group_of[i] {
                        column_of_group[g] = Some(columns.len() - 1);
                    }
                    columns.len() - 1
                }
            };
            let hvb = vb.pp("heads").pp(task.name());
            let prefix = hvb.prefix();
            let head = task.build_head(columns[c].net.out_dim(), hvb)?;
            heads.insert(task.name(), (c, head, prefix));
        }
        Ok(Self { columns, heads })
    }

    /// The number of columns.
    pub(crate) fn len(&self) -> usize {
        self.columns.len()
    }

    /// The column that `task`'s head reads.
    pub(crate) fn column(&self, task: &str) -> Option<&B> {
        self.heads.get(task).map(|(c, _, _)| &self.columns[*c].net)
    }

    /// The columns, in order.
    pub(crate) fn backbones(&self) -> impl Iterator<Item = &B> {
        self.columns.iter().map(|c| &c.net)
    }

    /// The columns with their prefixes and tasks, in order.
    pub(crate) fn columns(&self) -> &[Column<B>] {
        &self.columns
    }

    /// The first column, or an error saying that `what` needs at least one task.
    pub(crate) fn first(&self, what: &str) -> Result<&B> {
        self.backbones()
            .next()
            .ok_or_else(|| ShareError::Config(format!("{what} needs at least one task")))
    }

    /// Per task, in task order: its head's prefix.
    pub(crate) fn head_prefixes(&self) -> TaskMap<String> {
        self.heads.map(|_, (_, _, p)| p.clone())
    }

    /// `tasks[t] = [columns.<t>, heads.<t>]`: each task owns its whole column and its head
    /// (one column per task).
    pub(crate) fn task_groups(&self) -> TaskMap<Vec<String>> {
        self.heads
            .map(|_, (c, _, h)| vec![self.columns[*c].prefix.clone(), h.clone()])
    }

    /// Every column whole on `input`, then the heads: the predictions of independent columns.
    pub(crate) fn forward_t(
        &self,
        input: &Tensor,
        train: bool,
    ) -> candle_core::Result<TaskMap<Tensor>> {
        let xs = self
            .columns
            .iter()
            .map(|c| c.net.forward_t(input, train))
            .collect::<candle_core::Result<Vec<_>>>()?;
        self.predict(&xs)
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

    /// Each head on its column's features (`xs[i]` for column `i`): the predictions.
    pub(crate) fn predict(&self, xs: &[Tensor]) -> candle_core::Result<TaskMap<Tensor>> {
        self.heads.try_map(|_, (c, head, _)| head.forward(&xs[*c]))
    }
}
