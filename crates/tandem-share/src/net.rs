//! The [`MultiTaskNet`] trait.
use candle_core::{Result, Tensor, Var};
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

/// A forward pass whose graph is cut after the shared trunk ([`MultiTaskNet::forward_split`]):
/// the heads read `leaf`, a variable holding the values of `features`, so a task loss's
/// backward pass stops at `leaf`, and one backward pass of `features · ∂L/∂z` carries a
/// combined representation gradient through the trunk (the representation mode of gradient
/// weightings, MGDA-UB).
#[derive(Debug, Clone)]
pub struct SplitOutput {
    /// Predictions (from `leaf`) and penalty, as [`MultiTaskNet::forward_t`] gives them.
    pub output: NetOutput,
    /// The shared representation `z = trunk(x)`, `[B, d]`, attached to the trunk's graph.
    pub features: Tensor,
    /// A leaf variable with the values of `features` that the heads consume.
    pub leaf: Var,
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

    /// The forward pass cut after the shared representation, or `None` when the network has no
    /// single representation that every task reads (independent columns, soft sharing,
    /// cross-stitch units). Hard sharing cuts after its trunk.
    fn forward_split(&self, _input: &Tensor, _train: bool) -> Result<Option<SplitOutput>> {
        Ok(None)
    }

    /// `true` when [`MultiTaskNet::forward_split`] returns a split.
    fn has_shared_representation(&self) -> bool {
        false
    }

    /// The gate weights of a gated architecture (MMoE, CGC, PLE, DSelect-k) for `input`, in
    /// evaluation mode: per task, one `[B, E_l]` tensor per gating level (one level except
    /// PLE's), each row a distribution over the `E_l` experts that level's gate mixes. `None`
    /// for architectures without gates.
    fn gates(&self, _input: &Tensor) -> Result<Option<TaskMap<Vec<Tensor>>>> {
        Ok(None)
    }

    /// Called by the trainer before epoch `epoch` (0-based) of a run of `epochs` epochs, on a
    /// fresh start and on a resume alike. Architectures whose training has phases (Learning to
    /// Branch: search, then a fixed tree) switch here; the default does nothing.
    fn begin_epoch(&self, _epoch: usize, _epochs: usize) {}

    /// Task names, in output order.
    fn task_names(&self) -> Vec<String> {
        self.param_groups().tasks.keys().map(String::from).collect()
    }
}
