//! Customised gate control (Tang, Liu, Zhao, Gong, RecSys 2020, "Progressive Layered
//! Extraction (PLE): A Novel Multi-Task Learning (MTL) Model for Personalized
//! Recommendations", section 4.2).
//!
//! `S` shared experts, `E_t` experts of task `t`'s own, each a whole backbone; task `t`'s
//! softmax gate reads the input and mixes the shared experts and its own:
//!
//! `f_t(x) = Σ_{j=1..S} g_t(x)_j · shared_j(x) + Σ_{i=1..E_t} g_t(x)_{S+i} · own_{t,i}(x)`,
//! `g_t(x) = softmax(W_t vec(x) + b_t) ∈ ℝ^{S+E_t}`,  `ŷ_t = head_t(f_t(x))`.
//!
//! Unlike [MMoE](crate::Mmoe), a task's own experts are reached by its loss alone, so tasks
//! that conflict keep capacity that the others cannot pull away (the "seesaw" the paper
//! names).
//!
//! ## Shapes
//! Input `[B, …]` (`vec(x)`: `[B, d]`); experts `[B, D]`; gates `[B, S + E_t]` (shared
//! experts first, then the task's own, in order); predictions `[B, out_dim_t]`. No penalty.
//!
//! ## Parameter names and groups
//! `experts.shared.<j>.*`, `experts.<task>.<i>.*`, `gates.<task>.{weight,bias}`,
//! `heads.<task>.*`. `shared`: the shared experts (`last_shared`: their last stage);
//! `tasks[t]`: task `t`'s experts, gate and head.
//!
//! ## Cost
//! `S + Σ_t E_t` backbones per step.
use crate::experts::{at_least, expert_groups, mix, numel, per_task, Gate, Heads};
use crate::mmoe::{missing, one_level};
use crate::{MultiTaskNet, NetOutput, ParamGroups, Result, ShareError};
use candle_core::Tensor;
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};
use tandem_heads::TaskSet;
use tandem_layers::Backbone;
use tandem_tensor::TaskMap;

/// Configuration of [`Cgc`] (`kind = "cgc"`) and of [`Ple`](crate::Ple) (`kind = "ple"`):
/// the expert counts of one extraction layer.
///
/// ```toml
/// kind = "cgc"
/// experts = 1        # shared experts
/// task_experts = 1   # experts of each task's own
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CgcConfig {
    /// Number of shared experts `S` (at least 1). Default 1.
    pub experts: usize,
    /// Number of experts of each task's own, `E_t` (at least 1). Default 1.
    pub task_experts: usize,
}

impl Default for CgcConfig {
    fn default() -> Self {
        Self {
            experts: 1,
            task_experts: 1,
        }
    }
}

impl CgcConfig {
    /// Checks `experts ≥ 1` and `task_experts ≥ 1`; the error names the key.
    pub fn validate(&self) -> Result<()> {
        at_least("experts", self.experts, 1)?;
        at_least("task_experts", self.task_experts, 1)
    }
}

/// The shared and per-task experts of CGC or PLE, built and named alike.
pub(crate) struct ExpertSet<B> {
    pub(crate) shared: Vec<B>,
    pub(crate) own: TaskMap<Vec<B>>,
}

impl<B: Backbone> ExpertSet<B> {
    pub(crate) fn new<E>(
        config: &CgcConfig,
        tasks: &TaskSet,
        vb: &VarBuilder,
        build: &mut impl FnMut(VarBuilder) -> std::result::Result<B, E>,
    ) -> Result<Self>
    where
        ShareError: From<E>,
    {
        config.validate()?;
        let evb = vb.pp("experts");
        let shared = (0..config.experts)
            .map(|j| build(evb.pp("shared").pp(j)))
            .collect::<std::result::Result<Vec<B>, E>>()?;
        let mut own = TaskMap::new();
        for task in tasks.iter() {
            let tvb = evb.pp(task.name());
            let nets = (0..config.task_experts)
                .map(|i| build(tvb.pp(i)))
                .collect::<std::result::Result<Vec<B>, E>>()?;
            own.insert(task.name(), nets);
        }
        Ok(Self { shared, own })
    }

    pub(crate) fn first(&self) -> &B {
        &self.shared[0]
    }
}

/// Shared experts and experts of each task's own, mixed per task by a gate (module docs).
pub struct Cgc<B: Backbone> {
    experts: ExpertSet<B>,
    gates: TaskMap<Gate>,
    gate_prefixes: TaskMap<String>,
    heads: Heads,
}

impl<B: Backbone> Cgc<B> {
    /// Builds the experts with `build` (`vb.pp("experts").pp("shared").pp(j)` and
    /// `vb.pp("experts").pp(task).pp(i)`), a gate per task under `vb.pp("gates")` and a head
    /// per task under `vb.pp("heads")`.
    pub fn new<E>(
        config: &CgcConfig,
        tasks: &TaskSet,
        vb: VarBuilder,
        mut build: impl FnMut(VarBuilder) -> std::result::Result<B, E>,
    ) -> Result<Self>
    where
        ShareError: From<E>,
    {
        let experts = ExpertSet::new(config, tasks, &vb, &mut build)?;
        let d_in = numel(&experts.first().input_shape());
        let width = config.experts + config.task_experts;
        let (gates, gate_prefixes) =
            per_task(tasks, &vb.pp("gates"), |gvb| Gate::new(d_in, width, gvb))?;
        let heads = Heads::new(tasks, experts.first().out_dim(), vb.pp("heads"))?;
        Ok(Self {
            experts,
            gates,
            gate_prefixes,
            heads,
        })
    }
}

impl<B: Backbone> MultiTaskNet for Cgc<B> {
    fn forward_t(&self, input: &Tensor, train: bool) -> candle_core::Result<NetOutput> {
        let shared = self
            .experts
            .shared
            .iter()
            .map(|e| e.forward_t(input, train))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let predictions = self.heads.heads.try_map(|t, head| {
            let gate = self.gates.get(t).ok_or_else(|| missing(t))?;
            let own = self
                .experts
                .own
                .get(t)
                .ok_or_else(|| missing(t))?
                .iter()
                .map(|e| e.forward_t(input, train))
                .collect::<candle_core::Result<Vec<_>>>()?;
            let refs: Vec<&Tensor> = shared.iter().chain(own.iter()).collect();
            head.forward(&mix(&gate.weights(input)?, &refs)?)
        })?;
        Ok(NetOutput {
            predictions,
            penalty: None,
        })
    }

    fn gates(&self, input: &Tensor) -> candle_core::Result<Option<TaskMap<Vec<Tensor>>>> {
        one_level(&self.gates, input).map(Some)
    }

    fn param_groups(&self) -> ParamGroups {
        let own = |t: &str| {
            let mut own: Vec<String> = self
                .experts
                .own
                .get(t)
                .map(|v| v.iter().map(Backbone::prefix).collect())
                .unwrap_or_default();
            own.extend(self.gate_prefixes.get(t).cloned());
            own
        };
        expert_groups(self.experts.shared.iter(), own, &self.heads.prefixes)
    }
}
