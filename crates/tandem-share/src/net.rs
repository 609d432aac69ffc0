//! The [`MultiTaskNet`] trait.
use candle_core::{Result, Tensor};
use tandem_tensor::TaskMap;

/// What a multi-task network returns for a batch.
#[derive(Debug, Clone)]
pub struct NetOutput {
    /// Predictions per task, `[B, out_dim]` each, in task order.
    pub predictions: TaskMap<Tensor>,
    /// A scalar the trainer adds to the objective (e.g. soft sharing's L2 tie); `None` when the
    /// strategy has none.
    pub penalty: Option<Tensor>,
}

/// Parameter groups of a network, as `VarBuilder` path prefixes (a prefix `p` covers the
/// variable `p` and every `p.*`). Resolve them against the `VarMap` with
/// [`tandem_tensor::select_vars`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParamGroups {
    /// What gradient-based weightings (GradNorm, PCGrad) treat as shared: the parameters
    /// several tasks' losses reach (hard sharing's trunk; a cross-stitch network's columns up to
    /// the last unit, and the units) or, in soft sharing, the tied layers of every column (each
    /// task's loss reaches only its own copy; the tie couples them).
    pub shared: Vec<String>,
    /// The last shared layer (GradNorm's `W`).
    pub last_shared: Vec<String>,
    /// Parameters that belong to one task only (its head, its column): frozen when the task is
    /// stopped.
    pub tasks: TaskMap<Vec<String>>,
}

/// A network that predicts several tasks from one input.
pub trait MultiTaskNet: Send + Sync {
    /// Forward pass; `train` enables training-only behaviour.
    fn forward_t(&self, input: &Tensor, train: bool) -> Result<NetOutput>;

    /// The parameter groups (shared, last shared layer, per task).
    fn param_groups(&self) -> ParamGroups;

    /// Task names, in output order.
    fn task_names(&self) -> Vec<String> {
        self.param_groups().tasks.keys().map(String::from).collect()
    }
}
